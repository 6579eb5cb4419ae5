"""The SLA back office: business calendars (working hours and holidays inline), policies (escalation steps
inline), and, read-only, the violations the monitor recorded and the clocks of work orders.

Managers change calendars and policies (`manage_sla`); everyone else in the back office reads. A calendar or
a policy is saved with its inline rows through `sla.services` in one call; the models' `clean()` and the
formsets' checks show an invalid policy (resolution shorter than response, a calendar without working time,
an equally specific overlapping policy) as form errors, and a refusal of the service itself is shown on the
form again with nothing written.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from maintenance_site.tenancy.admin_base import (
    ReadOnlyTenantAdmin,
    ServiceAdmin,
    ServiceForm,
    TenantInline,
    adopt,
    inline_rows,
    kept_rows,
    submitted,
)
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

CALENDAR_FIELDS = ("name", "time_zone", "always_open")
HOURS_FIELDS = ("weekday", "start", "end")
HOLIDAY_FIELDS = ("date", "name")


def _rows_of(formsets, model, fields) -> list[dict]:
    formset = next(formset for formset in formsets if formset.model is model)
    return inline_rows(formset, fields)


# --- calendars ---------------------------------------------------------------------------------------------


class WorkingHoursFormSet(BaseInlineFormSet):
    """Spans must not overlap, and a calendar that is not 24/7 needs at least one."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = [(row["weekday"], row["start"], row["end"]) for row in kept_rows(self, HOURS_FIELDS)]
        problems = overlapping_spans(rows)
        if problems:
            raise ValidationError(problems)
        if not rows and not self.instance.always_open:
            raise ValidationError(_("A calendar needs working time: add working hours, or make it 24/7."))


class WorkingHoursInline(TenantInline):
    model = WorkingHours
    formset = WorkingHoursFormSet
    write_action = Action.MANAGE_SLA
    fields = ["weekday", "start", "end"]
    extra = 0
    verbose_name_plural = _("working hours (several spans a day allowed; an end of 00:00 means midnight)")


class HolidayInline(TenantInline):
    model = Holiday
    write_action = Action.MANAGE_SLA
    fields = ["date", "name"]
    extra = 0


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(ServiceAdmin):
    """A calendar is saved with its working hours and holidays by one service call."""

    write_action = Action.MANAGE_SLA
    list_display = ["name", "zone_display", "always_open", "updated_at"]
    search_fields = ["name"]
    inlines = [WorkingHoursInline, HolidayInline]
    list_select_related = ["organization"]

    def save_model(self, request, obj, form, change):
        """Nothing yet: saved with its rows in save_related."""

    def save_related(self, request, form, formsets, change):
        fields = submitted(form, CALENDAR_FIELDS)
        hours = _rows_of(formsets, WorkingHours, HOURS_FIELDS)
        holidays = _rows_of(formsets, Holiday, HOLIDAY_FIELDS)
        if change:
            saved = services.update_calendar(
                form.instance, actor=request.user, hours=hours, holidays=holidays, **fields
            )
        else:
            organization = self.new_organization(request, form)
            saved = services.create_calendar(organization, actor=request.user, hours=hours, holidays=holidays, **fields)
        adopt(form.instance, saved)

    def delete_model(self, request, obj):
        services.delete_calendar(obj, actor=request.user)

    @admin.display(description=_("time zone"))
    def zone_display(self, calendar):
        return calendar.time_zone or f"{calendar.organization.time_zone} (organisation's)"

    def get_fields(self, request, obj=None):
        return (["organization"] if request.user.is_superuser else []) + ["name", "time_zone", "always_open"]


# --- policies ----------------------------------------------------------------------------------------------


class EscalationStepForm(forms.ModelForm):
    notify_roles = forms.MultipleChoiceField(
        choices=Role.choices, required=False, widget=forms.CheckboxSelectMultiple, label=_("notify roles")
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
    verbose_name_plural = _("escalation steps (run in order when a warning or breach is recorded)")


class SLAPolicyForm(ServiceForm):
    pause_statuses = forms.MultipleChoiceField(
        choices=[(status, WorkOrder.Status(status).label) for status in PAUSABLE_STATUSES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Work-order statuses in which the clock does not run."),
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
class SLAPolicyAdmin(ServiceAdmin):
    """A policy is saved with its escalation steps by one service call."""

    write_action = Action.MANAGE_SLA
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

    def save_model(self, request, obj, form, change):
        """Nothing yet: saved with its steps in save_related."""

    def save_related(self, request, form, formsets, change):
        fields = submitted(form, services.POLICY_FIELDS)
        steps = _rows_of(formsets, EscalationStep, services.STEP_FIELDS)
        if change:
            saved = services.update_policy(form.instance, actor=request.user, escalation_steps=steps, **fields)
        else:
            organization = self.new_organization(request, form)
            saved = services.create_policy(organization, actor=request.user, escalation_steps=steps, **fields)
        adopt(form.instance, saved)

    def delete_model(self, request, obj):
        services.delete_policy(obj, actor=request.user)

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": (["organization"] if request.user.is_superuser else []) + ["name", "is_active"]}),
            (
                _("Which work orders (empty: any; the most specific policy wins)"),
                {"fields": [("priority", "work_order_type"), ("asset_criticality", "location")]},
            ),
            (
                _("Targets (business minutes on the calendar)"),
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
    list_columns = ["detected_at", "kind", "level", "priority", "threshold_at", "late_seconds", "organization_id"]
    list_columns += ["work_order__number", "policy__name"]  # the link shows the number, the policy its name
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

    @admin.display(description=_("work order"), ordering="work_order__number")
    def order_link(self, violation):
        return _work_order_link(violation.work_order)

    @admin.display(description=_("late by"), ordering="late_seconds")
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
    list_columns = ["response_state", "response_due_at", "resolution_state", "resolution_due_at", "paused_since"]
    list_columns += ["stopped_at", "organization_id", "work_order__number", "policy__name"]
    search_fields = ["work_order__number", "work_order__title"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in SLAClock._meta.concrete_fields if field.name != "id"]

    @admin.display(description=_("work order"), ordering="work_order__number")
    def order_link(self, clock):
        return _work_order_link(clock.work_order)
