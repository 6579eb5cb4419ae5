"""The inventory's section of the status report (`maintenance_site.reports.registry`): the active parts at or below
their reorder point, lowest first (the first `LIST_LIMIT`) and how many. Stock is organisation-wide: a location
filter does not apply. Two queries. Registered when `InventoryConfig.ready()` imports this module."""

from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inventory import services
from inventory.models import Part
from maintenance_site.i18n import number
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block

LIST_LIMIT = 100


@registry.section("status", "low_stock", title="Low stock", order=60)
def low_stock(scope, options):
    low = services.parts_with_stock(Part.objects.filter(organization=scope.organization, is_active=True)).filter(
        available__lte=F("reorder_point")
    )
    total = low.count()
    rows = [
        [p.sku, p.name, p.available, p.reorder_point, p.reorder_quantity, p.on_order]
        for p in low.order_by(F("available") - F("reorder_point"), "pk")[:LIST_LIMIT]
    ]
    values = {"count": number(total), "limit": LIST_LIMIT}
    if total > LIST_LIMIT:
        note = _(
            "%(count)s parts at or below their reorder point (organisation-wide stock); the %(limit)s furthest below "
            "are listed."
        )
    else:
        note = ngettext(
            "%(count)s part at or below its reorder point (organisation-wide stock).",
            "%(count)s parts at or below their reorder point (organisation-wide stock).",
            total,
        )
    columns = [_("SKU"), _("Part"), _("Available"), _("Reorder point"), _("Reorder quantity"), _("On order")]
    return Block(_("Low stock"), columns, rows, note=note % values)
