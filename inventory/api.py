"""`/api/v1/inventory/…`: parts (with stock, usage, returns and history), stock locations, levels, the ledger,
receipts, adjustments, transfers, write-offs, reservations, reorder and transfer suggestions, vendors and
their parts, purchase orders and the reconciliation of levels with the ledger.

Every write goes through `inventory.services` with the caller as the actor: the permission class checks the
role table, the service checks it again along with the stock rules (409 bodies carry the service's sentence,
e.g. "Only 2 left in Van 3 …", and its extra fields such as `available` and `locations`). Every id in a body is
looked up inside the caller's organisation only: another organisation's part, location or work order "does
not exist" (400), and on the path it is a 404.
"""

from collections import OrderedDict
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Prefetch,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from assets.models import AssetType
from inventory import services
from inventory.models import (
    QUANTITY,
    MovementKind,
    Part,
    PurchaseOrder,
    PurchaseOrderLine,
    Reservation,
    StockLevel,
    StockLocation,
    StockMovement,
    Unit,
    Vendor,
    VendorPart,
)
from maintenance_site import client_ids
from maintenance_site.api.filters import MomentFilter
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.serializers import FastListSerializer, TenantModelSerializer, TenantPrimaryKeyRelatedField
from maintenance_site.api.viewsets import (
    InputMixin,
    TenantAPIMixin,
    TenantGenericViewSet,
    TenantModelViewSet,
    TenantReadOnlyViewSet,
)
from maintenance_site.tenancy.roles import Action
from workorders.models import WorkOrder

User = get_user_model()
ZERO = Decimal("0")
QUANTITY_OUTPUT = {"max_digits": QUANTITY["max_digits"], "decimal_places": QUANTITY["decimal_places"]}


def person(user) -> str | None:
    return (user.get_full_name() or user.get_username()) if user is not None else None


def scoped(model, **kwargs):
    """A related field that only finds the organisation's own rows ("does not exist" otherwise)."""
    return TenantPrimaryKeyRelatedField(queryset=model.objects.all(), **kwargs)


# --- annotated stock of parts (one query for a whole page, whatever its size) ----------------------------------

with_stock = services.parts_with_stock


def _stock_of(part) -> dict:
    """The annotated totals, or (for a part fresh from a service) computed."""
    if hasattr(part, "available"):
        return {"on_hand": part.on_hand, "reserved": part.reserved, "available": part.available}
    totals = StockLevel.objects.filter(part=part).aggregate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    on_hand, reserved = totals["on_hand"] or ZERO, totals["reserved"] or ZERO
    return {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


# --- input fields ---------------------------------------------------------------------------------------


class QuantityField(serializers.CharField):
    """A quantity as text: the service says what is wrong with it (zero, negative, a fraction of a countable
    part), in its own words. Only a number too large for the ledger is refused here."""

    largest = services.LARGEST_QUANTITY

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        text = super().to_internal_value(data)
        try:
            value = Decimal(text.strip())
        except (InvalidOperation, ValueError):
            return text
        if value.is_finite() and abs(value) > self.largest:
            raise serializers.ValidationError(_("%(number)s is too large.") % {"number": text})
        return text

    def to_representation(self, value):
        return str(value)


class MoneyField(QuantityField):
    largest = Decimal("9999999999.9999")


def _decimal(value) -> str | None:
    return None if value is None else str(value)


# --- serializers ------------------------------------------------------------------------------------------


class StockMovementSerializer(serializers.ModelSerializer):
    part_sku = serializers.CharField(source="part.sku", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)
    user_name = serializers.SerializerMethodField()
    work_order_number = serializers.CharField(source="work_order.number", read_only=True, default=None)
    purchase_order_number = serializers.CharField(source="purchase_order.number", read_only=True, default=None)
    value = serializers.DecimalField(max_digits=20, decimal_places=2, read_only=True)

    class Meta:
        model = StockMovement
        fields = [
            "id",
            "kind",
            "part",
            "part_sku",
            "location",
            "location_name",
            "quantity",
            "unit_cost",
            "value",
            "user",
            "user_name",
            "work_order",
            "work_order_number",
            "purchase_order",
            "purchase_order_number",
            "transfer_id",
            "reason",
            "client_id",
            "occurred_at",
            "created_at",
        ]
        read_only_fields = fields
        list_serializer_class = FastListSerializer

    def get_user_name(self, obj) -> str | None:
        return person(obj.user)


MOVEMENT_RELATED = ("part", "location", "user", "work_order", "purchase_order")
# What a ledger line shows of the rows it refers to (a work order's whole row is kilobytes; its number is enough).
MOVEMENT_COLUMNS = (
    *(field.name for field in StockMovement._meta.concrete_fields),
    "part__sku",
    "location__name",
    "user__username",
    "user__first_name",
    "user__last_name",
    "work_order__number",
    "purchase_order__number",
)


def _with_related(movements):
    return movements.select_related(*MOVEMENT_RELATED).only(*MOVEMENT_COLUMNS)


class StockLevelSerializer(serializers.ModelSerializer):
    part_sku = serializers.CharField(source="part.sku", read_only=True)
    part_name = serializers.CharField(source="part.name", read_only=True)
    unit = serializers.CharField(source="part.unit", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)
    location_kind = serializers.CharField(source="location.kind", read_only=True)
    available = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)
    below_min = serializers.SerializerMethodField()

    class Meta:
        model = StockLevel
        fields = [
            "id",
            "part",
            "part_sku",
            "part_name",
            "unit",
            "location",
            "location_name",
            "location_kind",
            "on_hand",
            "reserved",
            "available",
            "min_quantity",
            "max_quantity",
            "below_min",
            "updated_at",
        ]
        read_only_fields = fields

    def get_below_min(self, obj) -> bool:
        return obj.min_quantity is not None and obj.available < obj.min_quantity


