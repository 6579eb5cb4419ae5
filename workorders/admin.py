"""The back office for work: work orders (saved through the services, moved through their lifecycle by
actions), the work-request approval queue, the procedure library and teams.

Every write goes through `workorders.services`. A refusal (a DomainError) never becomes a 500: on a
form it rolls the whole save back (the order and its inline rows) and shows the form again with the
person's input and the refusal; in an action it is reported per order with the messages framework.
"""

import csv
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import segno
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from assets.admin import LocationTreeFilter
from maintenance_site import formats
from maintenance_site.db_routing import replica_alias
from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import (
    ReadOnlyAdminMixin,
    ReadOnlyTenantAdmin,
    ServiceAdmin,
    ServiceForm,
    TenantInline,
    active_organization,
    adopt,
    request_may,
)
from maintenance_site.tenancy.roles import Action, roles_allowed
from maintenance_site.validation import REASON_MAX_LENGTH
from workorders import services
from workorders.dashboard import AGE_BUCKETS
from workorders.models import (
    Attachment,
    Budget,
    ChecklistItem,
    Comment,
    CostLine,
    FailureCode,
    Procedure,
    ProcedureItem,
    Team,
    TimeEntry,
    WorkOrder,
    WorkRequest,
)
from workorders.views import attachment_url

# Colour badges of the list (backoffice.css .badge-*)
STATUS_COLOURS = {
    WorkOrder.Status.OPEN: "blue",
    WorkOrder.Status.ASSIGNED: "indigo",
    WorkOrder.Status.IN_PROGRESS: "teal",
    WorkOrder.Status.ON_HOLD: "amber",
    WorkOrder.Status.COMPLETED: "green",
    WorkOrder.Status.VERIFIED: "green",
    WorkOrder.Status.CANCELLED: "grey",
}
PRIORITY_COLOURS = {
    WorkOrder.Priority.LOW: "grey",
    WorkOrder.Priority.MEDIUM: "blue",
    WorkOrder.Priority.HIGH: "amber",
    WorkOrder.Priority.CRITICAL: "red",
}
SLA_COLOURS = {"on_track": "green", "warning": "amber", "breached": "red", "met": "teal", "paused": "grey"}
SLA_LABELS = {
    "on_track": _("On track"),
    "warning": _("At risk"),
    "breached": _("Breached"),
    "met": _("Met"),
    "paused": _("Paused"),
}


def _numbered(work_order, message) -> str:
    """A refusal that does not name its order, prefixed with the order's number."""
    return _("%(number)s: %(problem)s") % {"number": work_order.number, "problem": message}


def badge(label, colour: str):
    return format_html('<span class="badge badge-{}">{}</span>', colour, label)


User = get_user_model()

MAX_LISTED = 20  # orders named in one message; beyond that "… and N more"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        return _("%(listed)s and %(count)s more") % {"listed": shown, "count": len(items) - MAX_LISTED}
    return shown


def workers(organization_ids):
    """Active members who may carry out work (the roles with EXECUTE_WORK) in these organisations."""
    roles = [role.value for role in roles_allowed(Action.EXECUTE_WORK)]
    return (
        User.objects.filter(
            is_active=True,
            memberships__organization_id__in=list(organization_ids),
            memberships__is_active=True,
            memberships__role__in=roles,
        )
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        full_name = obj.get_full_name()
        return f"{full_name} ({obj.get_username()})" if full_name else obj.get_username()


# --- work orders: inlines ------------------------------------------------------------------------------


class WorkOrderChildInline(TenantInline):
    """Rows of a work order: existing ones are read-only (they change through the technician's view and
    the services); new ones are added through the services by WorkOrderAdmin.save_formset."""

    write_action = Action.CREATE_WORK
    can_delete = False
    related = ()

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.related)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_through_service(self, request, work_order, row):
        raise NotImplementedError


class ChecklistItemInline(WorkOrderChildInline):
    model = ChecklistItem
    fk_name = "work_order"
    fields = ["text", "kind", "unit", "required", "result_display", "done_by", "done_at"]
    readonly_fields = ["result_display", "done_by", "done_at"]
    related = ("done_by",)
    ordering = ["position", "id"]

    @admin.display(description=_("result"))
    def result_display(self, item):
        if item.pk is None:
            return "-"
        result = item.result
        if result is None or result is False:
            return "not done" if not item.done else "-"
        if result is True:
            return "done"
        return f"{result} {item.unit}".strip()

    def add_through_service(self, request, work_order, row):
        return services.add_checklist_item(
            work_order, text=row.text, kind=row.kind, required=row.required, unit=row.unit, actor=request.user
        )


