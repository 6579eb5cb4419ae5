"""The scenario board (the Scenario changelist) and the pages around it. Platform administrators
(superusers) only: scenarios act for every organisation.

The board shows each scenario's state with a toggle, the presets one click away, the machine's resource
usage, open preset windows, an emergency stop and the latest activity. Every change asks for a
confirmation page first (with an optional timer and reason) and goes through the services, so refusals
come back as a message naming the reason.
"""

import json
import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from maintenance_site import formats
from maintenance_site.errors import DomainError
from maintenance_site.events import platform as platform_events
from maintenance_site.tenancy.admin_base import (
    HistoryAdmin,
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    ThemeModelAdmin,
    adopt,
    submitted,
)
from scenarios import metrics, registry, resources, rollback, services
from scenarios import presets as preset_services
from scenarios.models import (
    Category,
    DiscoveredService,
    Preset,
    PresetSchedule,
    Priority,
    Scenario,
    ScenarioActivity,
    ScenarioRun,
    Workspace,
    WorkspaceBackup,
    dependency_cycle,
)
from scenarios.priority import analyze_priority

VIA = ScenarioActivity.Via.ADMIN
CONFIRM_TEMPLATE = "admin/confirm_action.html"
MAX_LISTED = 20


class PlatformOnly:
    """Superusers only: a tenant's staff never see the platform's scenarios."""

    def _platform(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def platform_view(self, view):
        """An admin page of our own: logged-in staff (admin_view), and a platform administrator."""

        def guarded(request, *args, **kwargs):
            if not self._platform(request):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return self.admin_site.admin_view(guarded)

    def has_module_permission(self, request):
        return self._platform(request)

    def has_view_permission(self, request, obj=None):
        return self._platform(request)

    def has_add_permission(self, request, *args):
        return self._platform(request)

    def has_change_permission(self, request, obj=None):
        return self._platform(request)

    def has_delete_permission(self, request, obj=None):
        return self._platform(request)


class ReadOnly(ReadOnlyAdminMixin, PlatformOnly):
    """Platform pages that only show (runs, activity, discovered files)."""


class TimerForm(forms.Form):
    duration_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        label=_("Auto-deactivate after (minutes)"),
        help_text=_("Empty: the default timer (DEFAULT_TIMEOUT), none when that is 0."),
    )
    reason = forms.CharField(required=False, max_length=500, help_text=_("Kept in the activity log."))


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=500, help_text=_("Kept in the activity log."))


def _state_badge(state: str) -> str:
    status_class = "status-good" if state == Scenario.State.ACTIVE else "status-neutral"  # backoffice.css
    return format_html('<strong class="{}">{}</strong>', status_class, state)


