"""SLAs: business calendars, policies (which work they cover, targets, escalation), the clock each work order
runs under, and the violations the monitor records.

Every change goes through `sla.services`; the clock hooks are called by `workorders.services`.
"""

from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from assets.models import Asset
from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet, validate_time_zone
from maintenance_site.tenancy.roles import Role
from sla.business_hours import MIDNIGHT, Schedule
from workorders.models import WorkOrder

# The work-order statuses in which a clock can be paused (a closed order stops it instead).
PAUSABLE_STATUSES = tuple(str(status) for status in WorkOrder.OPEN_STATUSES)
DEFAULT_PAUSE_STATUSES = [str(WorkOrder.Status.ON_HOLD)]


def default_pause_statuses() -> list[str]:
    return list(DEFAULT_PAUSE_STATUSES)


def validate_pause_statuses(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(gettext('Give the pausing statuses as a list, e.g. ["on_hold"].'))
    unknown = sorted(set(value) - set(PAUSABLE_STATUSES))
    if unknown:
        raise ValidationError(
            gettext("%(unknown)s: not a status that can pause a clock; choose from %(choices)s.")
            % {"unknown": ", ".join(unknown), "choices": ", ".join(PAUSABLE_STATUSES)}
        )


def validate_roles(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(gettext('Give the roles as a list, e.g. ["manager"].'))
    unknown = sorted(set(value) - set(Role.values))
    if unknown:
        raise ValidationError(
            gettext("%(unknown)s: not a role; choose from %(choices)s.")
            % {"unknown": ", ".join(unknown), "choices": ", ".join(Role.values)}
        )


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class BusinessCalendar(TenantModel):
    """When SLA clocks run: working hours per weekday (several spans a day) minus holidays, in a time zone;
    or around the clock (24/7, still minus its holidays, if it lists any)."""

    name = models.CharField(max_length=120)
    time_zone = models.CharField(
        max_length=64, blank=True, validators=[validate_time_zone], help_text=_("Empty: the organisation's time zone.")
    )
    always_open = models.BooleanField(
        "24/7", default=False, help_text=_("The clock runs around the clock; working hours are ignored.")
    )

    history = history()

    class Meta:
        ordering = ["name"]
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="sla_businesscalendar_unique_name",
                violation_error_message="A calendar with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone_name(self) -> str:
        return self.time_zone or self.organization.time_zone

    def has_working_time(self) -> bool:
        return self.always_open or (self.pk is not None and self.hours.exists())

    def schedule(self) -> Schedule:
        """The calendar as a Schedule for the business-time arithmetic (two queries, or one for 24/7)."""
        holidays = list(self.holidays.values_list("date", flat=True)) if self.pk else []
        if self.always_open:
            return Schedule.always(self.zone_name, holidays)
        spans = list(self.hours.values_list("weekday", "start", "end")) if self.pk else []
        return Schedule.build(self.zone_name, spans, holidays)


class WorkingHours(TenantModel):
    """One span of working time on a weekday (07:00–12:00); a day may have several. An end of 00:00 means
    midnight at the end of the day."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text=_("00:00 means midnight at the end of the day."))

    history = history()

    class Meta:
        ordering = ["calendar", "weekday", "start"]
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")) | Q(end=MIDNIGHT),
                name="sla_workinghours_end_after_start",
                violation_error_message="A span must end after it starts (00:00 as the end means midnight).",
            ),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="sla_workinghours_weekday_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"

    def _ends_before_start(self) -> bool:
        return self.start is not None and self.end is not None and not (self.end > self.start or self.end == MIDNIGHT)

    def clean(self):
        if self._ends_before_start():
            raise ValidationError(
                {"end": gettext("The span must end after it starts (00:00 as the end means midnight).")}
            )

    def validate_constraints(self, exclude=None):
        # clean() already said it, next to the field: do not repeat it as a form-wide error
        exclude = set(exclude or ()) | ({"end"} if self._ends_before_start() else set())
        super().validate_constraints(exclude=exclude)


def overlapping_spans(rows) -> list[str]:
    """Sentences naming the spans that overlap on the same weekday; rows are (weekday, start, end)."""
    problems = []
    by_day: dict[int, list[tuple[time, time]]] = {}
    for weekday, start, end in rows:
        by_day.setdefault(int(weekday), []).append((start, end))
    for weekday, spans in sorted(by_day.items()):
        spans.sort()
        for (start_a, end_a), (start_b, end_b) in zip(spans, spans[1:], strict=False):
            if end_a == MIDNIGHT or start_b < end_a:
                problems.append(
                    gettext("%(day)s: %(first)s overlaps %(second)s.")
                    % {
                        "day": Weekday(weekday).label,
                        "first": f"{start_a:%H:%M}–{end_a:%H:%M}",
                        "second": f"{start_b:%H:%M}–{end_b:%H:%M}",
                    }
                )
    return problems


class Holiday(TenantModel):
    """A local date on which a calendar's clock does not run."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=120, blank=True)

    history = history()

    class Meta:
        ordering = ["calendar", "date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        constraints = [
            models.UniqueConstraint(
                fields=["calendar", "date"],
                name="sla_holiday_unique_date",
                violation_error_message="This date is already a holiday of the calendar.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class SLAPolicyQuerySet(TenantQuerySet):
    def active(self):
        return self.filter(is_active=True)


CRITERIA = ("priority", "work_order_type", "asset_criticality", "location")


class SLAPolicy(TenantModel):
    """The service level promised for some work orders: respond (start) within one business time and resolve
    (complete) within another, measured on a calendar, with a warning before the deadline and escalation.

    Which orders: those matching every criterion set (blank = any; a location covers its sub-locations). When
    several policies match, the most specific wins: the one with more criteria set, then the one with the
    deeper location. Two active policies that are equally specific and can match the same order are refused.
    """

    PRIORITIES = WorkOrder.Priority.choices
    TYPES = WorkOrder.Type.choices
    CRITICALITIES = Asset.Criticality.choices

    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True, help_text=_("Retire a policy instead of deleting it."))
    priority = models.CharField(max_length=20, choices=PRIORITIES, blank=True, help_text=_("Empty: any priority."))
    work_order_type = models.CharField(max_length=20, choices=TYPES, blank=True, help_text=_("Empty: any type."))
    asset_criticality = models.CharField(
        max_length=20, choices=CRITICALITIES, blank=True, help_text=_("Empty: any asset (or none).")
    )
    location = models.ForeignKey(
        "assets.Location",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Covers this location and every location inside it. Empty: anywhere."),
    )
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="policies")
    response_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text=_("Business minutes until the work is started.")
    )
    resolution_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text=_("Business minutes until the work is completed.")
    )
    warning_percent = models.PositiveSmallIntegerField(
        default=80,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text=_("Warn when this share of a target has passed."),
    )
    pause_statuses = models.JSONField(
        default=default_pause_statuses,
        blank=True,
        validators=[validate_pause_statuses],
        help_text=_("Work-order statuses in which the clock stops running (on hold by default)."),
    )

    objects = SLAPolicyQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["name"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="sla_slapolicy_unique_name",
                violation_error_message="A policy with this name already exists.",
            ),
            models.CheckConstraint(
                condition=Q(resolution_minutes__gte=models.F("response_minutes")),
                name="sla_slapolicy_resolution_not_before_response",
                violation_error_message="The resolution target cannot be shorter than the response target.",
            ),
            models.CheckConstraint(
                condition=Q(warning_percent__gte=1, warning_percent__lte=99), name="sla_slapolicy_warning_percent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def location_depth(self) -> int:
        if self.location_id is None:
            return 0
        return 1 + len(self.location.ancestors())

    def specificity(self) -> tuple[int, int]:
        """(criteria set, location depth): compared as a tuple, the larger wins."""
        count = sum(1 for name in ("priority", "work_order_type", "asset_criticality") if getattr(self, name))
        return count + (1 if self.location_id else 0), self.location_depth()

    def describe_scope(self) -> str:
        parts = []
        if self.priority:
            parts.append(f"{self.get_priority_display().lower()}-priority")
        if self.work_order_type:
            parts.append(self.get_work_order_type_display().lower())
        parts.append("work orders")
        if self.asset_criticality:
            parts.append(f"on {self.get_asset_criticality_display().lower()}-criticality assets")
        if self.location_id:
            parts.append(f"in {self.location}")
        return " ".join(parts) if len(parts) > 1 else "all work orders"

    def overlaps(self, other: "SLAPolicy") -> bool:
        """Whether some work order could match both (each criterion either unset on one side or equal; for
        locations, one inside the other)."""
        for name in ("priority", "work_order_type", "asset_criticality"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine and theirs and mine != theirs:
                return False
        if self.location_id and other.location_id and self.location_id != other.location_id:
            mine = {self.location_id, *(node.pk for node in self.location.ancestors())}
            theirs = {other.location_id, *(node.pk for node in other.location.ancestors())}
            if self.location_id not in theirs and other.location_id not in mine:
                return False
        return True

    def _resolution_before_response(self) -> bool:
        response, resolution = self.response_minutes, self.resolution_minutes
        return bool(response and resolution and resolution < response)

    def validate_constraints(self, exclude=None):
        # clean() already said it, next to the field: do not repeat it as a form-wide error
        exclude = set(exclude or ()) | ({"resolution_minutes"} if self._resolution_before_response() else set())
        super().validate_constraints(exclude=exclude)

    def clean(self):
        errors: dict[str, list[str]] = {}
        if self._resolution_before_response():
            errors.setdefault("resolution_minutes", []).append(
                f"The resolution target ({self.resolution_minutes} min) cannot be shorter than the response target "
                f"({self.response_minutes} min): work is started before it is completed."
            )
        if self.calendar_id:
            if self.calendar.organization_id != self.organization_id:
                errors.setdefault("calendar", []).append("The calendar belongs to another organisation.")
            elif not self.calendar.has_working_time():
                errors.setdefault("calendar", []).append(
                    f"The calendar “{self.calendar}” has no working time, so no deadline could ever be reached: "
                    "give it working hours or make it 24/7."
                )
        if self.location_id and self.location.organization_id != self.organization_id:
            errors.setdefault("location", []).append("The location belongs to another organisation.")
        if not errors and self.is_active and self.organization_id:
            clash = self.equally_specific_overlap()
            if clash is not None:
                errors.setdefault("__all__", []).append(
                    f"The policy “{clash}” ({clash.describe_scope()}) is just as specific as this one "
                    f"({self.describe_scope()}) and a work order could match both. Make one of them more specific "
                    "(add a criterion or a deeper location), give them criteria that exclude each other, or retire one."
                )
        if errors:
            raise ValidationError(errors)

    def equally_specific_overlap(self) -> "SLAPolicy | None":
        others = SLAPolicy.objects.active().filter(organization_id=self.organization_id).select_related("location")
        if self.pk:
            others = others.exclude(pk=self.pk)
        mine = self.specificity()
        for other in others.order_by("pk"):
            if other.specificity() == mine and self.overlaps(other):
                return other
        return None


class EscalationStep(TenantModel):
    """What the monitor does, in order, when a policy's clock reaches a warning or a breach: notify people,
    raise the work order's priority, or reassign it to a named person."""

    class Level(models.TextChoices):
        WARNING = "warning", _("Warning")
        BREACH = "breach", _("Breach")

    class Target(models.TextChoices):
        ANY = "any", _("Response or resolution")
        RESPONSE = "response", _("Response")
        RESOLUTION = "resolution", _("Resolution")

    class Kind(models.TextChoices):
        NOTIFY = "notify", _("Notify")
        RAISE_PRIORITY = "raise_priority", _("Raise priority")
        REASSIGN = "reassign", _("Reassign")

    policy = models.ForeignKey(SLAPolicy, on_delete=models.CASCADE, related_name="escalation_steps")
    position = models.PositiveIntegerField(default=0)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.BREACH)
    target = models.CharField(max_length=12, choices=Target.choices, default=Target.ANY)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    notify_roles = models.JSONField(
        default=list, blank=True, validators=[validate_roles], help_text=_("Notify: the members with these roles.")
    )
    notify_assignee = models.BooleanField(default=False, help_text=_("Notify: the person assigned, too."))
    raise_to = models.CharField(
        max_length=20,
        choices=SLAPolicy.PRIORITIES,
        blank=True,
        help_text=_("Raise priority: to this (never lowers it). Empty: one level up."),
    )
    reassign_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Reassign: to this person (only work not yet started can be reassigned)."),
    )

    history = history()

    class Meta:
        ordering = ["policy", "position", "id"]
        verbose_name = _("escalation step")
        verbose_name_plural = _("escalation steps")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="reassign") | Q(reassign_to__isnull=False),
                name="sla_escalationstep_reassign_has_person",
                violation_error_message="Say who to reassign the work to.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} ({self.get_target_display().lower()}): {self.describe()}"

    def describe(self) -> str:
        if self.kind == self.Kind.NOTIFY:
            who = [Role(role).label.lower() + "s" for role in self.notify_roles]
            if self.notify_assignee:
                who.append("the assignee")
            return "notify " + (", ".join(who) or "nobody")
        if self.kind == self.Kind.RAISE_PRIORITY:
            return f"raise priority to {self.raise_to}" if self.raise_to else "raise priority one level"
        return f"reassign to {self.reassign_to}" if self.reassign_to_id else "reassign"

    def applies_to(self, target: str, level: str) -> bool:
        return self.level == level and self.target in (self.Target.ANY, target)

    def clean(self):
        errors = {}
        if self.kind == self.Kind.NOTIFY and not (self.notify_roles or self.notify_assignee):
            errors["notify_roles"] = "Choose the roles to notify (or notify the assignee)."
        if self.kind == self.Kind.REASSIGN and not self.reassign_to_id:
            errors["reassign_to"] = "Say who to reassign the work to."
        if errors:
            raise ValidationError(errors)


