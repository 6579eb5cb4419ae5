"""The daily rollups (`maintenance_site.analytics.rollups`): a figure read from them is the figure computed live, on
PostgreSQL (the triggers and the SQL sums are PostgreSQL's); a change to a rolled-up day is read live until the
refresh recomputes that day; two refreshes at once write the same rows once."""

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from assets.models import Asset
from maintenance_site.analytics import registry, rollups
from maintenance_site.analytics import services as analytics
from maintenance_site.analytics.definitions import OVERVIEW
from maintenance_site.analytics.models import DailyRollup, RollupDirty, RollupState
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule
from sla.models import BusinessCalendar, SLAClock, SLAPolicy
from workorders.models import CostLine, FailureCode, TimeEntry, WorkOrder

from .test_kpis import berlin, costs, down, march, order, plant  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="rollups are PostgreSQL's")

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ROLLED = [
    "availability",
    "mtbf",
    "mttr",
    "failures",
    "unscheduled_downtime_hours",
    "scheduled_downtime_hours",
    "planned_ratio",
    "rework_rate",
    "first_time_fix",
    "wrench_time",
    "labour_cost",
    "parts_cost",
    "external_cost",
    "total_cost",
    "pm_compliance",
    "response_compliance",
    "resolution_compliance",
]
PERIODS = [
    (date(2026, 3, 1), date(2026, 3, 31)),  # March: the DST day, a downtime spanning into April
    (date(2026, 3, 31), date(2026, 4, 1)),  # two days across the spanning downtime
    (date(2025, 12, 2), date(2026, 12, 1)),  # a year up to today: the last days are not rolled up
    (date(2025, 1, 1), date(2025, 1, 31)),  # before the first rolled day: all live
]


def live(scope, keys, settings):
    settings.ANALYTICS_ROLLUPS = False
    try:
        return analytics.kpi_values(scope, keys)
    finally:
        settings.ANALYTICS_ROLLUPS = True


def from_rollups(scope, keys) -> tuple[dict, bool]:
    with CaptureQueriesContext(connection) as captured:
        values = analytics.kpi_values(scope, keys)
    return values, any("analytics_dailyrollup" in q["sql"] for q in captured.captured_queries)


@pytest.fixture
def history(org_a, march, costs, technician_a):  # noqa: F811
    """March of `test_kpis` (failures, a planned stop, a downtime across 31 March / 1 April, the DST day), its
    costs, completed work with a follow-up within 14 days, time on it, and a downtime still open."""
    pump = march["pump"]
    done = {"status": "completed", "completed_at": berlin(2026, 3, 10, 12)}
    fixed = order(org_a, pump, estimated_minutes=60, **done)
    order(org_a, pump, type="preventive", estimated_minutes=30, **done)
    follow_up = order(org_a, pump, parent=fixed, status="open")
    WorkOrder.objects.filter(pk=follow_up.pk).update(created_at=berlin(2026, 3, 20, 12))
    TimeEntry.objects.create(
        organization=org_a, work_order=fixed, technician=technician_a, entered_by=technician_a, minutes=45
    )
    down(org_a, march["fan"], berlin(2026, 11, 20, 8))  # open: counts up to now
    return march