class ConfirmMixin:
    def confirm(
        self,
        request,
        *,
        title,
        intro,
        objects,
        form,
        submit_label,
        bulk_action=None,
        selected=(),
        select_across="0",
        form_action="",
    ):
        objects = list(objects)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "objects": objects[:MAX_LISTED],
            "more": max(len(objects) - MAX_LISTED, 0),
            "form": form,
            "submit_label": submit_label,
            "bulk_action": bulk_action,
            "selected": list(selected),
            "select_across": select_across,
            "form_action": form_action,
            "cancel_url": reverse(f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_changelist"),
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)

    def bulk_confirm(self, request, queryset, *, name, title, intro, form_class, submit_label):
        """The first POST of a bulk action shows the confirmation; the second (with "apply") returns the form."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            return None, form
        response = self.confirm(
            request,
            title=title,
            intro=intro,
            objects=queryset,
            form=form,
            submit_label=submit_label,
            bulk_action=name,
            selected=request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            select_across=request.POST.get("select_across", "0"),
        )
        return response, None

    def report(self, request, func, success: str):
        try:
            result = func()
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return None
        self.message_user(request, success if isinstance(success, str) else success(result), messages.SUCCESS)
        return result


# --- the board -----------------------------------------------------------------------------------------


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Scenario
        fields = ["interval_seconds", "cron", "time_zone", *services.TASK_SETTINGS, "depends_on"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in (*services.TASK_SETTINGS, "depends_on"):
            if name in self.fields:
                self.fields[name].required = False

    def clean(self):
        """A post that carries only the schedule (no task setting at all) keeps the task settings as they are."""
        cleaned = super().clean()
        if self.is_bound and not any(name in self.data for name in services.TASK_SETTINGS):
            for name in services.TASK_SETTINGS:
                cleaned[name] = getattr(self.instance, name)
            if self.instance.pk:
                cleaned["depends_on"] = self.instance.depends_on.all()
        return cleaned

    def clean_depends_on(self):
        wanted = self.cleaned_data.get("depends_on")
        if self.instance.pk and wanted:
            cycle = dependency_cycle(self.instance, {other.pk for other in wanted})
            if cycle:
                raise forms.ValidationError(
                    _("These dependencies form a cycle: %(cycle)s.") % {"cycle": " → ".join(cycle)}
                )
        return wanted


class TaskCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    key = forms.SlugField(max_length=80, required=False, help_text=_("Empty: made from the name."))
    executor = forms.ChoiceField(
        required=False,
        help_text=_("The function registered in code that does the work; empty: the category's built-in executor."),
    )
    category = forms.ChoiceField(choices=Category.choices, initial=Category.OTHER)
    workspace = forms.ModelChoiceField(
        queryset=Workspace.objects.order_by("key"),
        required=False,
        help_text=_("The workspace a workspace executor (code quality, tests, links…) runs against."),
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.MEDIUM)
    timeout_seconds = forms.IntegerField(min_value=1, initial=3600)
    max_retries = forms.IntegerField(min_value=0, max_value=10, initial=0)
    cron = forms.CharField(required=False, help_text=_("Empty: the executor's default schedule."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["executor"].choices = [("", _("— the category's built-in executor —"))] + [
            (d.key, f"{d.key} — {d.name}") for d in registry.definitions()
        ]


@admin.register(Scenario)
class ScenarioAdmin(PlatformOnly, ConfirmMixin, ServiceAdminMixin, HistoryAdmin):
    change_list_template = "admin/scenarios/scenario/change_list.html"
    form = ScheduleForm
    list_display = [
        "key",
        "state_display",
        "toggle",
        "kind",
        "category",
        "weight",
        "schedule",
        "until",
        "last_run",
        "remote",
        "is_present",
    ]
    list_filter = ["state", "kind", "category", "weight", "is_present"]
    search_fields = ["key", "name", "description"]
    ordering = ["category", "key"]
    actions = ["activate_selected", "deactivate_selected", "run_selected"]
    readonly_fields = [
        "key",
        "name",
        "description",
        "kind",
        "category",
        "tags",
        "weight",
        "conflict_list",
        "is_present",
        "state",
        "active_since",
        "active_until",
        "activated_by",
        "activation_reason",
        "source_path",
        "status_url",
        "activate_url",
        "deactivate_url",
        "can_toggle",
        "remote_health",
        "remote_state",
        "last_polled_at",
        "last_error",
        "last_error_at",
        "last_run_at",
        "last_run_status",
        "last_run_summary",
        "executor",
        "priority_analysis",
    ]
    list_select_related = ["activated_by"]
    filter_horizontal = ["depends_on"]

    @admin.display(description=_("priority score"))
    def priority_analysis(self, obj):
        analysis = analyze_priority(obj)
        terms = ", ".join(
            f"{name} {value:.0f} × {analysis['weights'][name]}" for name, value in analysis["terms"].items()
        )
        return format_html(
            _("<strong>{}</strong> = ({}) × category {} × priority {}"),
            analysis["score"],
            terms,
            analysis["category_multiplier"],
            analysis["priority_adjustment"],
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (
                None,
                {
                    "fields": [
                        "key",
                        "name",
                        "description",
                        "kind",
                        "category",
                        "tags",
                        "weight",
                        "conflict_list",
                        "is_present",
                    ]
                },
            ),
            (_("State"), {"fields": ["state", "active_since", "active_until", "activated_by", "activation_reason"]}),
        ]
        if obj is not None and obj.kind == Scenario.Kind.EXTERNAL:
            fieldsets.append(
                (
                    _("External service"),
                    {
                        "fields": [
                            "source_path",
                            "status_url",
                            "activate_url",
                            "deactivate_url",
                            "can_toggle",
                            "remote_health",
                            "remote_state",
                            "last_polled_at",
                            "last_error",
                            "last_error_at",
                        ]
                    },
                )
            )
        else:
            fieldsets.append((_("Schedule while active"), {"fields": ["interval_seconds", "cron", "time_zone"]}))
            fieldsets.append(
                (
                    _("Task settings"),
                    {
                        "fields": [
                            "executor",
                            "config",
                            "priority",
                            ("timeout_seconds", "max_retries"),
                            ("allowed_hours", "allowed_weekdays", "cooldown_minutes"),
                            "depends_on",
                            "priority_analysis",
                        ]
                    },
                )
            )
            fieldsets.append(
                (
                    _("Impact (0–100) and effort"),
                    {
                        "fields": [
                            ("impact_code_quality", "impact_security", "impact_performance"),
                            ("impact_maintainability", "impact_user_experience"),
                            ("estimated_minutes", "complexity", "risk"),
                        ]
                    },
                )
            )
            fieldsets.append((_("Last run"), {"fields": ["last_run_at", "last_run_status", "last_run_summary"]}))
        return fieldsets

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("conflicts with"))
    def conflict_list(self, obj):
        return ", ".join(sorted(other.key for other in obj.conflicts.all())) or "-"

    @admin.display(description=_("state"), ordering="state")
    def state_display(self, obj):
        return _state_badge(obj.state)

    @admin.display(description="")
    def toggle(self, obj):
        verb = "deactivate" if obj.is_active else "activate"
        url = reverse("admin:scenarios_scenario_toggle", args=[obj.key])
        return format_html('<a class="button" href="{}">{}</a>', url, verb.capitalize())

    @admin.display(description=_("schedule"))
    def schedule(self, obj):
        return obj.schedule_display

    @admin.display(description=_("until"), ordering="active_until")
    def until(self, obj):
        return obj.active_until or (_("no timer") if obj.is_active else "-")

    @admin.display(description=_("last run"), ordering="last_run_at")
    def last_run(self, obj):
        if not obj.last_run_at:
            return "-"
        # format_html escapes its arguments first (a datetime becomes a string): format the moment before.
        return format_html(
            "{} <small>{}</small><br><small>{}</small>",
            obj.last_run_status,
            f"{timezone.localtime(obj.last_run_at):%Y-%m-%d %H:%M}",
            obj.last_run_summary[:120],
        )

    @admin.display(description=_("service"))
    def remote(self, obj):
        if obj.kind != Scenario.Kind.EXTERNAL:
            return "-"
        if obj.last_error:
            return format_html('<span class="status-bad">{}</span>', obj.last_error[:160])
        state = {"health": obj.remote_health or "?", "state": obj.remote_state or "?"}
        if obj.can_toggle:
            return _("%(health)s, %(state)s") % state
        return _("%(health)s, %(state)s, cannot toggle") % state

    def save_model(self, request, obj, form, change):
        services.update_schedule(
            obj,
            interval_seconds=form.cleaned_data.get("interval_seconds"),
            cron=form.cleaned_data.get("cron", ""),
            time_zone=form.cleaned_data.get("time_zone") or "UTC",
            actor=request.user,
            via=VIA,
        )
        settings = submitted(form, services.TASK_SETTINGS)
        depends_on = form.cleaned_data.get("depends_on")
        if settings or depends_on is not None:
            services.update_task_settings(obj, actor=request.user, via=VIA, depends_on=depends_on, **settings)

    def add_task_view(self, request):
        form = TaskCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            task = self.report(
                request,
                lambda: services.create_task(
                    name=data["name"],
                    key=data["key"],
                    executor=data["executor"],
                    category=data["category"],
                    priority=data["priority"],
                    timeout_seconds=data["timeout_seconds"],
                    max_retries=data["max_retries"],
                    cron=data["cron"],
                    workspace=data["workspace"],
                    actor=request.user,
                    via=VIA,
                ),
                lambda created: _("Task %(key)s created (inactive).") % {"key": created.key},
            )
            if task is not None:
                return HttpResponseRedirect(reverse("admin:scenarios_scenario_change", args=[task.pk]))
        return self.confirm(
            request,
            title=_("New maintenance task"),
            intro=_("A task runs a function registered in code with its own settings; it starts inactive."),
            objects=[],
            form=form,
            submit_label=_("Create the task"),
        )

    # --- board context and pages ---------------------------------------------------------------------

    def get_urls(self):
        own = [
            path("board/stop-all/", self.platform_view(self.stop_all_view), name="scenarios_scenario_stop_all"),
            path(
                "board/preset/<str:key>/", self.platform_view(self.preset_view), name="scenarios_scenario_apply_preset"
            ),
            path("board/toggle/<str:key>/", self.platform_view(self.toggle_view), name="scenarios_scenario_toggle"),
            path("tasks/new/", self.platform_view(self.add_task_view), name="scenarios_scenario_add_task"),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        # The resource charts' window is the board's own parameter, not a filter of the list.
        window = request.GET.get(RESOURCE_WINDOW_PARAM, resources.DEFAULT_WINDOW)
        if RESOURCE_WINDOW_PARAM in request.GET:
            request.GET = request.GET.copy()
            del request.GET[RESOURCE_WINDOW_PARAM]
        if self._platform(request):
            # First: the page's live updates replay every platform event numbered after this, so nothing that
            # commits while the page is being drawn is missed.
            extra_context["platform_sequence"] = platform_events.last_sequence()
            scenarios = {s.key: s for s in Scenario.objects.all()}
            status = services.scenarios_status()
            extra_context.update(
                {
                    "resource_chart": resource_chart(resources.usage_history(window), request),
                    "usage": services.resource_usage(),
                    "status": status,
                    "board_presets": [
                        (preset, preset_services.preset_keys(preset, scenarios))
                        for preset in Preset.objects.order_by("-builtin", "key")
                    ],
                    "open_windows": PresetSchedule.objects.filter(window_start__isnull=False).select_related("preset"),
                    "recent_activity": ScenarioActivity.objects.select_related("actor").order_by("-at", "-id")[:10],
                    "running_runs": ScenarioRun.objects.running().select_related("scenario"),
                }
            )
        return super().changelist_view(request, extra_context)

    def _back(self):
        return HttpResponseRedirect(reverse("admin:scenarios_scenario_changelist"))

    def toggle_view(self, request, key):
        scenario = get_object_or_404(Scenario, key=key)
        activating = not scenario.is_active
        form_class = TimerForm if activating else ReasonForm
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if activating:
                self.report(
                    request,
                    lambda: services.activate_scenario(
                        scenario,
                        actor=request.user,
                        via=VIA,
                        duration_minutes=data.get("duration_minutes"),
                        reason=data["reason"],
                    ),
                    _("%(key)s activated.") % {"key": scenario.key},
                )
            else:
                self.report(
                    request,
                    lambda: services.deactivate_scenario(scenario, actor=request.user, via=VIA, reason=data["reason"]),
                    _("%(key)s deactivated.") % {"key": scenario.key},
                )
            return self._back()
        if activating:
            title, submit_label = _("Activate %(key)s?") % {"key": scenario.key}, _("Yes, activate")
            if scenario.kind == Scenario.Kind.INTERNAL:
                intro = _("It will run %(schedule)s while active.") % {"schedule": scenario.schedule_display}
            else:
                intro = _("Activate this scenario:")
        else:
            title, submit_label = _("Deactivate %(key)s?") % {"key": scenario.key}, _("Yes, deactivate")
            intro = _("Deactivate this scenario:")
        return self.confirm(
            request,
            title=title,
            objects=[f"{scenario.key}: {scenario.description}"],
            intro=intro,
            form=form,
            submit_label=submit_label,
        )

    def preset_view(self, request, key):
        preset = get_object_or_404(Preset, key=key)
        form = TimerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            self.report(
                request,
                lambda: preset_services.apply_preset(
                    preset,
                    actor=request.user,
                    via=VIA,
                    reason=data["reason"],
                    duration_minutes=data.get("duration_minutes"),
                ),
                lambda changes: (
                    _("Preset %(key)s applied: %(changes)s.")
                    % {"key": preset.key, "changes": services.changes_text(changes)}
                ),
            )
            return self._back()
        wanted = preset_services.preset_keys(preset)
        active = set(Scenario.objects.active().values_list("key", flat=True))
        lines = [_("activate %(key)s") % {"key": key} for key in wanted if key not in active]
        lines += [_("keep %(key)s") % {"key": key} for key in wanted if key in active]
        lines += [_("deactivate %(key)s") % {"key": key} for key in sorted(active - set(wanted))]
        return self.confirm(
            request,
            title=_("Apply preset %(key)s?") % {"key": preset.key},
            intro=_("%(description)s Applying it changes, all or nothing:") % {"description": preset.description},
            objects=lines or [_("nothing")],
            form=form,
            submit_label=_("Yes, apply the preset"),
        )

    def stop_all_view(self, request):
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            self.report(
                request,
                lambda: services.stop_all(actor=request.user, via=VIA, reason=form.cleaned_data["reason"]),
                lambda result: (
                    _(
                        "Emergency stop: %(deactivated)s scenario(s) deactivated, %(cancelled)s run(s) cancelled, "
                        "%(asked)s asked to stop."
                    )
                    % {
                        "deactivated": len(result["deactivated"]),
                        "cancelled": result["runs_cancelled"],
                        "asked": result["runs_asked_to_stop"],
                    }
                ),
            )
            return self._back()
        active = Scenario.objects.active()
        return self.confirm(
            request,
            title=_("Stop every scenario?"),
            intro=_(
                "Emergency stop: every scenario is deactivated, pending runs cancelled, running runs asked to stop "
                "and open preset windows closed without restoring. Core jobs keep running."
            ),
            objects=[s.key for s in active] or [_("no scenario is active")],
            form=form,
            submit_label=_("Yes, stop everything"),
        )

    # --- bulk actions, each with its confirmation page -------------------------------------------------

    @admin.action(description=_("Activate the selected scenarios (all or nothing)"))
    def activate_selected(self, request, queryset):
        response, form = self.bulk_confirm(
            request,
            queryset,
            name="activate_selected",
            title=_("Activate these scenarios?"),
            intro=_("They are activated together, or none is if a rule refuses one:"),
            form_class=TimerForm,
            submit_label=_("Yes, activate"),
        )
        if response is not None:
            return response
        keys = sorted(queryset.values_list("key", flat=True))
        self.report(
            request,
            lambda: services.set_states(
                activate=keys,
                actor=request.user,
                via=VIA,
                reason=form.cleaned_data["reason"],
                duration_minutes=form.cleaned_data.get("duration_minutes"),
            ),
            lambda changes: _("Done: %(changes)s.") % {"changes": services.changes_text(changes)},
        )
        return None

    @admin.action(description=_("Deactivate the selected scenarios"))
    def deactivate_selected(self, request, queryset):
        response, form = self.bulk_confirm(
            request,
            queryset,
            name="deactivate_selected",
            title=_("Deactivate these scenarios?"),
            intro=_("Their pending scheduled runs are cancelled:"),
            form_class=ReasonForm,
            submit_label=_("Yes, deactivate"),
        )
        if response is not None:
            return response
        keys = sorted(queryset.values_list("key", flat=True))
        self.report(
            request,
            lambda: services.set_states(
                deactivate=keys,
                actor=request.user,
                via=VIA,
                reason=form.cleaned_data["reason"],
                action=ScenarioActivity.Action.DEACTIVATE,
            ),
            lambda changes: _("Done: %(changes)s.") % {"changes": services.changes_text(changes)},
        )
        return None

    @admin.action(description=_("Run the selected scenarios now"))
    def run_selected(self, request, queryset):
        response, form = self.bulk_confirm(
            request,
            queryset,
            name="run_selected",
            title=_("Run these scenarios now?"),
            intro=_("The runner starts them within a tick, whether they are active or not:"),
            form_class=ReasonForm,
            submit_label=_("Yes, run them"),
        )
        if response is not None:
            return response
        for scenario in queryset.internal():
            self.report(
                request,
                lambda s=scenario: services.request_run(
                    s, actor=request.user, via=VIA, reason=form.cleaned_data["reason"]
                ),
                _("Run of %(key)s requested.") % {"key": scenario.key},
            )
        return None


# --- presets and windows -------------------------------------------------------------------------------


class PresetForm(forms.ModelForm):
    scenarios = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Preset
        fields = ["key", "name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scenarios"].choices = [(s.key, f"{s.key} ({s.weight})") for s in Scenario.objects.present()]
        if self.instance.pk:
            # A built-in preset's page is read-only (no change permission): the admin then builds the form
            # without the fields it shows as text, so "key" may be absent.
            if "key" in self.fields:
                self.fields["key"].disabled = True
            self.initial["scenarios"] = list(self.instance.scenario_keys)

    def validate_unique(self):
        """Checked in clean() with the service's own words."""

    def clean(self):
        data = super().clean()
        key = self.instance.key if self.instance.pk else data.get("key", "")
        try:
            preset_services.parse_preset_document(
                {
                    "key": key or "",
                    "name": data.get("name", ""),
                    "description": data.get("description", ""),
                    "scenarios": list(data.get("scenarios") or []),
                }
            )
        except DomainError as exc:
            for field, problems in (exc.fields or {}).items():
                self.add_error(field if field in self.fields else None, problems)
            if not exc.fields:
                raise forms.ValidationError(exc.message) from None
        if not self.instance.pk and key and Preset.objects.filter(key=key).exists():
            self.add_error("key", _("A preset “%(key)s” already exists.") % {"key": key})
        return data


