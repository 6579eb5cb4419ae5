"""The SLA's business metric on /metrics (maintenance_site.ops.business_metrics). Registered by SlaConfig.ready()."""

from maintenance_site.ops import business_metrics
from sla.models import SLAViolation


@business_metrics.family(
    "maintenance_sla_violations", "SLA warnings and breaches recorded (all time), by level.", labels=["level"]
)
def sla_violations(context):
    # sla_violation_org_level_idx (index-only)
    return context.labelled(context.grouped(SLAViolation.objects.all(), "level"))