@pytest.fixture
def grouped_history(org_a, history, technician_a, manager_a):
    """`history` with costs in rolled-up March on the fan (another asset type and location) and on an order without
    an asset (the group "(none)"), one of them on the DST day; and SLA clocks of three priorities across March (the
    DST day, 31 March 23:30 local, one of a cancelled order), with the business seconds they took."""
    fan = history["fan"]
    fan_order = order(org_a, fan, priority="high")
    bare = order(org_a, None, priority="low")
    for work_order, minutes, start in ((fan_order, 60, berlin(2026, 3, 29, 1, 30)), (bare, 30, berlin(2026, 3, 12, 9))):
        TimeEntry.objects.create(
            organization=org_a,
            work_order=work_order,
            technician=technician_a,
            entered_by=technician_a,
            minutes=minutes,
            hourly_rate=Decimal("40.00"),
            started_at=start,
        )
    line = CostLine.objects.create(
        organization=org_a, work_order=bare, description="hire", amount=Decimal("99.99"), added_by=manager_a
    )
    CostLine.objects.filter(pk=line.pk).update(created_at=berlin(2026, 3, 29, 12))
    calendar = BusinessCalendar.objects.create(organization=org_a, name="24/7", always_open=True)
    policy = SLAPolicy.objects.create(
        organization=org_a, name="All", calendar=calendar, response_minutes=60, resolution_minutes=480
    )
    clocks = []
    for n, (priority, started, response, resolution) in enumerate(
        [
            ("low", berlin(2026, 3, 11, 9), 600, 3600),
            ("low", berlin(2026, 3, 12, 9), 1200, None),
            ("low", berlin(2026, 3, 29, 3), 4800, 36000),  # the DST day
            ("high", berlin(2026, 3, 13, 9), 300, 7200),
            ("high", berlin(2026, 3, 29, 12), 900, 30000),
            ("high", berlin(2026, 3, 31, 23, 30), 2400, 14400),  # 31 March local, 1 April UTC
            ("critical", berlin(2026, 3, 14, 9), 60, 1800),
            ("critical", berlin(2026, 3, 20, 9), 180, 40000),
            ("critical", berlin(2026, 3, 21, 9), None, None),
            ("critical", berlin(2026, 3, 22, 9), 7000, 50000),
        ]
    ):
        work_order = order(org_a, history["pump"] if n % 2 else fan, priority=priority)
        clocks.append(_clock(org_a, work_order, policy, started, response, resolution))
    cancelled = order(org_a, fan, priority="low", status="cancelled")
    _clock(org_a, cancelled, policy, berlin(2026, 3, 15, 9), 5, 5)  # left out
    # failures with cause codes for the Pareto: WEAR twice (one on the DST day), BLOCKED once, one without a code
    wear = FailureCode.objects.create(organization=org_a, kind="cause", code="WEAR", name="Wear")
    blocked = FailureCode.objects.create(organization=org_a, kind="cause", code="BLOCKED", name="Blocked")
    for cause, completed in ((wear, berlin(2026, 3, 12, 9)), (wear, berlin(2026, 3, 29, 9)), (blocked, None)):
        order(org_a, fan, status="completed", completed_at=completed or berlin(2026, 3, 13, 9), cause_code=cause)
    return {**history, "fan_order": fan_order, "bare": bare, "clocks": clocks, "wear": wear, "blocked": blocked}


def _clock(org, work_order, policy, started, response, resolution):
    def state(seconds, target):
        if seconds is None:
            return "on_track"
        return "met" if seconds <= target else "breached"

    return SLAClock.objects.create(
        organization=org,
        work_order=work_order,
        policy=policy,
        calendar=policy.calendar,
        response_minutes=60,
        resolution_minutes=480,
        warning_percent=80,
        started_at=started,
        response_due_at=started + timedelta(hours=1),
        response_warning_at=started + timedelta(minutes=48),
        resolution_due_at=started + timedelta(hours=8),
        resolution_warning_at=started + timedelta(hours=6),
        response_seconds=response,
        response_state=state(response, 3600),
        resolution_seconds=resolution,
        resolution_state=state(resolution, 8 * 3600),
    )


def used_rollups(call):
    """call() and whether it read the rollups."""
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, any("analytics_dailyrollup" in q["sql"] for q in captured.captured_queries)


def breakdowns(scope) -> dict:
    """Every breakdown the rollups keep, as the API answers it."""
    return {
        **{f"costs by {g}": lambda g=g: analytics.costs(scope, g) for g in ("asset_type", "location")},
        **{f"device by {g}": lambda g=g: analytics.device_performance(scope, g) for g in ("asset_type", "location")},
        "sla by priority": lambda: analytics.sla(scope, "priority"),
        "failures by cause": lambda: registry.function("failure_pareto")(scope, kind="cause"),
    }


def live_call(call, settings):
    settings.ANALYTICS_ROLLUPS = False
    try:
        return call()
    finally:
        settings.ANALYTICS_ROLLUPS = True


