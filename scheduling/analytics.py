"""PM compliance (the `pm_compliance` definition of `maintenance_site.analytics`), registered in
`SchedulingConfig.ready()`: the very aggregates of `/preventive-maintenance/statistics`
(`scheduling.preventive.reports.compliance_measures`), so the two can never disagree. One query."""

from maintenance_site.analytics import periods, registry
from scheduling.preventive.models import PreventiveOccurrence
from scheduling.preventive.reports import compliance, compliance_measures


def pm_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    rows = PreventiveOccurrence.objects.filter(
        organization=scope.organization, due_at__gte=scope.start, due_at__lt=scope.end
    ).filter(
        periods.scope_q(
            scope,
            asset="asset_id",
            asset_type="asset__asset_type_id",
            location="asset__location",
            team="work_order__team_id",
        )
    )
    measures = compliance_measures(scope.now)
    if interval:
        grouped = rows.annotate(bucket=periods.trunc("due_at", interval, scope.zone)).values("bucket")
        answers = {periods.bucket_key(r["bucket"], scope.zone): r for r in grouped.annotate(**measures).order_by()}
    else:
        answers = {None: rows.aggregate(**measures)}
    return {"pm_compliance": {bucket: compliance(row) for bucket, row in answers.items()}}


def register() -> None:
    registry.register_provider(("pm_compliance",), pm_kpis)
