"""A work order's SLA clock through its lifecycle: set on creation, paused and resumed with the order, met on
start and completion, resumed on reopen, re-targeted when a person changes the priority, and left alone
when a policy is edited later or an escalation raises the priority."""

import pytest

from maintenance_site.audit import system_user
from maintenance_site.tenancy import SYSTEM
from sla import services
from sla.models import ClockState, SLAClock, SLAViolation
from tests.sla.conftest import berlin
from workorders import services as work_orders
from workorders.models import WorkOrder

S = ClockState


@pytest.fixture
def order(clock, org_a, planner_a, medium_policy):
    """Created on Monday 2 March 2026 at 09:00 Berlin time, medium priority."""
    return work_orders.create_work_order(org_a, title="Leaking valve", actor=planner_a)


def sla(order) -> SLAClock:
    return SLAClock.objects.get(work_order=order)


def test_creation_starts_the_clock_with_business_deadlines(order, medium_policy):
    clock = sla(order)
    assert clock.policy == medium_policy
    assert clock.started_at == berlin(2026, 3, 2, 9, 0)
    assert clock.response_due_at == berlin(2026, 3, 2, 10, 0)
    assert clock.response_warning_at == berlin(2026, 3, 2, 9, 48)  # 80 % of 60 minutes
    # 240 business minutes: 09:00–12:00, then 12:30–13:30 (the lunch break does not count)
    assert clock.resolution_due_at == berlin(2026, 3, 2, 13, 30)
    assert clock.resolution_warning_at == berlin(2026, 3, 2, 12, 42)
    assert (clock.response_state, clock.resolution_state) == (S.ON_TRACK, S.ON_TRACK)
    assert clock.history.get().history_change_reason == "started under “Medium”"


def test_an_order_created_friday_afternoon_is_due_on_monday(clock, org_a, planner_a, medium_policy):
    clock.set(berlin(2026, 3, 6, 15, 30))
    order = work_orders.create_work_order(org_a, title="Late Friday", actor=planner_a)
    assert sla(order).response_due_at == berlin(2026, 3, 9, 7, 30)


def test_no_policy_no_clock(clock, org_a, planner_a, medium_policy):
    order = work_orders.create_work_order(org_a, title="Low", priority="low", actor=planner_a)
    assert not SLAClock.objects.filter(work_order=order).exists()
    assert services.clock_summary(order) is None


def test_pause_and_resume_across_the_night(clock, order, planner_a, technician_a):
    order = work_orders.assign(order, technician_a, actor=planner_a)
    clock.set(berlin(2026, 3, 2, 9, 30))
    order = work_orders.start(order, actor=technician_a)
    started = sla(order)
    assert (started.response_state, started.response_seconds) == (S.MET, 30 * 60)

    clock.set(berlin(2026, 3, 2, 10, 0))
    order = work_orders.hold(order, reason="waiting for a part", actor=technician_a)
    held = sla(order)
    assert held.paused_since == berlin(2026, 3, 2, 10, 0) and held.is_paused

    clock.set(berlin(2026, 3, 3, 8, 0))  # Tuesday
    order = work_orders.resume(order, actor=technician_a)
    resumed = sla(order)
    # paused: Monday 10:00–12:00 and 12:30–16:00, Tuesday 07:00–08:00 = 390 business minutes
    assert resumed.paused_since is None and resumed.paused_seconds == 390 * 60
    # 60 of 240 minutes were used before the hold: 180 left from Tuesday 08:00
    assert resumed.resolution_due_at == berlin(2026, 3, 3, 11, 0)
    assert resumed.response_due_at == berlin(2026, 3, 2, 10, 0)  # met: not moved

    clock.set(berlin(2026, 3, 3, 10, 30))
    order = work_orders.complete(order, actor=technician_a)
    done = sla(order)
    assert (done.resolution_state, done.resolution_seconds) == (S.MET, 210 * 60)
    assert done.stopped_at == berlin(2026, 3, 3, 10, 30)
    reasons = list(done.history.order_by("history_id").values_list("history_change_reason", flat=True))
    assert reasons == [
        "started under “Medium”",
        "start: response met",
        "hold: paused",
        "resume: resumed",
        "complete: resolution met, stopped",
    ]


