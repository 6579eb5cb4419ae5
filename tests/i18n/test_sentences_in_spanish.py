"""Messages once built from pieces are whole sentences now, so they translate (issue 30): the maintenance-window
overlap 409 reaches a Spanish manager in Spanish (an English one still reads English); the scenarios' schedules,
lists of names and results read as Spanish sentences; the work-order admin's confirmation pages and results, and
the anomalies' admin column, are in Spanish for a Spanish manager."""

from datetime import timedelta

from django.utils import timezone, translation

from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy import services as tenancy
from scenarios.models import Scenario
from scenarios.services import changes_text, describe_changes, joined_names
from scheduling.windows.services import create_window
from workorders import services as work_orders

WINDOWS = "/api/v1/maintenance/windows/"


def _at(hours: float) -> str:
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def test_the_window_overlap_409_is_one_spanish_sentence(api, org_a, manager_a):
    now = timezone.now()
    create_window(
        org_a, title="Scheduled", starts_at=now + timedelta(hours=5), ends_at=now + timedelta(hours=6), actor=SYSTEM
    )
    create_window(
        org_a, title="Later", starts_at=now + timedelta(hours=6), ends_at=now + timedelta(hours=7), actor=SYSTEM
    )
    body = {"title": "Firmware update", "maintenance_type": "system_update", "starts_at": _at(5.5), "ends_at": _at(7)}

    english = api(manager_a).post(WINDOWS, body, format="json")
    assert english.status_code == 409
    assert english.json()["error"]["message"].startswith("This window overlaps the maintenance window “Scheduled” (#")
    assert "(and 1 more) on an intersecting scope" in english.json()["error"]["message"]

    tenancy.set_language(manager_a, actor=manager_a, language="es")
    response = api(manager_a).post(WINDOWS, body, format="json")
    assert response.status_code == 409 and response["Content-Language"] == "es"
    error = response.json()["error"]
    assert error["code"] == "window_overlap"
    assert error["message"].startswith("Esta ventana se solapa con la ventana de mantenimiento «Scheduled» (n.º ")
    assert (
        "(y 1 más) en un ámbito que se cruza: muévela o prográmala como emergencia con un motivo." in error["message"]
    )
    assert "overlaps" not in error["message"]


def test_the_scenarios_sentences_in_spanish_and_the_stored_record_in_english():
    changes = {"activated": ["b", "a"], "extended": [], "deactivated": ["c"]}
    with translation.override("es"):
        assert joined_names(["c", "a", "b"]) == "a, b y c"
        assert changes_text(changes) == "se activaron a y b; se desactivó c"
        assert changes_text({"activated": []}) == "nada que cambiar"
        assert describe_changes(changes) == "activated a and b; deactivated c"  # the stored record
        every = Scenario(key="health", kind=Scenario.Kind.INTERNAL, interval_seconds=300)
        assert every.schedule_display == "cada 5 minutos"
        assert Scenario(key="daily", kind=Scenario.Kind.INTERNAL, interval_seconds=86400).schedule_display == (
            "cada 1 día"
        )
    with translation.override("en-gb"):
        assert changes_text(changes) == "activated a and b; deactivated c"
        assert Scenario(key="health", kind=Scenario.Kind.INTERNAL, interval_seconds=300).schedule_display == (
            "every 5 minutes"
        )


def test_the_work_order_admin_actions_speak_spanish(client, org_a, manager_a, technician_a):
    order = work_orders.create_work_order(org_a, title="Check the pump", actor=manager_a, assignee=technician_a)
    tenancy.set_language(manager_a, actor=manager_a, language="es")
    client.force_login(manager_a)
    page = client.get(f"/admin/workorders/workorder/{order.pk}/lifecycle/start/")
    assert page.status_code == 200, page.status_code
    text = page.content.decode()
    assert "Iniciar órdenes de trabajo" in text and "¿Iniciar estas órdenes de trabajo?" in text
    assert "Sí, iniciar" in text and "Start these work orders" not in text
    response = client.post(f"/admin/workorders/workorder/{order.pk}/lifecycle/start/", {"apply": "1"}, follow=True)
    messages = [str(message) for message in response.context["messages"]]
    assert any(message.startswith("1 orden(es) de trabajo iniciada(s): ") for message in messages), messages
