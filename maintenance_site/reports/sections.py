"""The performance and quality reports' KPI sections, from the one module of KPI definitions
(`maintenance_site.analytics.definitions`) through `maintenance_site.analytics.services`: the same figures as
`/api/v1/analytics/*` and the dashboard, never recomputed here. Failure codes come from the analytics function
`failure_pareto` (the work orders answer it). Registered by `ReportsConfig.ready()`."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_site.analytics import registry as analytics_registry
from maintenance_site.analytics import services as analytics
from maintenance_site.analytics.definitions import KPIS, QUALITY
from maintenance_site.analytics.labels import kpi_name, unit_name
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block

PERFORMANCE = (
    "availability",
    "mtbf",
    "mttr",
    "failures",
    "unscheduled_downtime_hours",
    "scheduled_downtime_hours",
    "pm_compliance",
    "planned_ratio",
    "backlog_count",
    "backlog_hours",
    "backlog_age_days",
    "wrench_time",
    "response_compliance",
    "resolution_compliance",
    "labour_cost",
    "parts_cost",
    "external_cost",
    "total_cost",
    "inventory_turns",
    "stock_outs",
)
# The trends drawn as charts (the table has every KPI).
PERFORMANCE_CHARTS = (
    (
        gettext_lazy("Availability, PM and SLA compliance (%)"),
        "line",
        ("availability", "pm_compliance", "resolution_compliance"),
    ),
    (gettext_lazy("Maintenance cost"), "bar", ("labour_cost", "parts_cost", "external_cost")),
    (gettext_lazy("Failures and backlog"), "bar", ("failures", "backlog_count")),
)
QUALITY_CHARTS = (
    (gettext_lazy("First-time fix and rejects (%)"), "line", ("first_time_fix", "verification_reject_rate")),
)
# The trend table's first column, per interval.
INTERVAL_COLUMNS = {"day": gettext_lazy("Day"), "week": gettext_lazy("Week from"), "month": gettext_lazy("Month from")}
INTERVAL_TITLES = {
    "day": gettext_lazy("Trend by day"),
    "week": gettext_lazy("Trend by week"),
    "month": gettext_lazy("Trend by month"),
}
SLA_KPIS = ("response_compliance", "resolution_compliance")


def _provided(keys) -> list[str]:
    return [key for key in keys if key in analytics.DERIVED or analytics_registry.provided(key)]


def interval_for(scope) -> str:
    """Days up to a fortnight, ISO weeks up to a quarter, months beyond."""
    if scope.days <= 14:
        return "day"
    return "week" if scope.days <= 92 else "month"


def kpi_table(scope, keys, title: str) -> Block:
    """Each KPI this period and the period of the same length before it, with the change."""
    keys = _provided(keys)
    current, previous = analytics.kpi_values(scope, keys), analytics.kpi_values(scope.previous(), keys)
    rows = []
    for key in keys:
        now, before = current[key], previous[key]
        change = float(now) - float(before) if now is not None and before is not None else None
        rows.append(
            [kpi_name(key), unit_name(KPIS[key].unit), now, before, round(change, 2) if change is not None else None]
        )
    return Block(
        str(title),
        [_("KPI"), _("Unit"), _("This period"), _("Previous period"), _("Change")],
        rows,
        note=_("Definitions: /api/v1/analytics/definitions. Previous period: the same number of days just before."),
    )


def trend_blocks(scope, keys, charts) -> list[Block]:
    """One table of every KPI per day, week or month, and the charts drawn from it."""
    keys = _provided(keys)
    interval = interval_for(scope)
    trend = analytics.trend(scope, keys, interval)
    rows = [[row["period"], *(row[key] for key in keys)] for row in trend["rows"]]
    labels = [str(row["period"]) for row in trend["rows"]]
    blocks = []
    for title, kind, wanted in charts:
        wanted = [key for key in wanted if key in keys]
        if not wanted:
            continue
        datasets = [
            {"label": kpi_name(key), "data": [float(r[key]) if r[key] is not None else None for r in trend["rows"]]}
            for key in wanted
        ]
        blocks.append(Block(str(title), [], [], chart={"kind": kind, "labels": labels, "datasets": datasets}))
    columns = [str(INTERVAL_COLUMNS[interval]), *(kpi_name(k) for k in keys)]
    blocks.append(Block(str(INTERVAL_TITLES[interval]), columns, rows))
    return blocks


@registry.section("performance", "kpis", title="KPIs", order=10)
def performance_kpis(scope, options):
    return kpi_table(scope, PERFORMANCE, _("KPIs of the period"))


@registry.section("performance", "trends", title="Trends", order=20)
def performance_trends(scope, options):
    return trend_blocks(scope, PERFORMANCE, PERFORMANCE_CHARTS)


@registry.section("quality", "kpis", title="Quality KPIs", order=10)
def quality_kpis(scope, options):
    return kpi_table(scope, (*QUALITY, *SLA_KPIS), _("First-time fix, rework, verification rejects, SLA compliance"))


@registry.section("quality", "trends", title="Quality trends", order=20)
def quality_trends(scope, options):
    return trend_blocks(scope, QUALITY, QUALITY_CHARTS)


@registry.section("quality", "failure_codes", title="Failure codes", order=30)
def failure_codes(scope, options):
    """The Pareto of problem, cause and remedy codes on the reactive orders completed in the period."""
    try:
        pareto = analytics_registry.function("failure_pareto")
    except analytics_registry.NotProvided:
        return []
    blocks = []
    titles = {
        "problem": _("Failure problem codes"),
        "cause": _("Failure cause codes"),
        "remedy": _("Failure remedy codes"),
    }
    for kind in ("problem", "cause", "remedy"):
        rows = [
            [r["code"] or "", r["name"], r["count"], r["share"], r["cumulative_share"]]
            for r in pareto(scope, kind=kind)
        ]
        blocks.append(
            Block(
                titles[kind],
                [_("Code"), _("Name"), _("Orders"), _("Share (%)"), _("Cumulative (%)")],
                rows,
                chart={
                    "kind": "bar",
                    "labels": [r[0] or r[1] for r in rows[:10]],
                    "datasets": [{"label": _("Orders"), "data": [r[2] for r in rows[:10]]}],
                }
                if rows
                else None,
                note=_("Reactive orders (corrective, emergency) completed in the period."),
                key=f"failure_{kind}",
            )
        )
    return blocks