@pytest.mark.parametrize(("first", "last"), PERIODS)
def test_breakdowns_from_the_rollups_equal_the_live_breakdowns(org_a, grouped_history, settings, first, last):
    """Costs and device performance by asset type and location, SLA by priority (its mean and exact 90th percentile
    business minutes): figure for figure the live answer, over March with its DST day, two days, a year whose last
    days are live, and a period before the first rolled day."""
    rollups.refresh(org_a, NOW)
    state = RollupState.objects.get(organization=org_a)
    scope = analytics.scope_for(org_a, first_day=first, last_day=last, now=NOW)
    for name, call in breakdowns(scope).items():
        expected = live_call(call, settings)
        result, used = used_rollups(call)
        assert result == expected, (name, first, last)
        assert used == (last >= state.rolled_from and first <= state.rolled_through), (name, first, last)


def test_the_breakdowns_by_hand_come_out_of_the_rollups(org_a, grouped_history):
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(org_a, first_day=date(2026, 3, 10), last_day=date(2026, 3, 31), now=NOW)
    by_type, used = used_rollups(lambda: analytics.costs(scope, "asset_type"))
    assert used
    by_label = {row["label"]: row for row in by_type["rows"]}
    assert by_label["Fan"]["labour_cost"] == Decimal("40.00")  # 60 min at 40.00, on the DST day
    assert by_label["(none)"]["labour_cost"] == Decimal("20.00") and by_label["(none)"]["external_cost"] == Decimal(
        "99.99"
    )
    sla, used = used_rollups(lambda: analytics.sla(scope, "priority"))
    assert used
    rows = {row["key"]: row for row in sla["rows"]}
    assert [row["key"] for row in sla["rows"]] == ["critical", "high", "low"]
    critical = rows["critical"]["response"]
    assert (critical["met"], critical["breached"], critical["measured"]) == (2, 1, 3)
    assert critical["mean_minutes"] == round((60 + 180 + 7000) / 3 / 60, 1)
    assert critical["p90_minutes"] == round(7000 / 60, 1)  # nearest rank: the 3rd of 3
    overall = sla["overall"]["resolution"]  # 8 measured (the cancelled order's clock left out): rank 8 × 0.9 → 8th
    assert overall["measured"] == 8 and overall["p90_minutes"] == round(50000 / 60, 1)
    assert sla["overall"]["clocks"] == 10
    pareto, used = used_rollups(lambda: registry.function("failure_pareto")(scope, kind="cause"))
    assert used
    assert [(row["code"], row["count"]) for row in pareto] == [("WEAR", 2), ("BLOCKED", 1), (None, 1)]


def test_a_new_asset_type_or_priority_recomputes_the_days_it_touches(org_a, grouped_history, settings):
    rollups.refresh(org_a, NOW)
    in_march = analytics.scope_for(org_a, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW)
    fan, pump = grouped_history["fan"], grouped_history["pump"]
    # The fan becomes a pump (a bulk update: no service), and one critical clock's order becomes low priority.
    Asset.objects.filter(pk=fan.pk).update(asset_type=pump.asset_type)
    relabelled = grouped_history["clocks"][7]  # critical, 20 March
    WorkOrder.objects.filter(pk=relabelled.work_order_id).update(priority="low")
    # and the failure without a code (completed 10 March) gets one: 10 March's Pareto changes
    WorkOrder.objects.filter(organization=org_a, type="corrective", cause_code__isnull=True, status="completed").update(
        cause_code=grouped_history["blocked"]
    )
    assert RollupDirty.objects.filter(organization_id=org_a.pk).exists()  # written by the triggers
    for name, call in breakdowns(in_march).items():
        result, used = used_rollups(call)
        assert not used, name  # live until the refresh
        assert result == live_call(call, settings), name

    # only the days they touch: the fan's open downtime (20 to 29 November, the last rolled day), its orders' costs
    # (29 March; 3 March is before the first rolled day), the clock's day (20 March), the coded failure's (10 March)
    assert rollups.refresh(org_a, NOW)["days"] == 10 + 1 + 1 + 1
    assert not RollupDirty.objects.filter(organization_id=org_a.pk).exists()
    to_november = analytics.scope_for(org_a, first_day=date(2026, 3, 1), last_day=date(2026, 11, 29), now=NOW)
    for scope in (in_march, to_november):
        for name, call in breakdowns(scope).items():
            result, used = used_rollups(call)
            assert used, name
            assert result == live_call(call, settings), name
    by_type = analytics.costs(in_march, "asset_type")
    assert "Fan" not in {row["label"] for row in by_type["rows"]}
    low = {row["key"]: row for row in analytics.sla(in_march, "priority")["rows"]}["low"]
    assert low["clocks"] == 4
    pareto = registry.function("failure_pareto")(in_march, kind="cause")
    assert [(row["code"], row["count"]) for row in pareto] == [("BLOCKED", 2), ("WEAR", 2)]


