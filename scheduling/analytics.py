"""PM compliance (the `pm_compliance` definition of `maintenance_site.analytics`), registered in
`SchedulingConfig.ready()`: the very aggregates of `/preventive-maintenance/statistics`
(`scheduling.preventive.reports.compliance_measures`), so the two can never disagree. One query."""

from maintenance_site.analytics import periods, registry, rollups
from scheduling.preventive import reports
from scheduling.preventive.models import PreventiveOccurrence
from scheduling.preventive.reports import compliance, compliance_measures


def _where(scope):
    return periods.scope_q(
        scope,
        asset="asset_id",
        asset_type="asset__asset_type_id",
        location="asset__location",
        team="work_order__team_id",
    )


def _pm_rows(scope, interval) -> dict:
    rows = PreventiveOccurrence.objects.filter(
        organization=scope.organization, due_at__gte=scope.start, due_at__lt=scope.end
    ).filter(_where(scope))
    measures = compliance_measures(scope.now)
    if interval:
        grouped = rows.annotate(bucket=periods.trunc("due_at", interval, scope.zone)).values("bucket")
        return {
            periods.bucket_key(r["bucket"], scope.zone): {name: r[name] for name in measures}
            for r in grouped.annotate(**measures).order_by()
        }
    return {None: rows.aggregate(**measures)}


def pm_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    return {"pm_compliance": {bucket: compliance(row) for bucket, row in _pm_rows(scope, interval).items()}}


def pm_measures(scope, keys, *, interval=None) -> dict:
    """The counts behind PM compliance per bucket. Additive over days; `open` (due within the tolerance before
    now) is 0 on every day the rollups keep (they end more than the tolerance ago)."""
    return _pm_rows(scope, interval)


def pm_finish(scope, keys, raw) -> dict:
    row = {name: int(raw.get(name) or 0) for name in compliance_measures(scope.now)}
    return {"pm_compliance": {None: compliance(row)}}


def pm_statistics(scope, *, group_by: str = "period", interval: str = "month") -> dict:
    """`/analytics/pm-compliance`: the PM statistics of `/preventive-maintenance/statistics` (the same function) over
    the scope's local days and filters. One query; by period for the whole organisation, the daily rollups' counts
    (the same measures, summed per period) when they can be used."""
    if group_by == "period" and interval in reports.PERIODS:
        sums = rollups.bucketed(scope, "pm", interval)
        if sums is not None:
            return reports.statistics_by_period_from_sums(
                start=scope.start, end=scope.end, period=interval, now=scope.now, sums=sums
            )
    return reports.statistics(
        scope.organization,
        start=scope.start,
        end=scope.end,
        group_by=group_by,
        period=interval,
        now=scope.now,
        where=_where(scope),
    )


def register() -> None:
    registry.register_provider(("pm_compliance",), pm_kpis, rollup=("pm", pm_measures, pm_finish))
    registry.register_function("pm_statistics", pm_statistics)
