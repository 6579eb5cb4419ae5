"""A notification is written in its recipient's language, not the actor's: an English-speaking planner assigns
urgent work to a Spanish-speaking technician, and the technician's notification, e-mail and digest are Spanish,
with the due time in the Spanish locale; the planner's own colleagues keep reading English."""

import datetime

from django.core import mail
from django.test import Client
from django.utils import timezone

from maintenance_site.notifications import services as notification_services
from maintenance_site.notifications.models import Channel, Notification, NotificationDelivery
from maintenance_site.tenancy import services as tenancy
from workorders import services


def test_an_order_assigned_in_english_reaches_the_spanish_technician_in_spanish(
    org_a, planner_a, technician_a, django_capture_on_commit_callbacks
):
    tenancy.set_language(planner_a, actor=planner_a, language="en-gb")
    tenancy.set_language(technician_a, actor=technician_a, language="es")
    due = datetime.datetime(2026, 12, 5, 18, 4, tzinfo=datetime.UTC)  # 19:04 in Berlin, org A's time zone
    planner = Client(HTTP_ACCEPT_LANGUAGE="en-GB")  # the planner works in English, in a request of their own
    planner.force_login(planner_a)
    with django_capture_on_commit_callbacks(execute=True):
        order = services.create_work_order(
            org_a, title="Burst pipe", priority="critical", due_at=due, actor=planner_a, assignee=technician_a
        )
    notification = Notification.objects.get(recipient=technician_a, kind="work-order:assigned")
    assert notification.title == f"Crítica: {order.number} Burst pipe"
    assert notification.body == "Ábrela para ver qué hace falta.\n\nVence el sáb 5 Dic 2026, 19:04."

    [email] = [message for message in mail.outbox if message.to == [technician_a.email]]
    assert email.subject == f"[Org A] Crítica: {order.number} Burst pipe"
    assert "Ábrela para ver qué hace falta." in email.body and "sáb 5 Dic 2026, 19:04" in email.body
    assert "Critical" not in email.body and "Open it" not in email.body


def test_one_notice_to_several_people_is_written_in_each_ones_language(org_a, planner_a, technician_a, technician2_a):
    from django.utils.text import format_lazy
    from django.utils.translation import gettext_lazy

    tenancy.set_language(technician_a, actor=technician_a, language="es")
    notifications = notification_services.notify(
        org_a,
        [technician_a, technician2_a],
        "work-order:assigned",
        {"title": format_lazy("{}: WO-9", gettext_lazy("Urgent work")), "body": gettext_lazy("Note added.")},
    )
    texts = {n.recipient_id: (n.title, n.body) for n in notifications}
    assert texts == {
        technician_a.pk: ("Trabajo urgente: WO-9", "Nota añadida."),
        technician2_a.pk: ("Urgent work: WO-9", "Note added."),
    }


def test_the_daily_digest_subject_is_in_the_recipients_language(org_a, technician_a):
    tenancy.set_language(technician_a, actor=technician_a, language="es")
    notification_services.set_delivery_times(technician_a, daily_digest=True)
    for number in (1, 2):
        notification_services.notify(
            org_a, technician_a, "work-order:verification-needed", {"title": f"Verify WO-{number}", "body": "."}
        )
    NotificationDelivery.objects.filter(digest=True).update(not_before=timezone.now())
    assert notification_services.send_due_digests() == 1
    [digest] = mail.outbox
    assert digest.subject == "[Org A] 2 notificaciones hoy"
    assert NotificationDelivery.objects.filter(channel=Channel.EMAIL, status="sent").count() == 2


def test_quantities_and_money_in_a_notice_follow_the_recipients_locale(org_a, technician_a, technician2_a):
    from decimal import Decimal

    from django.utils.text import format_lazy
    from django.utils.translation import gettext_lazy

    from maintenance_site.i18n import lazy_money, lazy_number

    tenancy.set_language(technician_a, actor=technician_a, language="es")
    body = format_lazy(
        gettext_lazy("Spent and committed {spend} of {amount} ({start} – {end})."),
        spend=lazy_money(Decimal("1234.5"), "EUR"),
        amount=lazy_money(Decimal("2000"), "EUR"),
        start=lazy_number(Decimal("2.50")),
        end="…",
    )
    notifications = notification_services.notify(
        org_a, [technician_a, technician2_a], "work-order:assigned", {"title": "Budget", "body": body}
    )
    bodies = {n.recipient_id: n.body for n in notifications}
    assert bodies[technician_a.pk] == "Gastado y comprometido 1.234,50\xa0€ de 2.000,00\xa0€ (2,5 – …)."
    assert bodies[technician2_a.pk] == "Spent and committed €1,234.50 of €2,000.00 (2.5 – …)."
