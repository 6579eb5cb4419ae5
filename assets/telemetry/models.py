"""Telemetry's data: what a metric means (definitions), one series per (asset, metric) with its detectors' state,
the raw points, their hourly and daily rollups, anomaly episodes, the ingest log and per-organisation settings.

Raw points and rollups are data, not history: they carry no simple-history rows and no organisation column (they
belong to their series, which belongs to an organisation); each batch that wrote them is in `IngestBatch`.
On PostgreSQL `iot_device_metrics` is partitioned by month of `ts` (see `assets.telemetry.storage`); SQLite keeps
one plain table with the same columns and key.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from assets.models import Asset, AssetType
from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel
from maintenance_site.tenancy.roles import Role

MAX_RETENTION_DAYS = 36500
METRIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")


def validate_metric_name(value: str) -> None:
    if not METRIC_NAME.match(value or ""):
        raise ValidationError(
            gettext(
                "A metric name is 1 to 64 letters, digits, “_”, “.”, “:”, “/” or “-”, starting with a letter or digit "
                "(e.g. bearing_temperature)."
            )
        )


class Severity(models.TextChoices):
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


SEVERITY_RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2}


class MetricDefinition(TenantModel):
    """What a metric means for an asset, an asset type, or (neither given) the whole organisation: its unit, the
    sensor's plausible range, warning and critical limits, a rate-of-change limit, the detectors' settings and the
    meter it feeds. The most specific definition applies: asset, then asset type, then organisation."""

    metric = models.CharField(max_length=64, validators=[validate_metric_name])
    asset_type = models.ForeignKey(
        AssetType, on_delete=models.CASCADE, null=True, blank=True, related_name="metric_definitions"
    )
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, null=True, blank=True, related_name="metric_definitions")
    label = models.CharField(max_length=120, blank=True)
    unit = models.CharField(max_length=20, blank=True, help_text=_("Points in another unit are converted or refused."))
    convert_units = models.BooleanField(
        default=True, help_text=_("Convert points sent in a compatible unit (°F → °C, psi → bar); else refuse them.")
    )
    sensor_min = models.FloatField(null=True, blank=True, help_text=_("Below this the sensor cannot read: a fault."))
    sensor_max = models.FloatField(null=True, blank=True, help_text=_("Above this the sensor cannot read: a fault."))
    warning_low = models.FloatField(null=True, blank=True)
    warning_high = models.FloatField(null=True, blank=True)
    critical_low = models.FloatField(null=True, blank=True)
    critical_high = models.FloatField(null=True, blank=True)
    max_rate_per_minute = models.FloatField(
        null=True, blank=True, help_text=_("Largest believable change per minute (either direction).")
    )
    flatline_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("The same value for this long means a stuck sensor (empty: never).")
    )
    statistical = models.BooleanField(default=True, help_text=_("Spike and drift detection against the baseline."))
    spike_sigmas = models.FloatField(default=5.0, help_text=_("A point this many standard deviations off is a spike."))
    drift_sigmas = models.FloatField(default=3.0, help_text=_("EWMA control limit, in (smoothed) standard deviations."))
    ewma_lambda = models.FloatField(default=0.1, help_text=_("Weight of the newest point in the drift chart (0–1)."))
    baseline_alpha = models.FloatField(default=0.01, help_text=_("How fast the baseline learns (0–1)."))
    warmup_points = models.PositiveIntegerField(default=30, help_text=_("Points learnt before statistics flag."))
    clear_after_minutes = models.PositiveIntegerField(
        default=15, help_text=_("An episode ends after the series is normal for this long.")
    )
    feeds_meter = models.CharField(
        max_length=80, blank=True, help_text=_("Name of the asset's meter this metric writes readings to.")
    )

    history = history()

    class Meta:
        ordering = ["metric"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(asset__isnull=True) | models.Q(asset_type__isnull=True),
                name="assets_metricdef_asset_or_type",
                violation_error_message="A definition is for an asset or for an asset type, not both.",
            ),
            models.UniqueConstraint(
                fields=["asset", "metric"],
                condition=models.Q(asset__isnull=False),
                name="assets_metricdef_unique_asset",
                violation_error_message="This asset already has a definition of this metric.",
            ),
            models.UniqueConstraint(
                fields=["asset_type", "metric"],
                condition=models.Q(asset_type__isnull=False),
                name="assets_metricdef_unique_type",
                violation_error_message="This asset type already has a definition of this metric.",
            ),
            models.UniqueConstraint(
                fields=["organization", "metric"],
                condition=models.Q(asset__isnull=True, asset_type__isnull=True),
                name="assets_metricdef_unique_org",
                violation_error_message="The organisation already has a default definition of this metric.",
            ),
        ]
        indexes = [
            # ingest: WHERE organization_id = ? AND metric IN (...)
            models.Index(fields=["organization", "metric"], name="assets_metricdef_org_idx"),
        ]

    def __str__(self) -> str:
        scope = self.asset.code if self.asset_id else (self.asset_type.name if self.asset_type_id else "all assets")
        return f"{self.metric} ({scope})"

    def clean(self):
        errors = {}
        for field in ("asset", "asset_type"):
            related = getattr(self, field)
            if related is not None and related.organization_id != self.organization_id:
                errors[field] = f"The {field.replace('_', ' ')} belongs to another organisation."
        if self.asset_id and self.asset_type_id:
            errors["asset_type"] = "A definition is for an asset or for an asset type, not both."
        order = [
            ("sensor_min", self.sensor_min),
            ("critical_low", self.critical_low),
            ("warning_low", self.warning_low),
            ("warning_high", self.warning_high),
            ("critical_high", self.critical_high),
            ("sensor_max", self.sensor_max),
        ]
        given = [(name, value) for name, value in order if value is not None]
        for (low_name, low), (high_name, high) in zip(given, given[1:], strict=False):
            if low > high:
                errors[high_name] = f"Must be at least {low_name.replace('_', ' ')} ({low:g})."
        for name in ("ewma_lambda", "baseline_alpha"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                errors[name] = "Between 0 (excluded) and 1."
        for name in ("spike_sigmas", "drift_sigmas", "max_rate_per_minute"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                errors[name] = "Must be above 0."
        if errors:
            raise ValidationError(errors)


class TelemetrySettings(TenantModel):
    """An organisation's telemetry settings: how long raw points and rollups are kept, and who is notified of
    which anomalies."""

    class Notify(models.TextChoices):
        WARNING = "warning", _("Warnings and critical anomalies")
        CRITICAL = "critical", _("Critical anomalies only")
        NONE = "none", _("Nobody (events and the anomalies list only)")

    organization = models.OneToOneField(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="telemetry_settings"
    )
    raw_retention_days = models.PositiveIntegerField(default=90, help_text=_("Raw points older than this are deleted."))
    hourly_retention_days = models.PositiveIntegerField(default=730)
    daily_retention_days = models.PositiveIntegerField(default=3650)
    notify = models.CharField(max_length=20, choices=Notify.choices, default=Notify.CRITICAL)
    notify_roles = models.JSONField(default=list, blank=True, help_text=_("Roles notified; empty: managers, planners."))

    history = history()

    class Meta:
        verbose_name_plural = _("telemetry settings")

    def __str__(self) -> str:
        return f"Telemetry settings of {self.organization}"

    def clean(self):
        errors = {}
        if self.raw_retention_days is not None and self.raw_retention_days < 1:
            errors["raw_retention_days"] = "Keep raw points at least one day."
        for name in ("raw_retention_days", "hourly_retention_days", "daily_retention_days"):
            if (getattr(self, name) or 0) > MAX_RETENTION_DAYS:
                errors[name] = f"At most {MAX_RETENTION_DAYS} days (a hundred years)."
        if (self.hourly_retention_days or 0) < (self.raw_retention_days or 0):
            errors["hourly_retention_days"] = "Keep hourly rollups at least as long as raw points."
        if (self.daily_retention_days or 0) < (self.hourly_retention_days or 0):
            errors["daily_retention_days"] = "Keep daily rollups at least as long as hourly ones."
        roles = self.notify_roles
        if not isinstance(roles, list) or any(role not in Role.values for role in roles):
            errors["notify_roles"] = f"A list of roles among {', '.join(Role.values)}."
        if errors:
            raise ValidationError(errors)

    @property
    def roles_notified(self) -> list[str]:
        return list(self.notify_roles) or [Role.MANAGER.value, Role.PLANNER.value]


class Series(TenantModel):
    """The points of one metric of one asset, and the detectors' running state over them (kept here so ingest stays
    O(points): no detector re-reads history). Created by the first point; derived data, so no history rows."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="telemetry_series")
    metric = models.CharField(max_length=64, validators=[validate_metric_name])
    unit = models.CharField(max_length=20, blank=True)
    first_ts = models.DateTimeField(null=True, blank=True)
    last_ts = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    analysed_until = models.DateTimeField(null=True, blank=True, help_text=_("Time of the newest analysed point."))
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = _("series")
        ordering = ["asset", "metric"]
        constraints = [
            # Also the index of ingest's lookup: WHERE asset_id IN (...) AND metric IN (...)
            models.UniqueConstraint(fields=["asset", "metric"], name="assets_series_unique_metric"),
        ]
        indexes = [
            # the admin's and the health work's: WHERE organization_id = ? AND metric = ?
            models.Index(fields=["organization", "metric"], name="assets_series_org_metric_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.asset.code} {self.metric}" if self.asset_id else self.metric


class TelemetryPoint(models.Model):
    """One value of a series at a moment (seed 004's `iot_device_metrics`). Its key (series, ts) makes a re-sent
    point a duplicate, and serves every range query: WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts.
    On PostgreSQL the table is partitioned by month of `ts`, with a BRIN index on `ts` (retention and the rollup
    rebuild scan by time); both are made by the migration and `storage.ensure_partitions`, not by Meta."""

    pk = models.CompositePrimaryKey("series", "ts")
    # No foreign-key constraint: a check per point would cost the COPY rate; points go with their series through
    # `storage.delete_series_points`.
    series = models.ForeignKey(
        Series, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        db_table = "iot_device_metrics"

    def __str__(self) -> str:
        return f"{self.value:g} at {self.ts:%Y-%m-%d %H:%M:%S}"


class Grain(models.TextChoices):
    HOUR = "h", _("Hour")
    DAY = "d", _("Day")


class TelemetryRollup(models.Model):
    """The count, sum, minimum and maximum of a series' points in one UTC hour or day, kept by ingest as points are
    stored (added to, so a late point updates its bucket) and kept longer than raw points. Range queries over days
    and months read these instead of the points."""

    pk = models.CompositePrimaryKey("series", "grain", "bucket")
    series = models.ForeignKey(
        Series, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    grain = models.CharField(max_length=1, choices=Grain.choices)
    bucket = models.DateTimeField()
    count = models.BigIntegerField()
    total = models.FloatField()
    minimum = models.FloatField()
    maximum = models.FloatField()

    class Meta:
        db_table = "iot_metric_rollups"

    def __str__(self) -> str:
        return f"{self.get_grain_display()} from {self.bucket:%Y-%m-%d %H:%M}"


class AnomalyQuerySet(models.QuerySet):
    def for_tenant(self, organization):
        return self.filter(organization=organization)

    def ongoing(self):
        return self.filter(ended_at__isnull=True)


class Anomaly(TenantModel):
    """One episode of abnormal behaviour of a series, as one detector saw it: it opens with the first abnormal
    point, keeps its peak while the series stays abnormal, and ends once the series has been normal for the
    definition's `clear_after_minutes` (a sensor stuck out of range for a week is one anomaly).

    People follow it through `status`: open → acknowledged (with a comment) → resolved; open → resolved."""

    class Detector(models.TextChoices):
        LIMIT = "limit", _("Limit crossed")
        SENSOR = "sensor", _("Outside the sensor's range")
        RATE = "rate", _("Changing too fast")
        SPIKE = "spike", _("Spike")
        DRIFT = "drift", _("Drift from the baseline")
        FLATLINE = "flatline", _("Flat line (stuck sensor)")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="anomalies")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="anomalies")
    metric = models.CharField(max_length=64)
    detector = models.CharField(max_length=20, choices=Detector.choices)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(help_text=_("Time of the latest abnormal point."))
    ended_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty while the episode goes on."))
    peak_value = models.FloatField()
    peak_at = models.DateTimeField()
    limit = models.FloatField(null=True, blank=True, help_text=_("The limit or baseline the peak is compared with."))
    points = models.PositiveIntegerField(default=1, help_text=_("Abnormal points in the episode."))
    message = models.TextField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = AnomalyQuerySet.as_manager()
    history = history(excluded_fields=["last_seen_at", "peak_value", "peak_at", "points", "updated_at"])

    class Meta:
        verbose_name_plural = _("anomalies")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "detector"],
                condition=models.Q(ended_at__isnull=True),
                name="assets_anomaly_one_ongoing_per_detector",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="assets_anomaly_ends_after_start",
            ),
        ]
        indexes = [
            # the list: WHERE organization_id = ? [AND status = ?] ORDER BY started_at DESC, id DESC
            models.Index(fields=["organization", "-started_at", "-id"], name="assets_anomaly_org_start_idx"),
            models.Index(fields=["organization", "status", "-started_at"], name="assets_anomaly_org_stat_idx"),
            # ?asset=ID and the health work: WHERE asset_id = ? ORDER BY started_at DESC
            models.Index(fields=["asset", "-started_at"], name="assets_anomaly_asset_idx"),
            # re-analysis: WHERE series_id = ? AND detector = ? AND last_seen_at >= ?
            models.Index(fields=["series", "detector", "last_seen_at"], name="assets_anomaly_series_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_detector_display()} on {self.metric} since {self.started_at:%Y-%m-%d %H:%M}"


class IngestBatch(TenantModel):
    """One accepted batch of points: who sent it, when, and what became of its points. The audit of raw points,
    which have no history rows of their own. Append-only."""

    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    points = models.PositiveIntegerField()
    stored = models.PositiveIntegerField()
    duplicates = models.PositiveIntegerField()
    not_analysed = models.PositiveIntegerField()
    anomalies_opened = models.PositiveIntegerField(default=0)
    series = models.PositiveIntegerField(default=0)
    first_ts = models.DateTimeField(null=True, blank=True)
    last_ts = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = _("ingest batches")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the admin's list: WHERE organization_id = ? ORDER BY created_at DESC
            models.Index(fields=["organization", "-created_at"], name="assets_ingest_org_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.points} point(s) at {self.created_at:%Y-%m-%d %H:%M:%S}"