@admin.register(Preset)
class PresetAdmin(PlatformOnly, ConfirmMixin, ServiceAdminMixin, HistoryAdmin):
    form = PresetForm
    list_display = ["key", "name", "builtin", "scenario_list", "apply_link", "export_link"]
    actions = ["apply_selected"]
    change_list_template = "admin/scenarios/preset/change_list.html"

    @admin.display(description=_("scenarios"))
    def scenario_list(self, obj):
        return _("every available scenario") if obj.includes_all else ", ".join(obj.scenario_keys) or "-"

    @admin.display(description="")
    def apply_link(self, obj):
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:scenarios_scenario_apply_preset", args=[obj.key]),
            _("Apply…"),
        )

    @admin.display(description="")
    def export_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:scenarios_preset_export", args=[obj.key]), _("Export JSON")
        )

    def has_change_permission(self, request, obj=None):
        return self._platform(request) and not (obj is not None and obj.builtin)

    def has_delete_permission(self, request, obj=None):
        return self._platform(request) and not (obj is not None and obj.builtin)

    def save_model(self, request, obj, form, change):
        saved = preset_services.define_preset(
            form.cleaned_data.get("key") or obj.key,
            scenario_keys=form.cleaned_data["scenarios"],
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            actor=request.user,
            via=VIA,
            replace=change,
        )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        preset_services.delete_preset(obj, actor=request.user, via=VIA)

    def get_urls(self):
        own = [
            path("<str:key>/export/", self.platform_view(self.export_view), name="scenarios_preset_export"),
            path("import/", self.platform_view(self.import_view), name="scenarios_preset_import"),
        ]
        return own + super().get_urls()

    def export_view(self, request, key):
        data = preset_services.export_preset(get_object_or_404(Preset, key=key))
        response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="preset-{key}.json"'
        return response

    def import_view(self, request):
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            document = form.cleaned_data["document"] or form.cleaned_data["file"].read().decode("utf-8", "replace")
            try:
                preset = preset_services.import_preset(
                    document, actor=request.user, via=VIA, replace=form.cleaned_data["replace"]
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("Preset %(key)s imported.") % {"key": preset.key}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:scenarios_preset_changelist"))
        return self.confirm(
            request,
            title=_("Import a preset"),
            intro=_("Paste a preset exported as JSON, or upload its file:"),
            objects=[],
            form=form,
            submit_label=_("Import"),
            form_action="",
        )

    @admin.action(description=_("Apply the selected preset"))
    def apply_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one preset to apply."), messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:scenarios_scenario_apply_preset", args=[queryset.get().key]))