class PartStockSerializer(serializers.ModelSerializer):
    """One location's stock of a part (in the part's detail)."""

    location_name = serializers.CharField(source="location.name", read_only=True)
    location_kind = serializers.CharField(source="location.kind", read_only=True)
    available = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)

    class Meta:
        model = StockLevel
        fields = [
            "id",
            "location",
            "location_name",
            "location_kind",
            "on_hand",
            "reserved",
            "available",
            "min_quantity",
            "max_quantity",
        ]
        read_only_fields = fields


class VendorPartSerializer(TenantModelSerializer):
    vendor_name = serializers.CharField(source="vendor.name", read_only=True)
    part_sku = serializers.CharField(source="part.sku", read_only=True)
    part_name = serializers.CharField(source="part.name", read_only=True)

    class Meta:
        model = VendorPart
        fields = [
            "id",
            "vendor",
            "vendor_name",
            "part",
            "part_sku",
            "part_name",
            "vendor_sku",
            "price",
            "lead_time_days",
            "created_at",
            "updated_at",
        ]


class PartSerializer(TenantModelSerializer):
    preferred_vendor_name = serializers.CharField(source="preferred_vendor.name", read_only=True, default=None)
    on_hand = serializers.SerializerMethodField(help_text="On hand over every location.")
    reserved = serializers.SerializerMethodField(help_text="Held for open work orders.")
    available = serializers.SerializerMethodField(help_text="On hand minus reserved.")
    is_low = serializers.SerializerMethodField(help_text="Available at or below the reorder point.")

    class Meta:
        model = Part
        fields = [
            "id",
            "sku",
            "name",
            "description",
            "category",
            "unit",
            "average_cost",
            "manufacturer",
            "manufacturer_part_number",
            "preferred_vendor",
            "preferred_vendor_name",
            "compatible_asset_types",
            "reorder_point",
            "reorder_quantity",
            "lead_time_days",
            "is_active",
            "on_hand",
            "reserved",
            "available",
            "is_low",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["average_cost"]

    def _stock(self, obj) -> dict:
        totals = getattr(obj, "_stock_totals", None)
        if totals is None:
            totals = obj._stock_totals = _stock_of(obj)
        return totals

    def get_on_hand(self, obj) -> str:
        return str(self._stock(obj)["on_hand"])

    def get_reserved(self, obj) -> str:
        return str(self._stock(obj)["reserved"])

    def get_available(self, obj) -> str:
        return str(self._stock(obj)["available"])

    def get_is_low(self, obj) -> bool:
        return self._stock(obj)["available"] <= obj.reorder_point


class PartDetailSerializer(PartSerializer):
    stock = serializers.SerializerMethodField(help_text="Per location: on hand, reserved, available, min / max.")
    vendors = serializers.SerializerMethodField(help_text="Who sells the part, at what price.")

    class Meta(PartSerializer.Meta):
        fields = [*PartSerializer.Meta.fields, "stock", "vendors"]

    def get_stock(self, obj) -> list[dict]:
        levels = obj.levels.all() if _prefetched(obj, "levels") else _levels_of(obj)
        return PartStockSerializer(levels, many=True).data

    def get_vendors(self, obj) -> list[dict]:
        offers = obj.vendor_parts.all() if _prefetched(obj, "vendor_parts") else _offers_of(obj)
        return [
            {
                "id": offer.pk,
                "vendor": offer.vendor_id,
                "vendor_name": offer.vendor.name,
                "vendor_sku": offer.vendor_sku,
                "price": str(offer.price),
                "lead_time_days": offer.lead_time_days,
            }
            for offer in offers
        ]


def _prefetched(obj, name: str) -> bool:
    return name in getattr(obj, "_prefetched_objects_cache", {})


def _levels_of(part):
    return StockLevel.objects.filter(part=part).select_related("location").order_by("location__name")


def _offers_of(part):
    return VendorPart.objects.filter(part=part).select_related("vendor").order_by("vendor__name")


class LowStockSerializer(serializers.ModelSerializer):
    preferred_vendor_name = serializers.CharField(source="preferred_vendor.name", read_only=True, default=None)
    on_hand = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)
    reserved = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)
    available = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)
    on_order = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)

    class Meta:
        model = Part
        fields = [
            "id",
            "sku",
            "name",
            "unit",
            "on_hand",
            "reserved",
            "available",
            "on_order",
            "reorder_point",
            "reorder_quantity",
            "preferred_vendor",
            "preferred_vendor_name",
        ]
        read_only_fields = fields


class StockLocationSerializer(TenantModelSerializer):
    site_name = serializers.CharField(source="site.name", read_only=True, default=None)
    holder = scoped(User, required=False, allow_null=True, help_text="For a van: the technician who drives it.")
    holder_name = serializers.SerializerMethodField()

    class Meta:
        model = StockLocation
        fields = [
            "id",
            "name",
            "kind",
            "site",
            "site_name",
            "holder",
            "holder_name",
            "is_active",
            "created_at",
            "updated_at",
        ]

    def get_holder_name(self, obj) -> str | None:
        return person(obj.holder)


