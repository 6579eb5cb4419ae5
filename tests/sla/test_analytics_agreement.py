"""`/sla/performance` and the SLA compliance KPIs of `/analytics/*` agree: the same clocks, the same counts."""

from datetime import date

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