class ImportForm(forms.Form):
    document = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 10, "cols": 80}))
    file = forms.FileField(required=False)
    replace = forms.BooleanField(required=False, help_text=_("Overwrite a custom preset of the same key."))

    def clean(self):
        data = super().clean()
        if not data.get("document") and not data.get("file"):
            raise forms.ValidationError(_("Paste the JSON or choose a file."))
        return data


class ScheduleCreateForm(forms.ModelForm):
    class Meta:
        model = PresetSchedule
        fields = ["preset", "cron", "duration_minutes", "time_zone", "enabled"]

    def clean(self):
        data = super().clean()
        if self.instance.pk or self.errors:
            return data
        candidate = PresetSchedule(
            cron=data.get("cron") or "",
            duration_minutes=data.get("duration_minutes") or 0,
            time_zone=data.get("time_zone") or "UTC",
        )
        try:
            preset_services.check_schedule(candidate)
        except DomainError as exc:
            for field, problems in (exc.fields or {}).items():
                self.add_error(field if field in self.fields else None, problems)
            if not exc.fields:
                raise forms.ValidationError(exc.message) from None
        return data


@admin.register(PresetSchedule)
class PresetScheduleAdmin(PlatformOnly, ServiceAdminMixin, HistoryAdmin):
    form = ScheduleCreateForm
    list_display = ["id", "preset", "cron", "time_zone", "duration_minutes", "enabled", "window_state", "last_result"]
    list_select_related = ["preset"]
    readonly_fields = ["window_start", "window_end", "last_occurrence", "last_result"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ["preset", "cron", "duration_minutes", "time_zone", *self.readonly_fields]

    @admin.display(description=_("window"))
    def window_state(self, obj):
        return _("open until %(end)s") % {"end": f"{obj.window_end:%Y-%m-%d %H:%M}"} if obj.is_open else "-"

    def save_model(self, request, obj, form, change):
        if change:  # only `enabled` is editable once created
            if "enabled" in form.changed_data:
                adopt(obj, preset_services.set_schedule_enabled(obj, enabled=obj.enabled, actor=request.user, via=VIA))
            return
        created = preset_services.create_schedule(
            obj.preset,
            cron=obj.cron,
            duration=obj.duration_minutes,
            time_zone=obj.time_zone,
            enabled=obj.enabled,
            actor=request.user,
            via=VIA,
        )
        adopt(obj, created)

    def delete_model(self, request, obj):
        preset_services.delete_schedule(obj, actor=request.user, via=VIA)


# --- runs, activity, discovered files (read-only) -------------------------------------------------------


class RollbackForm(forms.Form):
    reason = forms.CharField(max_length=400, help_text=_("Kept in the activity log and the history rows."))
    force = forms.BooleanField(required=False, help_text=_("Even over records changed after the run."))


RESOURCE_WINDOW_PARAM = "resources"


def resource_chart(history: resources.History, request) -> dict:
    """The board's resource chart, for the theme's line chart component (Chart.js inside django-unfold: the admin's
    one chart approach, as in run_history_chart): CPU, memory and disk in percent on the left axis, the load average
    on its own axis on the right; times in the platform's zone (TIME_ZONE). `live` tells the board's script how to
    append the points that `platform:resources-sampled` brings (one per `step` seconds, at most `max_points`)."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    label_format = formats.TIME if WINDOW_HOURS[history.window] <= 24 else formats.DATE_TIME
    labels = [dateformat.format(timezone.localtime(slot, zone), label_format) for slot in history.slots]
    line = {"pointRadius": 0, "borderWidth": 2, "tension": 0.2, "spanGaps": True}
    data = {
        "labels": labels,
        "datasets": [
            {
                "label": str(_("CPU (%)")),
                "data": history.cpu,
                "borderColor": "var(--color-primary-600)",
                "yAxisID": "y",
                **line,
            },
            {"label": str(_("Memory (%)")), "data": history.memory, "borderColor": "#f59e0b", "yAxisID": "y", **line},
            {"label": str(_("Disk (%)")), "data": history.disk, "borderColor": "#6b7280", "yAxisID": "y", **line},
            {"label": str(_("Load (1 min)")), "data": history.load, "borderColor": "#dc2626", "yAxisID": "y1", **line},
        ],
    }
    options = {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "interaction": {"mode": "index", "intersect": False},
        "scales": {
            "x": {"ticks": {"maxTicksLimit": 8, "autoSkip": True}},
            "y": {"min": 0, "max": 100, "position": "left", "title": {"display": True, "text": "%"}},
            "y1": {
                "min": 0,
                "position": "right",
                "grid": {"drawOnChartArea": False},
                "title": {"display": True, "text": str(_("load"))},
            },
        },
    }
    query = request.GET.copy()
    windows = []
    for key in resources.WINDOWS:
        query[RESOURCE_WINDOW_PARAM] = key
        windows.append({"key": key, "url": "?" + query.urlencode(), "current": key == history.window})
    live = {
        "step": history.step_seconds,
        "max_points": resources.MAX_POINTS,
        "host": history.host,
        "label_format": "time" if label_format == formats.TIME else "date_time",
        "last_slot": services.iso(history.slots[-1]) if history.slots else None,
    }
    return {
        "data": json.dumps(data),
        "options": json.dumps(options),
        "live": json.dumps(live),
        "windows": windows,
        "host": history.host,
        "points": len(labels),
        "title": resource_title(history),
    }


WINDOW_HOURS = resources.WINDOWS
WINDOW_TITLES = {"1h": _("hour"), "6h": _("6 hours"), "24h": _("24 hours"), "7d": _("7 days")}


def resource_title(history) -> str:
    """The chart's title: the window, and the machine when known."""
    window = WINDOW_TITLES[history.window]
    if history.host:
        return _("Resource use, last %(window)s (%(host)s)") % {"window": window, "host": history.host}
    return _("Resource use, last %(window)s") % {"window": window}


def _rollback_line(change) -> str:
    """One record of the rollback's confirmation: what happens to it, and a warning when it changed since."""
    if change.created:
        what = _("%(record)s: delete (the run created it)")
    elif change.deleted:
        what = _("%(record)s: recreate")
    else:
        what = _("%(record)s: restore")
    line = what % {"record": change.label}
    if change.later:
        count = len(change.later)
        line += ngettext(
            " — CHANGED AFTER THE RUN (%(count)s later change)",
            " — CHANGED AFTER THE RUN (%(count)s later changes)",
            count,
        ) % {"count": count}
    return line


def run_history_chart(found: list[dict]) -> dict:
    """The run-history chart per task (success rate and average duration), for the theme's bar chart component
    (Chart.js inside django-unfold: the admin's one chart approach): rate as bars, duration as a line on its own
    axis. `rows` keeps the figures for the table under the chart."""
    labels = [m["task"] for m in found]
    rates = [m["success_rate"] if m["success_rate"] is not None else 0 for m in found]
    durations = [m["average_duration_ms"] or 0 for m in found]
    data = {
        "labels": labels,
        "datasets": [
            {
                "label": str(_("Success rate (%)")),
                "data": rates,
                "backgroundColor": "var(--color-primary-600)",
                "yAxisID": "y",
            },
            {
                "label": str(_("Average duration (ms)")),
                "data": durations,
                "type": "line",
                "borderColor": "#f59e0b",
                "yAxisID": "y1",
            },
        ],
    }
    options = {
        "scales": {
            "y": {"min": 0, "max": 100, "position": "left"},
            "y1": {"min": 0, "position": "right", "grid": {"drawOnChartArea": False}},
        }
    }
    rows = [
        {
            "task": m["task"],
            "rate": m["success_rate"],
            "duration": m["average_duration_ms"] or 0,
            "runs": m["runs"],
            "failing": m["consecutive_failures"],
        }
        for m in found
    ]
    return {"data": json.dumps(data), "options": json.dumps(options), "rows": rows}


@admin.register(ScenarioRun)
class ScenarioRunAdmin(ReadOnly, ConfirmMixin, ThemeModelAdmin):
    change_list_template = "admin/scenarios/scenariorun/change_list.html"
    list_display = [
        "id",
        "scenario",
        "slot",
        "trigger",
        "attempt",
        "status",
        "duration_ms",
        "changed",
        "issues_fixed",
        "summary",
        "rollback_link",
    ]

    @admin.display(description=_("rollback"))
    def rollback_link(self, obj):
        if obj.rolled_back_at:
            return _("rolled back")
        if not obj.changed or obj.status not in ScenarioRun.FINISHED:
            return "-"
        url = reverse("admin:scenarios_scenariorun_rollback", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Roll back…"))

    def get_urls(self):
        own = [
            path("<int:pk>/rollback/", self.platform_view(self.rollback_view), name="scenarios_scenariorun_rollback")
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        if self._platform(request):
            days = 30
            extra_context["chart_days"] = days
            extra_context["chart_title"] = _("Last %(days)s days, per task: success rate and average duration") % {
                "days": days
            }
            extra_context["chart"] = run_history_chart([m for m in metrics.all_metrics(days) if m["runs"]])
        return super().changelist_view(request, extra_context)

    def rollback_view(self, request, pk):
        run = get_object_or_404(ScenarioRun.objects.select_related("scenario"), pk=pk)
        form = RollbackForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = self.report(
                request,
                lambda: rollback.rollback(
                    run, form.cleaned_data["reason"], force=form.cleaned_data["force"], actor=request.user, via=VIA
                ),
                lambda outcome: (
                    _("Run #%(run)s rolled back: %(restored)s restored, %(deleted)s deleted, %(recreated)s recreated.")
                    % {
                        "run": run.pk,
                        "restored": len(outcome["restored"]),
                        "deleted": len(outcome["deleted"]),
                        "recreated": len(outcome["recreated"]),
                    }
                ),
            )
            if done is not None:
                return HttpResponseRedirect(reverse("admin:scenarios_scenariorun_changelist"))
        changes = rollback.changes(run)
        listed = [_rollback_line(change) for change in changes]
        return self.confirm(
            request,
            title=_("Roll back run #%(run)s of %(key)s?") % {"run": run.pk, "key": run.scenario.key},
            intro=_("These records go back to their state before the run:")
            if changes
            else _("This run wrote no history rows: there is nothing to roll back."),
            objects=listed,
            form=form,
            submit_label=_("Yes, roll back"),
        )

    list_filter = ["status", "trigger", "scenario"]
    list_select_related = ["scenario"]
    search_fields = ["scenario__key", "summary"]
    date_hierarchy = "slot"
    show_full_result_count = False
    actions = ["cancel_selected"]

    @admin.action(description=_("Cancel the selected runs"))
    def cancel_selected(self, request, queryset):
        queryset = queryset.filter(status__in=[ScenarioRun.Status.PENDING, ScenarioRun.Status.RUNNING])
        response, form = self.bulk_confirm(
            request,
            queryset,
            name="cancel_selected",
            title=_("Cancel these runs?"),
            intro=_("Pending runs are cancelled; running ones stop at their next checkpoint:"),
            form_class=ReasonForm,
            submit_label=_("Yes, cancel"),
        )
        if response is not None:
            return response
        for run in queryset.select_related("scenario"):
            self.report(
                request,
                lambda r=run: services.cancel_run(r, actor=request.user, via=VIA, reason=form.cleaned_data["reason"]),
                _("Run #%(run)s cancelled.") % {"run": run.pk},
            )
        return None


@admin.register(ScenarioActivity)
class ScenarioActivityAdmin(ReadOnly, ThemeModelAdmin):
    list_display = ["at", "actor", "via", "action", "subject", "result", "message", "reason"]
    list_filter = ["action", "result", "via"]
    list_select_related = ["actor"]
    search_fields = ["subject", "message", "reason"]
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(DiscoveredService)
class DiscoveredServiceAdmin(ReadOnly, ThemeModelAdmin):
    list_display = ["path", "outcome", "message", "scenario", "last_seen_at"]
    list_filter = ["outcome"]
    list_select_related = ["scenario"]


@admin.register(Workspace)
class WorkspaceAdmin(ReadOnly, admin.ModelAdmin):
    """Registered with `manage.py maintenance register-workspace` (superusers: its code runs on this machine)."""

    list_display = ["key", "name", "path", "registered_by", "created_at"]
    list_select_related = ["registered_by"]
    search_fields = ["key", "name", "path"]


@admin.register(WorkspaceBackup)
class WorkspaceBackupAdmin(ReadOnly, admin.ModelAdmin):
    """File rollback points of workspace runs; a rollback is made from the run's page."""

    list_display = ["run", "workspace", "created_at", "size_bytes", "evicted_at", "restored_at"]
    list_filter = ["workspace"]
    list_select_related = ["run", "workspace"]
    show_full_result_count = False
