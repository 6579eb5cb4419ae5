"""The figures, composed from the apps' providers: what the API (`maintenance_site.analytics.api`) and the back-office
dashboard call. Plain functions of (organisation, period, filters) → numbers; they read and change nothing.

    scope = analytics.scope_for(org, first_day=date(2026, 1, 1), last_day=date(2026, 3, 31), location=site_id)
    analytics.kpi_values(scope, ["availability", "mttr"])     # {"availability": 99.2, "mttr": 3.5}
    analytics.tile(org, "availability", first_day=..., last_day=...)   # value, previous period, link target
    analytics.trend(scope, ["pm_compliance"], "week")          # one point per local week

Every call runs a bounded number of queries (one per provider asked, plus the filters' look-ups), whatever the size
of the data.
"""

from datetime import date
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site.analytics import periods, registry
from maintenance_site.analytics.definitions import COST_CATEGORIES, KPIS, OVERVIEW, VERSION
from maintenance_site.analytics.periods import Scope
from maintenance_site.errors import InvalidInput, NotFound

# KPIs made of other KPIs.
DERIVED = {"total_cost": tuple(COST_CATEGORIES.values())}
MONEY_ZERO = Decimal("0.00")
GROUP_BYS = ("asset", "asset_type", "location")
COST_GROUP_BYS = ("category", "period", *GROUP_BYS)


NO_SUCH = {
    "asset": lambda: _("No such asset."),
    "asset_type": lambda: _("No such asset type."),
    "team": lambda: _("No such team."),
}


def unknown_kpi(key: str, field: str = "kpi") -> InvalidInput:
    return InvalidInput(
        _("“%(key)s” is not a KPI; ask for one of %(kpis)s (definitions: /api/v1/analytics/definitions).")
        % {"key": key, "kpis": ", ".join(KPIS)},
        fields={field: [_("Unknown KPI “%(key)s”.") % {"key": key}]},
    )


def scope_for(
    organization,
    *,
    first_day: date | None = None,
    last_day: date | None = None,
    location: int | None = None,
    asset_type: int | None = None,
    asset: int | None = None,
    team: int | None = None,
    now=None,
) -> Scope:
    """The scope of a question: the period in the organisation's local days (default: the last 30 days) and the
    filters, each checked to belong to the organisation (a 404 naming the filter otherwise: another organisation's
    location, asset, asset type or team is not found, as everywhere)."""
    now = now or timezone.now()
    first_day, last_day = periods.period(organization, first_day, last_day, now)
    location_ids = None
    if location is not None:
        location_ids = registry.function("location_subtree")(organization, location)
        if location_ids is None:
            raise NotFound(_("No such location."), fields={"location": [_("No such location.")]})
    for kind, value in (("asset", asset), ("asset_type", asset_type), ("team", team)):
        if value is not None and not registry.function(f"exists:{kind}")(organization, value):
            message = NO_SUCH[kind]()
            raise NotFound(message, fields={kind: [message]})
    return Scope(organization, first_day, last_day, now, location_ids, asset_type, asset, team)


def _empty(key: str):
    unit = KPIS[key].unit
    if unit == "money":
        return MONEY_ZERO
    if unit in ("count",) or key.endswith("_hours"):
        return 0
    return None


def _compute(scope: Scope, keys, *, interval=None, group_by=None) -> dict:
    for key in keys:
        if key not in KPIS:
            raise unknown_kpi(key)
    wanted = set()
    for key in keys:
        wanted.update(DERIVED.get(key, (key,)))
    results = registry.compute(scope, wanted, interval=interval, group_by=group_by)
    for key in keys:
        if key in DERIVED:
            parts = [results.get(part, {}) for part in DERIVED[key]]
            groups = set().union(*parts)
            results[key] = {g: sum((p.get(g) or MONEY_ZERO for p in parts), MONEY_ZERO) for g in groups}
    return results


def kpi_values(scope: Scope, keys) -> dict:
    """One value per KPI over the whole period: {key: value}."""
    results = _compute(scope, keys)
    return {key: results.get(key, {}).get(None, _empty(key)) for key in keys}


def _describe(scope: Scope) -> dict:
    return {
        "from": scope.first_day,
        "to": scope.last_day,
        "time_zone": scope.organization.time_zone,
        "currency": scope.organization.currency,
        "definitions_version": VERSION,
        "filters": scope.filters(),
    }