class TimeEntryInline(WorkOrderChildInline):
    model = TimeEntry
    write_action = Action.EXECUTE_WORK
    fields = ["technician", "minutes", "note", "hourly_rate", "cost_display", "created_at"]
    readonly_fields = ["hourly_rate", "cost_display", "created_at"]
    related = ("technician",)
    verbose_name_plural = _("time entries (labour cost = minutes × the rate copied when logged)")

    @admin.display(description=_("cost"))
    def cost_display(self, entry):
        return entry.cost if entry.pk else "-"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "technician":
            if not request.user.is_superuser:
                organization = active_organization(request)
                kwargs["queryset"] = workers([organization.pk] if organization else [])
            kwargs["initial"] = request.user.pk
            kwargs["form_class"] = PersonChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def add_through_service(self, request, work_order, row):
        return services.log_time(
            work_order, actor=request.user, minutes=row.minutes, technician=row.technician, note=row.note
        )


class CommentInline(WorkOrderChildInline):
    model = Comment
    fields = ["body", "author", "created_at"]
    readonly_fields = ["author", "created_at"]
    related = ("author",)

    def add_through_service(self, request, work_order, row):
        return services.add_comment(work_order, actor=request.user, body=row.body)


class CostLineInline(WorkOrderChildInline):
    model = CostLine
    fields = ["description", "amount", "added_by", "created_at"]
    readonly_fields = ["added_by", "created_at"]
    related = ("added_by",)
    verbose_name_plural = _("other costs (contractors, rentals, permits)")

    def add_through_service(self, request, work_order, row):
        return services.add_cost_line(work_order, actor=request.user, description=row.description, amount=row.amount)


class AttachmentInline(ReadOnlyAdminMixin, WorkOrderChildInline):
    """Files are uploaded from the technician's view and the API; here they are listed and downloaded
    through the authenticated download view."""

    model = Attachment
    fk_name = "work_order"
    fields = ["download", "content_type", "size_display", "uploaded_by", "created_at"]
    readonly_fields = fields
    related = ("uploaded_by",)

    @admin.display(description=_("file"))
    def download(self, attachment):
        url = attachment_url(attachment)
        if url is None:
            return attachment.original_name
        return format_html('<a href="{}">{}</a>', url, attachment.original_name)

    @admin.display(description=_("size"))
    def size_display(self, attachment):
        size = attachment.size or 0
        if size >= 2**20:
            return _("%(size)s MB") % {"size": number_format(round(size / 2**20, 1), 1)}
        return _("%(size)s KB") % {"size": max(1, round(size / 1024))}


# --- work orders: list filters ---------------------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("no", _("Not overdue"))]

    def queryset(self, request, queryset):
        overdue = Q(status__in=WorkOrder.OPEN_STATUSES, due_at__lt=timezone.now())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class TeamScopeFilter(admin.SimpleListFilter):
    """ "My teams": the orders of the teams the person belongs to (a saved filter of the sidebar)."""

    title = _("team scope")
    parameter_name = "team_scope"

    def lookups(self, request, model_admin):
        return [("mine", _("My teams"))]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return queryset.filter(team__in=Team.objects.filter(members=request.user).values("pk"))
        return queryset


class WaitingFilter(admin.SimpleListFilter):
    """ "Waiting for parts": on hold with a reason that names parts (a saved filter of the sidebar)."""

    title = _("waiting")
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("parts", _("Waiting for parts"))]

    def queryset(self, request, queryset):
        if self.value() == "parts":
            return queryset.filter(status=WorkOrder.Status.ON_HOLD, hold_reason__icontains="part")
        return queryset


class AgeFilter(admin.SimpleListFilter):
    """The backlog-age buckets of the dashboard's chart (workorders.dashboard.AGE_BUCKETS)."""

    title = _("age")
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [(str(index), label) for index, (label, _, _) in enumerate(AGE_BUCKETS)]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None or not value.isdigit() or int(value) >= len(AGE_BUCKETS):
            return queryset
        _, youngest, oldest = AGE_BUCKETS[int(value)]
        now = timezone.now()
        queryset = queryset.filter(created_at__lte=now - timedelta(days=youngest))
        return queryset.filter(created_at__gt=now - timedelta(days=oldest)) if oldest is not None else queryset


class WorkOrderLocationFilter(LocationTreeFilter):
    """A location and everything in it (a site filters all its buildings' work)."""

    field_path = "location"


# --- work orders: lifecycle actions ----------------------------------------------------------------------


class AssignForm(forms.Form):
    assignee = PersonChoiceField(queryset=User.objects.none(), label=_("Assign to"), empty_label=None)

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = candidates

    def transition_kwargs(self):
        return {"assignee": self.cleaned_data["assignee"]}


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)

    def transition_kwargs(self):
        return {"reason": self.cleaned_data["reason"].strip()}


class RescheduleForm(forms.Form):
    due_at = forms.DateTimeField(
        label=_("New due date and time"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=_("In the organisation's time zone."),
    )

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)


@dataclass(frozen=True)
class Lifecycle:
    """A lifecycle action's wording, each a whole sentence so it translates (lazy: in the reader's language)."""

    action: str  # the services.transition action
    label: str  # the action's and the button's
    title: str  # the confirmation page's title: "Assign work orders"
    intro: str  # "Assign these work orders?"
    submit: str  # "Yes, assign"
    done: str  # the success message, with %(count)s and %(orders)s: "Assigned 2 work order(s): WO-1, WO-2."
    form: type[forms.Form] | None = None

    @property
    def permission(self) -> Action:
        """Who may: the service's own table (`services.ACTION_PERMISSION`)."""
        return services.ACTION_PERMISSION[self.action]


