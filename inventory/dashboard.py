"""The stock figure on the manager's dashboard (maintenance_site.dashboard): active parts at or below their reorder
point. Registered by InventoryConfig.ready(); one query."""

from django.db.models import F
from django.urls import reverse
from django.utils.translation import gettext_lazy

from inventory import services
from inventory.models import Part
from maintenance_site import dashboard


@dashboard.tile(
    "low_stock", title=gettext_lazy("Low-stock parts"), order=70, model="inventory.part", icon="inventory_2"
)
def low_stock_parts(organization, period):
    count = (
        services.parts_with_stock(Part.objects.filter(organization=organization, is_active=True))
        .filter(available__lte=F("reorder_point"))
        .count()
    )
    return dashboard.Figure(count, link=reverse("admin:inventory_part_changelist") + "?stock=low&is_active__exact=1")
