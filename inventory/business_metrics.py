"""The inventory's business metric on /metrics (maintenance_site.ops.business_metrics). Registered by
InventoryConfig.ready()."""

from inventory.models import Part
from maintenance_site.ops import business_metrics


@business_metrics.family(
    "maintenance_parts_low_stock",
    "Parts at or below their reorder point (their low-stock alert fired and was not re-armed).",
)
def parts_low_stock(context):
    return context.labelled(context.grouped(Part.objects.filter(low_stock_armed=False)))
