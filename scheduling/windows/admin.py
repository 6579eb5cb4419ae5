"""The back office of maintenance windows: a calendar-like list (by start, with a date drill-down), saving
through `scheduling.windows.services` (an overlap or bad input shows on the form), actions end now / cancel / mark
failed behind a confirmation page with the reason, the maintenance-mode switch (with its own confirmation
page), and the history of finished windows.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import (
    ReadOnlyTenantAdmin,
    ServiceAdmin,
    ServiceForm,
    active_organization,
    adopt,
)
from maintenance_site.tenancy.roles import Action
from scheduling.windows import mode, services
from scheduling.windows.models import MAX_DURATION, MaintenanceHistoryEntry, MaintenanceMode, MaintenanceWindow

Status = MaintenanceWindow.Status
STATUS_COLOURS = {
    Status.SCHEDULED: "#417690",
    Status.ACTIVE: "#ba2121",
    Status.COMPLETED: "#3a7a3a",
    Status.CANCELLED: "#777",
    Status.FAILED: "#a0522d",
}
SERVICE_FIELDS = (
    "title",
    "maintenance_type",
    "description",
    "scope",
    "location",
    "assets",
    "starts_at",
    "ends_at",
    "duration_minutes",
    "recurrence",
    "notify_users",
    "emergency",
    "emergency_reason",
)
MAX_LISTED = 20


class WindowForm(ServiceForm):
    """Start plus end or duration. A refusal of the service (overlap, bad scope...) comes back as errors
    on the fields it names."""

    duration_minutes = forms.IntegerField(
        required=False, help_text=_("Instead of the end: the length in minutes (at least 1).")
    )

    class Meta:
        model = MaintenanceWindow
        fields = [
            "organization",
            "title",
            "maintenance_type",
            "description",
            "scope",
            "location",
            "assets",
            "starts_at",
            "ends_at",
            "duration_minutes",
            "recurrence",
            "notify_users",
            "emergency",
            "emergency_reason",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "ends_at" in self.fields:
            self.fields["ends_at"].required = False

    def clean(self):
        data = super().clean()
        start, end, minutes = data.get("starts_at"), data.get("ends_at"), data.get("duration_minutes")
        if minutes is not None:
            if minutes <= 0:
                self.add_error("duration_minutes", _("The duration must be at least one minute."))
            elif end is not None and "ends_at" in self.changed_data:
                self.add_error("duration_minutes", _("Give either the end or the duration, not both."))
            elif minutes > services.MAX_DURATION_MINUTES:
                self.add_error(
                    "duration_minutes",
                    _("A window lasts at most %(minutes)s minutes (%(days)s days).")
                    % {"minutes": services.MAX_DURATION_MINUTES, "days": MAX_DURATION.days},
                )
            elif start is not None:
                try:
                    data["ends_at"] = start + timedelta(minutes=minutes)
                except OverflowError:
                    self.add_error("starts_at", _("A window starts within the next ten years."))
        elif start is not None and end is None and "ends_at" in self.fields:
            self.add_error("ends_at", _("Give the end or a duration."))
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)

    def __init__(self, *args, required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required


class ModeForm(forms.Form):
    action = forms.ChoiceField(choices=[("enter", _("Switch maintenance mode on")), ("exit", _("Switch it off"))])
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)
    until = forms.DateTimeField(required=False, help_text=_("Expected end (UTC, YYYY-MM-DD HH:MM); empty: unknown."))
    scope = forms.ChoiceField(
        choices=[("organization", _("This organisation")), ("platform", _("The whole platform (every organisation)"))],
        initial="organization",
    )

    def __init__(self, *args, platform_allowed: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not platform_allowed:
            self.fields["scope"].choices = self.fields["scope"].choices[:1]

    def clean(self):
        data = super().clean()
        if data.get("action") == "enter" and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Say why (it is audited and shown to everyone)."))
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ServiceAdmin):
    form = WindowForm
    write_action = Action.MANAGE_WINDOWS
    change_list_template = "scheduling/admin/window_change_list.html"
    date_hierarchy = "starts_at"
    ordering = ("starts_at", "id")
    list_display = [
        "title",
        "maintenance_type",
        "scope_display",
        "starts_at",
        "ends_at",
        "status_badge",
        "actual_start",
        "actual_end",
        "emergency",
    ]
    list_filter = ["status", "maintenance_type", "scope", "emergency"]
    list_select_related = ["location"]
    search_fields = ["title", "description"]
    autocomplete_fields = []
    filter_horizontal = ["assets"]
    show_full_result_count = False
    actions = ["end_now", "cancel_windows", "mark_failed"]
    readonly_fields = [
        "status",
        "actual_start",
        "actual_end",
        "status_reason",
        "created_by",
        "series",
        "occurrence_start",
        "overridden_conflicts",
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status == Status.ACTIVE:
            fields += [
                "organization",
                "maintenance_type",
                "scope",
                "location",
                "assets",
                "starts_at",
                "recurrence",
                "emergency",
                "emergency_reason",
            ]
        elif obj is not None:
            fields.append("organization")
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status not in MaintenanceWindow.PLANNED_STATUSES:
            return False  # finished or cancelled: shown read-only (the actions still mark failed)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.has_started:
            return False  # kept for the record: end it or mark it failed
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        return super().get_actions(request) if self._may_write(request) else {}

    # --- list columns ---
    @admin.display(description=_("scope"))
    def scope_display(self, obj):
        if obj.scope == MaintenanceWindow.Scope.LOCATION:
            return _("Location: %(location)s") % {"location": obj.location}
        if obj.scope == MaintenanceWindow.Scope.ASSETS:
            return _("Assets")
        return _("Whole system (series)") if obj.recurrence else _("Whole system")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(obj.status, "#333"), obj.get_status_display()
        )

    # --- saving through the services ---
    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data.get(name) for name in SERVICE_FIELDS if name in form.cleaned_data}
        if data.get("duration_minutes") is not None:
            data.pop("ends_at", None)
        else:
            data.pop("duration_minutes", None)
        if change:
            changed = {name: data[name] for name in data if name in form.changed_data}
            if "duration_minutes" in changed:
                changed.pop("ends_at", None)
            window = services.update_window(MaintenanceWindow.objects.get(pk=obj.pk), actor=request.user, **changed)
        else:
            window = services.create_window(self.new_organization(request, form), actor=request.user, **data)
        adopt(obj, window)

    def delete_model(self, request, obj):
        services.delete_window(obj, actor=request.user)

    # --- actions with a confirmation page ---
    def _confirm(self, request, queryset, *, action_name, title, intro, submit, reason_required, run):
        form = ReasonForm(request.POST if "apply" in request.POST else None, required=reason_required)
        if "apply" in request.POST and form.is_valid():
            done, refused = [], []
            for window in queryset.order_by("starts_at"):
                try:
                    run(window, form.cleaned_data.get("reason", ""))
                    done.append(str(window.title))
                except DomainError as error:
                    refused.append(_("%(window)s: %(problem)s") % {"window": window.title, "problem": error.message})
            if done:
                self.message_user(
                    request,
                    _("%(title)s: %(windows)s.") % {"title": title, "windows": ", ".join(done[:MAX_LISTED])},
                    messages.SUCCESS,
                )
            for line in refused[:MAX_LISTED]:
                self.message_user(request, line, messages.ERROR)
            return None
        objects = list(queryset[: MAX_LISTED + 1])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "objects": [
                _("%(window)s — %(status)s") % {"window": window, "status": window.get_status_display()}
                for window in objects[:MAX_LISTED]
            ],
            "more": max(0, queryset.count() - MAX_LISTED),
            "form": form,
            "bulk_action": action_name,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "submit_label": submit,
            "cancel_url": reverse("admin:scheduling_maintenancewindow_changelist"),
        }
        return TemplateResponse(request, "admin/confirm_action.html", context)

    @admin.action(description=_("End now (running windows)"))
    def end_now(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            action_name="end_now",
            title=_("Ended"),
            submit=_("End them now"),
            reason_required=False,
            intro=_(
                "These running windows end now; their assets get their status back and, for system windows, "
                "maintenance mode ends unless something else holds it."
            ),
            run=lambda window, reason: services.end_window(window, reason=reason, actor=request.user),
        )

    @admin.action(description=_("Cancel (scheduled windows)"))
    def cancel_windows(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            action_name="cancel_windows",
            title=_("Cancelled"),
            submit=_("Cancel them"),
            reason_required=True,
            intro=_("These scheduled windows are cancelled (a series with its coming occurrences)."),
            run=lambda window, reason: services.cancel_window(window, reason=reason, actor=request.user),
        )

    @admin.action(description=_("Mark failed"))
    def mark_failed(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            action_name="mark_failed",
            title=_("Marked failed"),
            submit=_("Mark them failed"),
            reason_required=True,
            intro=_("These windows are marked failed (running ones end now). Say what went wrong."),
            run=lambda window, reason: services.fail_window(window, reason=reason, actor=request.user),
        )

    # --- the maintenance-mode switch ---
    def get_urls(self):
        return [
            path("mode/", self.admin_site.admin_view(self.mode_view), name="scheduling_maintenancewindow_mode"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "mode_state": mode.mode_state(active_organization(request))}
        extra_context["may_switch"] = self._may_write(request)
        return super().changelist_view(request, extra_context)

    def mode_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        organization = active_organization(request)
        platform_allowed = request.user.is_superuser
        may_switch = self._may_write(request) and (organization is not None or platform_allowed)
        form = ModeForm(request.POST or None, platform_allowed=platform_allowed)
        confirming = False
        if request.method == "POST":
            if not may_switch:
                raise PermissionDenied
            if form.is_valid():
                data = form.cleaned_data
                target = None if data["scope"] == "platform" else organization
                if target is None and data["scope"] != "platform":
                    form.add_error(None, _("Choose an organisation first (the switcher at the top)."))
                elif "confirm" in request.POST:
                    try:
                        if data["action"] == "enter":
                            mode.enter_maintenance_mode(
                                target, reason=data["reason"], until=data.get("until"), actor=request.user
                            )
                        else:
                            mode.exit_maintenance_mode(target, reason=data.get("reason", ""), actor=request.user)
                    except DomainError as error:
                        form.add_error(None, error.message)
                    else:
                        self.message_user(
                            request,
                            _("Maintenance mode switched on.")
                            if data["action"] == "enter"
                            else _("Maintenance mode switched off by hand."),
                            messages.SUCCESS,
                        )
                        return HttpResponseRedirect(reverse("admin:scheduling_maintenancewindow_mode"))
                else:
                    confirming = True
        platform = MaintenanceMode.objects.filter(organization__isnull=True).first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Maintenance mode"),
            "state": mode.mode_state(organization),
            "organization": organization,
            "own_mode": MaintenanceMode.objects.filter(organization=organization).first() if organization else None,
            "platform_mode": platform,
            "platform_status": mode.platform_status() if request.user.is_superuser else None,
            "form": form,
            "may_switch": may_switch,
            "confirming": confirming,
        }
        return TemplateResponse(request, "scheduling/admin/mode.html", context)


@admin.register(MaintenanceHistoryEntry)
class MaintenanceHistoryAdmin(ReadOnlyTenantAdmin):
    """Finished windows (completed or failed), the latest first, with their actual timing."""

    write_action = Action.MANAGE_WINDOWS
    date_hierarchy = "ends_at"
    list_display = [
        "title",
        "maintenance_type",
        "scope",
        "starts_at",
        "ends_at",
        "actual_start",
        "actual_end",
        "start_delay",
        "status",
        "status_reason",
    ]
    list_filter = ["status", "maintenance_type", "scope"]
    search_fields = ["title", "description", "status_reason"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).occurrences().finished().order_by("-ends_at", "-pk")

    @admin.display(description=_("started late by"))
    def start_delay(self, obj):
        if obj.actual_start is None:
            return "—"
        seconds = int((obj.actual_start - obj.starts_at).total_seconds())
        if seconds < 0:
            return _("%(seconds)s s early") % {"seconds": -seconds}
        return _("%(minutes)s min %(seconds)s s") % {"minutes": seconds // 60, "seconds": seconds % 60}


@admin.register(MaintenanceMode)
class MaintenanceModeAdmin(ReadOnlyTenantAdmin):
    """Read-only: each organisation's mode (and the platform's, for superusers) with its history; switch it
    from the maintenance windows page."""

    list_display = ["__str__", "active", "manual", "reason", "expected_end", "active_since", "updated_at"]
    write_action = Action.MANAGE_WINDOWS
