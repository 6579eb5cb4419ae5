"""Work orders: the unit of maintenance work, its lifecycle, checklist, time, costs and requests."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from maintenance_site.analytics.definitions import REACTIVE_TYPES
from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet


class Team(TenantModel):
    """A crew of technicians that work can be assigned to as a group (electrical, night shift)."""

    name = models.CharField(max_length=120)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="maintenance_teams")

    history = history(m2m_fields=[members])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="workorders_team_unique_name",
                violation_error_message="A team with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Procedure(TenantModel):
    """A reusable checklist (a procedure in the library), applied to work orders and preventive templates."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="workorders_procedure_unique_name",
                violation_error_message="A procedure with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ItemKind(models.TextChoices):
    TICK = "tick", _("Tick when done")
    PASS_FAIL = "pass_fail", _("Pass / fail")
    NUMBER = "number", _("Number with unit")
    TEXT = "text", _("Text")


class ProcedureItem(TenantModel):
    """One step of a procedure."""

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    text = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.TICK)
    unit = models.CharField(max_length=20, blank=True)
    required = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["procedure", "position", "id"]

    def __str__(self) -> str:
        return self.text


class FailureCode(TenantModel):
    """One entry of the organisation's failure-code library: a problem (what was wrong), a cause (why) or a remedy
    (what fixed it), optionally for one asset type only. Reactive work orders carry one of each; analytics count
    failures by them (a Pareto of causes). A code in use is deactivated, not deleted."""

    class Kind(models.TextChoices):
        PROBLEM = "problem", _("Problem")
        CAUSE = "cause", _("Cause")
        REMEDY = "remedy", _("Remedy")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    code = models.CharField(max_length=20, help_text=_("Short and unique per kind, such as BRG-WEAR."))
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    asset_type = models.ForeignKey(
        "assets.AssetType",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Only for assets of this type; empty: any asset."),
    )
    is_active = models.BooleanField(default=True, help_text=_("Inactive codes stay on past work but are not offered."))

    history = history()

    class Meta:
        ordering = ["kind", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "code"],
                name="workorders_failurecode_unique_code",
                violation_error_message="A code of this kind with this code already exists.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def clean(self):
        if self.asset_type_id and self.asset_type.organization_id != self.organization_id:
            raise ValidationError({"asset_type": gettext("The asset type belongs to another organisation.")})


# The failure-code fields of a work order and the kind of code each takes. Reactive work orders
# (`definitions.REACTIVE_TYPES`: corrective, emergency) record a failure and carry them.
FAILURE_CODE_FIELDS = {"problem_code": "problem", "cause_code": "cause", "remedy_code": "remedy"}


# Priorities by urgency (critical first): `?ordering=priority` sorts by this, and an index holds it.
PRIORITY_URGENCY = Case(
    When(priority="critical", then=Value(0)),
    When(priority="high", then=Value(1)),
    When(priority="medium", then=Value(2)),
    When(priority="low", then=Value(3)),
    output_field=IntegerField(),
)


class WorkOrderQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(status__in=WorkOrder.OPEN_STATUSES)

    def overdue(self, now=None):
        return self.open().filter(due_at__lt=now or timezone.now())

    def assigned_to(self, user):
        return self.filter(Q(assignee=user) | Q(team__members=user)).distinct()