@pytest.fixture
def pm_history(org_a, history):
    """A monthly schedule on the pump and its March occurrences: done on time (11th), late (the DST day), still open
    (overdue), skipped, one whose order was cancelled, and one due 31 March 23:30 local (1 April in UTC)."""
    pump = history["pump"]
    schedule = PreventiveSchedule.objects.create(
        organization=org_a,
        name="Monthly pump service",
        title="Monthly pump service",
        asset=pump,
        trigger="interval",
        interval_count=1,
        interval_unit="months",
        start_date=date(2026, 1, 1),
    )
    cases = [
        (berlin(2026, 3, 11, 6), {"status": "completed", "completed_at": berlin(2026, 3, 11, 15)}),
        (berlin(2026, 3, 29, 6), {"status": "completed", "completed_at": berlin(2026, 3, 31, 9)}),
        (berlin(2026, 3, 16, 6), {"status": "open"}),
        (berlin(2026, 3, 18, 6), None),
        (berlin(2026, 3, 20, 6), {"status": "cancelled"}),
        (berlin(2026, 3, 31, 23, 30), {"status": "completed", "completed_at": berlin(2026, 4, 1, 10)}),
    ]
    for due, fields in cases:
        work_order = order(org_a, pump, type="preventive", **fields) if fields else None
        PreventiveOccurrence.objects.create(
            organization=org_a,
            schedule=schedule,
            asset=pump,
            target_key=pump.pk,
            due_at=due,
            work_order=work_order,
            status="created" if work_order else "skipped",
            skip_reason="" if work_order else "open_order",
        )
    return history


@pytest.mark.parametrize(
    ("first", "last", "interval"),
    [
        (first, last, interval)
        for first, last in PERIODS
        for interval in ("day", "week", "month")
        if interval != "day" or (last - first).days <= 90  # a daily answer has at most MAX_BUCKETS points
    ],
)
def test_pm_compliance_by_period_from_the_rollups_equals_live(org_a, pm_history, settings, first, last, interval):
    rollups.refresh(org_a, NOW)
    state = RollupState.objects.get(organization=org_a)
    scope = analytics.scope_for(org_a, first_day=first, last_day=last, now=NOW)
    call = lambda: analytics.pm_compliance(scope, "period", interval)  # noqa: E731
    expected = live_call(call, settings)
    result, used = used_rollups(call)
    assert result == expected, (interval, first, last)
    assert used == (last >= state.rolled_from and first <= state.rolled_through)
    if (first, last, interval) == (date(2026, 3, 1), date(2026, 3, 31), "month"):
        # by hand: 5 generated (and one skipped); on time the 11th and 31 March 23:30 (done within 24 h), late the
        # DST day's (two days), overdue the 16th's, cancelled the 20th's
        totals = result["totals"]
        assert (totals["generated"], totals["completed_on_time"], totals["completed_late"]) == (5, 2, 1)
        assert (totals["overdue"], totals["skipped"], totals["cancelled"]) == (1, 1, 1)


def test_figures_from_the_rollups_equal_the_live_figures(org_a, history, settings):
    result = rollups.refresh(org_a, NOW)
    assert result["days"] == 265 and not result["skipped"]  # 10 March (the first failure) to 29 November
    state = RollupState.objects.get(organization=org_a)
    assert state.rolled_through == date(2026, 11, 29)  # ended more than the PM tolerance (24 h) before now
    for first, last in PERIODS:
        scope = analytics.scope_for(org_a, first_day=first, last_day=last, now=NOW)
        expected = live(scope, ROLLED, settings)
        values, used = from_rollups(scope, ROLLED)
        assert values == expected, (first, last)
        assert used == (last >= state.rolled_from and first <= state.rolled_through), (first, last)