LIFECYCLE = {
    "assign": Lifecycle(
        "assign",
        _("Assign to…"),
        _("Assign work orders"),
        _("Assign these work orders?"),
        _("Yes, assign"),
        _("Assigned %(count)s work order(s): %(orders)s."),
        AssignForm,
    ),
    "start": Lifecycle(
        "start",
        pgettext_lazy("work order", "Start"),
        _("Start work orders"),
        _("Start these work orders?"),
        _("Yes, start"),
        _("Started %(count)s work order(s): %(orders)s."),
    ),
    "complete": Lifecycle(
        "complete",
        pgettext_lazy("work order", "Complete"),
        _("Complete work orders"),
        _("Complete these work orders?"),
        _("Yes, complete"),
        _("Completed %(count)s work order(s): %(orders)s."),
    ),
    "cancel": Lifecycle(
        "cancel",
        _("Cancel with reason…"),
        _("Cancel work orders"),
        _("Cancel these work orders?"),
        _("Yes, cancel"),
        _("Cancelled %(count)s work order(s): %(orders)s."),
        ReasonForm,
    ),
    "verify": Lifecycle(
        "verify",
        pgettext_lazy("work order", "Verify"),
        _("Verify work orders"),
        _("Verify these work orders?"),
        _("Yes, verify"),
        _("Verified %(count)s work order(s): %(orders)s."),
    ),
}

# The reschedule action's wording on the confirmation page (not a lifecycle transition: an edit of due_at).
RESCHEDULE = Lifecycle(
    "update",
    _("Reschedule…"),
    _("Reschedule work orders"),
    _("Reschedule these work orders?"),
    _("Yes, reschedule"),
    _("Rescheduled %(count)s work order(s): %(orders)s."),
    RescheduleForm,
)

CSV_HEADER = [
    "number",
    "title",
    "status",
    "priority",
    "type",
    "asset code",
    "location",
    "assignee",
    "due",
    "completed",
    "cost total",
]


class _Echo:
    """A file-like object whose write() returns the line, for streaming csv.writer output."""

    def write(self, value):
        return value