def tiles(scope: Scope, keys=OVERVIEW) -> list[dict]:
    """The dashboard tiles: per KPI its value, the value of the period of the same length just before, and where a
    click leads. Two calls per provider (this period and the previous one)."""
    current, previous = kpi_values(scope, keys), kpi_values(scope.previous(), keys)
    return [
        {
            "kpi": key,
            "name": KPIS[key].name,
            "unit": KPIS[key].unit,
            "value": current[key],
            "previous": previous[key],
            "higher_is_better": KPIS[key].higher_is_better,
            "link": KPIS[key].link,
        }
        for key in keys
    ]


def tile(organization, key: str, *, first_day=None, last_day=None, **filters) -> dict:
    """One dashboard tile (value, previous period, link target) for the back office: the same numbers as the API."""
    if key not in KPIS:
        raise unknown_kpi(key)
    return tiles(scope_for(organization, first_day=first_day, last_day=last_day, **filters), (key,))[0]


def overview(scope: Scope) -> dict:
    """The overview: the tiles of `definitions.OVERVIEW`, with the period they cover."""
    return {
        **_describe(scope),
        "kpis": tiles(scope),
        "links": {
            "trends": "/api/v1/analytics/trends",
            "costs": "/api/v1/analytics/costs",
            "device_performance": "/api/v1/analytics/device-performance",
            "pm_compliance": "/api/v1/analytics/pm-compliance",
            "sla": "/api/v1/analytics/sla",
            "predictive_insights": "/api/v1/analytics/predictive-insights",
            "definitions": "/api/v1/analytics/definitions",
        },
    }


def trend(scope: Scope, keys, interval: str) -> dict:
    """Each KPI per local day, week or month of the period (at most `periods.MAX_BUCKETS` points)."""
    if not keys:
        raise InvalidInput(_("Name the KPIs: ?kpi=availability,mttr."), fields={"kpi": [_("Required.")]})
    periods.check_interval(scope.first_day, scope.last_day, interval)
    results = _compute(scope, keys, interval=interval)
    buckets = periods.buckets(scope, interval)
    rows = [{"period": b.key, **{key: results.get(key, {}).get(b.key, _empty(key)) for key in keys}} for b in buckets]
    return {**_describe(scope), "interval": interval, "kpis": list(keys), "rows": rows}


def _labelled(scope: Scope, group_by: str, results: dict, keys) -> list[dict]:
    groups = set().union(*(results.get(key, {}) for key in keys)) if keys else set()
    labels = registry.function("group_labels")(group_by, scope.organization, groups)
    rows = [
        {
            "id": group,
            "label": labels.get(group, "(none)") if group is not None else "(none)",
            **{key: results.get(key, {}).get(group, _empty(key)) for key in keys},
        }
        for group in groups
    ]
    return sorted(rows, key=lambda row: (row["id"] is None, str(row["label"])))


DEVICE_KPIS = (
    "availability",
    "mtbf",
    "mttr",
    "failures",
    "unscheduled_downtime_hours",
    "scheduled_downtime_hours",
)


def device_performance(scope: Scope, group_by: str = "asset_type", *, limit: int = 500) -> dict:
    """MTBF, MTTR, availability and failures per asset, asset type or location, with the totals and the Pareto of
    failure causes. Rows: the `limit` groups with the most failures (then by label), the rest summarised."""
    if group_by not in GROUP_BYS:
        raise _unknown_grouping(GROUP_BYS)
    results = _compute(scope, DEVICE_KPIS, group_by=group_by)
    rows = _labelled(scope, group_by, results, DEVICE_KPIS)
    rows.sort(key=lambda row: -(row["failures"] or 0))
    pareto = registry.function("failure_pareto")
    return {
        **_describe(scope),
        "group_by": group_by,
        "totals": kpi_values(scope, DEVICE_KPIS),
        "rows": rows[:limit],
        "truncated": len(rows) > limit,
        "failures_by_cause": pareto(scope, kind="cause"),
        "failures_by_problem": pareto(scope, kind="problem"),
    }


def costs(scope: Scope, group_by: str = "category", interval: str = "month", *, limit: int = 500) -> dict:
    """Maintenance cost (labour, parts, external) by category, by period (`interval`), or per asset, asset type or
    location with the three categories as columns; the totals; and the budgets of the period against the actuals."""
    if group_by not in COST_GROUP_BYS:
        raise _unknown_grouping(COST_GROUP_BYS)
    categories = list(COST_CATEGORIES.values())
    keys = [*categories, "total_cost"]
    body = {**_describe(scope), "group_by": group_by}
    if group_by == "category":
        totals = body["totals"] = kpi_values(scope, keys)
        whole = totals["total_cost"]
        body["rows"] = [
            {
                "category": name,
                "amount": totals[key],
                "share": round(100 * totals[key] / whole, 1) if whole else None,
            }
            for name, key in COST_CATEGORIES.items()
        ]
    elif group_by == "period":
        body.update(trend(scope, keys, interval), group_by="period")
        body["totals"] = _sum_rows(body["rows"], keys)  # every cost falls in one bucket: the buckets add up
    else:
        results = _compute(scope, keys, group_by=group_by)
        rows = sorted(_labelled(scope, group_by, results, keys), key=lambda r: -r["total_cost"])
        body["totals"] = _sum_rows(rows, keys)  # every cost is in one group ("(none)" included): they add up
        body["rows"], body["truncated"] = rows[:limit], len(rows) > limit
    body["budgets"] = budgets_against_actuals(scope)
    return body