class VendorSerializer(TenantModelSerializer):
    parts = serializers.SerializerMethodField(help_text="The parts the vendor sells (see inventory/vendor-parts).")

    class Meta:
        model = Vendor
        fields = [
            "id",
            "name",
            "contact_name",
            "email",
            "phone",
            "address",
            "website",
            "notes",
            "is_active",
            "parts",
            "created_at",
            "updated_at",
        ]

    def get_parts(self, obj) -> list[dict]:
        offers = obj.parts.all() if _prefetched(obj, "parts") else obj.parts.select_related("part")
        return [
            {
                "id": offer.pk,
                "part": offer.part_id,
                "part_sku": offer.part.sku,
                "part_name": offer.part.name,
                "vendor_sku": offer.vendor_sku,
                "price": str(offer.price),
                "lead_time_days": offer.lead_time_days,
            }
            for offer in offers
        ]


class ReservationSerializer(serializers.ModelSerializer):
    work_order_number = serializers.CharField(source="work_order.number", read_only=True)
    part_sku = serializers.CharField(source="part.sku", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)

    class Meta:
        model = Reservation
        fields = [
            "id",
            "work_order",
            "work_order_number",
            "part",
            "part_sku",
            "location",
            "location_name",
            "quantity",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PurchaseOrderLineSerializer(serializers.ModelSerializer):
    part = scoped(Part)
    part_sku = serializers.CharField(source="part.sku", read_only=True)
    part_name = serializers.CharField(source="part.name", read_only=True)
    unit = serializers.CharField(source="part.unit", read_only=True)
    quantity = QuantityField()
    unit_price = MoneyField(required=False, allow_null=True, help_text="Default: the vendor's price of the part.")
    outstanding = serializers.DecimalField(**QUANTITY_OUTPUT, read_only=True)

    class Meta:
        model = PurchaseOrderLine
        fields = [
            "id",
            "part",
            "part_sku",
            "part_name",
            "unit",
            "quantity",
            "unit_price",
            "received_quantity",
            "outstanding",
        ]
        read_only_fields = ["received_quantity"]


class PurchaseOrderSerializer(TenantModelSerializer):
    vendor_name = serializers.CharField(source="vendor.name", read_only=True)
    created_by_name = serializers.SerializerMethodField()
    lines = PurchaseOrderLineSerializer(many=True, required=False, help_text="On a draft: replaces every line.")
    total = serializers.SerializerMethodField(help_text="Σ quantity × unit price.")

    class Meta:
        model = PurchaseOrder
        fields = [
            "id",
            "number",
            "vendor",
            "vendor_name",
            "status",
            "ordered_at",
            "expected_at",
            "received_at",
            "notes",
            "created_by",
            "created_by_name",
            "lines",
            "total",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_by"]

    def get_created_by_name(self, obj) -> str | None:
        return person(obj.created_by)

    def get_total(self, obj) -> str:
        total = sum((line.quantity * line.unit_price for line in obj.lines.all()), ZERO)
        return str(total.quantize(Decimal("0.01")))

    def validate(self, attrs):
        lines = attrs.pop("lines", None)  # a reverse relation: the base class must not assign it to the model
        attrs = super().validate(attrs)
        if lines is not None:
            attrs["lines"] = lines
        elif self.instance is None:
            raise serializers.ValidationError({"lines": [_("A purchase order needs at least one line.")]})
        return attrs


# --- inputs of the service endpoints ----------------------------------------------------------------------------


class PartUsageInput(serializers.Serializer):
    work_order = scoped(WorkOrder)
    location = scoped(StockLocation)
    quantity = QuantityField()
    client_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Offline clients: a replay with the same id applies once.",
    )


class PartReturnInput(serializers.Serializer):
    work_order = scoped(WorkOrder)
    location = scoped(StockLocation)
    quantity = QuantityField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class StockReceiptInput(serializers.Serializer):
    part = scoped(Part)
    location = scoped(StockLocation)
    quantity = QuantityField()
    unit_cost = MoneyField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class StockAdjustmentInput(serializers.Serializer):
    part = scoped(Part)
    location = scoped(StockLocation)
    counted = QuantityField(required=False, allow_null=True, help_text="What is really there after a count.")
    change = QuantityField(required=False, allow_null=True, help_text="Or a signed change.")
    reason = serializers.CharField(allow_blank=True, max_length=300)

    def validate_counted(self, value):
        # The service reads `counted` with Decimal() before its own checks: make sure it is a number.
        if value is None:
            return value
        try:
            number = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            raise serializers.ValidationError(_("“%(raw)s” is not a quantity.") % {"raw": value}) from None
        if not number.is_finite():
            raise serializers.ValidationError(_("“%(raw)s” is not a quantity.") % {"raw": value})
        return value


class StockTransferInput(serializers.Serializer):
    part = scoped(Part)
    source = scoped(StockLocation)
    destination = scoped(StockLocation)
    quantity = QuantityField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class StockWriteOffInput(serializers.Serializer):
    part = scoped(Part)
    location = scoped(StockLocation)
    quantity = QuantityField()
    reason = serializers.CharField(allow_blank=True, max_length=300)
    work_order = scoped(WorkOrder, required=False, allow_null=True)


class PartReservationInput(serializers.Serializer):
    work_order = scoped(WorkOrder)
    part = scoped(Part)
    location = scoped(StockLocation)
    quantity = QuantityField()


class StockLevelLimitsInput(serializers.Serializer):
    min_quantity = QuantityField(required=False, allow_null=True, allow_blank=True)
    max_quantity = QuantityField(required=False, allow_null=True, allow_blank=True)


class SuggestedOrdersInput(serializers.Serializer):
    parts = scoped(Part, many=True, required=False, help_text="Only these parts (default: every suggestion).")


class PurchaseOrderCancelInput(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, max_length=500)


class PurchaseOrderReceiveInput(serializers.Serializer):
    location = scoped(StockLocation)
    lines = serializers.DictField(child=QuantityField(), help_text="{line id: quantity received}.")


# --- filters ----------------------------------------------------------------------------------------------------


def _tenant_rows(model):
    """The choices of an id filter: the organisation's rows only (another one's id is a 400, like a wrong one)."""

    def queryset(request):
        organization = getattr(request, "organization", None) if request is not None else None
        if not organization:
            return model.objects.none()
        if model is User:
            return User.objects.filter(memberships__organization=organization, memberships__is_active=True)
        return model.objects.filter(organization=organization)

    return queryset


@extend_schema_field(OpenApiTypes.INT)
class TenantIdFilter(filters.ModelChoiceFilter):
    """An id of the organisation's own rows."""


def _id_filter(model, field_name=None, **kwargs):
    return TenantIdFilter(queryset=_tenant_rows(model), field_name=field_name, **kwargs)


class PartFilter(filters.FilterSet):
    category = filters.CharFilter(field_name="category", lookup_expr="iexact")
    unit = filters.ChoiceFilter(choices=Unit.choices)
    is_active = filters.BooleanFilter()
    low_stock = filters.BooleanFilter(method="filter_low_stock", label="Available at or below the reorder point")
    vendor = _id_filter(Vendor, method="filter_vendor", label="Sold by this vendor (or preferred)")
    preferred_vendor = _id_filter(Vendor)
    compatible_asset_type = _id_filter(AssetType, method="filter_asset_type", label="Fits this asset type")

    class Meta:
        model = Part
        fields = ["category", "unit", "is_active", "low_stock", "vendor", "preferred_vendor", "compatible_asset_type"]

    def filter_low_stock(self, queryset, name, value):
        if value is None:
            return queryset
        low = Q(available__lte=F("reorder_point"))
        return queryset.filter(low) if value else queryset.exclude(low)

    def filter_vendor(self, queryset, name, value):
        if value is None:
            return queryset
        sold = VendorPart.objects.filter(part=OuterRef("pk"), vendor=value)
        return queryset.filter(Q(preferred_vendor=value) | Exists(sold))

    def filter_asset_type(self, queryset, name, value):
        if value is None:
            return queryset
        through = Part.compatible_asset_types.through
        return queryset.filter(Exists(through.objects.filter(part=OuterRef("pk"), assettype=value)))


class MovementFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=MovementKind.choices, distinct=False)  # no DISTINCT: a sort
    part = _id_filter(Part)
    location = _id_filter(StockLocation)
    work_order = _id_filter(WorkOrder)
    purchase_order = _id_filter(PurchaseOrder)
    created_after = MomentFilter(field_name="created_at", lookup_expr="gte", param="created_after")
    created_before = MomentFilter(field_name="created_at", lookup_expr="lt", param="created_before")

    class Meta:
        model = StockMovement
        fields = ["kind", "part", "location", "work_order", "purchase_order", "transfer_id"]


