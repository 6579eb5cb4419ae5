"""Preventive maintenance: schedules, the parts their orders need, what each generation pass created or
skipped, and the secret calendar feeds of upcoming work.

`PreventiveSchedule.problems()` holds a schedule's rules (coverage, trigger, expressions), so the admin form and
the API answer with the same sentence next to the same field; cron and RRULE parsing and the daylight-saving
rule are `maintenance_site.recurrence`'s. The occurrences themselves are computed in
`scheduling.preventive.occurrences`, the generation in `scheduling.preventive.generation`.
"""

from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.recurrence import RecurrenceError, parse_cron, parse_rrule
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet
from workorders.models import WorkOrder

QUANTITY = {"max_digits": 14, "decimal_places": 3}
# The dates a schedule may start and end on. Beyond them a date is a typing mistake (a schedule from year 1 or until
# 9999), and what is computed from it would leave the calendar (an occurrence in year 9999 west of UTC does not
# exist in UTC) or take minutes to enumerate (an hourly RRULE from year 1).
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2999, 12, 31)
METER_VALUE = {"max_digits": 18, "decimal_places": 4}
# The work-order types a schedule may produce (not corrective or emergency work).
_PLANNED = (WorkOrder.Type.PREVENTIVE, WorkOrder.Type.INSPECTION, WorkOrder.Type.ROUTINE, WorkOrder.Type.PREDICTIVE)
WORK_TYPES = [(value, label) for value, label in WorkOrder.Type.choices if value in _PLANNED]

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "CalendarFeed",
    "GenerationRun",
    "PreventiveOccurrence",
    "PreventiveSchedule",
    "PreventiveScheduleQuerySet",
    "ScheduleTemplatePart",
]


class PreventiveScheduleQuerySet(TenantQuerySet):
    def active(self):
        return self.filter(status=PreventiveSchedule.Status.ACTIVE)


