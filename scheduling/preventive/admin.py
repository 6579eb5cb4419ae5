"""Back office for preventive maintenance: schedules (the trigger in words, the next five due dates, the parts
inline, what was generated inline, "generate now", "pause" and "resume" actions), what each generation pass
did, the occurrences, calendar feeds, and asset meters with their readings.

Schedules are saved through `scheduling.preventive.services` (the form runs the same `clean()` as the API, so a bad
cron expression or RRULE is shown next to its field with the same sentence)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from assets.admin import ActiveOrganizationFormMixin, OrganizationBoundForm
from assets.models import Meter, MeterReading
from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import TenantAdmin, TenantInline
from maintenance_site.tenancy.roles import Action
from scheduling.preventive import reports, services, targets
from scheduling.preventive.ical import feed_url
from scheduling.preventive.models import (
    CalendarFeed,
    GenerationRun,
    PreventiveOccurrence,
    PreventiveSchedule,
    ScheduleTemplatePart,
)
from workorders.services import validate_assignee

INLINE_DAYS = 90  # the generated-orders inline shows this many days back (and everything ahead)


class ScheduleForm(OrganizationBoundForm):
    class Meta:
        model = PreventiveSchedule
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        assignee = cleaned.get("assignee")
        organization = self.instance.organization if self.instance.organization_id else None
        if assignee is not None and organization is not None:
            try:
                validate_assignee(organization.pk, assignee)
            except DomainError as exc:
                self.add_error("assignee", exc.message)
        return cleaned


class TemplatePartInline(TenantInline):
    model = ScheduleTemplatePart
    write_action = Action.MANAGE_SCHEDULES
    fields = ["part", "stock_location", "quantity"]
    autocomplete_fields = ["part", "stock_location"]
    verbose_name = "part reserved for each order"
    verbose_name_plural = "parts reserved for each order"


class GeneratedInline(TenantInline):
    """What the schedule generated or skipped in the last INLINE_DAYS days and ahead (read-only)."""

    model = PreventiveOccurrence
    fk_name = "schedule"
    fields = ["due_at", "asset", "status", "order_link", "order_status", "note"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-due_at"]
    verbose_name_plural = f"generated orders and skips (last {INLINE_DAYS} days and ahead)"

    def get_queryset(self, request):
        since = timezone.now() - timedelta(days=INLINE_DAYS)
        return super().get_queryset(request).filter(due_at__gte=since).select_related("asset", "work_order")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="work order")
    def order_link(self, occurrence):
        order = occurrence.work_order
        if order is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:workorders_workorder_change", args=[order.pk]), order.number
        )

    @admin.display(description="order status")
    def order_status(self, occurrence):
        return occurrence.work_order.get_status_display() if occurrence.work_order else "—"


@admin.register(PreventiveSchedule)
class PreventiveScheduleAdmin(ActiveOrganizationFormMixin, TenantAdmin):
    form = ScheduleForm
    write_action = Action.MANAGE_SCHEDULES
    list_display = ["name", "status", "covers", "trigger_in_words", "next_due_at", "last_run_at"]
    list_filter = ["status", "trigger", "coverage", "mode"]
    list_select_related = ["asset", "asset_type", "location"]
    search_fields = ["name", "title"]
    autocomplete_fields = ["asset", "asset_type", "location", "procedure", "assignee", "team"]
    readonly_fields = [
        "status",
        "paused_at",
        "pause_reason",
        "trigger_in_words",
        "next_five",
        "next_due_at",
        "last_run_at",
    ]
    inlines = [TemplatePartInline, GeneratedInline]
    actions = ["generate_now", "pause", "resume"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["name", "description", "status", "paused_at", "pause_reason"]}),
        ("What it covers", {"fields": ["coverage", "asset", "asset_type", "location"]}),
        (
            "When it is due",
            {
                "fields": [
                    "trigger",
                    "cron_expression",
                    "rrule",
                    ("interval_count", "interval_unit"),
                    "time_of_day",
                    ("meter_name", "meter_mode"),
                    ("meter_interval", "meter_threshold", "cooldown_minutes"),
                    "trigger_in_words",
                    "next_five",
                ],
                "description": "Times are local to the asset's site (else the organisation's time zone). A time "
                "that does not exist on the spring-forward night runs a gap later (02:30 runs at 03:30); a time "
                "that happens twice in the autumn runs once, the first time.",
            },
        ),
        (
            "How it behaves",
            {
                "fields": [
                    "mode",
                    "lead_days",
                    "skip_if_open",
                    ("misfire_policy", "misfire_cap"),
                    ("start_date", "end_date"),
                    "next_due_at",
                    "last_run_at",
                ]
            },
        ),
        (
            "The work order",
            {
                "fields": [
                    "title",
                    "instructions",
                    ("priority", "work_type"),
                    "procedure",
                    "estimated_minutes",
                    ("assignee", "team"),
                ]
            },
        ),
    ]

    @admin.display(description="covers")
    def covers(self, schedule):
        if schedule.coverage == PreventiveSchedule.Coverage.ASSET:
            return str(schedule.asset) if schedule.asset_id else "—"
        if schedule.coverage == PreventiveSchedule.Coverage.ROUTINE:
            return f"routine round{f' in {schedule.location}' if schedule.location_id else ''}"
        parts = [
            f"type {schedule.asset_type}" if schedule.asset_type_id else "",
            f"under {schedule.location}" if schedule.location_id else "",
        ]
        return "every asset " + " and ".join(p for p in parts if p)

    @admin.display(description="trigger")
    def trigger_in_words(self, schedule):
        return reports.trigger_summary(schedule) if schedule.pk or schedule.trigger else "—"

    @admin.display(description="next five due dates")
    def next_five(self, schedule):
        if schedule.pk is None:
            return "Saved schedules show their next due dates here."
        dates = reports.next_due_dates(schedule, 5)
        if not dates:
            return "Not computable ahead (meter or floating schedule, or no further date)."
        zone = ZoneInfo(targets.schedule_zone(schedule))
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "", "<li>{}</li>", ((moment.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z"),) for moment in dates)
            ),
        )

    # --- saving through the services --------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        fields = {name: getattr(obj, name) for name in services.SCHEDULE_FIELDS if name in form.fields}
        if change:
            changed = {name: fields[name] for name in form.changed_data if name in fields}
            saved = services.update_schedule(obj, actor=request.user, **changed)
        else:
            organization = obj.organization if obj.organization_id else request.organization
            saved = services.create_schedule(organization, actor=request.user, **fields)
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def delete_model(self, request, obj):
        services.delete_schedule(obj, actor=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:scheduling_preventiveschedule_change", args=[object_id]))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletes go one by one through the service
        if not self._may_write(request):
            for name in ("generate_now", "pause", "resume"):
                actions.pop(name, None)
        return actions

    # --- actions ----------------------------------------------------------------------------------------

    def _each(self, request, queryset, do, done: str):
        succeeded, refused = [], []
        for schedule in queryset.order_by("name"):
            try:
                result = do(schedule)
            except DomainError as exc:
                refused.append(f"{schedule.name}: {exc.message}")
                continue
            succeeded.append(done.format(name=schedule.name, result=result))
        if succeeded:
            self.message_user(request, " ".join(succeeded), messages.SUCCESS)
        if refused:
            self.message_user(request, " ".join(refused), messages.WARNING)

    @admin.action(description="Generate now what is due")
    def generate_now(self, request, queryset):
        def do(schedule):
            return services.generate_now(schedule, actor=request.user).message

        self._each(request, queryset, do, "{name}: {result}")

    @admin.action(description="Pause the selected schedules")
    def pause(self, request, queryset):
        reason = "paused in the back office"
        self._each(
            request,
            queryset,
            lambda s: services.pause_schedule(s, actor=request.user, reason=reason),
            "{name} paused.",
        )

    @admin.action(description="Resume the selected schedules")
    def resume(self, request, queryset):
        self._each(request, queryset, lambda s: services.resume_schedule(s, actor=request.user), "{name} resumed.")


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PreventiveOccurrence)
class PreventiveOccurrenceAdmin(ReadOnlyMixin, TenantAdmin):
    """Every occurrence the generator created or skipped (its own audit: no history page of its own)."""

    list_display = ["due_at", "schedule", "asset", "status", "skip_reason", "work_order", "missed_count"]
    list_filter = ["status", "skip_reason"]
    list_select_related = ["schedule", "asset", "work_order"]
    search_fields = ["schedule__name", "asset__code", "work_order__number"]
    # No date_hierarchy: one occurrence per asset and period (100,000 a pass), and its drill-down counts dates over
    # all of them on every view (maintenance_site.admin_lists).
    object_history_template = None
    history_view = admin.ModelAdmin.history_view


@admin.register(GenerationRun)
class GenerationRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The generation passes that wrote something (superusers: passes span organisations)."""

    list_display = [
        "started_at",
        "as_of",
        "organization",
        "triggered_by",
        "created_count",
        "skipped_count",
        "finished_at",
    ]
    list_select_related = ["organization", "triggered_by"]
    show_full_result_count = False

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


