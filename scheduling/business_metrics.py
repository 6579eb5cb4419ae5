"""Maintenance mode on /metrics (maintenance_site.ops.business_metrics). Registered by SchedulingConfig.ready()."""

from maintenance_site.ops import business_metrics
from scheduling.windows.models import MaintenanceMode


@business_metrics.family(
    "maintenance_mode_active",
    "1 while maintenance mode is on (the platform row has the organisation label “platform”).",
)
def maintenance_mode_active(context):
    active = MaintenanceMode.objects.filter(active=True).values_list("organization_id", flat=True)
    if not context.per_org:
        return [([], float(active.exists()))]
    return [([context.slugs.get(org_id, "platform") if org_id else "platform"], 1.0) for org_id in active]