def test_reopen_resumes_the_resolution_clock(clock, order, planner_a, technician_a):
    order = work_orders.assign(order, technician_a, actor=planner_a)
    order = work_orders.start(order, actor=technician_a)
    clock.set(berlin(2026, 3, 2, 11, 0))
    order = work_orders.complete(order, actor=technician_a)
    assert sla(order).resolution_state == S.MET  # 120 of 240 minutes used

    clock.set(berlin(2026, 3, 2, 14, 0))
    order = work_orders.transition(order, "reopen", actor=planner_a, reason="still leaking")
    reopened = sla(order)
    assert reopened.stopped_at is None and reopened.resolution_met_at is None
    assert reopened.resolution_state == S.ON_TRACK
    # 120 minutes left from 14:00
    assert reopened.resolution_due_at == berlin(2026, 3, 2, 16, 0)
    assert reopened.response_state == S.MET

    clock.set(berlin(2026, 3, 3, 7, 30))  # Tuesday, past the new deadline
    assert services.monitor_clocks() == {"warnings": 1, "breaches": 1}
    assert set(SLAViolation.objects.values_list("kind", "level")) == {
        ("resolution", "warning"),
        ("resolution", "breach"),
    }
    clock.set(berlin(2026, 3, 3, 8, 0))
    order = work_orders.complete(order, actor=technician_a)
    assert sla(order).resolution_state == S.BREACHED  # late stays late
    assert SLAViolation.objects.count() == 2


def test_cancel_stops_the_clock(clock, order, planner_a):
    work_orders.cancel(order, reason="duplicate", actor=planner_a)
    stopped = sla(order)
    assert stopped.stopped_at is not None
    clock.set(berlin(2026, 3, 9, 9, 0))
    assert services.monitor_clocks() == {"warnings": 0, "breaches": 0}


def test_a_priority_change_by_a_person_switches_policy(clock, order, planner_a, high_policy):
    clock.set(berlin(2026, 3, 2, 9, 10))
    work_orders.update_work_order(order, actor=planner_a, priority="high")
    clock_now = sla(order)
    assert clock_now.policy == high_policy
    # the high policy's targets, on its 24/7 calendar, from the order's creation
    assert clock_now.response_due_at == berlin(2026, 3, 2, 9, 30)
    assert clock_now.resolution_due_at == berlin(2026, 3, 2, 11, 0)
    assert (clock_now.response_minutes, clock_now.resolution_minutes) == (30, 120)
    last = clock_now.history.order_by("-history_id").first()
    assert last.history_user == planner_a
    assert last.history_change_reason == "re-targeted from “Medium” to “High” (priority changed)"


def test_other_edits_do_not_touch_the_clock(clock, order, planner_a):
    before = sla(order)
    work_orders.update_work_order(order, actor=planner_a, title="Leaking valve, hall 1")
    assert sla(order).history.count() == before.history.count() == 1


def test_a_priority_change_on_an_order_without_clock_starts_one(clock, org_a, planner_a, medium_policy):
    order = work_orders.create_work_order(org_a, title="Low", priority="low", actor=planner_a)
    clock.set(berlin(2026, 3, 2, 9, 20))
    work_orders.update_work_order(order, actor=planner_a, priority="medium")
    started = sla(order)
    assert started.policy == medium_policy
    assert started.response_due_at == berlin(2026, 3, 2, 10, 0)  # from the order's creation


def test_an_automated_priority_change_does_not_retarget(clock, order, high_policy):
    work_orders.update_work_order(order, actor=system_user(), priority="high")
    assert WorkOrder.objects.get(pk=order.pk).priority == "high"
    assert sla(order).policy.name == "Medium"


def test_editing_a_policy_does_not_rewrite_running_clocks(clock, org_a, planner_a, order, medium_policy):
    services.update_policy(medium_policy, response_minutes=120, resolution_minutes=480, actor=SYSTEM)
    assert sla(order).response_due_at == berlin(2026, 3, 2, 10, 0)
    assert sla(order).response_minutes == 60
    newer = work_orders.create_work_order(org_a, title="Newer", actor=planner_a)
    assert sla(newer).response_due_at == berlin(2026, 3, 2, 11, 0)