class CalendarFeedForm(forms.ModelForm):
    class Meta:
        model = CalendarFeed
        fields = ["name"]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ActiveOrganizationFormMixin, TenantAdmin):
    """Secret .ics URLs of upcoming preventive work: the URL is shown once, when the feed is added."""

    write_action = Action.MANAGE_SCHEDULES
    list_display = ["name", "token_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = CalendarFeedForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        organization = (
            request.organization if not request.user.is_superuser or not obj.organization_id else (obj.organization)
        )
        feed, token = services.create_calendar_feed(organization, name=obj.name, actor=request.user)
        for field in feed._meta.concrete_fields:
            setattr(obj, field.attname, getattr(feed, field.attname))
        obj._state.adding = False
        self.message_user(
            request, f"Subscribe to {feed_url(request, token)} — copy it now: it is not shown again.", messages.SUCCESS
        )

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays as a record

    @admin.action(description="Revoke the selected feeds (their URLs stop working at once)")
    def revoke(self, request, queryset):
        for feed in queryset:
            services.revoke_calendar_feed(feed, actor=request.user)
        self.message_user(request, f"{queryset.count()} feed(s) revoked.", messages.SUCCESS)


class ReadingInline(ReadOnlyMixin, TenantInline):
    model = MeterReading
    fields = ["read_at", "value", "source", "recorded_by"]
    readonly_fields = fields
    ordering = ["-read_at"]
    verbose_name_plural = "latest readings (last 30 days)"

    def get_queryset(self, request):
        since = timezone.now() - timedelta(days=30)
        return super().get_queryset(request).filter(read_at__gte=since).select_related("recorded_by")


@admin.register(Meter)
class MeterAdmin(ActiveOrganizationFormMixin, TenantAdmin):
    """Asset meters (run hours, temperatures…) that meter-based schedules watch; readings come from the API."""

    write_action = Action.MANAGE_ASSETS
    list_display = ["asset", "name", "kind", "last_value", "unit", "last_read_at"]
    list_select_related = ["asset"]
    list_filter = ["kind"]
    search_fields = ["name", "asset__code", "asset__name"]
    autocomplete_fields = ["asset"]
    readonly_fields = ["last_value", "last_read_at"]
    inlines = [ReadingInline]
