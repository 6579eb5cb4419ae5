"""Where things are and what they are: locations in a tree, asset types, assets."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet, validate_time_zone


def new_public_token() -> str:
    return secrets.token_urlsafe(16)


class Location(TenantModel):
    """A place in the organisation's tree: a site (which may have its own time zone), a building in it,
    an area in that."""

    class Kind(models.TextChoices):
        SITE = "site", _("Site")
        BUILDING = "building", _("Building")
        AREA = "area", _("Area")

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SITE)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("Sites only; empty: the organisation's."),
    )
    address = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "parent", "name"],
                name="assets_location_unique_name_in_parent",
                violation_error_message="A location with this name already exists here.",
            ),
        ]
        indexes = [
            # API sync: WHERE organization_id = ? AND updated_at > ?
            models.Index(fields=["organization", "updated_at"], name="assets_loc_org_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.parent_id:
            if self.parent.organization_id != self.organization_id:
                errors["parent"] = "The parent location belongs to another organisation."
            ancestor, seen = self.parent, set()
            while ancestor is not None and ancestor.pk not in seen:
                if self.pk and ancestor.pk == self.pk:
                    errors["parent"] = "A location cannot be inside itself."
                    break
                seen.add(ancestor.pk)
                ancestor = ancestor.parent
        if self.time_zone and self.kind != self.Kind.SITE:
            errors["time_zone"] = "Only a site has its own time zone; buildings and areas follow their site."
        if errors:
            raise ValidationError(errors)

    def ancestors(self) -> list["Location"]:
        chain, node = [], self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain

    @property
    def effective_time_zone(self) -> str:
        for node in [self, *self.ancestors()]:
            if node.time_zone:
                return node.time_zone
        return self.organization.time_zone


class AssetType(TenantModel):
    """A kind of equipment (pump, chiller, forklift): preventive schedules and parts refer to it."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="assets_assettype_unique_name",
                violation_error_message="An asset type with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AssetQuerySet(TenantQuerySet):
    def in_service(self):
        return self.exclude(status=Asset.Status.RETIRED)


