"""`/sla/performance` and the SLA compliance KPIs of `/analytics/*` agree: the same clocks, the same counts."""

from datetime import date
from types import SimpleNamespace

import pytest

from maintenance_site.analytics import services as analytics
from sla import services
from tests.sla.test_performance import history  # noqa: F401 (the fixture)


def test_sla_performance_and_analytics_agree(history, clock):  # noqa: F811
    org = history
    for first, last in ((date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 3, 1), date(2026, 4, 30))):
        scope = analytics.scope_for(org, first_day=first, last_day=last, now=clock.now)
        overall = services.performance(org, start=first, end=last)["overall"]
        figures = analytics.kpi_values(scope, ["response_compliance", "resolution_compliance"])
        assert figures["response_compliance"] == overall["response"]["compliance_percent"]
        assert figures["resolution_compliance"] == overall["resolution"]["compliance_percent"]
    march = analytics.kpi_values(
        analytics.scope_for(org, first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=clock.now),
        ["response_compliance"],
    )
    assert march["response_compliance"] == round(100 * 2 / 3, 1)  # A and C on time, B late


def test_the_analytics_sla_route_answers_sla_performance(api, history, clock, viewer_a):  # noqa: F811
    """`/analytics/sla` is `/sla/performance` over the same local days: the same groups and overall figures."""
    org = history
    period = "from=2026-03-01&to=2026-04-30"
    for grouping in ("priority", "policy", "asset", "period"):
        ours = api(viewer_a).get(f"/api/v1/analytics/sla/?group_by={grouping}&{period}").json()
        theirs = api(viewer_a).get(f"/api/v1/sla/performance/?group_by={grouping}&{period}").json()
        assert ours["rows"] == theirs["groups"] and ours["overall"] == theirs["overall"], grouping
        assert ours["time_zone"] == org.time_zone and ours["from"] == "2026-03-01"
        assert ours["response_compliance"] == theirs["overall"]["response"]["compliance_percent"]
    csv = api(viewer_a).get(f"/api/v1/analytics/sla/?format=csv&{period}")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert "response.compliance_percent" in csv.content.decode().splitlines()[0]


@pytest.mark.parametrize(
    ("grouping", "interval"),
    [("priority", "month"), ("policy", "month"), ("asset", "month"), ("period", "day"), ("period", "week")],
)
def test_performance_in_sql_equals_the_portable_computation(history, clock, monkeypatch, grouping, interval):  # noqa: F811
    """On PostgreSQL the figures are aggregated in SQL (percentile_disc: nearest rank); they equal the portable
    computation in Python, group by group."""
    org = history
    in_sql = services.performance(
        org, group_by=grouping, interval=interval, start=date(2026, 3, 1), end=date(2026, 4, 30)
    )
    monkeypatch.setattr(services, "connection", SimpleNamespace(vendor="sqlite"))
    portable = services.performance(
        org, group_by=grouping, interval=interval, start=date(2026, 3, 1), end=date(2026, 4, 30)
    )
    assert in_sql == portable
    assert in_sql["overall"]["clocks"] > 0
