"""Every KPI on small hand-made histories whose answer is worked out here, by hand: failures on known days, a downtime
spanning two periods, a DST day, a period with no failures, an open downtime; costs by category, budget variance.

Organisation A keeps Berlin time: 29 March 2026 has 23 hours (clocks go forward), 25 October 2026 has 25.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from assets.models import Asset, AssetType, Downtime, Location
from inventory.models import (
    MovementKind,
    Part,
    PurchaseOrder,
    PurchaseOrderLine,
    StockLocation,
    StockMovement,
    Vendor,
)
from maintenance_site.analytics import services as analytics
from maintenance_site.analytics.periods import Scope
from maintenance_site.errors import InvalidInput
from maintenance_site.events.models import Event
from maintenance_site.tenancy import SYSTEM
from workorders import services as work_orders
from workorders.models import Budget, BudgetCrossing, CostLine, DowntimeLink, TimeEntry, WorkOrder

BERLIN = ZoneInfo("Europe/Berlin")
LATER = datetime(2026, 12, 1, tzinfo=UTC)  # "now" for questions about the past


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def plant(org_a):
    """A site with two areas, a pump (in area 1) and a fan (in area 2), both in service since 2025."""
    site = Location.objects.create(organization=org_a, name="Site")
    area_1 = Location.objects.create(organization=org_a, name="Area 1", kind="area", parent=site)
    area_2 = Location.objects.create(organization=org_a, name="Area 2", kind="area", parent=site)
    pumps = AssetType.objects.create(organization=org_a, name="Pump")
    fans = AssetType.objects.create(organization=org_a, name="Fan")
    pump = Asset.objects.create(organization=org_a, code="PMP-1", name="Pump", location=area_1, asset_type=pumps)
    fan = Asset.objects.create(organization=org_a, code="FAN-1", name="Fan", location=area_2, asset_type=fans)
    Asset.objects.filter(pk__in=[pump.pk, fan.pk]).update(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    return {"site": site, "area_1": area_1, "area_2": area_2, "pump": pump, "fan": fan, "pumps": pumps}


def order(org, asset, type="corrective", **fields):
    return WorkOrder.objects.create(
        organization=org, number=f"WO-{WorkOrder.objects.count() + 1}", title="t", asset=asset, type=type, **fields
    )


def down(org, asset, start, end=None, caused_by=None):
    downtime = Downtime.objects.create(organization=org, asset=asset, started_at=start, ended_at=end, reason="x")
    if caused_by is not None:
        DowntimeLink.objects.create(organization=org, downtime=downtime, caused_by=caused_by)
    return downtime


def scope(org, first, last, now=LATER, **filters):
    return analytics.scope_for(org, first_day=first, last_day=last, now=now, **filters)


@pytest.fixture
def march(org_a, plant):
    """The pump's March: two failures (4 h on the 10th, 2 h on the 20th), a planned stop of 3 h by a preventive
    order on the 15th, and a failure from 31 March 22:00 to 1 April 04:00 (2 h in March, 4 h in April)."""
    pump = plant["pump"]
    pm = order(org_a, pump, type="preventive")
    down(org_a, pump, berlin(2026, 3, 10, 10), berlin(2026, 3, 10, 14))
    down(org_a, pump, berlin(2026, 3, 20, 8), berlin(2026, 3, 20, 10))
    down(org_a, pump, berlin(2026, 3, 15, 6), berlin(2026, 3, 15, 9), caused_by=pm)
    down(org_a, pump, berlin(2026, 3, 31, 22), berlin(2026, 4, 1, 4))
    return plant


def test_availability_mtbf_mttr_of_a_month_with_a_dst_day(org_a, march):
    figures = analytics.kpi_values(
        scope(org_a, date(2026, 3, 1), date(2026, 3, 31), asset=march["pump"].pk),
        ["availability", "mtbf", "mttr", "failures", "scheduled_downtime_hours", "unscheduled_downtime_hours"],
    )
    hours = 31 * 24 - 1  # 29 March lasts 23 hours in Berlin
    unscheduled, scheduled = 4 + 2 + 2, 3  # the spanning failure: its 2 March hours
    assert figures["unscheduled_downtime_hours"] == unscheduled
    assert figures["scheduled_downtime_hours"] == scheduled
    assert figures["failures"] == 3  # the planned stop is not a failure; the spanning one started in March
    assert figures["availability"] == pytest.approx(100 * (hours - scheduled - unscheduled) / (hours - scheduled))
    assert figures["mtbf"] == pytest.approx((hours - scheduled - unscheduled) / 3)  # 244.0
    assert figures["mttr"] == 3.0  # (4 + 2) / 2: the spanning failure ends in April


def test_the_next_period_gets_the_rest_of_a_spanning_failure_and_has_no_failure(org_a, march):
    figures = analytics.kpi_values(
        scope(org_a, date(2026, 4, 1), date(2026, 4, 30), asset=march["pump"].pk),
        ["availability", "mtbf", "mttr", "failures", "unscheduled_downtime_hours"],
    )
    assert figures["failures"] == 0
    assert figures["mtbf"] is None  # no failures: null, not infinite
    assert figures["unscheduled_downtime_hours"] == 4
    assert figures["mttr"] == 6.0  # counted once, whole, in the period it ended
    assert figures["availability"] == pytest.approx(100 * (720 - 4) / 720)


def test_the_organisation_counts_every_asset(org_a, march):
    """Two assets: twice the asset hours, the fan never down."""
    figures = analytics.kpi_values(scope(org_a, date(2026, 3, 1), date(2026, 3, 31)), ["availability", "mtbf"])
    hours = 2 * (31 * 24 - 1)
    assert figures["availability"] == pytest.approx(100 * (hours - 3 - 8) / (hours - 3))
    assert figures["mtbf"] == pytest.approx((hours - 11) / 3)


def test_weekly_trend_cuts_downtime_at_each_week_and_knows_the_23_hour_day(org_a, march):
    result = analytics.trend(
        scope(org_a, date(2026, 3, 23), date(2026, 4, 5), asset=march["pump"].pk),
        ["availability", "failures", "unscheduled_downtime_hours"],
        "week",
    )
    rows = {row["period"]: row for row in result["rows"]}
    assert list(rows) == [date(2026, 3, 23), date(2026, 3, 30)]
    assert rows[date(2026, 3, 23)]["unscheduled_downtime_hours"] == 0
    assert rows[date(2026, 3, 23)]["availability"] == 100.0  # 167 hours up (one day of 23)
    assert rows[date(2026, 3, 30)]["failures"] == 1
    assert rows[date(2026, 3, 30)]["unscheduled_downtime_hours"] == 6  # 2 h on the 31st, 4 h on the 1st
    assert rows[date(2026, 3, 30)]["availability"] == pytest.approx(100 * (168 - 6) / 168)
    assert result["time_zone"] == "Europe/Berlin" and result["definitions_version"]


def test_an_open_downtime_counts_up_to_now(org_a, plant):
    down(org_a, plant["pump"], berlin(2026, 5, 10, 0))
    figures = analytics.kpi_values(
        scope(org_a, date(2026, 5, 10), date(2026, 5, 10), now=berlin(2026, 5, 10, 12), asset=plant["pump"].pk),
        ["availability", "failures", "mttr", "unscheduled_downtime_hours"],
    )
    assert figures["unscheduled_downtime_hours"] == 12  # midnight to noon, not to the end of the day
    assert figures["availability"] == 0.0  # of the 12 hours so far
    assert figures["failures"] == 1 and figures["mttr"] is None  # not repaired yet


def test_device_performance_per_asset_and_by_location_subtree(org_a, march):
    result = analytics.device_performance(scope(org_a, date(2026, 3, 1), date(2026, 3, 31)), "asset")
    by_code = {row["label"]: row for row in result["rows"]}
    assert by_code["PMP-1"]["failures"] == 3 and by_code["FAN-1"]["failures"] == 0
    assert by_code["FAN-1"]["availability"] == 100.0 and by_code["FAN-1"]["mtbf"] is None
    assert result["totals"]["failures"] == 3
    only_area_2 = analytics.kpi_values(
        scope(org_a, date(2026, 3, 1), date(2026, 3, 31), location=march["area_2"].pk), ["failures"]
    )
    assert only_area_2["failures"] == 0
    whole_site = analytics.kpi_values(
        scope(org_a, date(2026, 3, 1), date(2026, 3, 31), location=march["site"].pk), ["failures"]
    )
    assert whole_site["failures"] == 3


def test_failures_by_cause_code(org_a, plant, manager_a):
    bearing = work_orders.create_failure_code(
        org_a, kind="cause", code="brg-wear", name="Bearing wear", actor=manager_a
    )
    seal = work_orders.create_failure_code(org_a, kind="cause", code="SEAL", name="Seal leak", actor=manager_a)
    assert bearing.code == "BRG-WEAR"
    done = {"status": "completed", "completed_at": berlin(2026, 3, 5, 12)}
    for cause in (bearing, bearing, bearing, seal, None):
        order(org_a, plant["pump"], cause_code=cause, **done)
    order(org_a, plant["pump"], type="preventive", **done)  # planned work: not a failure
    pareto = analytics.device_performance(scope(org_a, date(2026, 3, 1), date(2026, 3, 31)))["failures_by_cause"]
    assert [(row["code"], row["count"], row["cumulative_share"]) for row in pareto] == [
        ("BRG-WEAR", 3, 60.0),
        ("SEAL", 1, 80.0),
        (None, 1, 100.0),
    ]


# --- work ---------------------------------------------------------------------------------------------------------


def test_planned_ratio_rework_first_time_fix_and_wrench_time(org_a, plant, technician_a):
    pump = plant["pump"]
    completed = {"status": "completed", "completed_at": berlin(2026, 3, 10, 12)}
    fixed = order(org_a, pump, estimated_minutes=60, **completed)
    reworked = order(org_a, pump, estimated_minutes=120, **completed)
    order(org_a, pump, type="preventive", estimated_minutes=60, **completed)
    order(org_a, pump, type="inspection", **completed)
    order(org_a, pump, status="open")  # not completed: not counted
    follow_up = order(org_a, pump, parent=reworked, status="open")
    WorkOrder.objects.filter(pk=follow_up.pk).update(created_at=berlin(2026, 3, 20, 12))  # within 14 days
    late = order(org_a, pump, parent=fixed, status="open")
    WorkOrder.objects.filter(pk=late.pk).update(created_at=berlin(2026, 4, 20, 12))  # too late to be rework
    for work_order, minutes in ((fixed, 90), (reworked, 60)):
        TimeEntry.objects.create(
            organization=org_a, work_order=work_order, technician=technician_a, entered_by=technician_a, minutes=minutes
        )
    figures = analytics.kpi_values(
        scope(org_a, date(2026, 3, 1), date(2026, 3, 31)),
        ["planned_ratio", "rework_rate", "first_time_fix", "wrench_time"],
    )
    assert figures["planned_ratio"] == 50.0  # 2 planned of 4 completed
    assert figures["rework_rate"] == 50.0  # 1 of the 2 reactive orders had a follow-up within 14 days
    assert figures["first_time_fix"] == 50.0
    assert figures["wrench_time"] == pytest.approx(100 * 150 / 240)  # 150 min logged of 60 + 120 + 60 estimated


def test_backlog_at_the_end_of_each_period(org_a, plant):
    pump = plant["pump"]
    a = order(org_a, pump, estimated_minutes=120)
    b = order(org_a, pump, status="completed", completed_at=berlin(2026, 3, 20, 12))
    c = order(org_a, pump, estimated_minutes=60)
    WorkOrder.objects.filter(pk=a.pk).update(created_at=berlin(2026, 3, 1, 0))
    WorkOrder.objects.filter(pk=b.pk).update(created_at=berlin(2026, 3, 11, 0))
    WorkOrder.objects.filter(pk=c.pk).update(created_at=berlin(2026, 4, 1, 0))
    result = analytics.trend(
        scope(org_a, date(2026, 3, 1), date(2026, 4, 30)),
        ["backlog_count", "backlog_hours", "backlog_age_days"],
        "month",
    )
    march, april = result["rows"]
    assert (march["backlog_count"], march["backlog_hours"]) == (1, 2.0)  # b was done on the 20th, c not yet created
    assert march["backlog_age_days"] == round((31 * 24 - 1) / 24, 4)  # a: 1 March to 1 April, one hour lost to DST
    assert (april["backlog_count"], april["backlog_hours"]) == (2, 3.0)
    assert april["backlog_age_days"] == pytest.approx(((61 * 24 - 1) / 24 + 30) / 2, abs=1e-4)


# --- costs and budgets ---------------------------------------------------------------------------------------------


@pytest.fixture
def costs(org_a, plant, technician_a, manager_a):
    """March on the pump: 90 min at 40.00 (60.00), a contractor's 125.50, two seals of 10.25 issued and one
    returned (10.25); on the fan, 30 min at 40.00 (20.00)."""
    pump_order = order(org_a, plant["pump"])
    fan_order = order(org_a, plant["fan"])
    for work_order, minutes in ((pump_order, 90), (fan_order, 30)):
        entry = TimeEntry.objects.create(
            organization=org_a,
            work_order=work_order,
            technician=technician_a,
            entered_by=technician_a,
            minutes=minutes,
            hourly_rate=Decimal("40.00"),
            started_at=berlin(2026, 3, 3, 8),
        )
        assert entry.cost == minutes * Decimal("40") / 60
    line = CostLine.objects.create(
        organization=org_a,
        work_order=pump_order,
        description="contractor",
        amount=Decimal("125.50"),
        added_by=manager_a,
    )
    CostLine.objects.filter(pk=line.pk).update(created_at=berlin(2026, 3, 4, 8))
    part = Part.objects.create(organization=org_a, sku="SEAL", name="Seal")
    store = StockLocation.objects.create(organization=org_a, name="Store")
    for kind, quantity in ((MovementKind.ISSUE, -2), (MovementKind.RETURN, 1)):
        movement = StockMovement.objects.create(
            organization=org_a,
            part=part,
            location=store,
            kind=kind,
            quantity=quantity,
            unit_cost=Decimal("10.25"),
            work_order=pump_order,
        )
        StockMovement.objects.filter(pk=movement.pk).update(created_at=berlin(2026, 3, 5, 8))
    vendor = Vendor.objects.create(organization=org_a, name="Seals Ltd")
    purchase = PurchaseOrder.objects.create(organization=org_a, number="PO-1", vendor=vendor, status="ordered")
    PurchaseOrderLine.objects.create(
        organization=org_a,
        purchase_order=purchase,
        part=part,
        quantity=10,
        received_quantity=4,
        unit_price=Decimal("5.00"),
    )
    return plant


def test_costs_by_category_and_by_asset(org_a, costs):
    result = analytics.costs(scope(org_a, date(2026, 3, 1), date(2026, 3, 31)))
    assert result["totals"] == {
        "labour_cost": Decimal("80.00"),
        "parts_cost": Decimal("10.25"),
        "external_cost": Decimal("125.50"),
        "total_cost": Decimal("215.75"),
    }
    assert [(row["category"], row["amount"]) for row in result["rows"]] == [
        ("labour", Decimal("80.00")),
        ("parts", Decimal("10.25")),
        ("external", Decimal("125.50")),
    ]
    assert result["currency"] == "EUR"
    by_asset = {
        row["label"]: row for row in analytics.costs(scope(org_a, date(2026, 3, 1), date(2026, 3, 31)), "asset")["rows"]
    }
    assert by_asset["PMP-1"]["total_cost"] == Decimal("195.75") and by_asset["FAN-1"]["total_cost"] == Decimal("20.00")
    by_type = analytics.costs(scope(org_a, date(2026, 3, 1), date(2026, 3, 31), asset_type=costs["pumps"].pk))
    assert by_type["totals"]["total_cost"] == Decimal("195.75")
    april = analytics.costs(scope(org_a, date(2026, 4, 1), date(2026, 4, 30)))
    assert april["totals"]["total_cost"] == Decimal("0.00")


def test_budget_variance_with_committed_spend_and_forecast(org_a, costs, manager_a):
    budget = work_orders.create_budget(
        org_a,
        name="Maintenance",
        period="month",
        starts_on=date(2026, 3, 1),
        amount=Decimal("500.00"),
        thresholds=[40, 100],
        actor=manager_a,
    )
    pumps = work_orders.create_budget(
        org_a,
        name="Pumps",
        period="month",
        starts_on=date(2026, 3, 1),
        amount=Decimal("100.00"),
        category="labour",
        asset_type=costs["pumps"],
        actor=manager_a,
    )
    now = berlin(2026, 3, 16, 12)  # the 16th of 31 days
    figures = work_orders.budget_figures(budget, now)
    assert figures["actual"] == Decimal("215.75")
    assert figures["committed"] == Decimal("30.00")  # 6 seals still to come at 5.00
    assert figures["forecast"] == (Decimal("215.75") / 16 * 31).quantize(Decimal("0.01"))  # 418.02
    assert figures["variance"] == Decimal("500.00") - figures["forecast"] - Decimal("30.00")
    assert figures["used_percent"] == 49.2  # (215.75 + 30) of 500: 49.15, to even
    pump_figures = work_orders.budget_figures(pumps, now)
    assert (pump_figures["actual"], pump_figures["committed"]) == (Decimal("60.00"), Decimal("0.00"))

    assert work_orders.check_budget_thresholds(actor=SYSTEM, now=now) == 1  # 40 % crossed; 100 % not
    assert work_orders.check_budget_thresholds(actor=SYSTEM, now=now) == 0  # once per budget and threshold
    assert list(BudgetCrossing.objects.values_list("budget", "threshold")) == [(budget.pk, 40)]
    assert Event.objects.filter(type="budget:threshold-crossed").count() == 1


def test_a_budget_starts_on_the_first_day_of_its_period(org_a, manager_a):
    with pytest.raises(InvalidInput) as refused:
        work_orders.create_budget(
            org_a, name="Q", period="quarter", starts_on=date(2026, 2, 1), amount=Decimal(1), actor=manager_a
        )
    assert "starts_on" in refused.value.fields
    budget = Budget(period="quarter", starts_on=date(2026, 10, 1))
    assert budget.ends_on == date(2026, 12, 31)


# --- the questions one may not ask ------------------------------------------------------------------------------


def test_bad_periods_say_what_to_ask_instead(org_a):
    with pytest.raises(InvalidInput, match="after"):
        scope(org_a, date(2026, 3, 31), date(2026, 3, 1))
    five_years = scope(org_a, date(2021, 1, 1), date(2025, 12, 31))
    with pytest.raises(InvalidInput, match="ask by week"):
        analytics.trend(five_years, ["failures"], "day")
    ten_years = scope(org_a, date(2016, 1, 1), date(2025, 12, 31))
    with pytest.raises(InvalidInput, match="ask by month"):
        analytics.trend(ten_years, ["failures"], "day")
    with pytest.raises(InvalidInput, match="is not a KPI"):
        analytics.kpi_values(ten_years, ["uptime"])


def test_a_dst_day_has_23_hours(org_a):
    day = Scope(org_a, date(2026, 3, 29), date(2026, 3, 29), LATER)
    assert day.end - day.start == timedelta(hours=23)
    autumn = Scope(org_a, date(2026, 10, 25), date(2026, 10, 25), LATER)
    assert autumn.end - autumn.start == timedelta(hours=25)


def test_a_dashboard_tile_has_the_value_the_previous_period_and_a_link(org_a, march):
    tile = analytics.tile(org_a, "failures", first_day=date(2026, 4, 1), last_day=date(2026, 4, 30))
    assert (tile["value"], tile["previous"]) == (0, 3)  # April after March (the 30 days before: 2–31 March)
    assert tile["unit"] == "count" and tile["higher_is_better"] is False
    mttr = analytics.tile(org_a, "mttr", first_day=date(2026, 4, 1), last_day=date(2026, 4, 30))
    assert mttr["link"] == "/api/v1/analytics/device-performance" and mttr["value"] == 6.0


def test_cost_groups_add_up_to_the_totals(org_a, costs):
    period = scope(org_a, date(2026, 3, 1), date(2026, 3, 31))
    whole = analytics.costs(period)["totals"]
    for group_by in ("asset", "asset_type", "location", "period"):
        assert analytics.costs(period, group_by)["totals"] == whole, group_by