class WorkOrder(TenantModel):
    """A piece of maintenance work on an asset (or a location): who does it, when, what it took, what it cost.

    Status moves only through `workorders.services.transition`, following TRANSITIONS below.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ASSIGNED = "assigned", _("Assigned")
        IN_PROGRESS = "in_progress", _("In progress")
        ON_HOLD = "on_hold", _("On hold")
        COMPLETED = "completed", _("Completed")
        VERIFIED = "verified", _("Verified")
        CANCELLED = "cancelled", _("Cancelled")

    class Type(models.TextChoices):
        CORRECTIVE = "corrective", _("Corrective")
        PREVENTIVE = "preventive", _("Preventive")
        PREDICTIVE = "predictive", _("Predictive")
        INSPECTION = "inspection", _("Inspection")
        EMERGENCY = "emergency", _("Emergency")
        ROUTINE = "routine", _("Routine")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        CRITICAL = "critical", _("Critical")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Manual")
        REQUEST = "request", _("Work request")
        PREVENTIVE = "preventive", _("Preventive schedule")
        PREDICTIVE = "predictive", _("Predictive alert")
        ESCALATION = "escalation", _("Escalation")
        FOLLOW_UP = "follow_up", _("Follow-up")

    OPEN_STATUSES = (Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS, Status.ON_HOLD)
    CLOSED_STATUSES = (Status.COMPLETED, Status.VERIFIED, Status.CANCELLED)
    PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}

    number = models.CharField(max_length=20, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.CORRECTIVE)
    priority = models.CharField(max_length=20, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, editable=False)
    asset = models.ForeignKey(  # indexed by wo_asset_created_idx
        "assets.Asset", on_delete=models.PROTECT, null=True, blank=True, related_name="work_orders", db_index=False
    )
    location = models.ForeignKey(
        "assets.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="work_orders"
    )
    assignee = models.ForeignKey(  # indexed by wo_assignee_created_idx
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_work_orders",
        db_index=False,
    )
    team = models.ForeignKey(  # indexed by wo_team_created_idx
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="work_orders", db_index=False
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    scheduled_start = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the work is planned to start; the estimate gives its length (the planner's calendar)."),
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    estimated_minutes = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    needs_downtime = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
        help_text=_("The work order this one follows up."),
    )
    hold_reason = models.TextField(blank=True, editable=False)
    cancel_reason = models.TextField(blank=True, editable=False)
    completion_notes = models.TextField(blank=True)
    # Free text from before the failure-code library (migration 0006 linked the values that were codes); kept as
    # notes, readable and editable, next to the codes below.
    failure_cause = models.CharField(max_length=60, blank=True, help_text=_("Failure cause, in words (a note)."))
    remedy = models.CharField(max_length=60, blank=True, help_text=_("Remedy, in words (a note)."))
    problem_code = models.ForeignKey(
        "workorders.FailureCode",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"kind": "problem"},
        help_text=_("What was wrong (failure-code library)."),
    )
    cause_code = models.ForeignKey(
        "workorders.FailureCode",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"kind": "cause"},
        help_text=_("Why it failed (failure-code library)."),
    )
    remedy_code = models.ForeignKey(
        "workorders.FailureCode",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"kind": "remedy"},
        help_text=_("What fixed it (failure-code library)."),
    )

    objects = WorkOrderQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="workorders_workorder_unique_number"),
            models.CheckConstraint(
                condition=Q(estimated_minutes__isnull=True) | Q(estimated_minutes__gt=0),
                name="workorders_workorder_estimate_positive",
            ),
        ]
        # The list (API and admin) reads one page of an organisation's orders in the order asked for; each index
        # below is that order, after the filter it serves, so a page is an index range at any size. Ties go by id
        # in the direction of the order (workorders.filters.WorkOrderOrdering), cursors seek in the same range
        # (maintenance_site.api.pagination). Searches use the trigram indexes (migration 0005_list_indexes).
        indexes = [
            # the default list, newest first, and ?ordering=created_at: WHERE organization_id = ?
            #   [AND created_at <= ? AND (created_at, id) < (?, ?)] ORDER BY created_at DESC, id DESC LIMIT 51
            models.Index(fields=["organization", "created_at", "id"], name="wo_org_created_idx"),
            # ?status=X: WHERE organization_id = ? AND status = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["organization", "status", "created_at", "id"], name="wo_org_status_created_idx"),
            # ?status=open,assigned (any open statuses), ?overdue=true, the admin's open work:
            #   WHERE organization_id = ? AND status IN (<open statuses>) ORDER BY created_at DESC, id DESC
            #   and the analytics backlog's "open now" (covering what its aggregates read: index-only)
            models.Index(
                fields=["organization", "created_at", "id"],
                include=["completed_at", "cancelled_at", "estimated_minutes"],
                condition=Q(status__in=["open", "assigned", "in_progress", "on_hold"]),
                name="wo_org_open_created_idx",
            ),
            # /metrics: open and overdue orders, per organisation or in all (index-only):
            #   SELECT organization_id, COUNT(*) WHERE status IN (<open statuses>) [AND due_at < now] GROUP BY 1
            models.Index(
                fields=["organization", "due_at"],
                condition=Q(status__in=["open", "assigned", "in_progress", "on_hold"]),
                name="wo_org_open_due_idx",
            ),
            # /metrics: preventive orders generated: SELECT organization_id, COUNT(*) WHERE source = 'preventive' ...
            models.Index(fields=["organization"], condition=Q(source="preventive"), name="wo_org_preventive_idx"),
            # ?priority=X (also with ?status=Y): WHERE organization_id = ? AND priority = ? ORDER BY created_at DESC
            models.Index(fields=["organization", "priority", "created_at", "id"], name="wo_org_priority_created_idx"),
            # ?assignee=ID and ?mine=true: WHERE assignee_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["assignee", "created_at", "id"], name="wo_assignee_created_idx"),
            # the technician's work: WHERE assignee_id = ? AND status IN (...)
            models.Index(fields=["assignee", "status"], name="wo_assignee_status_idx"),
            # ?asset=ID, an asset's orders: WHERE asset_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["asset", "created_at", "id"], name="wo_asset_created_idx"),
            # ?team=ID and ?mine=true: WHERE team_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["team", "created_at", "id"], name="wo_team_created_idx"),
            # ?ordering=due_at, ?due_before/?due_after, overdue: WHERE organization_id = ? AND due_at < ?
            #   ORDER BY due_at, id
            models.Index(fields=["organization", "due_at", "id"], name="wo_org_due_idx"),
            # sync and ?ordering=updated_at: WHERE organization_id = ? AND (updated_at, id) > (?, ?)
            #   ORDER BY updated_at, id
            models.Index(fields=["organization", "updated_at", "id"], name="wo_org_updated_idx"),
            # the planner's calendar and the dispatch board: WHERE organization_id = ? AND scheduled_start >= ?
            #   AND scheduled_start < ? (the capacity's planned hours the same, per assignee and local day)
            models.Index(
                fields=["organization", "scheduled_start"],
                condition=Q(scheduled_start__isnull=False),
                name="wo_org_scheduled_idx",
            ),
            # ?ordering=priority (by urgency): ORDER BY <the rank of the priority>, id
            models.Index(F("organization"), PRIORITY_URGENCY, F("id"), name="wo_org_priority_rank_idx"),
            # ?ordering=number: the unique (organization, number) index above.
            # analytics, work completed in a period (planned ratio, rework, wrench time, failure codes):
            #   WHERE organization_id = ? AND status IN ('completed', 'verified') AND completed_at >= ? AND < ?
            #   and the backlog's "closed after the period's start": ... OR completed_at >= ?
            #   covering what the aggregates read, so the period's completions are an index-only range scan
            models.Index(
                fields=["organization", "completed_at"],
                include=["id", "status", "type", "estimated_minutes", "created_at", "cancelled_at"],
                condition=Q(completed_at__isnull=False),
                name="wo_org_completed_cov_idx",
            ),
            # analytics, rework: follow-ups (orders with a parent) created in a period, joined to their parent
            models.Index(
                fields=["organization", "created_at"],
                include=["parent"],
                condition=Q(parent__isnull=False),
                name="wo_org_followup_created_idx",
            ),
            # the backlog's "cancelled after the period's start": ... OR cancelled_at >= ?
            models.Index(
                fields=["organization", "cancelled_at"],
                condition=Q(cancelled_at__isnull=False),
                name="wo_org_cancelled_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def clean(self):
        errors = {}
        for field in ("asset", "location", "team", "parent"):
            related = getattr(self, field)
            if related is not None and related.organization_id != self.organization_id:
                errors[field] = f"The {field} belongs to another organisation."
        for field, kind in FAILURE_CODE_FIELDS.items():
            code = getattr(self, field)
            if code is None:
                continue
            if code.organization_id != self.organization_id:
                errors[field] = "The code belongs to another organisation."
            elif code.kind != kind:
                errors[field] = f"“{code.code}” is a {code.get_kind_display().lower()} code, not a {kind} code."
            elif code.asset_type_id and self.asset_id and self.asset.asset_type_id != code.asset_type_id:
                errors[field] = f"“{code.code}” is for {code.asset_type}; this asset is of another type."
        if errors:
            raise ValidationError(errors)

    @property
    def missing_failure_codes(self) -> list[str]:
        """The failure-code fields a reactive order must fill before completion, when its organisation requires
        codes (`Organization.require_failure_codes`)."""
        if not self.organization.require_failure_codes or self.type not in REACTIVE_TYPES:
            return []
        return [field for field in FAILURE_CODE_FIELDS if getattr(self, f"{field}_id") is None]

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def version(self) -> str:
        """The order as it stands, "<order>.<checklist>": the ids of its latest history row and of its checklist's.
        A phone sends it with what it did offline, so the server can tell a step or a tick made on an order that
        somebody else changed since (`services.check_version`)."""
        order = self.history.order_by("-history_id").values_list("history_id", flat=True).first() or 0
        items = ChecklistItem.history.filter(work_order_id=self.pk).order_by("-history_id")
        return f"{order}.{items.values_list('history_id', flat=True).first() or 0}"

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()


# The lifecycle, as data: action -> (statuses it starts from, status it leads to).
# None as the target keeps the current status (reassigning work already under way).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "assign": ((WorkOrder.Status.OPEN, WorkOrder.Status.ASSIGNED), WorkOrder.Status.ASSIGNED),
    "unassign": ((WorkOrder.Status.ASSIGNED,), WorkOrder.Status.OPEN),
    "start": ((WorkOrder.Status.OPEN, WorkOrder.Status.ASSIGNED), WorkOrder.Status.IN_PROGRESS),
    "hold": ((WorkOrder.Status.IN_PROGRESS,), WorkOrder.Status.ON_HOLD),
    "resume": ((WorkOrder.Status.ON_HOLD,), WorkOrder.Status.IN_PROGRESS),
    "complete": ((WorkOrder.Status.IN_PROGRESS,), WorkOrder.Status.COMPLETED),
    "verify": ((WorkOrder.Status.COMPLETED,), WorkOrder.Status.VERIFIED),
    "reject": ((WorkOrder.Status.COMPLETED,), WorkOrder.Status.IN_PROGRESS),
    "reopen": ((WorkOrder.Status.COMPLETED, WorkOrder.Status.VERIFIED), WorkOrder.Status.IN_PROGRESS),
    "cancel": (
        (WorkOrder.Status.OPEN, WorkOrder.Status.ASSIGNED, WorkOrder.Status.IN_PROGRESS, WorkOrder.Status.ON_HOLD),
        WorkOrder.Status.CANCELLED,
    ),
}


class ChecklistItem(TenantModel):
    """One step of a work order's checklist, copied from a procedure or added by hand, with its result."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="checklist")
    position = models.PositiveIntegerField(default=0)
    text = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.TICK)
    unit = models.CharField(max_length=20, blank=True)
    required = models.BooleanField(default=True)
    done = models.BooleanField(default=False)
    passed = models.BooleanField(null=True, blank=True, help_text=_("Pass / fail items: the verdict."))
    number_value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    text_value = models.TextField(blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    follow_up = models.ForeignKey(
        WorkOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="raised_by_items"
    )
    client_id = models.CharField(
        max_length=64, blank=True, help_text=_("Set by offline clients: a replay applies once.")
    )

    history = history()

    class Meta:
        ordering = ["work_order", "position", "id"]

    def __str__(self) -> str:
        return self.text

    @property
    def result(self):
        if self.kind == ItemKind.PASS_FAIL:
            return None if self.passed is None else ("pass" if self.passed else "fail")
        if self.kind == ItemKind.NUMBER:
            return self.number_value
        if self.kind == ItemKind.TEXT:
            return self.text_value or None
        return self.done


class Comment(TenantModel):
    """A note on a work order."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    client_id = models.CharField(
        max_length=64, blank=True, help_text=_("Set by offline clients: unique per author, a replay applies once.")
    )
    occurred_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it was written on the phone (offline); created_at: when it arrived.")
    )

    history = history()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "author", "client_id"],
                condition=~Q(client_id=""),
                name="workorders_comment_unique_client_id",
            ),
        ]

    def __str__(self) -> str:
        return self.body[:50]


class TimeEntry(TenantModel):
    """Time a technician spent on a work order; the hourly rate is copied when entered, so labour cost
    does not change when the rate does."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="time_entries")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        help_text=_("Who recorded it: the technician, or a planner logging time for them."),
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    minutes = models.PositiveIntegerField(null=True, blank=True, help_text=_("Empty while a timer runs."))
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    note = models.CharField(max_length=300, blank=True)
    client_id = models.CharField(
        max_length=64, blank=True, help_text=_("Set by offline clients: unique per author, a replay applies once.")
    )

    history = history()

    class Meta:
        ordering = ["work_order", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "entered_by", "client_id"],
                condition=~Q(client_id=""),
                name="workorders_timeentry_unique_client_id",
            ),
            models.CheckConstraint(
                condition=Q(minutes__isnull=True) | Q(minutes__gt=0), name="workorders_timeentry_minutes_positive"
            ),
            models.UniqueConstraint(
                fields=["technician"], condition=Q(minutes__isnull=True), name="workorders_timeentry_one_running_timer"
            ),
        ]
        indexes = [
            # analytics, labour cost of a period: WHERE organization_id = ? AND COALESCE(started_at, created_at)
            #   >= ? AND < ? (workorders.analytics.cost_kpis: time without a start counts when it was entered)
            #   with the amounts and the moment's columns as trailing keys (PostgreSQL scans index-only only when
            #   every column the query names is in the index, the expression's too): the period's entries only
            models.Index(
                F("organization"),
                Coalesce("started_at", "created_at"),
                F("minutes"),
                F("hourly_rate"),
                F("started_at"),
                F("created_at"),
                name="wo_time_org_moment_cov_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.technician} {self.minutes or 'running'} min"

    @property
    def cost(self) -> Decimal:
        if not self.minutes:
            return Decimal("0.00")
        return (self.hourly_rate * self.minutes / 60).quantize(Decimal("0.01"))


class CostLine(TenantModel):
    """A cost that is neither labour nor stock parts: a contractor invoice, a rental, a permit."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="cost_lines")
    description = models.CharField(max_length=300)
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    history = history()

    class Meta:
        ordering = ["work_order", "created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="workorders_costline_amount_not_negative"),
        ]
        indexes = [
            # analytics, external cost of a period: WHERE organization_id = ? AND created_at >= ? AND < ?
            models.Index(fields=["organization", "created_at"], name="wo_costline_org_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


def attachment_path(instance, filename):
    return f"attachments/{instance.organization_id}/{timezone.now():%Y/%m}/{instance.token}-{filename}"


class Attachment(TenantModel):
    """A file on a work order or a work request: stored outside any public URL and served only to people
    allowed to see what it is attached to."""

    work_order = models.ForeignKey(
        WorkOrder, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    request = models.ForeignKey(
        "workorders.WorkRequest", on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    token = models.CharField(max_length=32, unique=True, editable=False)
    file = models.FileField(upload_to=attachment_path, max_length=300)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    history = history()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(work_order__isnull=False) | Q(request__isnull=False),
                name="workorders_attachment_has_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.original_name


class WorkRequest(TenantModel):
    """A problem reported by anyone, without logging in (public form, QR label). Staff approve it into a
    work order or reject it with a reason the requester sees through their link."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    token = models.CharField(max_length=32, unique=True, editable=False)
    asset = models.ForeignKey("assets.Asset", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    location = models.ForeignKey("assets.Location", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    description = models.TextField()
    contact_name = models.CharField(max_length=120, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    work_order = models.OneToOneField(
        WorkOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="request"
    )

    history = history()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the approval queue: WHERE organization_id = ? AND status = 'pending'
            models.Index(fields=["organization", "status"], name="wo_request_org_status_idx"),
            # the list (cursor pages): WHERE organization_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["organization", "created_at", "id"], name="wo_request_org_created_idx"),
            # sync and ?ordering=updated_at: WHERE organization_id = ? AND updated_at > ? ORDER BY updated_at, id
            models.Index(fields=["organization", "updated_at", "id"], name="wo_request_org_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.description[:60]


class DowntimeLink(TenantModel):
    """The work orders tied to one period of asset downtime: the order whose work took the asset down (planned
    downtime) and the order whose completion brought it back. Kept here, not on `assets.Downtime`, because assets
    come before work orders: an asset knows nothing of the work done on it."""

    downtime = models.OneToOneField("assets.Downtime", on_delete=models.CASCADE, related_name="work_order_link")
    caused_by = models.ForeignKey(
        WorkOrder,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="caused_downtime_links",
        help_text=_("The work order that took the asset down (planned downtime)."),
    )
    ended_by = models.ForeignKey(
        WorkOrder,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ended_downtime_links",
        help_text=_("The work order whose completion ended this downtime."),
    )

    history = history()

    class Meta:
        ordering = ["-downtime__started_at"]

    def __str__(self) -> str:
        return f"{self.downtime}: caused by {self.caused_by or '—'}, ended by {self.ended_by or '—'}"


class OfflineAction(TenantModel):
    """A lifecycle step (start, hold, resume, complete) that a technician's phone queued offline and sent later
    with a client id: the proof it was applied, so that a replay of the queue applies it once. `occurred_at` is
    the device's time of the step (used for the order's started/completed times, its SLA and its history);
    `created_at` is when it reached the server. Append-only: its own audit."""

    class Kind(models.TextChoices):
        START = "start", _("Start")
        HOLD = "hold", _("Hold")
        RESUME = "resume", _("Resume")
        COMPLETE = "complete", _("Complete")

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="offline_actions")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20, choices=Kind.choices)
    text = models.TextField(blank=True, help_text=_("The hold reason or the completion notes sent with the step."))
    occurred_at = models.DateTimeField(help_text=_("When it happened on the device."))
    client_id = models.CharField(max_length=64, help_text=_("The phone's id of the step: a replay applies once."))

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "author", "client_id"], name="workorders_offlineaction_unique_client_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} of {self.work_order_id} by {self.author_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ResumableUpload(TenantModel):
    """A file a phone sends in pieces (a photo taken offline, sent when the signal returns): the bytes received so
    far, until the last piece makes it an `Attachment` of the order through the attachment service (type and size
    checked there). One per author and client id, so an interrupted upload continues where it stopped and a
    repeated one adds the file once. A buffer, not a record of the business: no history (the attachment has it)."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="uploads")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    client_id = models.CharField(max_length=64, help_text=_("The phone's id of the file: one upload per id."))
    name = models.CharField(max_length=255)
    size = models.PositiveIntegerField(help_text=_("The whole file's length in bytes, announced at the start."))
    received = models.PositiveIntegerField(default=0, help_text=_("Bytes received so far: the next piece's offset."))
    data = models.BinaryField(default=b"", editable=False, help_text=_("The bytes received; emptied once attached."))
    occurred_at = models.DateTimeField(null=True, blank=True, help_text=_("When the photo was taken on the phone."))
    attachment = models.OneToOneField(
        Attachment, on_delete=models.SET_NULL, null=True, blank=True, related_name="upload"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "author", "client_id"], name="workorders_resumableupload_unique_client_id"
            ),
            models.CheckConstraint(
                condition=Q(received__lte=F("size")), name="workorders_resumableupload_received_within_size"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.received}/{self.size} bytes)"

    @property
    def complete(self) -> bool:
        return self.attachment_id is not None


def default_budget_thresholds() -> list:
    return [80, 100]


class Budget(TenantModel):
    """A maintenance spending limit for one period (a month, a quarter or a year starting on `starts_on`): for the
    whole organisation, a location and everything below it, an asset type or one asset, for one cost category or
    all. Analytics set the actual spend (and the committed spend of open purchase orders) against it; crossing a
    threshold (a percentage of the amount) raises `budget:threshold-crossed` once (`BudgetCrossing`)."""

    class Period(models.TextChoices):
        MONTH = "month", _("Month")
        QUARTER = "quarter", _("Quarter")
        YEAR = "year", _("Year")

    class Category(models.TextChoices):
        ALL = "all", _("All costs")
        LABOUR = "labour", _("Labour")
        PARTS = "parts", _("Parts")
        EXTERNAL = "external", _("External")

    name = models.CharField(max_length=120)
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    starts_on = models.DateField(help_text=_("The first day of the month, quarter or year."))
    category = models.CharField(max_length=10, choices=Category.choices, default=Category.ALL)
    amount = models.DecimalField(max_digits=14, decimal_places=2, validators=[MinValueValidator(0)])
    location = models.ForeignKey(
        "assets.Location",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("This location and everything below it; empty: the whole organisation."),
    )
    asset_type = models.ForeignKey(
        "assets.AssetType", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    thresholds = models.JSONField(
        default=default_budget_thresholds,
        help_text=_("Percentages of the amount at which actual + committed spend raises an alert, such as [80, 100]."),
    )

    history = history()

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name", "period", "starts_on"],
                name="workorders_budget_unique_name_period",
                violation_error_message="A budget with this name already exists for this period.",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="workorders_budget_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(location__isnull=True, asset_type__isnull=True)
                | Q(location__isnull=True, asset__isnull=True)
                | Q(asset_type__isnull=True, asset__isnull=True),
                name="workorders_budget_one_scope",
                violation_error_message="A budget is for a location, an asset type or an asset: one of them at most.",
            ),
        ]
        indexes = [
            # budgets of a period: WHERE organization_id = ? AND starts_on <= ? (and the threshold check)
            models.Index(fields=["organization", "starts_on"], name="wo_budget_org_starts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_period_display().lower()} from {self.starts_on})"

    @property
    def ends_on(self):
        """The last day of the budget's period."""
        months = {"month": 1, "quarter": 3, "year": 12}.get(self.period, 1)
        month = self.starts_on.month - 1 + months
        first_after = self.starts_on.replace(year=self.starts_on.year + month // 12, month=month % 12 + 1, day=1)
        return first_after - timedelta(days=1)

    def clean(self):
        errors = {}
        if self.starts_on:
            if not 1970 <= self.starts_on.year <= 2199:
                errors["starts_on"] = "A budget is for a period between 1970 and 2199."
            elif self.starts_on.day != 1:
                errors["starts_on"] = "A budget period starts on the first day of a month."
            elif self.period == self.Period.QUARTER and self.starts_on.month not in (1, 4, 7, 10):
                errors["starts_on"] = "A quarter starts on 1 January, April, July or October."
            elif self.period == self.Period.YEAR and self.starts_on.month != 1:
                errors["starts_on"] = "A year starts on 1 January."
        scopes = [name for name in ("location", "asset_type", "asset") if getattr(self, f"{name}_id")]
        if len(scopes) > 1:
            errors[scopes[1]] = "A budget is for a location, an asset type or an asset: one of them at most."
        for name in scopes:
            if getattr(self, name).organization_id != self.organization_id:
                errors[name] = f"The {name.replace('_', ' ')} belongs to another organisation."
        thresholds = self.thresholds
        if not isinstance(thresholds, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and 0 < t <= 1000 for t in thresholds
        ):
            errors["thresholds"] = "A list of percentages between 1 and 1000, such as [80, 100]."
        if errors:
            raise ValidationError(errors)


class BudgetCrossing(TenantModel):
    """A budget's threshold crossed by actual + committed spend: written once (the unique key), so the alert and its
    notification go out once per budget, period and threshold, however often the check runs."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="crossings")
    threshold = models.PositiveIntegerField()
    spend = models.DecimalField(max_digits=14, decimal_places=2, help_text=_("Actual + committed when it crossed."))

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "threshold"], name="workorders_budgetcrossing_once"),
        ]

    def __str__(self) -> str:
        return f"{self.budget}: {self.threshold}% crossed"


# Asset health (issue 20) keeps its models in its own package.
# Capacity (issue 24): working patterns and time off, in their own package.
from workorders.capacity.models import TimeOff, WorkingPattern  # noqa: E402, F401
from workorders.health.models import (  # noqa: E402, F401
    AssetHealth,
    DiagnosticResult,
    DiagnosticRun,
    HealthSnapshot,
    PredictiveAlert,
    PredictiveSettings,
)