class PreventiveSchedule(TenantModel):
    """Recurring preventive work: what it covers (one asset, every asset of a type and / or under a location,
    or no asset for a routine round), when it is due (calendar, interval or meter), and the work order it
    becomes. `generate_due_work_orders` turns each due occurrence into exactly one work order.

    Status: active ⇄ paused (`pause_schedule` / `resume_schedule`); an end date retires it for good.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    class Coverage(models.TextChoices):
        ASSET = "asset", _("One asset")
        ASSETS = "assets", _("Every asset of a type and / or under a location")
        ROUTINE = "routine", _("No asset (routine round)")

    class Trigger(models.TextChoices):
        CRON = "cron", _("Calendar: cron expression")
        RRULE = "rrule", _("Calendar: RRULE (RFC 5545)")
        INTERVAL = "interval", _("Every N days / weeks / months")
        METER = "meter", _("Meter")

    class IntervalUnit(models.TextChoices):
        DAYS = "days", _("days")
        WEEKS = "weeks", _("weeks")
        MONTHS = "months", _("months")

    class MeterMode(models.TextChoices):
        EVERY = "every", _("Every N units of the meter")
        ABOVE = "above", _("A reading above the threshold")
        BELOW = "below", _("A reading below the threshold")

    class Mode(models.TextChoices):
        FIXED = "fixed", _("Fixed: due dates follow the calendar")
        FLOATING = "floating", _("Floating: next due counted from the last completion")

    class Misfire(models.TextChoices):
        COALESCE = "coalesce", _("Coalesce the missed occurrences into one order")
        CATCH_UP = "catch_up", _("Create each missed occurrence (up to the cap)")
        SKIP = "skip", _("Skip the missed occurrences, go on with the next")

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, editable=False)
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    pause_reason = models.TextField(blank=True, editable=False)

    # --- what it covers: evaluated at every generation, so new assets of the type join by themselves
    coverage = models.CharField(max_length=20, choices=Coverage.choices, default=Coverage.ASSET)
    asset = models.ForeignKey(
        "assets.Asset", on_delete=models.PROTECT, null=True, blank=True, related_name="preventive_schedules"
    )
    asset_type = models.ForeignKey(
        "assets.AssetType", on_delete=models.PROTECT, null=True, blank=True, related_name="preventive_schedules"
    )
    location = models.ForeignKey(
        "assets.Location",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="preventive_schedules",
        help_text=_("Every asset under this location (with “every asset”); where the round happens (routine)."),
    )

    # --- when it is due
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.INTERVAL)
    cron_expression = models.CharField(
        max_length=120,
        blank=True,
        help_text=_("Five fields: minute hour day-of-month month day-of-week, e.g. 30 2 * * *."),
    )
    rrule = models.CharField(
        "RRULE", max_length=500, blank=True, help_text=_("RFC 5545, e.g. FREQ=MONTHLY;BYDAY=1MO (no DTSTART).")
    )
    interval_count = models.PositiveIntegerField(null=True, blank=True, help_text=_("1 to 1000."))
    interval_unit = models.CharField(max_length=10, choices=IntervalUnit.choices, blank=True)
    time_of_day = models.TimeField(
        default=time(6, 0), help_text=_("Local time of day of interval and RRULE occurrences (site time zone).")
    )
    meter_name = models.CharField(max_length=80, blank=True, help_text=_("The asset meter to watch, by name."))
    meter_mode = models.CharField(max_length=10, choices=MeterMode.choices, blank=True)
    meter_interval = models.DecimalField(**METER_VALUE, null=True, blank=True)
    meter_threshold = models.DecimalField(**METER_VALUE, null=True, blank=True)
    cooldown_minutes = models.PositiveIntegerField(
        default=0, help_text=_("Meter thresholds: at most one occurrence per asset within this many minutes.")
    )

    # --- how it behaves
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.FIXED)
    lead_days = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(365)], help_text=_("Create the order this many days before it is due.")
    )
    skip_if_open = models.BooleanField(
        default=True, help_text=_("Skip (and record) an occurrence while this schedule's previous order is open.")
    )
    misfire_policy = models.CharField(max_length=20, choices=Misfire.choices, default=Misfire.COALESCE)
    misfire_cap = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("“Create each missed one”: at most this many at once (the most recent)."),
    )
    start_date = models.DateField(help_text=_("First day an occurrence may fall on (site time zone)."))
    end_date = models.DateField(null=True, blank=True, help_text=_("Last day an occurrence may fall on."))

    # --- the work order it becomes
    title = models.CharField(
        max_length=200, blank=True, help_text=_("Work-order title; may use {asset}, {asset_code}, {due_date}.")
    )
    instructions = models.TextField(blank=True)
    priority = models.CharField(max_length=20, choices=WorkOrder.Priority.choices, default=WorkOrder.Priority.MEDIUM)
    work_type = models.CharField(max_length=20, choices=WORK_TYPES, default=WorkOrder.Type.PREVENTIVE)
    procedure = models.ForeignKey(
        "workorders.Procedure", on_delete=models.PROTECT, null=True, blank=True, related_name="preventive_schedules"
    )
    estimated_minutes = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    plan_start = models.BooleanField(
        "plan the start",
        default=False,
        help_text=_("Plan each order to start at its occurrence's due time (it shows on the planner's calendar then)."),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(
        "workorders.Team", on_delete=models.PROTECT, null=True, blank=True, related_name="preventive_schedules"
    )

    # --- bookkeeping of the generator (never edited by people)
    generated_through = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Occurrences whose creation time is up to here are done.")
    )
    next_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_run_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("When the generator next has something to do here.")
    )
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PreventiveScheduleQuerySet.as_manager()
    history = history(excluded_fields=["generated_through", "next_due_at", "next_run_at", "last_run_at"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="scheduling_preventiveschedule_unique_name",
                violation_error_message="A preventive schedule with this name already exists.",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="scheduling_preventiveschedule_end_after_start",
                violation_error_message="The end date is before the start date.",
            ),
            models.CheckConstraint(
                condition=~Q(coverage="asset") | Q(asset__isnull=False),
                name="scheduling_preventiveschedule_asset_given",
                violation_error_message="Choose the asset this schedule covers.",
            ),
        ]
        indexes = [
            # the tick: WHERE status = 'active' AND next_run_at <= now
            models.Index(fields=["next_run_at"], condition=Q(status="active"), name="sched_pm_due_idx"),
            # the tick, re-evaluated every time: WHERE status = 'active' AND (trigger = 'meter' OR mode = 'floating')
            models.Index(fields=["trigger", "mode"], condition=Q(status="active"), name="sched_pm_watch_idx"),
            # lists: WHERE organization_id = ? AND status = ?; (ORDER BY name, id: the unique (organization, name))
            models.Index(fields=["organization", "status"], name="sched_pm_org_status_idx"),
            # sync and ?ordering=updated_at: WHERE organization_id = ? [AND updated_at > ?] ORDER BY updated_at, id
            models.Index(fields=["organization", "updated_at", "id"], name="sched_pm_org_updated_id_idx"),
            # ?ordering=next_due_at: WHERE organization_id = ? ORDER BY next_due_at, id
            models.Index(fields=["organization", "next_due_at", "id"], name="sched_pm_org_next_due_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self):
        errors = self.problems()
        if errors:
            raise ValidationError(errors)

    def problems(self) -> dict[str, str]:
        """Field → what is wrong (empty when nothing is): what `clean()` raises, the admin form and the API show."""
        errors = self._coverage_problems()
        errors.update(self._trigger_problems())
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if isinstance(value, date) and not EARLIEST_DATE <= value <= LATEST_DATE:
                errors[name] = f"Give a date from {EARLIEST_DATE} to {LATEST_DATE} (not {value.isoformat()})."
        if self.mode == self.Mode.FLOATING and not (
            self.trigger == self.Trigger.INTERVAL
            or (self.trigger == self.Trigger.METER and self.meter_mode == self.MeterMode.EVERY)
        ):
            errors["mode"] = (
                "Floating mode counts from the last completion, so it needs an interval (or a meter count); "
                "a cron expression, an RRULE or a threshold follows its own rule: choose fixed."
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors["end_date"] = "The end date is before the start date."
        if self.misfire_policy not in self.Misfire.values:
            errors["misfire_policy"] = "Choose coalesce, catch up or skip."
        return errors

    def _coverage_problems(self) -> dict[str, str]:
        errors = {}
        for name in ("asset", "asset_type", "location", "procedure", "team"):
            related = getattr(self, name) if getattr(self, f"{name}_id") else None
            if related is not None and related.organization_id != self.organization_id:
                errors[name] = f"The {name.replace('_', ' ')} belongs to another organisation."
        if self.coverage == self.Coverage.ASSET:
            if not self.asset_id:
                errors["asset"] = "Choose the asset this schedule covers."
            for name in ("asset_type", "location"):
                if getattr(self, f"{name}_id"):
                    errors[name] = (
                        "Leave this empty for a one-asset schedule (or cover every asset of a type / location)."
                    )
        elif self.coverage == self.Coverage.ASSETS:
            if self.asset_id:
                errors["asset"] = "Leave this empty: the schedule covers every asset of the type and / or location."
            if not self.asset_type_id and not self.location_id:
                errors["asset_type"] = "Choose an asset type, a location, or both."
        elif self.coverage == self.Coverage.ROUTINE:
            for name in ("asset", "asset_type"):
                if getattr(self, f"{name}_id"):
                    errors[name] = "A routine round covers no asset: leave this empty (a location is allowed)."
        return errors

    def _trigger_problems(self) -> dict[str, str]:
        errors = {}
        if self.trigger == self.Trigger.CRON:
            try:
                parse_cron(self.cron_expression, at_most_hourly=True)
            except RecurrenceError as error:
                errors["cron_expression"] = error.message
        elif self.trigger == self.Trigger.RRULE:
            try:
                parse_rrule(self.rrule, self.anchor, at_most_hourly=True)
            except RecurrenceError as error:
                errors["rrule"] = error.message
        elif self.trigger == self.Trigger.INTERVAL:
            if not self.interval_count or not 1 <= self.interval_count <= 1000:
                shown = "nothing" if self.interval_count in (None, "") else f"{self.interval_count}"
                errors["interval_count"] = f"Every {shown} is not an interval: give a whole number from 1 to 1000."
            if self.interval_unit not in self.IntervalUnit.values:
                errors["interval_unit"] = "Say whether the interval counts days, weeks or months."
        elif self.trigger == self.Trigger.METER:
            if self.coverage == self.Coverage.ROUTINE:
                errors["trigger"] = "A meter trigger needs assets (their meters): cover an asset, or a type / location."
            if not (self.meter_name or "").strip():
                errors["meter_name"] = "Name the meter to watch, e.g. “Run hours”."
            if self.meter_mode not in self.MeterMode.values:
                errors["meter_mode"] = "Say whether to act every N units, or on a reading above or below a threshold."
            elif self.meter_mode == self.MeterMode.EVERY:
                if self.meter_interval is None or self.meter_interval <= 0:
                    errors["meter_interval"] = "Give how many units of the meter between services, more than zero."
            elif self.meter_threshold is None:
                errors["meter_threshold"] = "Give the threshold the readings are compared with."
        else:
            errors["trigger"] = "Choose a calendar (cron or RRULE), interval or meter trigger."
        return errors

    @property
    def anchor(self) -> datetime:
        """Where RRULE and interval series start: the start date at the time of day (local wall-clock time)."""
        return datetime.combine(self.start_date or date(2001, 1, 1), self.time_of_day or time(6, 0))


class ScheduleTemplatePart(TenantModel):
    """A part the schedule's work orders need: reserved at the stock location when each order is created."""

    schedule = models.ForeignKey(PreventiveSchedule, on_delete=models.CASCADE, related_name="template_parts")
    part = models.ForeignKey("inventory.Part", on_delete=models.PROTECT, related_name="+")
    stock_location = models.ForeignKey("inventory.StockLocation", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**QUANTITY, validators=[MinValueValidator(Decimal("0.001"))])

    history = history()

    class Meta:
        ordering = ["schedule", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "part", "stock_location"],
                name="scheduling_templatepart_unique",
                violation_error_message="This part is already listed for that stock location.",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="scheduling_templatepart_quantity_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.part}"

    def clean(self):
        errors = {}
        for field in ("schedule", "part", "stock_location"):
            related = getattr(self, field, None) if getattr(self, f"{field}_id") else None
            if related is not None and related.organization_id != self.organization_id:
                errors[field] = f"The {field.replace('_', ' ')} belongs to another organisation."
        whole = self.quantity is not None and self.quantity == self.quantity.to_integral_value()
        if not errors and self.part_id and self.quantity is not None and self.part.is_countable and not whole:
            errors["quantity"] = f"{self.part.sku} is counted in whole units."
        if errors:
            raise ValidationError(errors)