PM_GROUP_BYS = ("period", "schedule", "asset")
SLA_GROUP_BYS = ("priority", "policy", "asset", "period")


def _unknown_grouping(allowed) -> InvalidInput:
    """The 400 for a grouping that is not one of `allowed`."""
    choices = ", ".join(allowed)
    return InvalidInput(
        _("Group by one of %(choices)s.") % {"choices": choices},
        fields={"group_by": [_("One of %(choices)s.") % {"choices": choices}]},
    )


def _check_grouping(scope: Scope, group_by: str, allowed: tuple, interval: str) -> None:
    if group_by not in allowed:
        raise _unknown_grouping(allowed)
    periods.check_interval(scope.first_day, scope.last_day, interval)


def pm_compliance(scope: Scope, group_by: str = "period", interval: str = "month") -> dict:
    """PM compliance and its counts (generated, on time, late, overdue, open, cancelled, skipped) per period,
    schedule or asset: the figures of `/preventive-maintenance/statistics`, from the same function (the app's
    `pm_statistics`), so the two never disagree; `pm_compliance` is the `pm_compliance` KPI of the period."""
    _check_grouping(scope, group_by, PM_GROUP_BYS, interval)
    result = registry.function("pm_statistics")(scope, group_by=group_by, interval=interval)
    return {
        **_describe(scope),
        "group_by": group_by,
        "interval": interval if group_by == "period" else None,
        "pm_compliance": result["totals"]["compliance"],
        "totals": result["totals"],
        "rows": result["groups"],
    }


def sla(scope: Scope, group_by: str = "priority", interval: str = "month") -> dict:
    """SLA response and resolution figures (met, breached, compliance, mean and 90th-percentile business minutes)
    per priority, policy, asset or period and overall: `/sla/performance`'s figures from the same function (the
    app's `sla_performance`), not computed twice; the two compliance KPIs are its overall compliance."""
    _check_grouping(scope, group_by, SLA_GROUP_BYS, interval)
    result = registry.function("sla_performance")(scope, group_by=group_by, interval=interval)
    overall = result["overall"]
    return {
        **_describe(scope),
        "group_by": group_by,
        "interval": interval if group_by == "period" else None,
        "response_compliance": overall["response"]["compliance_percent"],
        "resolution_compliance": overall["resolution"]["compliance_percent"],
        "overall": overall,
        "rows": result["groups"],
    }


def _sum_rows(rows: list[dict], keys) -> dict:
    return {key: sum((row[key] for row in rows), MONEY_ZERO) for key in keys}


def budgets_against_actuals(scope: Scope) -> list[dict]:
    """The budgets whose period overlaps the question's, each against its actual spend (its own period and scope),
    committed spend and forecast (`budgets` function of the app that keeps budgets; empty without one)."""
    if "budgets_overlapping" not in registry.FUNCTIONS:
        return []
    return registry.function("budgets_overlapping")(scope.organization, scope.first_day, scope.last_day, scope.now)


def budget_status(organization, budget_scope: dict, category: str, first_day: date, last_day: date, now) -> dict:
    """Actual spend of one budget's scope and category over its period, and a linear forecast to its end:
    actual ÷ days elapsed × days in the period (the actual itself once the period is over)."""
    scope = scope_for(organization, first_day=first_day, last_day=last_day, now=now, **budget_scope)
    keys = ["total_cost"] if category == "all" else [COST_CATEGORIES[category]]
    actual = kpi_values(scope, keys)[keys[0]]
    today = now.astimezone(scope.zone).date()
    elapsed = min(max((today - first_day).days + 1, 0), scope.days)
    if elapsed >= scope.days:
        forecast = actual
    elif elapsed <= 0:
        forecast = MONEY_ZERO
    else:
        forecast = (actual / elapsed * scope.days).quantize(Decimal("0.01"))
    return {"actual": actual, "forecast": forecast, "days_elapsed": elapsed, "days": scope.days}
