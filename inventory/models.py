"""Spare parts: what they are, where they are, every movement of them, and how they are bought."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel

QUANTITY = {"max_digits": 14, "decimal_places": 3}
MONEY = {"max_digits": 14, "decimal_places": 4}


class Unit(models.TextChoices):
    EACH = "each", _("Each")
    PAIR = "pair", _("Pair")
    SET = "set", _("Set")
    BOX = "box", _("Box")
    LITRE = "litre", _("Litre")
    METRE = "metre", _("Metre")
    KILOGRAM = "kilogram", _("Kilogram")
    SQUARE_METRE = "square_metre", _("Square metre")


# Countable units take whole numbers only; the others (liquids, lengths, weights) allow decimals.
COUNTABLE_UNITS = frozenset({Unit.EACH, Unit.PAIR, Unit.SET, Unit.BOX})


class Vendor(TenantModel):
    """A supplier the organisation buys parts from."""

    name = models.CharField(max_length=200)
    contact_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    address = models.TextField(blank=True)
    website = models.URLField(blank=True)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="inventory_vendor_unique_name",
                violation_error_message="A vendor with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Part(TenantModel):
    """A spare part the organisation stocks, identified by its SKU. Its unit cost is the moving average of
    what was received; its reorder point says when to buy more."""

    sku = models.CharField("SKU", max_length=60)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=80, blank=True)
    unit = models.CharField(max_length=20, choices=Unit.choices, default=Unit.EACH)
    average_cost = models.DecimalField(
        **MONEY, default=Decimal("0"), editable=False, help_text=_("Moving-average unit cost of receipts.")
    )
    manufacturer = models.CharField(max_length=120, blank=True)
    manufacturer_part_number = models.CharField(max_length=120, blank=True)
    preferred_vendor = models.ForeignKey(Vendor, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    compatible_asset_types = models.ManyToManyField("assets.AssetType", blank=True, related_name="parts")
    reorder_point = models.DecimalField(**QUANTITY, default=Decimal("0"), validators=[MinValueValidator(0)])
    reorder_quantity = models.DecimalField(**QUANTITY, default=Decimal("0"), validators=[MinValueValidator(0)])
    lead_time_days = models.PositiveIntegerField(default=7)
    is_active = models.BooleanField(default=True)
    # Armed until available stock falls to the reorder point; re-armed when it rises above it again, so
    # storekeepers are told once per crossing, not on every later issue.
    low_stock_armed = models.BooleanField(default=True, editable=False)

    history = history(excluded_fields=["low_stock_armed"])

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "sku"],
                name="inventory_part_unique_sku",
                violation_error_message="A part with this SKU already exists.",
            ),
            models.CheckConstraint(condition=Q(reorder_point__gte=0), name="inventory_part_reorder_point_gte_0"),
            models.CheckConstraint(condition=Q(reorder_quantity__gte=0), name="inventory_part_reorder_qty_gte_0"),
        ]
        indexes = [
            # sync: WHERE organization_id = ? AND updated_at > ?
            models.Index(fields=["organization", "updated_at"], name="inv_part_org_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def is_countable(self) -> bool:
        return self.unit in COUNTABLE_UNITS

    def clean(self):
        errors = {}
        if self.is_countable:
            for field in ("reorder_point", "reorder_quantity"):
                value = getattr(self, field)
                if value is not None and value != value.to_integral_value():
                    errors[field] = f"{self.get_unit_display()} is counted in whole numbers."
        if self.preferred_vendor_id and self.preferred_vendor.organization_id != self.organization_id:
            errors["preferred_vendor"] = "The vendor belongs to another organisation."
        if errors:
            raise ValidationError(errors)


class VendorPart(TenantModel):
    """What a vendor sells a part as: their SKU, price and lead time."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="parts")
    part = models.ForeignKey(Part, on_delete=models.CASCADE, related_name="vendor_parts")
    vendor_sku = models.CharField(max_length=60, blank=True)
    price = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])
    lead_time_days = models.PositiveIntegerField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["vendor", "part"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "part"], name="inventory_vendorpart_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor}: {self.part}"


