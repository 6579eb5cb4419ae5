"""SLA response and resolution compliance (definitions in `maintenance_site.analytics.definitions`), registered in
`SlaConfig.ready()`. The same counts as `sla.services.performance` (met and breached of the clocks started in the
period, cancelled orders left out), as one aggregate query; a test asserts the two agree."""

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Q, Sum

from maintenance_site.analytics import periods, registry, rollups
from maintenance_site.analytics.definitions import percent
from sla import services
from sla.models import ClockState, SLAClock

SLA_KPIS = ("response_compliance", "resolution_compliance")


def _where(scope):
    return periods.scope_q(
        scope,
        asset="work_order__asset_id",
        asset_type="work_order__asset__asset_type_id",
        location="work_order__location",
        team="work_order__team_id",
    )


def _sla_rows(scope, interval) -> dict:
    """{bucket: {response_met, response_breached, resolution_met, resolution_breached}} of the clocks started in
    the period (cancelled orders left out)."""
    clocks = (
        SLAClock.objects.filter(organization=scope.organization, started_at__gte=scope.start, started_at__lt=scope.end)
        .exclude(work_order_id__in=services.cancelled_orders(scope.organization))
        .filter(_where(scope))
    )
    measures = {
        f"{target}_{state}": Count("pk", filter=Q(**{f"{target}_state": state}))
        for target in ("response", "resolution")
        for state in (ClockState.MET, ClockState.BREACHED)
    }
    if interval:
        grouped = clocks.annotate(bucket=periods.trunc("started_at", interval, scope.zone)).values("bucket")
        return {
            periods.bucket_key(r["bucket"], scope.zone): {name: r[name] for name in measures}
            for r in grouped.annotate(**measures).order_by()
        }
    return {None: clocks.aggregate(**measures)}


def _sla_figures(row, keys) -> dict:
    out = {}
    for target in ("response", "resolution"):
        key = f"{target}_compliance"
        if key in keys:
            met, breached = int(row.get(f"{target}_met") or 0), int(row.get(f"{target}_breached") or 0)
            out[key] = percent(met, met + breached)
    return out


def sla_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    out = {key: {} for key in keys}
    for bucket, row in _sla_rows(scope, interval).items():
        for key, value in _sla_figures(row, keys).items():
            out[key][bucket] = value
    return out


TARGETS = ("response", "resolution")
# What `sla_performance` needs per priority, kept per day by the rollups: counts and sums add up over days, the
# business seconds themselves (a sample: sorted values) give the exact 90th percentile of any period.
PRIORITY_MEASURES = {
    "clocks": Count("pk"),
    **{
        f"{target}_{state}": Count("pk", filter=Q(**{f"{target}_state": state}))
        for target in TARGETS
        for state in (ClockState.MET, ClockState.BREACHED)
    },
    **{f"{target}_measured": Count(f"{target}_seconds") for target in TARGETS},
    **{f"{target}_total": Sum(f"{target}_seconds") for target in TARGETS},
    **{
        f"{target}_values": ArrayAgg(f"{target}_seconds", filter=Q(**{f"{target}_seconds__isnull": False}), default=[])
        for target in TARGETS
    },
}


def _by_priority(scope, interval) -> dict:
    """{bucket: {priority: measures}}: `PRIORITY_MEASURES` of the clocks started in the period (cancelled orders
    left out), the sums of seconds as `<target>_seconds_sum`… named for `performance_by_priority_from_sums`."""
    clocks = (
        SLAClock.objects.filter(organization=scope.organization, started_at__gte=scope.start, started_at__lt=scope.end)
        .exclude(work_order_id__in=services.cancelled_orders(scope.organization))
        .filter(_where(scope))
    )
    if interval:
        clocks = clocks.annotate(bucket=periods.trunc("started_at", interval, scope.zone))
        grouped = clocks.values("bucket", "work_order__priority")
    else:
        grouped = clocks.values("work_order__priority")
    out: dict = {}
    for r in grouped.annotate(**PRIORITY_MEASURES).order_by():
        bucket = periods.bucket_key(r["bucket"], scope.zone) if interval else None
        values = {name: r[name] for name in PRIORITY_MEASURES if not name.endswith(("_total", "_values"))}
        for target in TARGETS:
            # the sum of seconds is a measure; the seconds themselves a sample (a list)
            values[f"{target}_seconds"] = r[f"{target}_values"]
            values[f"{target}_sum"] = r[f"{target}_total"] or 0
        out.setdefault(bucket, {})[r["work_order__priority"]] = values
    return out


def sla_measures(scope, keys, *, interval=None, group_by=None) -> dict:
    """The met and breached counts per bucket (additive over days: `maintenance_site.analytics.rollups`); per
    priority (`group_by`), what `sla_performance` needs: counts, sums and the seconds themselves."""
    if group_by == "priority":
        return _by_priority(scope, interval)
    return _sla_rows(scope, interval)


def sla_finish(scope, keys, raw) -> dict:
    return {key: {None: value} for key, value in _sla_figures(raw, keys).items()}


def sla_performance(scope, *, group_by: str = "priority", interval: str = "month") -> dict:
    """`/analytics/sla`: the figures of `/sla/performance` (the same function, `sla.services.performance`) over the
    scope's local days and filters. One query; by priority for the whole organisation, the daily rollups instead
    when they can be used (two queries: the sums, and the exact 90th percentiles over the period's seconds)."""
    if group_by == "priority":
        rolled = rollups.grouped(scope, "sla", "priority", percentiles={f"{target}_seconds": 0.9 for target in TARGETS})
        if rolled is not None:
            sums = {
                priority: {**values, **{f"{t}_seconds": values.get(f"{t}_sum") for t in TARGETS}}
                for priority, values in rolled["groups"].items()
            }
            return services.performance_by_priority_from_sums(
                scope.organization, scope.start, scope.end, sums, rolled["percentiles"]
            )
    return services.performance(
        scope.organization, group_by=group_by, start=scope.start, end=scope.end, interval=interval, where=_where(scope)
    )


def register() -> None:
    registry.register_provider(
        SLA_KPIS, sla_kpis, rollup=("sla", sla_measures, sla_finish), rollup_breakdowns=("priority",)
    )
    registry.register_function("sla_performance", sla_performance)
