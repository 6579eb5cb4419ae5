"""The SLA back office: business calendars (working hours and holidays inline), policies (escalation steps
inline), and, read-only, the violations the monitor recorded and the clocks of work orders.

Managers change calendars and policies (`manage_sla`); everyone else in the back office reads. A calendar or
a policy is saved with its inline rows through `sla.services` in one call; the models' `clean()` and the
formsets' checks show an invalid policy (resolution shorter than response, a calendar without working time,
an equally specific overlapping policy) as form errors, and a refusal of the service itself is shown on the
form again with nothing written.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from assets.admin import ActiveOrganizationFormMixin, OrganizationBoundForm
from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import TenantAdmin, TenantInline
from maintenance_site.tenancy.roles import Action, Role
from sla import services
from sla.models import (
    PAUSABLE_STATUSES,
    BusinessCalendar,
    EscalationStep,
    Holiday,
    SLAClock,
    SLAPolicy,
    SLAViolation,
    WorkingHours,
    overlapping_spans,
)
from workorders.models import WorkOrder


class _Refused(Exception):
    """A service refused the save: carries its DomainError out of the admin's transaction (rolled back)."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


class RefusalAwareForm(OrganizationBoundForm):
    """Shows a service's refusal (kept on the request by SLAServiceAdmin) as form errors."""

    def clean(self):
        cleaned_data = super().clean()
        refusal = getattr(self.request, "_sla_refusal", None)
        if refusal is not None:
            for name, errors in (refusal.fields or {}).items():
                if name in self.fields and name not in self.errors:
                    self.add_error(name, errors if isinstance(errors, list) else [str(errors)])
            self.add_error(None, refusal.message)
        return cleaned_data


def _rows(formset, fields) -> list[dict]:
    """The rows a formset will hold once saved: kept and new forms, not the deleted or the empty extra ones."""
    rows = []
    for form in formset.forms:
        if not getattr(form, "cleaned_data", None) or formset._should_delete_form(form):
            continue
        rows.append({name: form.cleaned_data.get(name) for name in fields})
    return rows


class SLAServiceAdmin(ActiveOrganizationFormMixin, TenantAdmin):
    """A parent saved together with its inline rows by one service call (`save_with`), in `save_related`."""

    write_action = Action.MANAGE_SLA
    form = RefusalAwareForm
    fields_for_service: tuple[str, ...] = ()
    rows_for_service: dict = {}  # inline model -> (service keyword, fields)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            request._sla_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except _Refused as refused:
            self.message_user(request, refused.error.message, messages.ERROR)
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id])
            )

    def save_model(self, request, obj, form, change):
        """Nothing yet: the object is saved with its rows in save_related, through the service."""

    def save_related(self, request, form, formsets, change):
        fields = {name: form.cleaned_data[name] for name in self.fields_for_service if name in form.cleaned_data}
        rows = {}
        for formset in formsets:
            keyword, row_fields = self.rows_for_service[formset.model]
            rows[keyword] = _rows(formset, row_fields)
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        try:
            if change:
                saved = self.update_with(form.instance, actor=request.user, **rows, **fields)
            else:
                saved = self.create_with(form.instance.organization, actor=request.user, **rows, **fields)
        except DomainError as exc:
            raise _Refused(exc) from exc
        for field in saved._meta.concrete_fields:
            setattr(form.instance, field.attname, getattr(saved, field.attname))
        form.instance._state.adding = False
        form.instance._state.db = saved._state.db

    def delete_model(self, request, obj):
        try:
            self.delete_with(obj, actor=request.user)
        except DomainError as exc:
            raise _Refused(exc) from exc

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            try:
                self.delete_with(obj, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)


# --- calendars ---------------------------------------------------------------------------------------------