class StockLocation(TenantModel):
    """Where stock is kept: a warehouse, a shelf, a technician's van."""

    class Kind(models.TextChoices):
        WAREHOUSE = "warehouse", _("Warehouse")
        SHELF = "shelf", _("Shelf")
        VAN = "van", _("Van")

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WAREHOUSE)
    site = models.ForeignKey("assets.Location", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The technician whose van this is."),
    )
    is_active = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="inventory_stocklocation_unique_name",
                violation_error_message="A stock location with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class StockLevel(TenantModel):
    """How many of a part are at a location (on hand) and how many of those are promised to open work
    (reserved). Changed only by conditional UPDATEs in inventory.services, always with a ledger row; the
    database refuses a negative level. Reserved may exceed on hand: that is a shortage."""

    part = models.ForeignKey(Part, on_delete=models.CASCADE, related_name="levels")
    location = models.ForeignKey(StockLocation, on_delete=models.CASCADE, related_name="levels")
    on_hand = models.DecimalField(**QUANTITY, default=Decimal("0"), editable=False)
    reserved = models.DecimalField(**QUANTITY, default=Decimal("0"), editable=False)
    min_quantity = models.DecimalField(**QUANTITY, null=True, blank=True, validators=[MinValueValidator(0)])
    max_quantity = models.DecimalField(**QUANTITY, null=True, blank=True, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["part", "location"]
        constraints = [
            models.UniqueConstraint(fields=["part", "location"], name="inventory_stocklevel_unique_part_location"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="inventory_stocklevel_on_hand_gte_0"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="inventory_stocklevel_reserved_gte_0"),
            models.CheckConstraint(
                condition=Q(min_quantity__isnull=True)
                | Q(max_quantity__isnull=True)
                | Q(max_quantity__gte=F("min_quantity")),
                name="inventory_stocklevel_max_gte_min",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.part.sku} at {self.location}: {self.on_hand}"

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    ISSUE = "issue", _("Issue to a work order")
    RETURN = "return", _("Return from a work order")
    ADJUSTMENT = "adjustment", _("Adjustment")
    TRANSFER_OUT = "transfer_out", _("Transfer out")
    TRANSFER_IN = "transfer_in", _("Transfer in")
    WRITE_OFF = "write_off", _("Write-off")


class StockMovement(TenantModel):
    """One line of the append-only stock ledger: a signed change of on-hand stock of a part at a location,
    with the unit cost at that moment, who did it and why. Stock levels always equal the ledger's sum.
    The ledger is its own audit: rows are never edited or deleted."""

    part = models.ForeignKey(  # indexed by inv_move_part_created_idx
        Part, on_delete=models.PROTECT, related_name="movements", db_index=False
    )
    location = models.ForeignKey(  # indexed by inv_move_location_created_idx
        StockLocation, on_delete=models.PROTECT, related_name="movements", db_index=False
    )
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    quantity = models.DecimalField(**QUANTITY, help_text=_("Signed: positive adds stock, negative removes it."))
    unit_cost = models.DecimalField(**MONEY)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    work_order = models.ForeignKey(
        "workorders.WorkOrder", on_delete=models.PROTECT, null=True, blank=True, related_name="stock_movements"
    )
    purchase_order = models.ForeignKey(
        "inventory.PurchaseOrder", on_delete=models.PROTECT, null=True, blank=True, related_name="movements"
    )
    transfer_id = models.UUIDField(null=True, blank=True, help_text=_("Pairs the two halves of a transfer."))
    reason = models.CharField(max_length=300, blank=True)
    client_id = models.CharField(
        max_length=64, blank=True, help_text=_("Offline clients: unique per author and kind, a replay applies once.")
    )
    occurred_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("A part used offline: when it happened on the phone (created_at is when it reached the server)."),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(quantity=0), name="inventory_movement_quantity_not_zero"),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="inventory_movement_cost_gte_0"),
            models.UniqueConstraint(
                fields=["organization", "user", "kind", "client_id"],
                condition=~Q(client_id=""),
                name="inventory_movement_unique_client_id_per_author",
            ),
        ]
        # The ledger list pages newest first (by cursor, maintenance_site.api.pagination); each index is that
        # order after the filter it serves, so a page is an index range however long the ledger grows.
        indexes = [
            # the ledger, ?created_after/?created_before: WHERE organization_id = ? [AND created_at >= ?]
            #   ORDER BY created_at DESC, id DESC LIMIT 51
            models.Index(fields=["organization", "created_at", "id"], name="inv_move_org_created_idx"),
            # a part's history, ?part=ID: WHERE part_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["part", "created_at", "id"], name="inv_move_part_created_idx"),
            # ?location=ID: WHERE location_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["location", "created_at", "id"], name="inv_move_location_created_idx"),
            # ?kind=X: WHERE organization_id = ? AND kind IN (...) ORDER BY created_at DESC, id DESC
            models.Index(fields=["organization", "kind", "created_at", "id"], name="inv_move_org_kind_created_idx"),
            # ?ordering=quantity: WHERE organization_id = ? ORDER BY quantity, id
            models.Index(fields=["organization", "quantity", "id"], name="inv_move_org_quantity_idx"),
            # parts cost of a work order, ?work_order=ID: WHERE work_order_id = ?
            models.Index(fields=["work_order"], name="inv_move_work_order_idx"),
            # ?transfer_id=…: the two halves of a transfer
            models.Index(fields=["transfer_id"], condition=Q(transfer_id__isnull=False), name="inv_move_transfer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity} × {self.part_id} at {self.location_id}"

    @property
    def value(self) -> Decimal:
        return (self.quantity * self.unit_cost).quantize(Decimal("0.01"))


class Reservation(TenantModel):
    """Parts planned for an open work order, held at a location until the order uses them (consumed),
    completes or is cancelled (released)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CONSUMED = "consumed", _("Consumed")
        RELEASED = "released", _("Released")

    work_order = models.ForeignKey("workorders.WorkOrder", on_delete=models.CASCADE, related_name="reservations")
    part = models.ForeignKey(Part, on_delete=models.CASCADE, related_name="reservations")
    location = models.ForeignKey(StockLocation, on_delete=models.CASCADE, related_name="reservations")
    quantity = models.DecimalField(**QUANTITY)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, editable=False)

    history = history()

    class Meta:
        ordering = ["work_order", "part"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="inventory_reservation_quantity_gt_0"),
            models.UniqueConstraint(
                fields=["work_order", "part", "location"],
                condition=Q(status="active"),
                name="inventory_reservation_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.part} for {self.work_order}"


class PurchaseOrder(TenantModel):
    """An order to a vendor: draft → ordered → partly received → received (or cancelled). Receiving
    against it writes receipts in the ledger and updates the parts' moving-average cost."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ORDERED = "ordered", _("Ordered")
        PARTLY_RECEIVED = "partly_received", _("Partly received")
        RECEIVED = "received", _("Received")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(max_length=20, editable=False)
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="purchase_orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, editable=False)
    ordered_at = models.DateTimeField(null=True, blank=True, editable=False)
    expected_at = models.DateField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True, editable=False)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    history = history()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="inventory_purchaseorder_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.vendor})"


class PurchaseOrderLine(TenantModel):
    """A part and quantity on a purchase order, and how much of it has arrived."""

    purchase_order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="lines")
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="purchase_lines")
    quantity = models.DecimalField(**QUANTITY)
    unit_price = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])
    received_quantity = models.DecimalField(**QUANTITY, default=Decimal("0"), editable=False)

    history = history()

    class Meta:
        ordering = ["purchase_order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="inventory_poline_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(received_quantity__gte=0) & Q(received_quantity__lte=F("quantity")),
                name="inventory_poline_received_within_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.part}"

    @property
    def outstanding(self) -> Decimal:
        return self.quantity - self.received_quantity


def new_transfer_id():
    return uuid.uuid4()