def test_a_late_start_before_the_monitor_ran_is_recorded_as_a_breach_once(clock, order, planner_a, technician_a):
    order = work_orders.assign(order, technician_a, actor=planner_a)
    clock.set(berlin(2026, 3, 2, 10, 20))
    work_orders.start(order, actor=technician_a)
    late = sla(order)
    assert late.response_state == S.BREACHED and late.response_breached_at == berlin(2026, 3, 2, 10, 20)
    violation = SLAViolation.objects.get()
    assert (violation.kind, violation.level, violation.late_seconds) == ("response", "breach", 20 * 60)
    assert services.monitor_clocks()["breaches"] == 0


def test_custom_pause_statuses(clock, org_a, planner_a, technician_a, business):
    services.create_policy(
        org_a,
        name="Waiting for assignment pauses",
        priority="low",
        calendar=business,
        response_minutes=60,
        resolution_minutes=120,
        pause_statuses=["assigned", "on_hold"],
        actor=SYSTEM,
    )
    order = work_orders.create_work_order(org_a, title="x", priority="low", actor=planner_a)
    clock.set(berlin(2026, 3, 2, 9, 15))
    order = work_orders.assign(order, technician_a, actor=planner_a)
    assert sla(order).paused_since == berlin(2026, 3, 2, 9, 15)
    clock.set(berlin(2026, 3, 2, 9, 45))
    order = work_orders.start(order, actor=technician_a)
    started = sla(order)
    assert started.paused_since is None and started.paused_seconds == 30 * 60
    assert started.response_seconds == 15 * 60 and started.response_state == S.MET


def test_clock_summary_and_with_sla(clock, order, org_a, planner_a, django_assert_num_queries):
    summary = services.clock_summary(order)
    assert summary["policy"]["name"] == "Medium"
    assert summary["state"] == "on_track"
    assert summary["response"]["due_at"] == berlin(2026, 3, 2, 10, 0)
    assert summary["resolution"]["target_minutes"] == 240
    for index in range(5):
        work_orders.create_work_order(org_a, title=f"more {index}", actor=planner_a)
    work_orders.create_work_order(org_a, title="no policy", priority="low", actor=planner_a)
    clock.set(berlin(2026, 3, 2, 9, 50))
    services.monitor_clocks()  # every medium order now warns on its response
    with django_assert_num_queries(1):  # one SELECT with a LEFT JOIN on the clocks
        rows = list(services.with_sla(WorkOrder.objects.for_tenant(org_a)).order_by("pk"))
    assert [row.sla_state for row in rows] == ["warning"] * 6 + [None]
    assert rows[0].response_due_at == berlin(2026, 3, 2, 10, 0)
    assert rows[0].resolution_due_at == berlin(2026, 3, 2, 13, 30)
    assert rows[-1].response_due_at is None


def test_start_clocks_for_open_orders(clock, org_a, planner_a, technician_a, business):
    waiting = work_orders.create_work_order(org_a, title="waiting", actor=planner_a)
    running = work_orders.start(
        work_orders.create_work_order(org_a, title="running", actor=planner_a, assignee=technician_a), actor=planner_a
    )
    held = work_orders.hold(
        work_orders.start(
            work_orders.create_work_order(org_a, title="held", actor=planner_a, assignee=technician_a),
            actor=planner_a,
        ),
        reason="parts",
        actor=planner_a,
    )
    done = work_orders.complete(
        work_orders.start(
            work_orders.create_work_order(org_a, title="done", actor=planner_a, assignee=technician_a),
            actor=planner_a,
        ),
        actor=planner_a,
    )
    assert not SLAClock.objects.exists()
    services.create_policy(
        org_a, name="All", calendar=business, response_minutes=60, resolution_minutes=240, actor=SYSTEM
    )
    assert services.start_clocks_for_open_orders(org_a, actor=SYSTEM) == 3
    assert services.start_clocks_for_open_orders(org_a, actor=SYSTEM) == 0  # again: nothing new
    assert sla(waiting).response_state == S.ON_TRACK
    assert sla(running).response_state == S.MET
    assert sla(held).is_paused
    assert not SLAClock.objects.filter(work_order=done).exists()
