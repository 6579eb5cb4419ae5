"""SLA response and resolution compliance (definitions in `maintenance_site.analytics.definitions`), registered in
`SlaConfig.ready()`. The same counts as `sla.services.performance` (met and breached of the clocks started in the
period, cancelled orders left out), as one aggregate query; a test asserts the two agree."""

from django.db.models import Count, Q

from maintenance_site.analytics import periods, registry
from maintenance_site.analytics.definitions import percent
from sla.models import ClockState, SLAClock
from workorders.models import WorkOrder

SLA_KPIS = ("response_compliance", "resolution_compliance")


def sla_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    clocks = (
        SLAClock.objects.filter(organization=scope.organization, started_at__gte=scope.start, started_at__lt=scope.end)
        .exclude(work_order__status=WorkOrder.Status.CANCELLED)
        .filter(
            periods.scope_q(
                scope,
                asset="work_order__asset_id",
                asset_type="work_order__asset__asset_type_id",
                location="work_order__location",
                team="work_order__team_id",
            )
        )
    )
    measures = {
        f"{target}_{state}": Count("pk", filter=Q(**{f"{target}_state": state}))
        for target in ("response", "resolution")
        for state in (ClockState.MET, ClockState.BREACHED)
    }
    if interval:
        grouped = clocks.annotate(bucket=periods.trunc("started_at", interval, scope.zone)).values("bucket")
        rows = {periods.bucket_key(r["bucket"], scope.zone): r for r in grouped.annotate(**measures).order_by()}
    else:
        rows = {None: clocks.aggregate(**measures)}
    out = {key: {} for key in keys}
    for bucket, row in rows.items():
        for target in ("response", "resolution"):
            key = f"{target}_compliance"
            if key in keys:
                met, breached = row[f"{target}_met"], row[f"{target}_breached"]
                out[key][bucket] = percent(met, met + breached)
    return out


def register() -> None:
    registry.register_provider(SLA_KPIS, sla_kpis)