class LevelFilter(filters.FilterSet):
    part = _id_filter(Part)
    location = _id_filter(StockLocation)
    below_min = filters.BooleanFilter(method="filter_below_min", label="Available below the location's minimum")

    class Meta:
        model = StockLevel
        fields = ["part", "location", "below_min"]

    def filter_below_min(self, queryset, name, value):
        if value is None:
            return queryset
        below = Q(min_quantity__isnull=False, unreserved__lt=F("min_quantity"))
        return queryset.filter(below) if value else queryset.exclude(below)


class StockLocationFilter(filters.FilterSet):
    holder = _id_filter(User)

    class Meta:
        model = StockLocation
        fields = ["kind", "is_active", "holder"]


class ReservationFilter(filters.FilterSet):
    work_order = _id_filter(WorkOrder)
    part = _id_filter(Part)
    location = _id_filter(StockLocation)

    class Meta:
        model = Reservation
        fields = ["work_order", "part", "location", "status"]


class VendorPartFilter(filters.FilterSet):
    vendor = _id_filter(Vendor)
    part = _id_filter(Part)

    class Meta:
        model = VendorPart
        fields = ["vendor", "part"]


class PurchaseOrderFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=PurchaseOrder.Status.choices)
    vendor = _id_filter(Vendor)

    class Meta:
        model = PurchaseOrder
        fields = ["status", "vendor"]


# --- viewsets -----------------------------------------------------------------------------------------------------


def _post(request_serializer, response_serializer, **kwargs):
    return extend_schema(request=request_serializer, responses=response_serializer, **kwargs)