@pytest.mark.parametrize(
    ("first", "last", "interval"),
    [
        (date(2026, 3, 1), date(2026, 4, 30), "day"),  # the DST day, the downtime across two days
        (date(2026, 2, 20), date(2026, 4, 10), "week"),  # a first week cut at the period's start
        (date(2025, 12, 2), date(2026, 12, 1), "month"),  # the current month is partly live
    ],
)
def test_trends_from_the_rollups_equal_the_live_trends(org_a, history, settings, first, last, interval):
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(org_a, first_day=first, last_day=last, now=NOW)
    settings.ANALYTICS_ROLLUPS = False
    expected = analytics.trend(scope, ROLLED, interval)
    settings.ANALYTICS_ROLLUPS = True
    with CaptureQueriesContext(connection) as captured:
        result = analytics.trend(scope, ROLLED, interval)
    assert any("analytics_dailyrollup" in q["sql"] for q in captured.captured_queries)
    assert result == expected


def test_the_figures_by_hand_come_out_of_the_rollups(org_a, history):
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(org_a, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW)
    values, used = from_rollups(scope, ["failures", "mttr", "scheduled_downtime_hours", "labour_cost", "parts_cost"])
    assert used
    assert values["failures"] == 3  # 10th, 20th, 31st (the planned stop is not a failure)
    assert values["mttr"] == 3.0  # 4 h and 2 h repaired in March (the 31st's ends in April)
    assert values["scheduled_downtime_hours"] == 3.0
    assert values["labour_cost"] == Decimal("80.00")  # 90 + 30 min at 40.00 (the 45 min carry no rate)
    assert values["parts_cost"] == Decimal("10.25")


def test_the_overview_tiles_read_the_rollups_and_match_live(org_a, history, settings):
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(org_a, first_day=date(2026, 6, 1), last_day=date(2026, 11, 30), now=NOW)
    settings.ANALYTICS_ROLLUPS = False
    expected = analytics.tiles(scope, OVERVIEW)
    settings.ANALYTICS_ROLLUPS = True
    assert analytics.tiles(scope, OVERVIEW) == expected


def test_a_change_to_a_rolled_up_day_is_read_live_until_the_refresh_recomputes_it(org_a, history, settings):
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(org_a, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW)
    down(org_a, history["pump"], berlin(2026, 3, 25, 8), berlin(2026, 3, 25, 9))  # recorded late
    CostLine.objects.filter(organization=org_a).update(amount=Decimal("100.00"))  # a bulk update, no service
    assert RollupDirty.objects.filter(organization_id=org_a.pk).count() == 2  # written by the triggers
    values, used = from_rollups(scope, ROLLED)
    assert not used and values["failures"] == 4 and values["external_cost"] == Decimal("100.00")

    # 25 March recomputed; 4 March (the cost line) is before the first rolled day (10 March): always read live
    assert rollups.refresh(org_a, NOW)["days"] == 1
    assert not RollupDirty.objects.filter(organization_id=org_a.pk).exists()
    values, used = from_rollups(scope, ROLLED)
    assert used and values == live(scope, ROLLED, settings)
    assert values["failures"] == 4 and values["external_cost"] == Decimal("100.00")


def test_changes_after_the_horizon_leave_no_record(org_a, history):
    rollups.refresh(org_a, NOW)
    down(org_a, history["pump"], berlin(2026, 11, 30, 8), berlin(2026, 11, 30, 9))  # the live days
    WorkOrder.objects.filter(organization=org_a).update(title="renamed")  # nothing the sums read
    assert not RollupDirty.objects.exists()