class GenerationRun(models.Model):
    """One pass of the generator that had something to write: when, for what moment, who asked (the system
    user for beat), and how many orders it created and occurrences it skipped. Its own audit; the occurrences
    a pass really inserted point at it, which is how a pass knows which rows are its own."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    as_of = models.DateTimeField(help_text=_("The moment the pass generated for."))
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # retention and the admin list: ORDER BY started_at DESC
            models.Index(fields=["started_at"], name="sched_run_started_idx"),
        ]

    def __str__(self) -> str:
        return f"generation {self.started_at:%Y-%m-%d %H:%M:%S}: {self.created_count} created"


class PreventiveOccurrence(TenantModel):
    """One due occurrence of a schedule for one asset (or for none: routine rounds), and what became of it:
    a work order, or a recorded skip. The unique key (schedule, target, due time) is what makes two beat
    processes, repeated ticks and concurrent calls harmless. Written only by the generator; its own audit."""

    class Status(models.TextChoices):
        CREATED = "created", _("Work order created")
        SKIPPED = "skipped", _("Skipped")

    class SkipReason(models.TextChoices):
        NONE = "", _("—")
        OPEN_ORDER = "open_order", _("The previous order of this schedule is still open")
        MISFIRE = "misfire", _("Missed while generation was not running (misfire policy: skip)")

    schedule = models.ForeignKey(PreventiveSchedule, on_delete=models.PROTECT, related_name="occurrences")
    asset = models.ForeignKey(
        "assets.Asset", on_delete=models.CASCADE, null=True, blank=True, related_name="preventive_occurrences"
    )
    # The asset's id, or 0 for a routine occurrence without asset: non-null, so it can be in the unique key.
    target_key = models.PositiveBigIntegerField(default=0)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True, default="")
    note = models.CharField(max_length=300, blank=True)
    work_order = models.OneToOneField(
        "workorders.WorkOrder", on_delete=models.SET_NULL, null=True, blank=True, related_name="preventive_occurrence"
    )
    missed_count = models.PositiveIntegerField(
        default=0,
        help_text=_("Earlier occurrences missed during downtime and folded into (or dropped before) this one."),
    )
    meter_value = models.DecimalField(**METER_VALUE, null=True, blank=True)
    run = models.ForeignKey(GenerationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-due_at"]
        constraints = [
            # Also the index of "the latest occurrence of (schedule, target)": ORDER BY due_at DESC LIMIT 1.
            models.UniqueConstraint(
                fields=["schedule", "target_key", "due_at"], name="scheduling_occurrence_unique_due"
            ),
            models.CheckConstraint(
                condition=Q(asset__isnull=True, target_key=0) | Q(asset__isnull=False, target_key=F("asset_id")),
                name="scheduling_occurrence_target_matches_asset",
            ),
            models.CheckConstraint(
                condition=Q(status="created", skip_reason="") | Q(status="skipped") & ~Q(skip_reason=""),
                name="scheduling_occurrence_skip_has_reason",
            ),
        ]
        indexes = [
            # the occurrences list (cursor pages, both ways): WHERE organization_id = ? ORDER BY due_at DESC, id DESC;
            # statistics and forecast: WHERE organization_id = ? AND due_at BETWEEN ? AND ?
            models.Index(fields=["organization", "due_at", "id"], name="sched_occ_org_due_id_idx"),
            # ?ordering=created_at: WHERE organization_id = ? ORDER BY created_at, id
            models.Index(fields=["organization", "created_at", "id"], name="sched_occ_org_created_idx"),
            # a schedule's occurrences: WHERE schedule_id = ? ORDER BY due_at DESC, id DESC
            models.Index(fields=["schedule", "due_at", "id"], name="sched_occ_schedule_due_idx"),
            # "which rows did this pass insert": WHERE run_id = ? (the FK index)
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class CalendarFeed(TenantModel):
    """A secret iCalendar (.ics) URL of the organisation's upcoming preventive work, for calendar apps that
    cannot log in. Only a hash of the token is stored; revoking the feed retires the URL at once."""

    name = models.CharField(max_length=120, help_text=_("Who or what uses it, e.g. “Planner's Outlook”."))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=8, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = history(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["name"]
        verbose_name = _("calendar feed")

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
