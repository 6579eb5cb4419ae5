"""The SLA monitor: each warning and breach raised exactly once (violation, event, escalation) however often
it runs, also from several threads at once on PostgreSQL; escalation steps applied, notified and recorded."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from maintenance_site.audit import SYSTEM_USERNAME
from maintenance_site.events.models import Event
from maintenance_site.notifications.models import Notification
from maintenance_site.ops.schedules import core_periodic_tasks
from maintenance_site.tenancy import SYSTEM
from sla import services, tasks
from sla.models import ClockState, SLAClock, SLAViolation
from tests.sla.conftest import berlin
from workorders import services as work_orders
from workorders.models import WorkOrder


@pytest.fixture
def escalating_policy(org_a, business, technician2_a):
    """Respond in 60 business minutes, resolve in 240; warn the assignee and planners; on a response breach
    notify managers, reassign to technician 2 and raise the priority one level."""
    return services.create_policy(
        org_a,
        name="Medium",
        priority="medium",
        calendar=business,
        response_minutes=60,
        resolution_minutes=240,
        escalation_steps=[
            {"level": "warning", "kind": "notify", "notify_assignee": True, "notify_roles": ["planner"]},
            {"level": "breach", "target": "response", "kind": "notify", "notify_roles": ["manager"]},
            {"level": "breach", "target": "response", "kind": "reassign", "reassign_to": technician2_a},
            {"level": "breach", "kind": "raise_priority"},
        ],
        actor=SYSTEM,
    )


def events(kind):
    return Event.objects.filter(type=kind)


def test_warning_then_breach_each_exactly_once(clock, org_a, planner_a, medium_policy):
    order = work_orders.create_work_order(org_a, title="Leak", actor=planner_a)
    assert services.monitor_clocks() == {"warnings": 0, "breaches": 0}

    clock.set(berlin(2026, 3, 2, 9, 50))  # past the warning (09:48), before the deadline (10:00)
    assert services.monitor_clocks() == {"warnings": 1, "breaches": 0}
    assert services.monitor_clocks() == {"warnings": 0, "breaches": 0}
    warned = SLAClock.objects.get(work_order=order)
    assert warned.response_state == ClockState.WARNING and warned.response_warned_at == clock.now

    clock.set(berlin(2026, 3, 2, 10, 3))
    for _ in range(3):
        services.monitor_clocks()
    breached = SLAClock.objects.get(work_order=order)
    assert breached.response_state == ClockState.BREACHED and breached.resolution_state == ClockState.ON_TRACK
    assert events("sla:warning").count() == 1 and events("sla:violation").count() == 1
    violation = SLAViolation.objects.get(level="breach")
    assert (violation.kind, violation.priority, violation.policy) == ("response", "medium", medium_policy)
    assert violation.threshold_at == berlin(2026, 3, 2, 10, 0) and violation.late_seconds == 180
    payload = events("sla:violation").get().payload
    assert payload["number"] == order.number and payload["kind"] == "response" and payload["late_seconds"] == 180
    history = list(breached.history.order_by("history_id"))
    assert [row.history_change_reason for row in history[1:]] == ["response warning", "response breached"]
    assert all(row.history_user.username == SYSTEM_USERNAME for row in history[1:])


def test_a_paused_clock_is_not_raised(clock, org_a, planner_a, technician_a, medium_policy):
    order = work_orders.create_work_order(org_a, title="Leak", actor=planner_a, assignee=technician_a)
    order = work_orders.start(order, actor=technician_a)
    work_orders.hold(order, reason="parts", actor=technician_a)
    clock.set(berlin(2026, 3, 4, 9, 0))
    assert services.monitor_clocks() == {"warnings": 0, "breaches": 0}


def test_escalation_steps_are_applied_notified_and_recorded(
    clock, org_a, planner_a, manager_a, technician_a, technician2_a, escalating_policy, high_policy
):
    order = work_orders.create_work_order(org_a, title="Pump noise", actor=planner_a, assignee=technician_a)
    clock.set(berlin(2026, 3, 2, 9, 50))
    services.monitor_clocks()
    warning = Notification.objects.filter(kind="sla:warning")
    assert sorted(warning.values_list("recipient__username", flat=True)) == ["planner-a", "technician-a"]
    assert "SLA response deadline approaching" in warning.first().title

    clock.set(berlin(2026, 3, 2, 10, 5))
    services.monitor_clocks()
    order.refresh_from_db()
    assert order.assignee == technician2_a  # reassigned
    assert order.priority == "high"  # raised one level
    # the raise came from automation: the clock stays on its policy (no loop onto the "High" policy)
    assert SLAClock.objects.get(work_order=order).policy == escalating_policy
    assert list(Notification.objects.filter(kind="sla:violation").values_list("recipient__username", flat=True)) == [
        "manager-a"
    ]
    assert Notification.objects.get(kind="work-order:assigned").recipient == technician2_a
    violation = SLAViolation.objects.get(level="breach", kind="response")
    assert [(step["kind"], step["done"], step["detail"]) for step in violation.escalations] == [
        ("notify", True, "notified 1 person"),
        ("reassign", True, "reassigned to technician2-a"),
        ("raise_priority", True, "priority raised from medium to high"),
    ]
    changes = list(order.history.order_by("-history_id")[:2])
    assert all(row.history_user.username == SYSTEM_USERNAME for row in changes)
    assert {row.history_change_reason for row in changes} == {"assign", "SLA escalation: response deadline missed"}

    # the next runs change nothing: no second reassignment, no raise to critical
    services.monitor_clocks()
    order.refresh_from_db()
    assert order.priority == "high" and SLAViolation.objects.count() == 2
    assert events("sla:violation").count() == 1

    # the resolution breach raises again (high → critical); reassigning is not a resolution step
    clock.set(berlin(2026, 3, 2, 13, 31))
    services.monitor_clocks()
    order.refresh_from_db()
    assert order.priority == "critical"
    resolution = SLAViolation.objects.get(level="breach", kind="resolution")
    assert [step["kind"] for step in resolution.escalations] == ["raise_priority"]


def test_a_step_that_cannot_apply_is_recorded_as_skipped(
    clock, org_a, planner_a, manager_a, technician_a, escalating_policy
):
    order = work_orders.create_work_order(org_a, title="Started late", actor=planner_a, assignee=technician_a)
    clock.set(berlin(2026, 3, 2, 13, 31))  # resolution breached; the order is in progress
    order = work_orders.start(order, actor=technician_a)
    services.monitor_clocks()
    resolution = SLAViolation.objects.get(level="breach", kind="resolution")
    assert [(step["kind"], step["done"]) for step in resolution.escalations] == [("raise_priority", True)]
    response = SLAViolation.objects.get(level="breach", kind="response")  # recorded when it started late
    assert [(step["kind"], step["detail"]) for step in response.escalations] == [
        ("notify", "notified 1 person"),
        ("reassign", "skipped: the target was already met (late)"),
        ("raise_priority", "skipped: the target was already met (late)"),
    ]


def test_the_beat_task_runs_the_monitor_and_is_scheduled(clock, org_a, planner_a, medium_policy, settings):
    work_orders.create_work_order(org_a, title="Leak", actor=planner_a)
    clock.set(berlin(2026, 3, 2, 10, 3))
    assert tasks.monitor_sla_clocks.delay().get() == {"warnings": 1, "breaches": 1}
    entry = next(task for task in core_periodic_tasks() if task.task == "sla.tasks.monitor_sla_clocks")
    assert entry.every_seconds == settings.SLA_MONITOR_INTERVAL


def test_the_monitor_leaves_other_organisations_alone(clock, org_a, org_b, planner_a, manager_b, medium_policy):
    work_orders.create_work_order(org_b, title="B's", actor=manager_b)
    clock.set(berlin(2026, 3, 2, 12, 0))
    assert services.monitor_clocks() == {"warnings": 0, "breaches": 0}  # B has no policy


# --- two monitors at once (PostgreSQL: SQLite takes one writer at a time anyway) ------------------------

MONITORS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_monitors_running_at_once_raise_each_breach_once(clock, org_a, planner_a, manager_a, business):
    services.create_policy(
        org_a,
        name="Medium",
        priority="medium",
        calendar=business,
        response_minutes=60,
        resolution_minutes=240,
        escalation_steps=[
            {"level": "breach", "kind": "notify", "notify_roles": ["manager"]},
            {"level": "breach", "kind": "raise_priority"},
        ],
        actor=SYSTEM,
    )
    orders = [work_orders.create_work_order(org_a, title=f"Order {n}", actor=planner_a) for n in range(25)]
    clock.set(berlin(2026, 3, 2, 10, 5))  # every response past its warning and its deadline
    start = threading.Barrier(MONITORS)
    totals = {"warnings": 0, "breaches": 0}
    lock = threading.Lock()

    def monitor(_):
        try:
            start.wait()
            raised = services.monitor_clocks()
        finally:
            connection.close()
        with lock:
            for key, count in raised.items():
                totals[key] += count

    with ThreadPoolExecutor(max_workers=MONITORS) as pool:
        list(pool.map(monitor, range(MONITORS)))

    assert totals == {"warnings": 25, "breaches": 25}
    assert services.monitor_clocks() == {"warnings": 0, "breaches": 0}
    assert SLAViolation.objects.filter(level="breach").count() == 25
    assert SLAViolation.objects.filter(level="warning").count() == 25
    assert events("sla:violation").count() == 25 and events("sla:warning").count() == 25
    assert Notification.objects.filter(kind="sla:violation", recipient=manager_a).count() == 25
    # each priority raised once: medium → high, never on to critical
    assert set(WorkOrder.objects.filter(pk__in=[o.pk for o in orders]).values_list("priority", flat=True)) == {"high"}