def test_closing_an_open_downtime_touches_only_the_days_from_its_end(org_a, history, settings):
    rollups.refresh(org_a, NOW)
    open_one = history["fan"].downtimes.get(ended_at__isnull=True)
    open_one.ended_at = berlin(2026, 11, 25, 8)
    open_one.save()
    dirty = RollupDirty.objects.get(organization_id=org_a.pk)
    assert dirty.since == berlin(2026, 11, 25, 8)
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(org_a, first_day=date(2026, 11, 1), last_day=date(2026, 11, 30), now=NOW)
    values, used = from_rollups(scope, ROLLED)
    assert used and values == live(scope, ROLLED, settings)


def test_a_new_time_zone_rebuilds_the_days(org_a, history, settings):
    rollups.refresh(org_a, NOW)
    org_a.time_zone = "America/New_York"
    org_a.save(update_fields=["time_zone"])
    scope = analytics.scope_for(org_a, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW)
    assert not from_rollups(scope, ROLLED)[1]  # days cut in Berlin are not New York's
    assert rollups.refresh(org_a, NOW)["rebuilt"]
    values, used = from_rollups(scope, ROLLED)
    assert used and values == live(scope, ROLLED, settings)


def test_filtered_figures_are_computed_live(org_a, history):
    rollups.refresh(org_a, NOW)
    scope = analytics.scope_for(
        org_a, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW, asset=history["pump"].pk
    )
    assert not from_rollups(scope, ROLLED)[1]


def _rows(org) -> list:
    return sorted(
        DailyRollup.objects.filter(organization=org).values_list(
            "source", "breakdown", "day", "group_key", "measures", "samples"
        ),
        key=lambda row: row[:4],
    )


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_write_each_day_once(org_a, grouped_history):
    errors, results = [], []

    def run():
        try:
            results.append(rollups.refresh(org_a, NOW))
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    days = (date(2026, 11, 29) - RollupState.objects.get(organization=org_a).rolled_from).days + 1
    whole = DailyRollup.objects.filter(organization=org_a, breakdown="")
    sources = whole.values("source").distinct().count()
    assert whole.count() == days * sources
    assert rollups.refresh(org_a, NOW + timedelta(hours=1))["days"] == 0  # nothing left to do
    # the groups' rows too: exactly those one refresh alone writes
    written = _rows(org_a)
    breakdowns_kept = {"", "asset_type", "location", "priority", "cause_code", "problem_code", "remedy_code"}
    assert {row[1] for row in written} == breakdowns_kept
    RollupState.objects.filter(organization=org_a).delete()
    DailyRollup.objects.filter(organization=org_a).delete()
    rollups.refresh(org_a, NOW)
    assert _rows(org_a) == written


def test_a_late_follow_up_and_a_changed_type_reach_the_days_they_change(org_a, history, settings):
    """A follow-up raised today changes the rework of its parent's completion day; the type of the order that caused
    a downtime decides whether that downtime's days were scheduled."""
    pump = history["pump"]
    parent = order(org_a, pump, status="completed", completed_at=berlin(2026, 4, 10, 12))
    rollups.refresh(org_a, NOW)
    april = analytics.scope_for(org_a, first_day=date(2026, 4, 1), last_day=date(2026, 4, 30), now=NOW)
    in_march = analytics.scope_for(org_a, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW)
    assert from_rollups(april, ["rework_rate"]) == ({"rework_rate": 0.0}, True)

    follow_up = order(org_a, pump, parent=parent, status="open")
    WorkOrder.objects.filter(pk=follow_up.pk).update(created_at=berlin(2026, 4, 15, 12))
    planned = WorkOrder.objects.get(organization=org_a, type="preventive", caused_downtime_links__isnull=False)
    WorkOrder.objects.filter(pk=planned.pk).update(type="corrective")  # the stop of 15 March was a failure after all
    assert RollupDirty.objects.filter(organization_id=org_a.pk).exists()
    assert not from_rollups(april, ["rework_rate"])[1]

    rollups.refresh(org_a, NOW)
    for scope in (april, in_march):
        values, used = from_rollups(scope, ROLLED)
        assert used and values == live(scope, ROLLED, settings)
    assert from_rollups(april, ["rework_rate"])[0] == {"rework_rate": 100.0}
    assert from_rollups(in_march, ["scheduled_downtime_hours", "failures"])[0] == {
        "scheduled_downtime_hours": 0.0,
        "failures": 4,
    }