class WorkingHoursFormSet(BaseInlineFormSet):
    """Spans must not overlap, and a calendar that is not 24/7 needs at least one."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = [(row["weekday"], row["start"], row["end"]) for row in _rows(self, ("weekday", "start", "end"))]
        problems = overlapping_spans(rows)
        if problems:
            raise ValidationError(problems)
        if not rows and not self.instance.always_open:
            raise ValidationError("A calendar needs working time: add working hours, or make it 24/7.")


class WorkingHoursInline(TenantInline):
    model = WorkingHours
    formset = WorkingHoursFormSet
    write_action = Action.MANAGE_SLA
    fields = ["weekday", "start", "end"]
    extra = 0
    verbose_name_plural = "working hours (several spans a day allowed; an end of 00:00 means midnight)"


class HolidayInline(TenantInline):
    model = Holiday
    write_action = Action.MANAGE_SLA
    fields = ["date", "name"]
    extra = 0


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(SLAServiceAdmin):
    list_display = ["name", "zone_display", "always_open", "updated_at"]
    search_fields = ["name"]
    inlines = [WorkingHoursInline, HolidayInline]
    fields_for_service = ("name", "time_zone", "always_open")
    rows_for_service = {WorkingHours: ("hours", ("weekday", "start", "end")), Holiday: ("holidays", ("date", "name"))}
    create_with = staticmethod(services.create_calendar)
    update_with = staticmethod(services.update_calendar)
    delete_with = staticmethod(services.delete_calendar)
    list_select_related = ["organization"]

    @admin.display(description="time zone")
    def zone_display(self, calendar):
        return calendar.time_zone or f"{calendar.organization.time_zone} (organisation's)"

    def get_fields(self, request, obj=None):
        return (["organization"] if request.user.is_superuser else []) + ["name", "time_zone", "always_open"]


# --- policies ----------------------------------------------------------------------------------------------


class EscalationStepForm(forms.ModelForm):
    notify_roles = forms.MultipleChoiceField(
        choices=Role.choices, required=False, widget=forms.CheckboxSelectMultiple, label="notify roles"
    )

    class Meta:
        model = EscalationStep
        fields = ["position", "level", "target", "kind", "notify_roles", "notify_assignee", "raise_to", "reassign_to"]


class EscalationStepInline(TenantInline):
    model = EscalationStep
    form = EscalationStepForm
    write_action = Action.MANAGE_SLA
    fields = ["position", "level", "target", "kind", "notify_roles", "notify_assignee", "raise_to", "reassign_to"]
    extra = 0
    verbose_name_plural = "escalation steps (run in order when a warning or breach is recorded)"


class SLAPolicyForm(RefusalAwareForm):
    pause_statuses = forms.MultipleChoiceField(
        choices=[(status, WorkOrder.Status(status).label) for status in PAUSABLE_STATUSES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Work-order statuses in which the clock does not run.",
    )

    class Meta:
        model = SLAPolicy
        fields = [
            "organization",
            "name",
            "is_active",
            "priority",
            "work_order_type",
            "asset_criticality",
            "location",
            "calendar",
            "response_minutes",
            "resolution_minutes",
            "warning_percent",
            "pause_statuses",
        ]


@admin.register(SLAPolicy)
class SLAPolicyAdmin(SLAServiceAdmin):
    form = SLAPolicyForm
    list_display = [
        "name",
        "is_active",
        "priority",
        "work_order_type",
        "asset_criticality",
        "location",
        "calendar",
        "response_minutes",
        "resolution_minutes",
        "warning_percent",
    ]
    list_filter = ["is_active", "priority", "work_order_type", "asset_criticality", "calendar"]
    list_select_related = ["location", "calendar"]
    search_fields = ["name"]
    inlines = [EscalationStepInline]
    fields_for_service = tuple(sorted(services.POLICY_FIELDS))
    rows_for_service = {EscalationStep: ("escalation_steps", tuple(services.STEP_FIELDS))}
    create_with = staticmethod(services.create_policy)
    update_with = staticmethod(services.update_policy)
    delete_with = staticmethod(services.delete_policy)

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": (["organization"] if request.user.is_superuser else []) + ["name", "is_active"]}),
            (
                "Which work orders (empty: any; the most specific policy wins)",
                {"fields": [("priority", "work_order_type"), ("asset_criticality", "location")]},
            ),
            (
                "Targets (business minutes on the calendar)",
                {
                    "fields": [
                        "calendar",
                        ("response_minutes", "resolution_minutes"),
                        "warning_percent",
                        "pause_statuses",
                    ]
                },
            ),
        ]


# --- read-only: violations and clocks ----------------------------------------------------------------------


class ReadOnlyTenantAdmin(TenantAdmin):
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _work_order_link(work_order):
    url = reverse("admin:workorders_workorder_change", args=[work_order.pk])
    return format_html('<a href="{}">{}</a>', url, work_order.number)


@admin.register(SLAViolation)
class SLAViolationAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "detected_at",
        "order_link",
        "kind",
        "level",
        "priority",
        "policy",
        "threshold_at",
        "late_display",
    ]
    list_filter = ["kind", "level", "priority", "policy"]
    list_select_related = ["work_order", "policy"]
    search_fields = ["work_order__number", "work_order__title"]
    show_full_result_count = False
    readonly_fields = [
        "work_order",
        "policy",
        "kind",
        "level",
        "priority",
        "threshold_at",
        "detected_at",
        "late_seconds",
        "escalations",
    ]
    fields = readonly_fields

    @admin.display(description="work order", ordering="work_order__number")
    def order_link(self, violation):
        return _work_order_link(violation.work_order)

    @admin.display(description="late by", ordering="late_seconds")
    def late_display(self, violation):
        minutes = violation.late_seconds // 60
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@admin.register(SLAClock)
class SLAClockAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "order_link",
        "policy",
        "response_state",
        "response_due_at",
        "resolution_state",
        "resolution_due_at",
        "paused_since",
        "stopped_at",
    ]
    list_filter = ["response_state", "resolution_state", "policy"]
    list_select_related = ["work_order", "policy"]
    search_fields = ["work_order__number", "work_order__title"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in SLAClock._meta.concrete_fields if field.name != "id"]

    @admin.display(description="work order", ordering="work_order__number")
    def order_link(self, clock):
        return _work_order_link(clock.work_order)
