"""The verification KPIs (`verification_rejects`, `verification_reject_rate`; definitions in
`maintenance_site.analytics.definitions`), read from the work orders' history: the lifecycle's `verify` and `reject`
steps write a history record whose change reason starts with the step's name (`workorders.services.transition`).
One aggregate query over the history records of the period, whatever their number. Registered in
`WorkOrdersConfig.ready()`, like `workorders.analytics`."""

from django.db.models import Count, Q

from maintenance_site.analytics import periods, registry
from maintenance_site.analytics.definitions import percent
from workorders.models import WorkOrder

VERIFICATION_KPIS = ("verification_rejects", "verification_reject_rate")
# The change reason of a step is "<action>" or "<action>: <reason>" (and " (done offline…)" after it).
REJECT = Q(history_change_reason="reject") | Q(history_change_reason__startswith="reject:")
VERIFY = Q(history_change_reason="verify") | Q(history_change_reason__startswith="verify:")


def _decisions(scope):
    records = WorkOrder.history.filter(
        organization_id=scope.organization.pk,
        history_type="~",
        history_date__gte=scope.start,
        history_date__lt=scope.end,
    )
    return records.filter(REJECT | VERIFY).filter(
        periods.scope_q(scope, asset="asset_id", asset_type="asset__asset_type_id", location="location", team="team_id")
    )


def verification_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Rejects and the reject rate of the period (or per bucket): one aggregate over the history records."""
    measures = {"rejects": Count("pk", filter=REJECT), "verifies": Count("pk", filter=VERIFY)}
    records = _decisions(scope)
    if interval:
        zone = scope.zone
        rows = records.annotate(bucket=periods.trunc("history_date", interval, zone)).values("bucket")
        rows = {periods.bucket_key(r["bucket"], zone): r for r in rows.annotate(**measures).order_by()}
    else:
        rows = {None: records.aggregate(**measures)}
    out: dict = {key: {} for key in keys}
    for bucket, row in rows.items():
        if "verification_rejects" in keys:
            out["verification_rejects"][bucket] = row["rejects"]
        if "verification_reject_rate" in keys:
            out["verification_reject_rate"][bucket] = percent(row["rejects"], row["rejects"] + row["verifies"])
    return out


def register() -> None:
    registry.register_provider(VERIFICATION_KPIS, verification_kpis)