class Asset(TenantModel):
    """A piece of equipment the organisation maintains, identified by a code unique in the organisation."""

    class Criticality(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        CRITICAL = "critical", _("Critical")

    class Status(models.TextChoices):
        OPERATIONAL = "operational", _("Operational")
        DEGRADED = "degraded", _("Degraded")
        DOWN = "down", _("Down")
        IN_MAINTENANCE = "in_maintenance", _("In maintenance")
        RETIRED = "retired", _("Retired")

    code = models.CharField(max_length=60)
    name = models.CharField(max_length=200)
    asset_type = models.ForeignKey(  # indexed by assets_asset_type_code_idx
        AssetType, on_delete=models.PROTECT, null=True, blank=True, related_name="assets", db_index=False
    )
    location = models.ForeignKey(  # indexed by assets_asset_location_code_idx
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="assets", db_index=False
    )
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="components")
    criticality = models.CharField(max_length=20, choices=Criticality.choices, default=Criticality.MEDIUM)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPERATIONAL)
    manufacturer = models.CharField(max_length=120, blank=True)
    model = models.CharField(max_length=120, blank=True)
    serial_number = models.CharField(max_length=120, blank=True)
    install_date = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    # Printed on the QR label instead of the id, so labels reveal nothing and can be revoked.
    public_token = models.CharField(max_length=32, unique=True, default=new_public_token, editable=False)

    objects = AssetQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                name="assets_asset_unique_code",
                violation_error_message="An asset with this code already exists.",
            ),
        ]
        # The list pages by cursor in its order (maintenance_site.api.pagination); each index is an order after the
        # filter it serves. ?ordering=code and the default: the unique (organization, code) index.
        indexes = [
            # sync and ?ordering=updated_at: WHERE organization_id = ? AND (updated_at, id) > (?, ?)
            #   ORDER BY updated_at, id
            models.Index(fields=["organization", "updated_at", "id"], name="assets_asset_org_updated_idx"),
            # ?status=X: WHERE organization_id = ? AND status = ? ORDER BY code, id
            models.Index(fields=["organization", "status", "code"], name="assets_asset_org_status_idx"),
            # ?criticality=X: WHERE organization_id = ? AND criticality = ? ORDER BY code, id
            models.Index(fields=["organization", "criticality", "code"], name="assets_asset_org_crit_idx"),
            # ?ordering=name: ORDER BY name, id
            models.Index(fields=["organization", "name", "id"], name="assets_asset_org_name_idx"),
            # ?ordering=status / ?ordering=criticality: ORDER BY status, id / criticality, id
            models.Index(fields=["organization", "status", "id"], name="assets_asset_org_status_id_idx"),
            models.Index(fields=["organization", "criticality", "id"], name="assets_asset_org_crit_id_idx"),
            # ?location=ID, ?asset_type=ID: WHERE location_id = ? ORDER BY code, id
            models.Index(fields=["location", "code"], name="assets_asset_location_code_idx"),
            models.Index(fields=["asset_type", "code"], name="assets_asset_type_code_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def clean(self):
        errors = {}
        for field in ("asset_type", "location", "parent"):
            related = getattr(self, field)
            if related is not None and related.organization_id != self.organization_id:
                errors[field] = f"The {field.replace('_', ' ')} belongs to another organisation."
        if self.parent_id and self.pk and self.parent_id == self.pk:
            errors["parent"] = "An asset cannot be its own parent."
        if errors:
            raise ValidationError(errors)


class Downtime(TenantModel):
    """A period during which an asset was down: opened when it is marked down, closed when it is back up.
    Availability, MTBF and MTTR are computed from these. The work orders that caused or ended it, if any, are
    recorded by the work orders (`workorders.DowntimeLink`)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="downtimes")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField()

    history = history()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset"], condition=models.Q(ended_at__isnull=True), name="assets_downtime_one_open_per_asset"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="assets_downtime_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset} down since {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self):
        return (self.ended_at or timezone.now()) - self.started_at


# --- Meters (appended: preventive maintenance) -----------------------------------------------------------

from django.conf import settings  # noqa: E402  (this section is appended to the module)

METER_VALUE = {"max_digits": 18, "decimal_places": 4}


class Meter(TenantModel):
    """Something measured on an asset: a counter that only grows (run hours, kilometres, cycles) or a gauge
    that goes up and down (temperature, pressure, vibration). Meter-based preventive schedules watch it.
    `last_value` / `last_read_at` are the newest reading, kept by `assets.meters.record_readings`."""

    class Kind(models.TextChoices):
        CUMULATIVE = "cumulative", _("Counter (only grows: run hours, km, cycles)")
        GAUGE = "gauge", _("Gauge (goes up and down: temperature, pressure)")

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="meters")
    name = models.CharField(max_length=80, help_text=_("Schedules find the meter by this name, e.g. “Run hours”."))
    unit = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CUMULATIVE)
    last_value = models.DecimalField(**METER_VALUE, null=True, blank=True, editable=False)
    last_read_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = history(excluded_fields=["last_value", "last_read_at", "updated_at"])

    class Meta:
        ordering = ["asset", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "name"],
                name="assets_meter_unique_name",
                violation_error_message="This asset already has a meter with this name.",
            ),
        ]
        indexes = [
            # generation: WHERE asset_id IN (...) AND name IN (...) is served by the unique index;
            # sync: WHERE organization_id = ? AND updated_at > ?
            models.Index(fields=["organization", "updated_at"], name="assets_meter_org_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.asset.code} {self.name}" if self.asset_id else self.name

    def clean(self):
        if self.asset_id and self.asset.organization_id != self.organization_id:
            raise ValidationError({"asset": gettext("The asset belongs to another organisation.")})


class MeterReading(TenantModel):
    """One value of a meter at a moment. Append-only (its own audit): a wrong reading is corrected by a
    later one, never edited. One reading per meter and moment, so a re-sent batch changes nothing."""

    class Source(models.TextChoices):
        API = "api", _("API / telemetry")
        MANUAL = "manual", _("Entered by hand")
        IMPORT = "import", _("Import")

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="readings")
    value = models.DecimalField(**METER_VALUE)
    read_at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.API)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["meter", "-read_at"]
        constraints = [
            # Also the index of every reading query: WHERE meter_id = ? AND read_at > ? (ORDER BY read_at)
            models.UniqueConstraint(fields=["meter", "read_at"], name="assets_meterreading_unique_time"),
        ]
        indexes = [
            # meter thresholds: readings recorded since the generator's last pass
            # WHERE meter_id = ? AND created_at >= ? AND read_at >= ? AND value > ?
            models.Index(fields=["meter", "created_at"], name="assets_reading_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.value} at {self.read_at:%Y-%m-%d %H:%M}"


# --- Telemetry (its own package; imported here so that Django finds its models) -------------------------

from assets.telemetry.models import (  # noqa: E402, F401
    Anomaly,
    IngestBatch,
    MetricDefinition,
    Series,
    TelemetryPoint,
    TelemetryRollup,
    TelemetrySettings,
)
