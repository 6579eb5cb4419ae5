"""notify(): rows in the caller's transaction, sending only after commit, recipients and preferences."""

import pytest
from django.core import mail
from django.db import transaction

from maintenance_site.events.models import Event
from maintenance_site.notifications import services
from maintenance_site.notifications.models import Channel, Notification, NotificationDelivery
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.roles import Role
from tests.conftest import make_user

CONTEXT = {"title": "Work order WO-42 assigned", "body": "Pump P-7 leaks.", "url": "/work-orders/42", "work_order": 42}
Status = NotificationDelivery.Status


def deliveries_of(user):
    return {d.channel: d for d in NotificationDelivery.objects.filter(notification__recipient=user)}


# --- after commit, once ------------------------------------------------------------------------------


def test_sent_once_after_commit_never_before(org_a, technician_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        [notification] = services.notify(org_a, technician_a, "work-order:assigned", CONTEXT)
        # Inside the caller's transaction: rows written, all pending, nothing sent.
        assert {d.channel: d.status for d in notification.deliveries.all()} == {
            Channel.IN_APP: Status.PENDING,
            Channel.EMAIL: Status.PENDING,
        }
        assert mail.outbox == []
        assert not Event.objects.filter(type="notification:created").exists()

    assert len(callbacks) >= 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [technician_a.email]
    assert mail.outbox[0].subject == "[Org A] Work order WO-42 assigned"
    assert "/work-orders/42" in mail.outbox[0].body
    deliveries = deliveries_of(technician_a)
    assert {c: (d.status, d.attempts) for c, d in deliveries.items()} == {
        Channel.IN_APP: (Status.SENT, 1),
        Channel.EMAIL: (Status.SENT, 1),
    }
    assert deliveries[Channel.EMAIL].sent_at is not None
    [event] = Event.objects.filter(type="notification:created")
    assert event.user == technician_a and event.organization == org_a
    assert event.payload["id"] == notification.pk and event.payload["kind"] == "work-order:assigned"
    assert "title" not in event.payload and "body" not in event.payload  # the org stream may carry it

    # The after-commit callback running again (a duplicated message) sends nothing twice.
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1
    assert Event.objects.filter(type="notification:created").count() == 1


def test_notification_row_keeps_the_context(org_a, technician_a, notify_now):
    [notification] = notify_now(org_a, technician_a, "work-order:assigned", CONTEXT)
    notification.refresh_from_db()
    assert (notification.title, notification.body, notification.url) == (
        "Work order WO-42 assigned",
        "Pump P-7 leaks.",
        "/work-orders/42",
    )
    assert notification.data == {"work_order": 42}
    assert notification.read_at is None and notification.organization == org_a


def test_nothing_is_sent_when_the_caller_rolls_back(org_a, technician_a, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.notify(org_a, technician_a, "work-order:assigned", CONTEXT)
        raise RuntimeError("the caller's change failed")
    assert callbacks == []
    assert not Notification.objects.exists()
    assert not NotificationDelivery.objects.exists()
    assert mail.outbox == []
    assert not Event.objects.filter(type="notification:created").exists()


@pytest.mark.django_db(transaction=True)
def test_sending_waits_for_a_real_commit(org_a, technician_a):
    with transaction.atomic():
        services.notify(org_a, technician_a, "work-order:assigned", CONTEXT)
        assert mail.outbox == []
        assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert len(mail.outbox) == 1
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {Status.SENT}


def test_each_notify_sends_once(org_a, technician_a, notify_now):
    notify_now(org_a, technician_a, "work-order:assigned", CONTEXT)
    notify_now(org_a, technician_a, "work-order:assigned", {**CONTEXT, "title": "WO-43 assigned"})
    assert [m.subject for m in mail.outbox] == ["[Org A] Work order WO-42 assigned", "[Org A] WO-43 assigned"]
    assert Notification.objects.filter(recipient=technician_a).count() == 2


# --- recipients --------------------------------------------------------------------------------------


def test_role_recipients_are_that_organisations_active_members_only(
    org_a, org_b, manager_a, technician_a, manager_b, member_of_both, notify_now
):
    second_manager = make_user("manager-a2")
    tenancy.add_member(org_a, second_manager, Role.MANAGER)
    gone = make_user("manager-a-gone")
    membership = tenancy.add_member(org_a, gone, Role.MANAGER)
    membership.is_active = False
    membership.save()

    notifications = notify_now(org_a, Role.MANAGER, "sla:violation", CONTEXT)

    assert {n.recipient for n in notifications} == {manager_a, second_manager}
    assert all(n.organization == org_a for n in notifications)
    # member_of_both is a planner in A: not a manager there, whatever they are in B.
    assert not Notification.objects.filter(recipient__in=[manager_b, member_of_both, gone, technician_a]).exists()


def test_mixed_recipients_are_deduplicated_and_strangers_ignored(org_a, manager_a, technician_a, manager_b, notify_now):
    notifications = notify_now(
        org_a, [Role.MANAGER, manager_a, technician_a, technician_a.pk, manager_b, "manager"], "sla:violation", CONTEXT
    )
    assert sorted(n.recipient.username for n in notifications) == ["manager-a", "technician-a"]
    assert not Notification.objects.filter(recipient=manager_b).exists()


def test_a_member_of_another_organisation_only_is_ignored(org_a, manager_b, notify_now):
    assert notify_now(org_a, manager_b, "sla:violation", CONTEXT) == []
    assert not Notification.objects.exists()


def test_member_of_both_is_notified_in_the_organisation_named(org_b, member_of_both, notify_now):
    [notification] = notify_now(org_b, Role.VIEWER, "inventory:low-stock", CONTEXT)
    assert notification.recipient == member_of_both and notification.organization == org_b


def test_bad_recipients_kinds_and_contexts_are_refused(org_a, technician_a):
    with pytest.raises(ValueError, match="not a role"):
        services.notify(org_a, "chief", "sla:violation", CONTEXT)
    with pytest.raises(TypeError):
        services.notify(org_a, [1.5], "sla:violation", CONTEXT)
    with pytest.raises(ValueError, match="Unknown notification kind"):
        services.notify(org_a, technician_a, "sla:violaton", CONTEXT)
    with pytest.raises(ValueError, match="title"):
        services.notify(org_a, technician_a, "sla:violation", {"body": "no title"})
    assert not Notification.objects.exists()


# --- channels and preferences ------------------------------------------------------------------------


def test_per_user_channel_preferences_are_respected(org_a, manager_a, planner_a, technician_a, notify_now):
    services.set_preferences(org_a, technician_a, {"work-order:assigned": []})  # in-app only
    services.set_preferences(org_a, planner_a, {"work-order:assigned": ["email"]})
    services.set_preferences(org_a, manager_a, {"sla:violation": []})  # another kind: no effect here

    notify_now(org_a, [manager_a, planner_a, technician_a], "work-order:assigned", CONTEXT)

    assert set(deliveries_of(technician_a)) == {Channel.IN_APP}
    assert set(deliveries_of(planner_a)) == {Channel.IN_APP, Channel.EMAIL}
    assert set(deliveries_of(manager_a)) == {Channel.IN_APP, Channel.EMAIL}  # the kind's defaults
    assert sorted(m.to[0] for m in mail.outbox) == [manager_a.email, planner_a.email]


def test_preferences_are_per_organisation(org_a, org_b, member_of_both, notify_now):
    services.set_preferences(org_b, member_of_both, {"inventory:low-stock": []})
    notify_now(org_a, member_of_both, "inventory:low-stock", CONTEXT)
    notify_now(org_b, member_of_both, "inventory:low-stock", CONTEXT)
    channels = sorted(
        NotificationDelivery.objects.values_list("notification__organization__slug", "channel").order_by("id")
    )
    assert channels == [("org-a", "email"), ("org-a", "in_app"), ("org-b", "in_app")]


def test_in_app_cannot_be_switched_off(org_a, technician_a, notify_now):
    services.set_preferences(org_a, technician_a, {"work-order:assigned": ["email"]})
    preferences = {item["kind"]: item for item in services.preferences_of(org_a, technician_a)}
    assert preferences["work-order:assigned"]["channels"] == ["in_app", "email"]
    assert preferences["work-order:assigned"]["customised"] is True
    notify_now(org_a, technician_a, "work-order:assigned", CONTEXT)
    assert set(deliveries_of(technician_a)) == {Channel.IN_APP, Channel.EMAIL}


def test_unconfigured_channels_get_no_delivery(org_a, manager_a, notify_now):
    # sla:violation defaults to in_app, email, slack and push; neither Slack nor push is configured here.
    notify_now(org_a, manager_a, "sla:violation", CONTEXT)
    assert set(deliveries_of(manager_a)) == {Channel.IN_APP, Channel.EMAIL}


def test_email_is_skipped_for_a_user_without_address(org_a, notify_now):
    user = make_user("no-mail")
    user.email = ""
    user.save()
    tenancy.add_member(org_a, user, Role.TECHNICIAN)
    notify_now(org_a, user, "work-order:assigned", CONTEXT)
    email = deliveries_of(user)[Channel.EMAIL]
    assert email.status == Status.SKIPPED
    assert "no e-mail address" in email.last_error
    assert mail.outbox == []


def test_slack_posts_once_per_notify_however_many_recipients(
    org_a, manager_a, planner_a, settings, http_endpoint, notify_now
):
    slack = http_endpoint()
    settings.SLACK_WEBHOOK_URL = slack.url
    notify_now(org_a, [manager_a, planner_a], "sla:violation", CONTEXT)
    assert NotificationDelivery.objects.filter(channel=Channel.SLACK, status=Status.SENT).count() == 1
    [request] = slack.requests
    assert request["json"] == {"text": "*[Org A] Work order WO-42 assigned*\nPump P-7 leaks.\n/work-orders/42"}


def test_sms_goes_to_the_phone_number_with_the_api_key(org_a, technician_a, settings, http_endpoint, notify_now):
    sms = http_endpoint()
    settings.SMS_API_URL, settings.SMS_API_KEY = sms.url, "sms-secret"
    services.set_phone_number(technician_a, "+4915112345678")
    services.set_preferences(org_a, technician_a, {"work-order:assigned": ["sms"]})
    notify_now(org_a, technician_a, "work-order:assigned", CONTEXT)
    [request] = sms.requests
    assert request["headers"]["Authorization"] == "Bearer sms-secret"
    assert request["json"] == {"to": "+4915112345678", "message": "Work order WO-42 assigned: Pump P-7 leaks."}
    assert deliveries_of(technician_a)[Channel.SMS].status == Status.SENT


def test_sms_is_skipped_without_a_phone_number(org_a, technician_a, settings, http_endpoint, notify_now):
    sms = http_endpoint()
    settings.SMS_API_URL = sms.url
    services.set_preferences(org_a, technician_a, {"work-order:assigned": ["sms"]})
    notify_now(org_a, technician_a, "work-order:assigned", CONTEXT)
    assert sms.requests == []
    delivery = deliveries_of(technician_a)[Channel.SMS]
    assert delivery.status == Status.SKIPPED and "phone number" in delivery.last_error


def test_push_posts_to_the_push_service(org_a, technician_a, settings, http_endpoint, notify_now):
    push = http_endpoint()
    settings.PUSH_SERVICE_URL, settings.PUSH_API_KEY = push.url, "push-secret"
    [notification] = notify_now(org_a, technician_a, "work-order:assigned", CONTEXT)
    [request] = push.requests
    assert request["headers"]["Authorization"] == "Bearer push-secret"
    assert request["json"] == {
        "user": str(technician_a.pk),
        "organization": "org-a",
        "notification": notification.pk,
        "kind": "work-order:assigned",
        "title": "Work order WO-42 assigned",
        "body": "Pump P-7 leaks.",
        "url": "/work-orders/42",
    }


def test_preferences_have_history(org_a, technician_a):
    from maintenance_site.notifications.models import NotificationPreference

    services.set_preferences(org_a, technician_a, {"sla:warning": ["email"]})
    services.set_preferences(org_a, technician_a, {"sla:warning": ["push"]})
    services.set_preferences(org_a, technician_a, {"sla:warning": None})
    assert not NotificationPreference.objects.exists()
    assert [h.history_type for h in NotificationPreference.history.order_by("history_id")] == ["+", "~", "-"]
