"""CSV import and export of parts (django-import-export), always within one organisation.

- Rows are matched to the organisation's parts by SKU (unique per organisation): an existing SKU is updated,
  a new one created, another organisation's part with the same SKU is never touched.
- The preferred vendor is named, and looked up among the organisation's vendors only: a name it does not
  have is an error on that row (never a new vendor, never another organisation's).
- The unit is its value or its label ("each", "Litre"); countable units (each, pair, set, box) take whole
  numbers only, so "2.5" as the reorder point of a part counted in each is an error on that row.
- Rows are written through `inventory.services.create_part` / `update_part` (the only writers), so the
  history names the importer and the low-stock alert re-arms exactly as in the admin and the API.
- The export adds the stock (`on_hand`, `reserved`, `available`, over every location); those columns are
  ignored on import: stock changes only through the ledger.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from import_export import fields, resources, widgets

from inventory import services
from inventory.models import Part, Unit, Vendor
from maintenance_site.db_routing import replica_alias
from maintenance_site.errors import DomainError

# The columns written through the services, in order.
COLUMNS = [
    "sku",
    "name",
    "description",
    "category",
    "unit",
    "manufacturer",
    "manufacturer_part_number",
    "preferred_vendor",
    "reorder_point",
    "reorder_quantity",
    "lead_time_days",
    "is_active",
]
STOCK_COLUMNS = ["on_hand", "reserved", "available"]


class StrippedCharWidget(widgets.CharWidget):
    def clean(self, value, row=None, **kwargs):
        return (super().clean(value, row, **kwargs) or "").strip()


class UnitWidget(widgets.Widget):
    """A unit by its value or label, in any case; empty keeps the default (each) or the current unit."""

    def __init__(self):
        super().__init__()
        self.values = {}
        for value, label in Unit.choices:
            self.values[str(value).lower()] = value
            self.values[str(label).lower()] = value

    def clean(self, value, row=None, **kwargs):
        text = ("" if value is None else str(value)).strip().lower()
        if not text:
            return None
        if text not in self.values:
            raise ValueError(
                gettext("“%(value)s” is not a unit; use one of: %(choices)s.")
                % {"value": value, "choices": ", ".join(Unit.values)}
            )
        return self.values[text]


class VendorWidget(widgets.Widget):
    """A vendor of the resource's organisation, by name (set by PartResource)."""

    organization_id = None

    def clean(self, value, row=None, **kwargs):
        name = ("" if value is None else str(value)).strip()
        if not name:
            return None
        vendor = Vendor.objects.filter(organization_id=self.organization_id, name__iexact=name).first()
        if vendor is None:
            raise ValueError(
                gettext("No vendor named “%(name)s” in this organisation; add the vendor first.") % {"name": name}
            )
        return vendor

    def render(self, value, obj=None, **kwargs):
        return value.name if value is not None else ""


class QuantityWidget(widgets.DecimalWidget):
    """A quantity; not a number is an error on the row (the model says whether it must be whole)."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except Exception:
            raise ValueError(gettext("“%(raw)s” is not a number.") % {"raw": value}) from None


class PartResource(resources.ModelResource):
    """Parts of one organisation as CSV rows; see the module docstring for the rules."""

    sku = fields.Field(attribute="sku", column_name="sku", widget=StrippedCharWidget())
    name = fields.Field(attribute="name", column_name="name", widget=StrippedCharWidget())
    description = fields.Field(attribute="description", column_name="description", widget=widgets.CharWidget())
    category = fields.Field(attribute="category", column_name="category", widget=StrippedCharWidget())
    unit = fields.Field(attribute="unit", column_name="unit", widget=UnitWidget(), saves_null_values=False)
    manufacturer = fields.Field(attribute="manufacturer", column_name="manufacturer", widget=StrippedCharWidget())
    manufacturer_part_number = fields.Field(
        attribute="manufacturer_part_number", column_name="manufacturer_part_number", widget=StrippedCharWidget()
    )
    preferred_vendor = fields.Field(attribute="preferred_vendor", column_name="preferred_vendor", widget=VendorWidget())
    reorder_point = fields.Field(
        attribute="reorder_point", column_name="reorder_point", widget=QuantityWidget(), saves_null_values=False
    )
    reorder_quantity = fields.Field(
        attribute="reorder_quantity", column_name="reorder_quantity", widget=QuantityWidget(), saves_null_values=False
    )
    lead_time_days = fields.Field(
        attribute="lead_time_days",
        column_name="lead_time_days",
        widget=widgets.IntegerWidget(),
        saves_null_values=False,
    )
    is_active = fields.Field(
        attribute="is_active", column_name="is_active", widget=widgets.BooleanWidget(), saves_null_values=False
    )
    on_hand = fields.Field(attribute="on_hand", column_name="on_hand", readonly=True)
    reserved = fields.Field(attribute="reserved", column_name="reserved", readonly=True)
    available = fields.Field(attribute="available", column_name="available", readonly=True)

    class Meta:
        model = Part
        name = "Parts"
        fields = [*COLUMNS, *STOCK_COLUMNS]
        import_order = COLUMNS
        export_order = [*COLUMNS, *STOCK_COLUMNS]
        import_id_fields = ["sku"]
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def __init__(self, organization=None, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.organization = organization or None
        self.actor = actor
        self.fields["preferred_vendor"].widget.organization_id = getattr(self.organization, "pk", None)

    # --- import --------------------------------------------------------------------------------------
    def get_queryset(self):
        """Rows match existing parts of the organisation only."""
        queryset = Part.objects.select_related("preferred_vendor")
        if self.organization is None:
            return queryset.none()
        return queryset.filter(organization=self.organization)

    def before_import(self, dataset, **kwargs):
        if self.organization is None:
            raise ValueError(gettext("Choose the organisation to import into first."))
        missing = {"sku", "name"} - {str(header).strip() for header in dataset.headers or ()}
        if missing:
            raise ValueError(
                gettext("The file needs the column(s) %(columns)s.") % {"columns": ", ".join(sorted(missing))}
            )

    def init_instance(self, row=None):
        return Part(organization=self.organization)

    def do_instance_save(self, instance, is_create):
        values = {name: getattr(instance, name) for name in COLUMNS}
        try:
            if is_create:
                saved = services.create_part(self.organization, actor=self.actor, **values)
            else:
                saved = services.update_part(instance, actor=self.actor, **values)
        except DomainError as exc:
            raise ValidationError(exc.fields or exc.message) from None
        for field in Part._meta.concrete_fields:
            setattr(instance, field.attname, getattr(saved, field.attname))
        instance._state.adding = False

    # --- export --------------------------------------------------------------------------------------
    def filter_export(self, queryset, **kwargs):
        if self.organization is not None:
            queryset = queryset.filter(organization=self.organization)
        # An export is a replica-safe read (maintenance_site/db_routing.py): the replica when one is configured.
        return services.parts_with_stock(queryset.using(replica_alias()).select_related("preferred_vendor"))

    def _stock(self, part, name):
        value = getattr(part, name, None)
        if value is None:
            value = services.parts_with_stock(Part.objects.filter(pk=part.pk)).values_list(name, flat=True).get()
        return f"{value.normalize():f}"

    def dehydrate_on_hand(self, part):
        return self._stock(part, "on_hand")

    def dehydrate_reserved(self, part):
        return self._stock(part, "reserved")

    def dehydrate_available(self, part):
        return self._stock(part, "available")
