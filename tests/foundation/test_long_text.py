"""Text longer than simple-history's old `varchar(100)` reason column, on PostgreSQL (SQLite ignores lengths,
which is why the default run never saw these 500s): the whole work-order lifecycle with 1,000-character
reasons, a priority change that re-targets the SLA clock between two policies with long names, a rejected
request, a schedule paused with a long reason, windows cancelled, failed and overlapping with long reasons,
maintenance mode and a scenario switched on with long reasons.
Every history row keeps the whole reason."""

from datetime import timedelta

import psutil
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assets import services as asset_services
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.models import Organization
from maintenance_site.validation import REASON_MAX_LENGTH
from scenarios import services as scenario_services
from scenarios import sync
from scenarios.models import Scenario
from scheduling.preventive import services as preventive
from scheduling.preventive.models import PreventiveSchedule
from scheduling.windows import mode as windows
from scheduling.windows import services as window_services
from sla import services as sla_services
from workorders import services
from workorders.models import WorkOrder, WorkRequest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def long_text(label: str, length: int = 1000) -> str:
    """`length` characters of ordinary sentences, starting with `label` so each reason is told apart."""
    sentence = " The seal leaks again at the shaft and the spare part is on back order from the vendor."
    return (label + sentence * (length // len(sentence) + 1))[:length]


def latest_history(instance):
    return type(instance).history.filter(id=instance.pk).order_by("-history_id").first()


@pytest.fixture
def pump(org_a):
    room = asset_services.create_location(org_a, name="Pump room")
    return asset_services.create_asset(org_a, code="PMP-1", name="Cooling pump", location=room)


@pytest.fixture
def verifying(org_a):
    Organization.objects.filter(pk=org_a.pk).update(require_verification=True)
    org_a.refresh_from_db()
    return org_a


def test_the_whole_lifecycle_with_thousand_character_reasons(api, verifying, pump, planner_a, technician_a):
    planner, tech = api(planner_a), api(technician_a)
    created = planner.post(
        "/api/v1/work-orders/",
        {"title": long_text("Title.", 200), "asset": pump.pk, "needs_downtime": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    path = f"/api/v1/work-orders/{created.json()['id']}/"

    def act(client, action, reason=None, status="in_progress"):
        body = {"reason": reason} if reason is not None else {}
        response = client.post(path + f"{action}/", body, format="json")
        assert response.status_code == 200, (action, response.content)
        assert response.json()["status"] == status
        return response.json()

    assigned = planner.post(path + "assign/", {"assignee": technician_a.pk}, format="json")
    assert assigned.json()["status"] == "assigned"
    act(tech, "start")  # marks the pump down with a reason built from the number and the 200-character title
    held = act(tech, "hold", long_text("Hold."), status="on_hold")
    assert held["hold_reason"] == long_text("Hold.")
    act(tech, "resume")
    act(tech, "complete", status="completed")
    act(planner, "reject", long_text("Reject."))
    act(tech, "complete", status="completed")
    act(planner, "verify", status="verified")
    act(planner, "reopen", long_text("Reopen."))
    act(tech, "hold", long_text("Hold again."), status="on_hold")
    cancelled = act(planner, "cancel", long_text("Cancel."), status="cancelled")
    assert cancelled["cancel_reason"] == long_text("Cancel.")

    order = WorkOrder.objects.get(pk=created.json()["id"])
    reasons = list(order.history.order_by("history_id").values_list("history_change_reason", flat=True))
    for action, label in [("hold", "Hold."), ("reject", "Reject."), ("reopen", "Reopen."), ("cancel", "Cancel.")]:
        assert f"{action}: {long_text(label)}" in reasons
    downtime = pump.downtimes.get()
    assert downtime.reason == f"{order.number}: {order.title}" and downtime.ended_at is not None


def test_a_reason_beyond_the_limit_is_a_400_naming_the_field(api, pump, planner_a, technician_a):
    order = services.create_work_order(pump.organization, title="Seal", actor=planner_a, assignee=technician_a)
    services.start(order, actor=technician_a)
    response = api(technician_a).post(
        f"/api/v1/work-orders/{order.pk}/hold/", {"reason": "x" * (REASON_MAX_LENGTH + 1)}, format="json"
    )
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS


def test_the_technician_view_holds_with_a_long_reason(org_a, pump, planner_a, technician_a):
    order = services.create_work_order(org_a, title="Seal", actor=planner_a, assignee=technician_a)
    services.start(order, actor=technician_a)
    client = Client()
    client.force_login(technician_a)
    response = client.post(
        reverse("technician:order-action", args=[order.pk, "hold"]), {"reason": long_text("From the phone.")}
    )
    assert response.status_code in (200, 302)
    order.refresh_from_db()
    assert (order.status, order.hold_reason) == (WorkOrder.Status.ON_HOLD, long_text("From the phone."))


def test_a_rejected_request_keeps_a_long_reason(api, org_a, planner_a):
    work_request = services.submit_request(org_a, description="The door of hall 2 does not close.")
    response = api(planner_a).post(
        f"/api/v1/requests/{work_request.pk}/reject/", {"reason": long_text("Rejected.")}, format="json"
    )
    assert response.status_code == 200, response.content
    assert WorkRequest.objects.get(pk=work_request.pk).rejection_reason == long_text("Rejected.")


def test_a_priority_change_retargets_between_policies_with_long_names(api, org_a, manager_a, planner_a):
    calendar = sla_services.create_calendar(org_a, name="24/7", always_open=True, actor=manager_a)
    medium_name, high_name = long_text("Medium priority policy.", 120), long_text("High priority policy.", 120)
    sla_services.create_policy(
        org_a,
        name=medium_name,
        priority="medium",
        calendar=calendar,
        response_minutes=60,
        resolution_minutes=240,
        actor=manager_a,
    )
    sla_services.create_policy(
        org_a,
        name=high_name,
        priority="high",
        calendar=calendar,
        response_minutes=30,
        resolution_minutes=120,
        actor=manager_a,
    )
    order = services.create_work_order(org_a, title="Leak", priority="medium", actor=planner_a)
    response = api(planner_a).patch(f"/api/v1/work-orders/{order.pk}/", {"priority": "high"}, format="json")
    assert response.status_code == 200, response.content
    clock = order.sla_clock
    clock.refresh_from_db()
    assert clock.policy.name == high_name
    note = latest_history(clock).history_change_reason
    assert note == f"re-targeted from “{medium_name}” to “{high_name}” (priority changed)"
    assert len(note) > 250


def test_a_schedule_paused_with_a_long_reason(org_a, planner_a):
    schedule = preventive.create_schedule(
        org_a,
        actor=planner_a,
        name="Daily walk-round",
        coverage=PreventiveSchedule.Coverage.ROUTINE,
        trigger=PreventiveSchedule.Trigger.CRON,
        cron_expression="30 7 * * 1-5",
        title="Walk-round",
    )
    with pytest.raises(InvalidInput) as refused:
        preventive.pause_schedule(schedule, actor=planner_a, reason="x" * (REASON_MAX_LENGTH + 1))
    assert refused.value.fields == {"reason": [f"At most {REASON_MAX_LENGTH} characters."]}
    paused = preventive.pause_schedule(schedule, actor=planner_a, reason=long_text("Paused."))
    assert paused.pause_reason == long_text("Paused.")  # kept whole, not cut
    assert latest_history(paused).history_change_reason == f"paused: {long_text('Paused.')}"


def test_windows_cancelled_failed_and_overlapping_with_long_reasons(org_a, manager_a):
    start = timezone.now() + timedelta(days=2)
    planned = window_services.create_window(
        org_a, title="Planned", starts_at=start, duration_minutes=60, actor=manager_a
    )
    urgent = window_services.create_window(
        org_a,
        title="Urgent",
        starts_at=start + timedelta(minutes=30),
        duration_minutes=60,
        emergency=True,
        emergency_reason=long_text("Emergency."),
        actor=manager_a,
    )
    assert urgent.emergency_reason == long_text("Emergency.")
    cancelled = window_services.cancel_window(planned, reason=long_text("Cancelled."), actor=manager_a)
    assert cancelled.status_reason == long_text("Cancelled.")
    running = window_services.create_window(
        org_a,
        title="Now",
        starts_at=timezone.now(),
        duration_minutes=60,
        emergency=True,
        emergency_reason="overlaps on purpose",
        actor=manager_a,
    )
    running.refresh_from_db()
    failed = window_services.fail_window(running, reason=long_text("Failed."), actor=manager_a)
    assert failed.status_reason == long_text("Failed.")
    assert latest_history(failed).history_user == manager_a


def test_maintenance_mode_and_a_scenario_with_long_reasons(org_a, manager_a, monkeypatch):
    windows.enter_maintenance_mode(org_a, reason=long_text("Mode on."), actor=manager_a)
    windows.exit_maintenance_mode(org_a, reason=long_text("Mode off."), actor=manager_a)

    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None, percpu=False: 5.0)  # a calm machine
    sync.sync_registry()
    activated = scenario_services.activate_scenario("log-cleanup", reason=long_text("Scenario on.", 500), actor=SYSTEM)
    assert activated.is_active
    assert latest_history(Scenario.objects.get(key="log-cleanup")).history_change_reason == long_text(
        "Scenario on.", 500
    )