class ClockState(models.TextChoices):
    ON_TRACK = "on_track", _("On track")
    WARNING = "warning", _("Warning")
    BREACHED = "breached", _("Breached")
    MET = "met", _("Met")


class Target(models.TextChoices):
    RESPONSE = "response", _("Response")
    RESOLUTION = "resolution", _("Resolution")


class SLAClockQuerySet(TenantQuerySet):
    def running(self):
        return self.filter(stopped_at__isnull=True, paused_since__isnull=True)


class SLAClock(TenantModel):
    """The SLA a work order runs under: the policy's targets as they were when the clock started (editing the
    policy later does not move running deadlines), the two deadlines, the time paused, and per target its
    state (on track → warning → breached, or met). Its `*_warned_at` / `*_breached_at` columns are claimed by
    the monitor with a conditional UPDATE, so each warning and breach is recorded once.

    Lifecycle: started when the order is created, paused in the policy's pause statuses, response met when the
    order is started, resolution met when it is completed (the clock stops), resumed on reopen."""

    work_order = models.OneToOneField("workorders.WorkOrder", on_delete=models.CASCADE, related_name="sla_clock")
    policy = models.ForeignKey(SLAPolicy, on_delete=models.PROTECT, related_name="clocks")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="clocks")
    # copied from the policy when the clock starts (or is re-targeted by a person's edit)
    response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    warning_percent = models.PositiveSmallIntegerField()
    pause_statuses = models.JSONField(default=default_pause_statuses)

    started_at = models.DateTimeField()
    paused_since = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.PositiveIntegerField(default=0, help_text=_("Business seconds spent paused."))
    stopped_at = models.DateTimeField(null=True, blank=True, help_text=_("Completed or cancelled."))

    response_due_at = models.DateTimeField()
    response_warning_at = models.DateTimeField()
    response_state = models.CharField(max_length=10, choices=ClockState.choices, default=ClockState.ON_TRACK)
    response_met_at = models.DateTimeField(null=True, blank=True)
    response_seconds = models.PositiveIntegerField(null=True, blank=True, help_text=_("Business seconds taken."))
    response_warned_at = models.DateTimeField(null=True, blank=True)
    response_breached_at = models.DateTimeField(null=True, blank=True)

    resolution_due_at = models.DateTimeField()
    resolution_warning_at = models.DateTimeField()
    resolution_state = models.CharField(max_length=10, choices=ClockState.choices, default=ClockState.ON_TRACK)
    resolution_met_at = models.DateTimeField(null=True, blank=True)
    resolution_seconds = models.PositiveIntegerField(null=True, blank=True, help_text=_("Business seconds taken."))
    resolution_warned_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)

    objects = SLAClockQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("SLA clock")
        verbose_name_plural = _("SLA clocks")  # delete_or_conflict joins them as str()
        constraints = [
            models.CheckConstraint(
                condition=Q(resolution_minutes__gte=models.F("response_minutes")),
                name="sla_slaclock_resolution_not_before_response",
            ),
        ]
        indexes = [
            # monitor, warnings: WHERE response_warning_at <= now AND response_warned_at IS NULL
            #   AND response_met_at IS NULL AND stopped_at IS NULL (AND paused_since IS NULL)
            models.Index(
                fields=["response_warning_at"],
                name="sla_clock_resp_warn_idx",
                condition=Q(response_warned_at__isnull=True, response_met_at__isnull=True, stopped_at__isnull=True),
            ),
            # monitor, breaches: WHERE response_due_at <= now AND response_breached_at IS NULL AND ...
            models.Index(
                fields=["response_due_at"],
                name="sla_clock_resp_due_idx",
                condition=Q(response_breached_at__isnull=True, response_met_at__isnull=True, stopped_at__isnull=True),
            ),
            models.Index(
                fields=["resolution_warning_at"],
                name="sla_clock_resol_warn_idx",
                condition=Q(resolution_warned_at__isnull=True, resolution_met_at__isnull=True, stopped_at__isnull=True),
            ),
            models.Index(
                fields=["resolution_due_at"],
                name="sla_clock_resol_due_idx",
                condition=Q(
                    resolution_breached_at__isnull=True, resolution_met_at__isnull=True, stopped_at__isnull=True
                ),
            ),
            # performance and the analytics compliance: WHERE organization_id = ? AND started_at >= ? AND < ?,
            #   counting states: an index-only scan of the period's clocks (cancelled orders: a hashed anti-join)
            models.Index(
                fields=["organization", "started_at"],
                include=["id", "work_order", "response_state", "resolution_state"],
                name="sla_clock_org_started_cov_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"SLA clock of {self.work_order_id} ({self.policy})"

    @property
    def is_paused(self) -> bool:
        return self.paused_since is not None

    @property
    def is_running(self) -> bool:
        return self.stopped_at is None and self.paused_since is None

    @property
    def state(self) -> str:
        """The worse of the two targets' states (what a list shows)."""
        return overall_state(self.response_state, self.resolution_state)


STATE_RANK = {ClockState.BREACHED: 3, ClockState.WARNING: 2, ClockState.ON_TRACK: 1, ClockState.MET: 0}


def overall_state(response_state: str, resolution_state: str) -> str:
    return max((response_state, resolution_state), key=lambda state: STATE_RANK[state])


class SLAViolation(TenantModel):
    """A warning or a breach of one target of a work order's SLA, recorded once by the monitor, with what
    the escalation steps did. Append-only: it is its own audit trail."""

    Level = EscalationStep.Level

    clock = models.ForeignKey(SLAClock, on_delete=models.CASCADE, related_name="violations")
    work_order = models.ForeignKey("workorders.WorkOrder", on_delete=models.CASCADE, related_name="sla_violations")
    policy = models.ForeignKey(SLAPolicy, on_delete=models.PROTECT, related_name="violations")
    kind = models.CharField(max_length=12, choices=Target.choices)
    level = models.CharField(max_length=10, choices=EscalationStep.Level.choices)
    priority = models.CharField(max_length=20, choices=SLAPolicy.PRIORITIES, help_text=_("The order's, at the time."))
    threshold_at = models.DateTimeField(help_text=_("The warning time or the deadline that was passed."))
    detected_at = models.DateTimeField()
    late_seconds = models.PositiveIntegerField(help_text=_("How long after the threshold the monitor saw it."))
    escalations = models.JSONField(default=list, blank=True, help_text=_("What each escalation step did."))

    class Meta:
        ordering = ["-detected_at", "-id"]
        verbose_name = _("SLA violation")
        verbose_name_plural = _("SLA violations")
        constraints = [
            models.UniqueConstraint(fields=["clock", "kind", "level"], name="sla_slaviolation_once_per_clock"),
        ]
        indexes = [
            # the violations list (cursor pages): WHERE organization_id = ? [AND kind/level/policy/priority]
            # ORDER BY detected_at DESC, id DESC
            models.Index(fields=["organization", "detected_at", "id"], name="sla_violation_org_det_id_idx"),
            # /metrics (sla/business_metrics.py): SELECT [organization_id,] level, COUNT(*) GROUP BY [1,] level, an
            # index-only scan (2 MB at 282,000 violations, the values deduplicated) where the table is 39 MB
            models.Index(fields=["organization", "level"], name="sla_violation_org_level_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_level_display().lower()} on work order {self.work_order_id}"