def _csv_cell(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _local(value, zone) -> str:
    return timezone.localtime(value, zone).isoformat(timespec="minutes") if value else ""


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def exported_cost_total(work_order) -> Decimal:
    """`services.cost_totals(work_order)["total"]` computed from prefetched time entries and cost lines, so a
    large export does not run two queries per order (tests pin both to the same value)."""
    labour = sum((entry.cost for entry in work_order.time_entries.all()), Decimal("0.00"))
    other = sum((line.amount for line in work_order.cost_lines.all()), Decimal("0.00"))
    parts = Decimal(services.parts_cost(work_order))
    return (labour + parts + other).quantize(Decimal("0.01"))


# --- work orders -------------------------------------------------------------------------------------


class WorkOrderForm(ServiceForm):
    procedure = forms.ModelChoiceField(
        queryset=Procedure.objects.none(), required=False, help_text=_("Its steps become the checklist.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields.pop("procedure", None)
        elif self.request is not None and not self.request.user.is_superuser:
            organization = active_organization(self.request)
            self.fields["procedure"].queryset = Procedure.objects.filter(organization=organization)
        else:
            self.fields["procedure"].queryset = Procedure.objects.all()


@admin.register(WorkOrder)
class WorkOrderAdmin(ServiceAdmin):
    write_action = Action.CREATE_WORK
    form = WorkOrderForm
    # SLA columns come from one LEFT JOIN annotation (get_queryset): no per-row query.
    # What a manager needs at 1280 px without scrolling sideways: status, priority and SLA as colour badges, the
    # due date and its overdue flag in one column, the title wrapping within its own (backoffice.css).
    list_display = [
        "number",
        "title_cell",
        "asset",
        "status_badge",
        "priority_badge",
        "assignee",
        "due",
        "sla",
    ]
    list_display_links = ["number", "title_cell"]
    list_fullwidth = True  # the theme's full-width list: the columns above fit a 1280 px window
    list_select_related = ["asset", "assignee"]
    # What the columns read (the SLA ones are annotations): not the description, notes or the clock's row.
    list_columns = ["number", "title", "status", "priority", "type", "due_at", "created_at", "organization_id"]
    list_columns += ["asset__code", "asset__name", "assignee__username", "assignee__first_name", "assignee__last_name"]
    list_filter = [
        "status",
        "priority",
        "type",
        OverdueFilter,
        TeamScopeFilter,
        WaitingFilter,
        AgeFilter,
        "assignee",
        "team",
        "asset",
        WorkOrderLocationFilter,
    ]
    search_fields = ["number", "title", "asset__code"]
    search_help_text = _("Number, title or asset code.")
    autocomplete_fields = ["asset", "location", "assignee", "team"]
    show_full_result_count = False
    # No date_hierarchy: it costs a scan of the organisation's orders per page view.
    inlines = [ChecklistItemInline, TimeEntryInline, CommentInline, AttachmentInline, CostLineInline]
    actions = [
        "assign_selected",
        "start_selected",
        "complete_selected",
        "cancel_selected",
        "verify_selected",
        "reschedule_selected",
        "export_selected_csv",
    ]

    MAIN_FIELDS = [
        "title",
        "description",
        ("type", "priority"),
        ("asset", "location"),
        ("assignee", "team"),
        ("due_at", "scheduled_start", "estimated_minutes"),
        "needs_downtime",
    ]
    STATUS_FIELDS = [
        ("number", "status"),
        ("started_at", "completed_at", "verified_at", "cancelled_at"),
        "hold_reason",
        "cancel_reason",
        ("source", "requested_by", "parent"),
    ]
    CLOSE_OUT_FIELDS = ["completion_notes", ("problem_code", "cause_code", "remedy_code"), ("failure_cause", "remedy")]
    ALWAYS_READONLY = [
        "number",
        "status",
        "started_at",
        "completed_at",
        "verified_at",
        "cancelled_at",
        "hold_reason",
        "cancel_reason",
        "source",
        "requested_by",
        "parent",
        "cost_summary",
    ]
    CLOSED_EDITABLE = services.CLOSE_OUT_FIELDS

    def get_queryset(self, request):
        # The changelist applies list_select_related only to a queryset without select_related: the SLA join
        # adds one, so name them here.
        queryset = super().get_queryset(request).select_related(*self.list_select_related)
        return services.with_extensions(queryset)

    @admin.display(description=_("title"), ordering="title")
    def title_cell(self, obj):
        return obj.title

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "grey"))

    @admin.display(description=_("priority"), ordering="priority")
    def priority_badge(self, obj):
        return badge(obj.get_priority_display(), PRIORITY_COLOURS.get(obj.priority, "grey"))

    @admin.display(description=_("due"), ordering="due_at")
    def due(self, obj):
        if obj.due_at is None:
            return "–"
        when = formats.date_time(obj.due_at)
        if obj.is_overdue:
            return format_html("{} {}", when, badge(_("Overdue"), "red"))
        return when

    @admin.display(description=_("SLA"), ordering="sla_state")
    def sla(self, obj):
        state = getattr(obj, "sla_state", None)
        if not state:
            return "–"
        due = getattr(obj, "resolution_due_at", None)
        label = SLA_LABELS.get(state, state.replace("_", " "))
        title = _("resolution due %(moment)s") % {"moment": formats.date_time(due)} if due else ""
        return format_html('<span title="{}">{}</span>', title, badge(label, SLA_COLOURS.get(state, "grey")))

    # --- the form ----------------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        main = (["organization"] if request.user.is_superuser else []) + self.MAIN_FIELDS
        if obj is None:
            return [(None, {"fields": [*main, "procedure"]})]
        return [
            (None, {"fields": main}),
            (_("Status"), {"fields": self.STATUS_FIELDS}),
            (_("Close-out"), {"fields": self.CLOSE_OUT_FIELDS}),
            (_("Costs"), {"fields": ["cost_summary"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        readonly = [*self.ALWAYS_READONLY, "organization", "assignee"]  # assignment: the "Assign to…" action
        if not obj.is_open:  # closed work keeps its description; only the close-out notes stay editable
            readonly += sorted(services.EDITABLE_FIELDS - self.CLOSED_EDITABLE)
        return readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee" and not request.user.is_superuser:
            organization = active_organization(request)
            kwargs["queryset"] = workers([organization.pk] if organization else [])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in services.EDITABLE_FIELDS}
            if changes:
                adopt(obj, services.update_work_order(obj, actor=request.user, **changes))
        else:
            fields = {name: data[name] for name in (*services.EDITABLE_FIELDS, "assignee") if name in form.fields}
            saved = services.create_work_order(
                self.new_organization(request, form), actor=request.user, procedure=data.get("procedure"), **fields
            )
            adopt(obj, saved)

    def save_formset(self, request, form, formset, change):
        """New inline rows are added through the services; existing rows are read-only."""
        new_rows = formset.save(commit=False)  # writes nothing; fills new_objects for the change message
        formset.changed_objects, formset.deleted_objects = [], []
        inline = next((i for i in self.get_inline_instances(request, form.instance) if i.model is formset.model), None)
        if inline is None or not hasattr(inline, "add_through_service"):
            formset.new_objects = []
            return
        formset.new_objects = [inline.add_through_service(request, form.instance, row) for row in new_rows]

    def delete_model(self, request, obj):
        services.delete_work_order(obj, actor=request.user)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in ("open", "assigned"))

    # --- the changelist ----------------------------------------------------------------------------
    @admin.display(description=_("overdue"), ordering="due_at")
    def overdue(self, work_order):
        if work_order.is_overdue:
            return format_html('<strong class="status-overdue">{}</strong>', _("Overdue"))
        return ""

    @admin.display(description=_("costs"))
    def cost_summary(self, work_order):
        if work_order.pk is None:
            return "-"
        totals = services.cost_totals(work_order)
        currency = work_order.organization.currency
        rows = [
            (label, totals[key], currency)
            for key, label in (
                ("labour", _("Labour")),
                ("parts", _("Parts")),
                ("other", _("Other")),
                ("total", _("Total")),
            )
        ]
        return format_html(
            '<table class="cost-totals">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{} {}</td></tr>", rows),
        )

    # --- permissions for the actions: the service's table ----------------------------------------------
    def has_assign_permission(self, request):
        return self._may(request, LIFECYCLE["assign"])

    def has_start_permission(self, request):
        return self._may(request, LIFECYCLE["start"])

    def has_complete_permission(self, request):
        return self._may(request, LIFECYCLE["complete"])

    def has_cancel_permission(self, request):
        return self._may(request, LIFECYCLE["cancel"])

    def has_verify_permission(self, request):
        return self._may(request, LIFECYCLE["verify"])

    def _may(self, request, lifecycle: Lifecycle) -> bool:
        return request_may(request, lifecycle.permission)

    # --- lifecycle: shared by the bulk actions and the per-order buttons ---------------------------
    def _lifecycle_form(self, request, lifecycle, work_orders, data=None):
        if lifecycle.form is None:
            return None
        candidates = None
        if lifecycle.form is AssignForm:
            if request.user.is_superuser:
                organization_ids = {work_order.organization_id for work_order in work_orders}
            else:
                organization = active_organization(request)
                organization_ids = {organization.pk} if organization else set()
            candidates = workers(organization_ids)
        return lifecycle.form(data, candidates=candidates)

    def _transition_each(self, request, lifecycle, work_orders, form=None) -> None:
        kwargs = form.transition_kwargs() if form is not None else {}
        done, refused = [], []
        for work_order in work_orders:
            try:
                services.transition(work_order, lifecycle.action, actor=request.user, **kwargs)
            except DomainError as exc:
                message = exc.message
                refused.append(message if work_order.number in message else _numbered(work_order, message))
            else:
                done.append(work_order.number)
        if done:
            self.message_user(request, lifecycle.done % {"count": len(done), "orders": _listed(done)}, messages.SUCCESS)
        for message in refused[:MAX_LISTED]:
            self.message_user(request, message, messages.ERROR)
        if len(refused) > MAX_LISTED:
            self.message_user(
                request, _("… and %(count)s more refused.") % {"count": len(refused) - MAX_LISTED}, messages.ERROR
            )

    def _confirmation(self, request, lifecycle, work_orders, form, *, form_action, cancel_url, bulk):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": lifecycle.title,
            "intro": lifecycle.intro,
            "objects": [str(work_order) for work_order in work_orders[:50]],
            "more": max(0, len(work_orders) - 50),
            "form": form,
            "form_action": form_action,
            "cancel_url": cancel_url,
            "submit_label": lifecycle.submit,
            "bulk_action": bulk,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if bulk else [],
            "select_across": request.POST.get("select_across", "0") if bulk else "0",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/confirm_action.html", context)

    def _run_action(self, request, queryset, name, action_name):
        """A bulk lifecycle action; those needing input (assignee, reason) show a confirmation page first,
        which posts back to the changelist with `apply`."""
        lifecycle = LIFECYCLE[name]
        work_orders = list(queryset.select_related(None).only("pk", "number", "title", "organization"))
        applying = "apply" in request.POST
        form = self._lifecycle_form(request, lifecycle, work_orders, request.POST if applying else None)
        if form is not None and not (applying and form.is_valid()):
            return self._confirmation(
                request,
                lifecycle,
                work_orders,
                form,
                form_action=request.get_full_path(),
                cancel_url=request.get_full_path(),
                bulk=action_name,
            )
        self._transition_each(request, lifecycle, work_orders, form)
        return None

    @admin.action(description=_("Assign to…"), permissions=["assign"])
    def assign_selected(self, request, queryset):
        return self._run_action(request, queryset, "assign", "assign_selected")

    @admin.action(description=_("Start"), permissions=["start"])
    def start_selected(self, request, queryset):
        return self._run_action(request, queryset, "start", "start_selected")

    @admin.action(description=_("Complete"), permissions=["complete"])
    def complete_selected(self, request, queryset):
        return self._run_action(request, queryset, "complete", "complete_selected")

    @admin.action(description=_("Cancel with reason…"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        return self._run_action(request, queryset, "cancel", "cancel_selected")

    @admin.action(description=_("Verify"), permissions=["verify"])
    def verify_selected(self, request, queryset):
        return self._run_action(request, queryset, "verify", "verify_selected")

    def has_reschedule_permission(self, request):
        return request_may(request, Action.CREATE_WORK)

    @admin.action(description=_("Reschedule…"), permissions=["reschedule"])
    def reschedule_selected(self, request, queryset):
        """A new due date for the selected orders, each through `services.update_work_order` (a closed order is
        refused by the service and reported)."""
        work_orders = list(queryset.select_related(None).only("pk", "number", "title", "organization"))
        applying = "apply" in request.POST
        form = RescheduleForm(request.POST if applying else None)
        if not (applying and form.is_valid()):
            return self._confirmation(
                request,
                RESCHEDULE,
                work_orders,
                form,
                form_action=request.get_full_path(),
                cancel_url=request.get_full_path(),
                bulk="reschedule_selected",
            )
        done, refused = [], []
        for work_order in work_orders:
            try:
                services.update_work_order(work_order, actor=request.user, due_at=form.cleaned_data["due_at"])
            except DomainError as exc:
                refused.append(exc.message if work_order.number in exc.message else _numbered(work_order, exc.message))
            else:
                done.append(work_order.number)
        if done:
            when = formats.date_time(form.cleaned_data["due_at"])
            self.message_user(
                request,
                _("Rescheduled %(count)s work order(s) to %(when)s: %(orders)s.")
                % {"count": len(done), "when": when, "orders": _listed(done)},
            )
        for message in refused[:MAX_LISTED]:
            self.message_user(request, message, messages.ERROR)
        return None

    def lifecycle_view(self, request, object_id, action):
        """One order's lifecycle button: a confirmation page (with its assignee or reason), then the
        transition through the services."""
        lifecycle = LIFECYCLE.get(action)
        if lifecycle is None:
            raise Http404(_("No work-order action “%(action)s”.") % {"action": action})
        work_order = self.get_object(request, unquote(object_id))
        if work_order is None:
            raise Http404(_("No work order with id %(id)s.") % {"id": object_id})
        if not self.has_view_permission(request, work_order) or not self._may(request, lifecycle):
            raise PermissionDenied
        change_url = reverse("admin:workorders_workorder_change", args=[work_order.pk])
        posted = request.method == "POST"
        form = self._lifecycle_form(request, lifecycle, [work_order], request.POST if posted else None)
        if posted and (form is None or form.is_valid()):
            self._transition_each(request, lifecycle, [work_order], form)
            return HttpResponseRedirect(change_url)
        return self._confirmation(
            request,
            lifecycle,
            [work_order],
            form,
            form_action=request.get_full_path(),
            cancel_url=change_url,
            bulk=None,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        work_order = self.get_object(request, unquote(object_id))
        if work_order is not None:
            possible = set(services.allowed_actions(work_order))
            extra_context["lifecycle_buttons"] = [
                {
                    "label": lifecycle.label,
                    "url": reverse("admin:workorders_workorder_lifecycle", args=[work_order.pk, name]),
                }
                for name, lifecycle in LIFECYCLE.items()
                if lifecycle.action in possible and self._may(request, lifecycle)
            ]
            extra_context["lifecycle_buttons"].append(
                {"label": "Print sheet", "url": reverse("admin:workorders_workorder_sheet", args=[work_order.pk])}
            )
        return super().change_view(request, object_id, form_url, extra_context)

    # --- the printable sheet ------------------------------------------------------------------------------
    def sheet_view(self, request, object_id):
        """A printable work-order sheet (A4): what, where, when, who, the checklist with boxes to tick and a QR code
        to the order's page in the technician's view (an absolute link a phone can open)."""
        work_order = self.get_object(request, unquote(object_id))
        if work_order is None or not self.has_view_permission(request, work_order):
            raise Http404(_("No work order with id %(id)s.") % {"id": object_id})
        technician_url = request.build_absolute_uri(reverse("technician:order", args=[work_order.pk]))
        context = {
            "title": _("Work order %(number)s") % {"number": work_order.number},
            "work_order": work_order,
            "organization": work_order.organization,
            "checklist": list(work_order.checklist.order_by("position", "pk")),
            "technician_url": technician_url,
            "qr_svg": segno.make(technician_url, error="m").svg_inline(scale=4, border=2),
            "printed_at": formats.date_time(timezone.now()),
            "due": formats.date_time(work_order.due_at) if work_order.due_at else "",
        }
        return TemplateResponse(request, "admin/workorders/workorder/sheet.html", context)

    # --- CSV export -------------------------------------------------------------------------------------
    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        urls = [
            path("export-csv/", self.admin_site.admin_view(self.export_csv_view), name=f"{prefix}_export_csv"),
            path("<path:object_id>/sheet/", self.admin_site.admin_view(self.sheet_view), name=f"{prefix}_sheet"),
            path(
                "<path:object_id>/lifecycle/<str:action>/",
                self.admin_site.admin_view(self.lifecycle_view),
                name=f"{prefix}_lifecycle",
            ),
        ]
        return urls + super().get_urls()

    def get_changelist(self, request, **kwargs):
        changelist_class = super().get_changelist(request, **kwargs)
        if not getattr(request, "_csv_export", False):
            return changelist_class

        class ExportChangeList(changelist_class):
            def get_results(self, request):
                """The export needs the filtered queryset only: no page, no counts."""

        return ExportChangeList

    def export_csv_view(self, request):
        """The changelist's rows as CSV, with its filters and search applied (streamed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        request._csv_export = True
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:workorders_workorder_changelist") + "?e=1")
        return self._csv_response(changelist.queryset)

    @admin.action(description=_("Export selected to CSV"), permissions=["view"])
    def export_selected_csv(self, request, queryset):
        return self._csv_response(queryset)

    def _csv_response(self, queryset):
        # An export is a replica-safe read (maintenance_site/db_routing.py): the replica when one is configured.
        queryset = queryset.using(replica_alias())
        response = StreamingHttpResponse(self._csv_lines(queryset), content_type="text/csv; charset=utf-8")
        filename = f"work-orders-{timezone.now():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def _csv_lines(self, queryset):
        writer = csv.writer(_Echo())
        yield writer.writerow(CSV_HEADER)
        rows = queryset.select_related("organization", "asset", "location", "assignee").prefetch_related(
            "time_entries", "cost_lines"
        )
        for work_order in rows.iterator(chunk_size=500):
            zone = work_order.organization.zone
            yield writer.writerow(
                [
                    _csv_cell(value)
                    for value in (
                        work_order.number,
                        work_order.title,
                        work_order.get_status_display(),
                        work_order.get_priority_display(),
                        work_order.get_type_display(),
                        work_order.asset.code if work_order.asset else "",
                        work_order.location.name if work_order.location else "",
                        _person(work_order.assignee),
                        _local(work_order.due_at, zone),
                        _local(work_order.completed_at, zone),
                        exported_cost_total(work_order),
                    )
                ]
            )


# --- work requests: the approval queue -------------------------------------------------------------------


class DecisionFilter(admin.SimpleListFilter):
    """The queue shows pending requests unless another decision is chosen."""

    title = _("decision")
    parameter_name = "decision"
    DEFAULT = WorkRequest.Status.PENDING

    def lookups(self, request, model_admin):
        return [*WorkRequest.Status.choices, ("all", _("All"))]

    def choices(self, changelist):
        current = self.value() or self.DEFAULT
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        current = self.value() or self.DEFAULT
        if current == "all":
            return queryset
        if current in WorkRequest.Status.values:
            return queryset.filter(status=current)
        return queryset.none()


@admin.register(WorkRequest)
class WorkRequestAdmin(ReadOnlyTenantAdmin):
    """Problems reported from the public form: approve them into work orders or reject them with a reason
    the requester sees. The request itself is never edited here."""

    write_action = Action.APPROVE_REQUESTS
    list_display = ["summary", "status", "asset", "location", "contact", "created_at", "work_order"]
    list_select_related = ["asset", "location", "work_order"]
    list_filter = [DecisionFilter]
    search_fields = ["description", "contact_name", "contact_email", "asset__code"]
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected"]
    readonly_fields = [
        "description",
        "asset",
        "location",
        "contact_name",
        "contact_email",
        "contact_phone",
        "status",
        "decided_by",
        "decided_at",
        "rejection_reason",
        "work_order",
        "attachment_links",
        "created_at",
    ]
    fields = readonly_fields

    def has_approve_permission(self, request):
        return request_may(request, Action.APPROVE_REQUESTS)

    @admin.display(description=_("request"), ordering="description")
    def summary(self, work_request):
        return str(work_request)

    @admin.display(description=_("contact"))
    def contact(self, work_request):
        return ", ".join(
            filter(None, [work_request.contact_name, work_request.contact_email, work_request.contact_phone])
        )

    @admin.display(description=_("attachments"))
    def attachment_links(self, work_request):
        links = []
        for attachment in work_request.attachments.all():
            url = attachment_url(attachment)
            links.append((url, attachment.original_name) if url else ("#", attachment.original_name))
        return format_html_join(", ", '<a href="{}">{}</a>', links) if links else "-"

    @admin.action(description=_("Approve into work orders"), permissions=["approve"])
    def approve_selected(self, request, queryset):
        created, refused = [], []
        for work_request in queryset:
            try:
                work_order = services.approve_request(work_request, actor=request.user)
            except DomainError as exc:
                refused.append(_("“%(request)s”: %(problem)s") % {"request": work_request, "problem": exc.message})
            else:
                created.append(work_order.number)
        if created:
            self.message_user(
                request,
                ngettext(
                    "Approved %(count)s request into work orders %(orders)s.",
                    "Approved %(count)s requests into work orders %(orders)s.",
                    len(created),
                )
                % {"count": len(created), "orders": _listed(created)},
                messages.SUCCESS,
            )
        for message in refused[:MAX_LISTED]:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description=_("Reject with reason…"), permissions=["approve"])
    def reject_selected(self, request, queryset):
        requests = list(queryset)
        applying = "apply" in request.POST
        form = ReasonForm(request.POST if applying else None)
        if not (applying and form.is_valid()):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Reject work requests"),
                "intro": _("Reject these requests? The requester sees the reason through their link."),
                "objects": [str(work_request) for work_request in requests[:50]],
                "more": max(0, len(requests) - 50),
                "form": form,
                "form_action": request.get_full_path(),
                "cancel_url": request.get_full_path(),
                "submit_label": _("Yes, reject"),
                "bulk_action": "reject_selected",
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(request, "admin/confirm_action.html", context)
        reason = form.cleaned_data["reason"].strip()
        rejected, refused = 0, []
        for work_request in requests:
            try:
                services.reject_request(work_request, actor=request.user, reason=reason)
            except DomainError as exc:
                refused.append(_("“%(request)s”: %(problem)s") % {"request": work_request, "problem": exc.message})
            else:
                rejected += 1
        if rejected:
            self.message_user(
                request,
                ngettext("Rejected %(count)s request.", "Rejected %(count)s requests.", rejected) % {"count": rejected},
                messages.SUCCESS,
            )
        for message in refused[:MAX_LISTED]:
            self.message_user(request, message, messages.ERROR)
        return None


# --- the procedure library ------------------------------------------------------------------------------


class ProcedureItemInline(TenantInline):
    model = ProcedureItem
    write_action = Action.CREATE_WORK
    fields = ["position", "text", "kind", "unit", "required"]
    ordering = ["position", "id"]
    extra = 1


@admin.register(Procedure)
class ProcedureAdmin(ServiceAdmin):
    write_action = Action.CREATE_WORK
    list_display = ["name", "step_count", "updated_at"]
    search_fields = ["name"]
    ordering = ["name"]  # explicit: Meta.ordering is dropped from the annotated (GROUP BY) queryset
    inlines = [ProcedureItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(step_count=Count("items"))

    @admin.display(description=_("steps"), ordering="step_count")
    def step_count(self, procedure):
        return procedure.step_count

    def save_model(self, request, obj, form, change):
        """Saved with its steps in save_related: one service call for the procedure and its steps."""

    def save_related(self, request, form, formsets, change):
        steps = []
        for formset in formsets:
            if formset.model is not ProcedureItem:
                continue
            formset.save(commit=False)  # writes nothing; fills new/changed/deleted objects for the log
            for index, item_form in enumerate(formset.forms):
                if formset._should_delete_form(item_form):
                    continue
                if item_form.instance.pk is None and not item_form.has_changed():
                    continue
                data = item_form.cleaned_data
                steps.append(((data.get("position") or 0, index), data))
        items = [
            {
                "text": data["text"],
                "kind": data["kind"],
                "unit": data.get("unit", ""),
                "required": data.get("required", False),
                "position": number,
            }
            for number, (_, data) in enumerate(sorted(steps, key=lambda step: step[0]), start=1)
        ]
        data = form.cleaned_data
        fields = {"name": data["name"], "description": data.get("description", ""), "items": items}
        if change:
            saved = services.update_procedure(form.instance, actor=request.user, **fields)
        else:
            saved = services.create_procedure(self.new_organization(request, form), actor=request.user, **fields)
        adopt(form.instance, saved)

    def delete_model(self, request, obj):
        services.delete_procedure(obj, actor=request.user)


# --- teams ----------------------------------------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    write_action = Action.ASSIGN_WORK
    list_display = ["name", "member_count"]
    search_fields = ["name"]
    ordering = ["name"]
    filter_horizontal = ["members"]  # choices: active members of the organisation (TenantScopingMixin)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, team):
        return team.member_count

    def save_model(self, request, obj, form, change):
        fields = {"name": form.cleaned_data["name"], "members": form.cleaned_data["members"]}
        if change:
            saved = services.update_team(obj, actor=request.user, **fields)
        else:
            saved = services.create_team(self.new_organization(request, form), actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_team(obj, actor=request.user)


@admin.register(FailureCode)
class FailureCodeAdmin(ServiceAdmin):
    """The failure-code library: problem, cause and remedy codes (written through `services.*_failure_code`)."""

    write_action = Action.CREATE_WORK
    list_display = ["code", "name", "kind", "asset_type", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    ordering = ["kind", "code"]
    FIELDS = ["kind", "code", "name", "description", "asset_type", "is_active"]

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in self.FIELDS if name in form.cleaned_data}
        if change:
            saved = services.update_failure_code(obj, actor=request.user, **fields)
        else:
            saved = services.create_failure_code(self.new_organization(request, form), actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_failure_code(obj, actor=request.user)


@admin.register(Budget)
class BudgetAdmin(ServiceAdmin):
    """Budgets per period and scope (written through `services.*_budget`); actuals in /api/v1/analytics/costs."""

    write_action = Action.MANAGE_SETTINGS
    list_display = ["name", "period", "starts_on", "category", "amount", "location", "asset_type", "asset"]
    list_filter = ["period", "category"]
    search_fields = ["name"]
    ordering = ["-starts_on", "name"]
    FIELDS = sorted(services.BUDGET_FIELDS)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in self.FIELDS if name in form.cleaned_data}
        if change:
            saved = services.update_budget(obj, actor=request.user, **fields)
        else:
            saved = services.create_budget(self.new_organization(request, form), actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_budget(obj, actor=request.user)


# Asset health (issue 20) keeps its admin in its own package.
import workorders.capacity.admin  # noqa: E402, F401
import workorders.health.admin  # noqa: E402, F401
