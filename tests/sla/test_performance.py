"""SLA performance: compliance %, mean and 90th percentile response and resolution times (business minutes)
by priority, policy, asset and period; computed in Python from one query, the same on SQLite and PostgreSQL."""

from datetime import date

import pytest

from maintenance_site.errors import InvalidInput
from sla import services
from tests.sla.conftest import berlin
from workorders import services as work_orders


@pytest.fixture
def history(clock, org_a, planner_a, technician_a, medium_policy, high_policy, pump):
    """March: two high orders (one on time, one late on both targets), a medium one on time, a medium one
    still open and a cancelled one; April: one medium order on time."""

    def order(title, priority, **fields):
        return work_orders.create_work_order(
            org_a, title=title, priority=priority, actor=planner_a, assignee=technician_a, **fields
        )

    def at(*args):
        clock.set(berlin(2026, 3, 2, *args))

    a = order("A", "high", asset=pump)
    b = order("B", "high")
    c = order("C", "medium", asset=pump)
    order("D", "medium")
    work_orders.cancel(order("E", "medium"), reason="duplicate", actor=planner_a)
    at(9, 10)
    a = work_orders.start(a, actor=technician_a)  # response 10 min (target 30)
    at(9, 20)
    c = work_orders.start(c, actor=technician_a)  # 20 min (target 60)
    at(9, 40)
    b = work_orders.start(b, actor=technician_a)  # 40 min: late
    at(10, 0)
    work_orders.complete(a, actor=technician_a)  # resolution 60 min (target 120)
    at(11, 0)
    work_orders.complete(c, actor=technician_a)  # 120 min (target 240)
    at(11, 30)
    work_orders.complete(b, actor=technician_a)  # 150 min: late
    clock.set(berlin(2026, 4, 1, 9, 0))
    f = order("F", "medium")
    clock.set(berlin(2026, 4, 1, 9, 30))
    work_orders.start(f, actor=technician_a)
    return org_a


def figures(group):
    return {
        target: tuple(
            group[target][key] for key in ("met", "breached", "compliance_percent", "mean_minutes", "p90_minutes")
        )
        for target in ("response", "resolution")
    }


def test_by_priority(history):
    result = services.performance(history, group_by="priority")
    groups = {group["key"]: group for group in result["groups"]}
    assert [group["key"] for group in result["groups"]] == ["high", "medium"]  # most urgent first
    assert groups["high"]["clocks"] == 2
    assert figures(groups["high"]) == {"response": (1, 1, 50.0, 25.0, 40.0), "resolution": (1, 1, 50.0, 105.0, 150.0)}
    assert groups["medium"]["clocks"] == 3  # C, D (open), F; the cancelled E is left out
    assert figures(groups["medium"]) == {
        "response": (2, 0, 100.0, 25.0, 30.0),
        "resolution": (1, 0, 100.0, 120.0, 120.0),
    }
    overall = result["overall"]
    assert overall["clocks"] == 5
    assert figures(overall)["response"] == (3, 1, 75.0, 25.0, 40.0)


def test_by_policy_and_asset(history):
    by_policy = {
        group["label"]: group["clocks"] for group in services.performance(history, group_by="policy")["groups"]
    }
    assert by_policy == {"High": 2, "Medium": 3}
    by_asset = {group["label"]: group["clocks"] for group in services.performance(history, group_by="asset")["groups"]}
    assert by_asset == {"PMP-1": 2, "(no asset)": 3}


def test_by_period_and_within_dates(history):
    months = services.performance(history, group_by="period")
    assert [(group["key"], group["clocks"]) for group in months["groups"]] == [("2026-03", 4), ("2026-04", 1)]
    days = services.performance(history, group_by="period", interval="week")
    assert [group["key"] for group in days["groups"]] == ["2026-W10", "2026-W14"]
    april = services.performance(history, start=date(2026, 4, 1), end=date(2026, 4, 30))
    assert april["overall"]["clocks"] == 1
    march = services.performance(history, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert march["overall"]["clocks"] == 4


def test_bad_parameters_are_refused(history):
    with pytest.raises(InvalidInput, match="not a grouping"):
        services.performance(history, group_by="colour")
    with pytest.raises(InvalidInput, match="not an interval"):
        services.performance(history, group_by="period", interval="fortnight")
    with pytest.raises(InvalidInput, match="must be after"):
        services.performance(history, start=date(2026, 4, 2), end=date(2026, 4, 1))


def test_nothing_measured_yet(org_a):
    result = services.performance(org_a)
    assert result["groups"] == [] and result["overall"]["response"]["compliance_percent"] is None