class PartViewSet(TenantModelViewSet):
    """Parts with their stock: `available` (on hand − reserved over every location) in the list, the stock
    per location and the vendors' offers in the detail. Writes need `adjust_stock`; `usage` and `return`
    need `use_parts` (technicians on their own work)."""

    queryset = Part.objects.select_related("preferred_vendor").prefetch_related("compatible_asset_types")
    serializer_class = PartDetailSerializer
    filterset_class = PartFilter
    search_fields = ["sku", "name", "manufacturer_part_number"]
    ordering_fields = ["sku", "name", "category", "available", "reorder_point", "updated_at"]
    write_action = Action.ADJUST_STOCK
    action_permissions = {"record_usage": Action.USE_PARTS, "return_parts": Action.USE_PARTS}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.method in permissions.SAFE_METHODS:
            queryset = with_stock(queryset)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(
                Prefetch("levels", queryset=StockLevel.objects.select_related("location").order_by("location__name")),
                Prefetch("vendor_parts", queryset=VendorPart.objects.select_related("vendor").order_by("vendor__name")),
            )
        return queryset

    def get_serializer_class(self):
        return PartSerializer if self.action == "list" else PartDetailSerializer

    def output(self, instance):
        return with_stock(Part.objects.filter(pk=instance.pk)).select_related("preferred_vendor").get()

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_part(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_part(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_part(instance, actor=self.request.user)

    def _part(self):
        return self.get_object()  # another organisation's part: 404, whatever the body says

    @extend_schema(responses=LowStockSerializer(many=True))
    @action(detail=False, url_path="low-stock")
    def low_stock(self, request):
        """Active parts at or below their reorder point, with what is available, reserved and on order."""
        parts = (
            with_stock(Part.objects.filter(organization=self.organization, is_active=True))
            .select_related("preferred_vendor")
            .filter(available__lte=F("reorder_point"))
            .order_by("sku")
        )
        return self.many(LowStockSerializer, parts, paginate=True)

    @extend_schema(responses=StockMovementSerializer(many=True))
    @action(detail=True, methods=["get"])
    def usage(self, request, pk=None):
        """Issues and returns of the part, per work order (newest use first), each with its movements."""
        part = self._part()
        ledger = StockMovement.objects.filter(
            part=part, work_order__isnull=False, kind__in=(MovementKind.ISSUE, MovementKind.RETURN)
        )
        per_order = (
            ledger.order_by()
            .values("work_order", "work_order__number", "work_order__title", "work_order__status")
            .annotate(
                issued=Coalesce(
                    Sum(Case(When(kind=MovementKind.ISSUE, then=-F("quantity")))),
                    Value(ZERO),
                    output_field=DecimalField(**QUANTITY_OUTPUT),
                ),
                returned=Coalesce(
                    Sum(Case(When(kind=MovementKind.RETURN, then=F("quantity")))),
                    Value(ZERO),
                    output_field=DecimalField(**QUANTITY_OUTPUT),
                ),
                last_at=Max("created_at"),
            )
            .order_by("-last_at", "-work_order")
        )
        page = self.paginate_queryset(per_order)
        movements = {}
        for movement in _with_related(ledger.filter(work_order__in=[row["work_order"] for row in page])):
            movements.setdefault(movement.work_order_id, []).append(movement)
        context = self.get_serializer_context()
        rows = []
        for row in page:
            taken = movements.get(row["work_order"], [])
            cost = sum((-m.quantity * m.unit_cost for m in taken), ZERO).quantize(Decimal("0.01"))
            rows.append(
                OrderedDict(
                    work_order=row["work_order"],
                    work_order_number=row["work_order__number"],
                    work_order_title=row["work_order__title"],
                    work_order_status=row["work_order__status"],
                    issued=_decimal(row["issued"]),
                    returned=_decimal(row["returned"]),
                    net=_decimal(row["issued"] - row["returned"]),
                    cost=str(cost),
                    movements=StockMovementSerializer(taken, many=True, context=context).data,
                )
            )
        return self.get_paginated_response(rows)

    @usage.mapping.post
    @_post(PartUsageInput, {201: StockMovementSerializer, 200: StockMovementSerializer})
    def record_usage(self, request, pk=None):
        """Issue the part to a work order from a location (`issue_to_work_order`). More than is there is a 409
        saying how many are left there and where else there are some. A `client_id` you used before: 200 with
        the movement it recorded when the usage is the same, 409 naming that movement when it is not."""
        part = self._part()
        data = self.input(PartUsageInput)
        movement = services.issue_to_work_order(
            data["work_order"],
            part,
            data["location"],
            data["quantity"],
            actor=request.user,
            client_id=data.get("client_id", ""),
        )
        return self.one(StockMovementSerializer, movement, status=200 if client_ids.was_replayed(movement) else 201)

    @_post(PartReturnInput, StockMovementSerializer)
    @action(detail=True, methods=["post"], url_path="return")
    def return_parts(self, request, pk=None):
        """Put unused parts back from a work order (never more than it took)."""
        part = self._part()
        data = self.input(PartReturnInput)
        movement = services.return_from_work_order(
            data["work_order"],
            part,
            data["location"],
            data["quantity"],
            actor=request.user,
            reason=data.get("reason", ""),
        )
        return self.one(StockMovementSerializer, movement, status=201)

    @extend_schema(responses=StockMovementSerializer(many=True))
    @action(detail=True, pagination_class=CursorPagination)
    def history(self, request, pk=None):
        """The part's ledger, newest first."""
        part = self._part()
        ledger = _with_related(StockMovement.objects.filter(part=part)).order_by("-created_at", "-id")
        return self.many(StockMovementSerializer, ledger, paginate=True)


class StockLocationViewSet(TenantModelViewSet):
    queryset = StockLocation.objects.select_related("site", "holder")
    serializer_class = StockLocationSerializer
    filterset_class = StockLocationFilter
    search_fields = ["name"]
    ordering_fields = ["name", "kind", "updated_at"]
    write_action = Action.ADJUST_STOCK

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_stock_location(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_stock_location(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_stock_location(instance, actor=self.request.user)


class StockLevelViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """Stock per part and location; PATCH sets the location's minimum and maximum (`adjust_stock`)."""

    # `unreserved` (= the model's `available` property) for the below_min filter and ordering
    queryset = StockLevel.objects.select_related("part", "location").annotate(unreserved=F("on_hand") - F("reserved"))
    serializer_class = StockLevelSerializer
    filterset_class = LevelFilter
    ordering_fields = ["on_hand", "reserved", "unreserved", "updated_at"]
    write_action = Action.ADJUST_STOCK
    http_method_names = ["get", "patch", "head", "options"]

    @_post(StockLevelLimitsInput, StockLevelSerializer)
    def partial_update(self, request, pk=None):
        with transaction.atomic():
            level = self.get_object()
            data = self.input(StockLevelLimitsInput)
            level = services.set_stock_limits(level.part, level.location, actor=request.user, **data)
        level = StockLevel.objects.select_related("part", "location").get(pk=level.pk)
        self._written_instance = level
        return self.one(StockLevelSerializer, level)


class MovementViewSet(TenantReadOnlyViewSet):
    """The stock ledger (append-only), newest first."""

    queryset = _with_related(StockMovement.objects.all())
    serializer_class = StockMovementSerializer
    pagination_class = CursorPagination
    filterset_class = MovementFilter
    ordering_fields = ["created_at", "quantity"]
    write_action = Action.ADJUST_STOCK  # there is no write: 405 for those who could write, 403 for the others


class ServiceViewSet(InputMixin, TenantAPIMixin, viewsets.GenericViewSet):
    """POST-only endpoints that run one stock service."""

    input_class = None
    output_class = StockMovementSerializer
    queryset = StockMovement.objects.none()  # for the schema; nothing is listed here

    def get_serializer_class(self):
        return self.input_class

    def perform(self, data):
        raise NotImplementedError

    def create(self, request):
        data = self.input(self.input_class)
        result = self.perform(data)
        if result is None:
            return Response({"movement": None, "message": _("Nothing to change: the count matches the books.")})
        return self.one(self.output_class, result, status=201)


class ReceiptViewSet(ServiceViewSet):
    """Receive stock outside a purchase order: `{part, location, quantity, unit_cost}`."""

    input_class = StockReceiptInput
    write_action = Action.ADJUST_STOCK

    def perform(self, data):
        return services.receive_stock(
            data["part"],
            data["location"],
            data["quantity"],
            data["unit_cost"],
            actor=self.request.user,
            reason=data.get("reason", ""),
        )


class AdjustmentViewSet(ServiceViewSet):
    """Correct a level after a count (`counted`) or by a signed `change`, with the `reason`. When the count
    matches the books nothing is written (200, `movement: null`)."""

    input_class = StockAdjustmentInput
    write_action = Action.ADJUST_STOCK

    def perform(self, data):
        return services.adjust_stock(
            data["part"],
            data["location"],
            reason=data["reason"],
            actor=self.request.user,
            counted=data.get("counted"),
            change=data.get("change"),
        )


# {"transfer_id", "out", "in"}: the two halves of a transfer ("in" is a keyword, hence type()).
StockTransferSerializer = type(
    "StockTransferSerializer",
    (serializers.Serializer,),
    {"transfer_id": serializers.UUIDField(), "out": StockMovementSerializer(), "in": StockMovementSerializer()},
)


class TransferViewSet(ServiceViewSet):
    """Move stock between locations: `{part, source, destination, quantity}` (technicians: into their own van,
    from a warehouse or shelf)."""

    input_class = StockTransferInput
    write_action = Action.USE_PARTS

    def perform(self, data):
        out, into = services.transfer_stock(
            data["part"],
            data["source"],
            data["destination"],
            data["quantity"],
            actor=self.request.user,
            reason=data.get("reason", ""),
        )
        return {"transfer_id": out.transfer_id, "out": out, "in": into}

    @_post(StockTransferInput, StockTransferSerializer)
    def create(self, request):
        result = self.perform(self.input(StockTransferInput))
        context = self.get_serializer_context()
        halves = {name: StockMovementSerializer(result[name], context=context).data for name in ("out", "in")}
        return Response({"transfer_id": str(result["transfer_id"]), **halves}, status=201)


class WriteOffViewSet(ServiceViewSet):
    """Remove damaged, expired or lost stock: `{part, location, quantity, reason}`."""

    input_class = StockWriteOffInput
    write_action = Action.ADJUST_STOCK

    def perform(self, data):
        return services.write_off(
            data["part"],
            data["location"],
            data["quantity"],
            reason=data["reason"],
            actor=self.request.user,
            work_order=data.get("work_order"),
        )


class ReservationViewSet(TenantReadOnlyViewSet):
    """Parts held for open work orders; POST reserves (`create_work`)."""

    queryset = Reservation.objects.select_related("work_order", "part", "location")
    serializer_class = ReservationSerializer
    filterset_class = ReservationFilter
    ordering_fields = ["created_at", "updated_at"]
    write_action = Action.CREATE_WORK

    @_post(PartReservationInput, ReservationSerializer)
    def create(self, request):
        data = self.input(PartReservationInput)
        reservation = services.reserve(
            data["work_order"], data["part"], data["location"], data["quantity"], actor=request.user
        )
        return self.one(ReservationSerializer, reservation, status=201)


class ReorderSuggestionSerializer(serializers.Serializer):
    part = serializers.IntegerField(source="part.pk")
    sku = serializers.CharField(source="part.sku")
    name = serializers.CharField(source="part.name")
    unit = serializers.CharField(source="part.unit")
    on_hand = serializers.DecimalField(**QUANTITY_OUTPUT)
    reserved = serializers.DecimalField(**QUANTITY_OUTPUT)
    available = serializers.DecimalField(**QUANTITY_OUTPUT)
    on_order = serializers.DecimalField(**QUANTITY_OUTPUT)
    reorder_point = serializers.DecimalField(**QUANTITY_OUTPUT)
    lead_time_demand = serializers.DecimalField(**QUANTITY_OUTPUT)
    shortage = serializers.DecimalField(**QUANTITY_OUTPUT)
    quantity = serializers.DecimalField(**QUANTITY_OUTPUT)
    vendor = serializers.IntegerField(source="vendor.pk", default=None)
    vendor_name = serializers.CharField(source="vendor.name", default=None)


class PartSummarySerializer(serializers.Serializer):
    part = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()


class SuggestedOrdersSerializer(serializers.Serializer):
    purchase_orders = PurchaseOrderSerializer(many=True, help_text="Drafted, one per preferred vendor.")
    without_vendor = PartSummarySerializer(many=True, help_text="Parts to reorder that have no preferred vendor.")


class ReorderSuggestionViewSet(InputMixin, TenantAPIMixin, viewsets.GenericViewSet):
    """What to buy: parts whose available stock plus what is on order is at or below the reorder point.
    POST `purchase-orders` drafts one purchase order per preferred vendor (`manage_purchasing`)."""

    serializer_class = ReorderSuggestionSerializer
    queryset = Part.objects.none()  # for the schema: the suggestions are computed
    pagination_class = None
    write_action = Action.MANAGE_PURCHASING
    action_permissions = {"purchase_orders": Action.MANAGE_PURCHASING}

    def list(self, request):
        return Response(ReorderSuggestionSerializer(services.reorder_suggestions(self.organization), many=True).data)

    @_post(SuggestedOrdersInput, {200: SuggestedOrdersSerializer, 201: SuggestedOrdersSerializer})
    @action(detail=False, methods=["post"], url_path="purchase-orders")
    def purchase_orders(self, request):
        data = self.input(SuggestedOrdersInput)
        part_ids = {part.pk for part in data["parts"]} if "parts" in data else None
        orders, without_vendor = services.purchase_orders_from_suggestions(
            self.organization, actor=request.user, part_ids=part_ids
        )
        context = self.get_serializer_context()
        return Response(
            {
                "purchase_orders": PurchaseOrderSerializer(orders, many=True, context=context).data,
                "without_vendor": [{"part": part.pk, "sku": part.sku, "name": part.name} for part in without_vendor],
            },
            status=201 if orders else 200,
        )


class TransferSuggestionSerializer(serializers.Serializer):
    part = serializers.IntegerField(source="part.pk")
    sku = serializers.CharField(source="part.sku")
    source = serializers.IntegerField(source="source.pk")
    source_name = serializers.CharField(source="source.name")
    destination = serializers.IntegerField(source="destination.pk")
    destination_name = serializers.CharField(source="destination.name")
    quantity = serializers.DecimalField(**QUANTITY_OUTPUT)


class TransferSuggestionViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """Locations below their minimum, and where to refill them from (warehouses first)."""

    serializer_class = TransferSuggestionSerializer
    queryset = StockLevel.objects.none()  # for the schema: the suggestions are computed
    pagination_class = None
    write_action = Action.ADJUST_STOCK

    def list(self, request):
        suggestions = services.transfer_suggestions(self.organization)
        return Response(TransferSuggestionSerializer(suggestions, many=True).data)


class StockDifferenceSerializer(serializers.Serializer):
    part = serializers.CharField()
    location = serializers.CharField()
    on_hand = serializers.DecimalField(**QUANTITY_OUTPUT)
    ledger = serializers.DecimalField(**QUANTITY_OUTPUT)
    difference = serializers.DecimalField(**QUANTITY_OUTPUT)


@extend_schema_serializer(many=False)  # the list action answers one object, not a list
class StockReconciliationSerializer(serializers.Serializer):
    balanced = serializers.BooleanField()
    differences = StockDifferenceSerializer(many=True)


class ReconciliationViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """Every stock level against the sum of its ledger: `differences` is empty when the books balance."""

    serializer_class = StockDifferenceSerializer
    queryset = StockLevel.objects.none()  # for the schema: the differences are computed
    pagination_class = None
    write_action = Action.ADJUST_STOCK

    @extend_schema(responses=StockReconciliationSerializer)
    def list(self, request):
        differences = services.reconcile(self.organization)
        rows = StockDifferenceSerializer(differences, many=True).data
        return Response({"balanced": not differences, "differences": rows})


class VendorViewSet(TenantModelViewSet):
    queryset = Vendor.objects.prefetch_related(
        Prefetch("parts", queryset=VendorPart.objects.select_related("part").order_by("part__sku"))
    )
    serializer_class = VendorSerializer
    filterset_fields = ["is_active"]
    search_fields = ["name", "contact_name", "email"]
    ordering_fields = ["name", "updated_at"]
    write_action = Action.MANAGE_PURCHASING

    def output(self, instance):
        return self.queryset.model.objects.prefetch_related(*self.queryset._prefetch_related_lookups).get(
            pk=instance.pk
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_vendor(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_vendor(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_vendor(instance, actor=self.request.user)


class VendorPartViewSet(TenantModelViewSet):
    queryset = VendorPart.objects.select_related("vendor", "part")
    serializer_class = VendorPartSerializer
    filterset_class = VendorPartFilter
    search_fields = ["vendor_sku", "part__sku", "part__name"]
    ordering_fields = ["price", "updated_at"]
    write_action = Action.MANAGE_PURCHASING

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_vendor_part(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_vendor_part(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_vendor_part(instance, actor=self.request.user)


PURCHASE_LINES = Prefetch("lines", queryset=PurchaseOrderLine.objects.select_related("part").order_by("id"))


class PurchaseOrderViewSet(TenantModelViewSet):
    """Purchase orders with their lines: created as drafts (`lines` required), edited while draft (once
    ordered, only `expected_at` and `notes`); `place`, `cancel` {reason} and `receive` {location, lines:
    {line id: quantity}} move them on (receiving needs `adjust_stock`, the rest `manage_purchasing`)."""

    queryset = PurchaseOrder.objects.select_related("vendor", "created_by").prefetch_related(PURCHASE_LINES)
    serializer_class = PurchaseOrderSerializer
    filterset_class = PurchaseOrderFilter
    search_fields = ["number", "vendor__name", "notes"]
    ordering_fields = ["created_at", "expected_at", "number", "updated_at"]
    write_action = Action.MANAGE_PURCHASING
    action_permissions = {"receive": Action.ADJUST_STOCK}

    def output(self, instance):
        return (
            PurchaseOrder.objects.select_related("vendor", "created_by")
            .prefetch_related(PURCHASE_LINES)
            .get(pk=instance.pk)
        )

    @staticmethod
    def _lines(lines):
        return [
            {key: value for key, value in line.items() if not (key == "unit_price" and value is None)} for line in lines
        ]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        order = services.create_purchase_order(
            self.organization,
            actor=self.request.user,
            vendor=data["vendor"],
            lines=self._lines(data["lines"]),
            expected_at=data.get("expected_at"),
            notes=data.get("notes", ""),
        )
        self.written(serializer, order)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        lines = data.pop("lines", None)
        stored = PurchaseOrder.objects.get(pk=serializer.instance.pk)
        # A PUT repeats the vendor: unchanged, it is no change (an ordered purchase order keeps its vendor).
        if "vendor" in data and data["vendor"] == stored.vendor:
            data.pop("vendor")
        order = services.update_purchase_order(
            stored, actor=self.request.user, lines=None if lines is None else self._lines(lines), **data
        )
        self.written(serializer, order)

    def perform_destroy(self, instance):
        services.delete_purchase_order(instance, actor=self.request.user)

    def _respond(self, order):
        order = self.output(order)
        self._written_instance = order
        return self.one(PurchaseOrderSerializer, order)

    @_post(None, PurchaseOrderSerializer)
    @action(detail=True, methods=["post"])
    def place(self, request, pk=None):
        return self._respond(services.place_purchase_order(self.get_object(), actor=request.user))

    @_post(PurchaseOrderCancelInput, PurchaseOrderSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self.get_object()
        data = self.input(PurchaseOrderCancelInput)
        return self._respond(services.cancel_purchase_order(order, reason=data["reason"], actor=request.user))

    @_post(PurchaseOrderReceiveInput, PurchaseOrderSerializer)
    @action(detail=True, methods=["post"])
    def receive(self, request, pk=None):
        order = self.get_object()
        data = self.input(PurchaseOrderReceiveInput)
        return self._respond(
            services.receive_purchase_order(
                order, location=data["location"], quantities=data["lines"], actor=request.user
            )
        )


router.register("inventory/parts", PartViewSet, basename="inventory-part")
router.register("inventory/locations", StockLocationViewSet, basename="inventory-location")
router.register("inventory/levels", StockLevelViewSet, basename="inventory-level")
router.register("inventory/movements", MovementViewSet, basename="inventory-movement")
router.register("inventory/receipts", ReceiptViewSet, basename="inventory-receipt")
router.register("inventory/adjustments", AdjustmentViewSet, basename="inventory-adjustment")
router.register("inventory/transfers", TransferViewSet, basename="inventory-transfer")
router.register("inventory/write-offs", WriteOffViewSet, basename="inventory-write-off")
router.register("inventory/reservations", ReservationViewSet, basename="inventory-reservation")
router.register("inventory/reorder-suggestions", ReorderSuggestionViewSet, basename="inventory-reorder-suggestion")
router.register("inventory/transfer-suggestions", TransferSuggestionViewSet, basename="inventory-transfer-suggestion")
router.register("inventory/reconciliation", ReconciliationViewSet, basename="inventory-reconciliation")
router.register("inventory/vendors", VendorViewSet, basename="inventory-vendor")
router.register("inventory/vendor-parts", VendorPartViewSet, basename="inventory-vendor-part")
router.register("inventory/purchase-orders", PurchaseOrderViewSet, basename="inventory-purchase-order")
