"""Maintenance windows and maintenance mode: the data and its invariants.

Every change goes through `scheduling.windows.services` and the tick; nothing here has side effects.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet

__all__ = [
    "MAX_AHEAD",
    "MAX_DURATION",
    "MaintenanceHistoryEntry",
    "MaintenanceMode",
    "MaintenanceWindow",
    "WindowAssetState",
    "WindowFeedToken",
]


# How far from now people may place a window, and how long it may last. Beyond these a date is a typing mistake
# (a window in year 9999, a duration of a billion minutes), and the arithmetic on it (its end, the occurrences of a
# series, the overlap check, Retry-After) would leave the calendar that Python and PostgreSQL represent.
MAX_DURATION = timedelta(days=366)
MAX_AHEAD = timedelta(days=3653)  # ten years


class MaintenanceWindowQuerySet(TenantQuerySet):
    def occurrences(self):
        """Windows that actually run (single windows and the occurrences of a series), not series heads."""
        return self.filter(recurrence="")

    def series(self):
        """Heads of recurring windows: templates whose occurrences are rows of their own."""
        return self.exclude(recurrence="")

    def planned(self):
        """What the overlap check and the schedule look at: scheduled or running."""
        return self.filter(status__in=MaintenanceWindow.PLANNED_STATUSES)

    def finished(self):
        return self.filter(status__in=MaintenanceWindow.FINISHED_STATUSES)


class MaintenanceWindow(TenantModel):
    """A period during which part of the organisation is under maintenance: the whole system (which puts
    the organisation into maintenance mode while it runs), one location and everything in it, or a set of
    assets (marked "in maintenance" while it runs).

    A window with a `recurrence` (an RRULE in the organisation's time zone) is the head of a series: it is
    never started itself; each occurrence is a window of its own (`series`, `occurrence_start`), created a
    few weeks ahead by the tick, so that it can be moved, cancelled, started and ended like any other.

    Statuses and their transitions (enforced by `scheduling.windows.lifecycle`):
        scheduled → active      the tick, at `starts_at` (or at once when created already due)
        scheduled → cancelled   by an operator
        scheduled → failed      missed: its end passed before any tick could start it
        active    → completed   the tick at `ends_at`, or an operator ending it early
        active    → failed      an operator, with a reason
    A series head stays `scheduled` while the series runs and becomes `cancelled` when it is stopped.
    """

    class Type(models.TextChoices):
        SYSTEM_UPDATE = "system_update", _("System update")
        DATABASE = "database", _("Database")
        NETWORK = "network", _("Network")
        HARDWARE = "hardware", _("Hardware")
        SECURITY = "security", _("Security")
        OTHER = "other", _("Other")

    class Scope(models.TextChoices):
        SYSTEM = "system", _("Whole system")
        LOCATION = "location", _("A location and everything in it")
        ASSETS = "assets", _("A set of assets")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    PLANNED_STATUSES = (Status.SCHEDULED, Status.ACTIVE)
    FINISHED_STATUSES = (Status.COMPLETED, Status.FAILED)
    STARTED_STATUSES = (Status.ACTIVE, Status.COMPLETED, Status.FAILED)

    maintenance_type = models.CharField(max_length=20, choices=Type.choices, default=Type.OTHER)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.SYSTEM)
    location = models.ForeignKey(
        "assets.Location",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="maintenance_windows",
        help_text=_("Location scope: this location, its sub-locations and their assets."),
    )
    assets = models.ManyToManyField(
        "assets.Asset", blank=True, related_name="maintenance_windows", help_text=_("Asset scope: these assets.")
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(
        help_text=_("Exclusive: a window ending at 10:00 and one starting then do not overlap.")
    )
    recurrence = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("An RRULE in the organisation's time zone, e.g. FREQ=WEEKLY;BYDAY=SU. Empty: a single window."),
    )
    series = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="occurrences",
        help_text=_("The recurring window this is an occurrence of."),
    )
    occurrence_start = models.DateTimeField(
        null=True, blank=True, help_text=_("The start the recurrence gave this occurrence (kept when it is moved).")
    )
    materialized_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Series: occurrences exist up to here.")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(blank=True, help_text=_("Why it was cancelled, ended early or failed."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notify_users = models.BooleanField(
        default=True, help_text=_("Tell every member (not only the managers) when it is scheduled, starts and ends.")
    )
    emergency = models.BooleanField(default=False, help_text=_("May overlap other windows; needs a reason."))
    emergency_reason = models.TextField(blank=True)
    overridden_conflicts = models.JSONField(
        default=list, blank=True, editable=False, help_text=_("Windows it overlapped when scheduled as an emergency.")
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = MaintenanceWindowQuerySet.as_manager()
    history = history(excluded_fields=["materialized_until", "reminder_sent_at"])

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("maintenance window")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="scheduling_window_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(actual_end__isnull=True)
                | Q(actual_start__isnull=False, actual_end__gte=models.F("actual_start")),
                name="scheduling_window_actual_end_after_actual_start",
            ),
            models.CheckConstraint(
                condition=Q(scope="location", location__isnull=False)
                | (~Q(scope="location") & Q(location__isnull=True)),
                name="scheduling_window_location_iff_location_scope",
            ),
            models.CheckConstraint(
                condition=Q(emergency=False) | ~Q(emergency_reason=""), name="scheduling_window_emergency_has_reason"
            ),
            models.CheckConstraint(
                condition=Q(series__isnull=True) | Q(recurrence="", occurrence_start__isnull=False),
                name="scheduling_window_occurrence_is_not_a_series",
            ),
            models.UniqueConstraint(fields=["series", "occurrence_start"], name="scheduling_window_unique_occurrence"),
        ]
        indexes = [
            # the tick: WHERE status = 'scheduled' AND starts_at <= now (and the reminder: starts_at <= now + lead)
            models.Index(fields=["status", "starts_at"], name="sched_window_status_start_idx"),
            # the tick: WHERE status = 'active' AND ends_at <= now
            models.Index(fields=["status", "ends_at"], name="sched_window_status_end_idx"),
            # the mode: WHERE organization_id = ? AND status = 'active' AND scope = 'system'
            models.Index(fields=["organization", "status", "scope"], name="sched_window_org_status_idx"),
            # the list (cursor pages) and the overlap check: WHERE organization_id = ? AND starts_at < ?
            # ORDER BY starts_at, id
            models.Index(fields=["organization", "starts_at", "id"], name="sched_window_org_start_id_idx"),
            # API sync and ?ordering=updated_at: WHERE organization_id = ? AND updated_at > ? ORDER BY updated_at, id
            models.Index(fields=["organization", "updated_at", "id"], name="sched_window_org_upd_id_idx"),
            # ?ordering=ends_at: WHERE organization_id = ? ORDER BY ends_at, id
            models.Index(fields=["organization", "ends_at", "id"], name="sched_window_org_end_id_idx"),
            # ?ordering=status: WHERE organization_id = ? ORDER BY status, id
            models.Index(fields=["organization", "status", "id"], name="sched_window_org_stat_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"

    def clean(self):
        """Field-keyed errors, shared by the admin form and the API serializer (the M2M scope is checked by
        the service, which sees the assets)."""
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        if self.scope == self.Scope.LOCATION and not self.location_id:
            errors["location"] = "Choose the location this window covers."
        if self.scope != self.Scope.LOCATION and self.location_id:
            errors["location"] = "Only a location-scope window names a location."
        if self.location_id and self.organization_id and self.location.organization_id != self.organization_id:
            errors["location"] = "The location belongs to another organisation."
        if self.emergency and not (self.emergency_reason or "").strip():
            errors["emergency_reason"] = "An emergency window needs a reason (it is audited)."
        if errors:
            raise ValidationError(errors)

    # --- derived -------------------------------------------------------------------------------------
    @property
    def is_series(self) -> bool:
        return bool(self.recurrence)

    @property
    def duration(self) -> timedelta:
        return self.ends_at - self.starts_at

    @property
    def duration_minutes(self) -> int:
        return int(self.duration.total_seconds() // 60)

    @property
    def has_started(self) -> bool:
        return self.status in self.STARTED_STATUSES

    @property
    def is_system(self) -> bool:
        return self.scope == self.Scope.SYSTEM


class MaintenanceHistoryEntry(MaintenanceWindow):
    """A finished maintenance window (completed or failed), for the back office's history list."""

    class Meta:
        proxy = True
        verbose_name = _("maintenance history entry")
        verbose_name_plural = _("maintenance history")


class WindowAssetState(TenantModel):
    """An asset a running window marked "in maintenance", with the status it had before, so that the end of
    the window gives it back. Written once per window and asset; its own audit."""

    window = models.ForeignKey(MaintenanceWindow, on_delete=models.CASCADE, related_name="asset_states")
    asset = models.ForeignKey("assets.Asset", on_delete=models.CASCADE, related_name="+")
    previous_status = models.CharField(max_length=20)
    marked_at = models.DateTimeField()
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_status = models.CharField(max_length=20, blank=True, help_text=_("Empty: left as it was."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["window", "asset"], name="scheduling_windowassetstate_unique_asset"),
        ]
        indexes = [
            # ending a window ("does another window still hold this asset?"):
            # WHERE asset_id = ? AND restored_at IS NULL
            models.Index(fields=["asset"], condition=Q(restored_at__isnull=True), name="sched_wassetstate_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} in window {self.window_id} (was {self.previous_status})"


class MaintenanceMode(models.Model):
    """The maintenance mode of one organisation, or (no organisation) of the whole platform.

    `manual` is an operator's emergency switch (with a reason, an optional expected end); `active` is the
    effective mode the services keep up to date: on while the switch is on or a system-scope window of the
    organisation runs. The tick recomputes it and corrects (and logs) any mismatch. While the platform row is
    active every organisation is in maintenance mode.
    """

    organization = models.OneToOneField(
        "tenancy.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="maintenance_mode"
    )
    manual = models.BooleanField(default=False, help_text=_("Switched on by hand."))
    reason = models.TextField(blank=True)
    switched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    switched_at = models.DateTimeField(null=True, blank=True)
    expected_end = models.DateTimeField(
        null=True, blank=True, help_text=_("Manual mode: when it should end, if known.")
    )
    active = models.BooleanField(default=False)
    active_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        verbose_name = _("maintenance mode")
        constraints = [
            # One row per organisation, and a single platform row (organization NULL counts as 0).
            models.UniqueConstraint(Coalesce("organization", 0), name="scheduling_maintenancemode_one_per_scope"),
            models.CheckConstraint(
                condition=Q(manual=False) | ~Q(reason=""), name="scheduling_maintenancemode_manual_has_reason"
            ),
        ]
        indexes = [
            # /health/ready: how many organisations are in maintenance mode
            models.Index(fields=["active"], condition=Q(active=True), name="sched_mode_active_idx"),
        ]

    def __str__(self) -> str:
        scope = self.organization.name if self.organization_id else "Platform"
        return f"{scope}: maintenance mode {'on' if self.active else 'off'}"

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None


def new_feed_token() -> str:
    return secrets.token_urlsafe(24)


class WindowFeedToken(TenantModel):
    """The secret in the address of an organisation's iCalendar feed of upcoming maintenance windows.
    Regenerate it to retire every copy of the old address."""

    token = models.CharField(max_length=64, unique=True, default=new_feed_token)

    history = history()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="scheduling_windowfeedtoken_one_per_organization"),
        ]

    def __str__(self) -> str:
        return f"Maintenance calendar of {self.organization_id}"
