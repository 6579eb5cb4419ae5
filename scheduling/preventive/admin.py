"""Back office for preventive maintenance: schedules (the trigger in words, the next five due dates, the parts
inline, what was generated inline, "generate now", "pause" and "resume" actions), what each generation pass
did, the occurrences and calendar feeds.

Schedules are saved with their parts through `scheduling.preventive.services` in one call (the form runs the same
`clean()` as the API, so a bad cron expression or RRULE is shown next to its field with the same sentence, and a
refusal of the service is shown on the form)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import (
    ReadOnlyAdminMixin,
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    ServiceAdmin,
    ServiceForm,
    TenantInline,
    ThemeModelAdmin,
    adopt,
    inline_rows,
)
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


class ScheduleForm(ServiceForm):
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
    verbose_name = _("part reserved for each order")
    verbose_name_plural = _("parts reserved for each order")


class GeneratedInline(ReadOnlyTenantInline):
    """What the schedule generated or skipped in the last INLINE_DAYS days and ahead (read-only)."""

    model = PreventiveOccurrence
    fk_name = "schedule"
    fields = ["due_at", "asset", "status", "order_link", "order_status", "note"]
    ordering = ["-due_at"]
    verbose_name_plural = format_lazy(_("generated orders and skips (last {days} days and ahead)"), days=INLINE_DAYS)

    def get_queryset(self, request):
        since = timezone.now() - timedelta(days=INLINE_DAYS)
        return super().get_queryset(request).filter(due_at__gte=since).select_related("asset", "work_order")

    @admin.display(description=_("work order"))
    def order_link(self, occurrence):
        order = occurrence.work_order
        if order is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:workorders_workorder_change", args=[order.pk]), order.number
        )

    @admin.display(description=_("order status"))
    def order_status(self, occurrence):
        return occurrence.work_order.get_status_display() if occurrence.work_order else "—"


@admin.register(PreventiveSchedule)
class PreventiveScheduleAdmin(ServiceAdmin):
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
        (_("What it covers"), {"fields": ["coverage", "asset", "asset_type", "location"]}),
        (
            _("When it is due"),
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
                "description": _(
                    "Times are local to the asset's site (else the organisation's time zone). A time that does not "
                    "exist on the spring-forward night runs a gap later (02:30 runs at 03:30); a time that happens "
                    "twice in the autumn runs once, the first time."
                ),
            },
        ),
        (
            _("How it behaves"),
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
            _("The work order"),
            {
                "fields": [
                    "title",
                    "instructions",
                    ("priority", "work_type"),
                    "procedure",
                    "estimated_minutes",
                    "plan_start",
                    ("assignee", "team"),
                ]
            },
        ),
    ]

    @admin.display(description=_("covers"))
    def covers(self, schedule):
        if schedule.coverage == PreventiveSchedule.Coverage.ASSET:
            return str(schedule.asset) if schedule.asset_id else "—"
        if schedule.coverage == PreventiveSchedule.Coverage.ROUTINE:
            if schedule.location_id:
                return _("routine round in %(location)s") % {"location": schedule.location}
            return _("routine round")
        names = {"type": schedule.asset_type, "location": schedule.location}
        if schedule.asset_type_id and schedule.location_id:
            return _("every asset type %(type)s and under %(location)s") % names
        if schedule.asset_type_id:
            return _("every asset type %(type)s") % names
        if schedule.location_id:
            return _("every asset under %(location)s") % names
        return _("every asset")

    @admin.display(description=_("trigger"))
    def trigger_in_words(self, schedule):
        return reports.trigger_summary(schedule) if schedule.pk or schedule.trigger else "—"

    @admin.display(description=_("next five due dates"))
    def next_five(self, schedule):
        if schedule.pk is None:
            return _("Saved schedules show their next due dates here.")
        dates = reports.next_due_dates(schedule, 5)
        if not dates:
            return _("Not computable ahead (meter or floating schedule, or no further date).")
        zone = ZoneInfo(targets.schedule_zone(schedule))
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "", "<li>{}</li>", ((moment.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z"),) for moment in dates)
            ),
        )

    # --- saving through the services --------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        """Saved with its parts in save_related: one service call for the schedule and its part list."""

    def save_related(self, request, form, formsets, change):
        parts = None
        for formset in formsets:
            if formset.model is ScheduleTemplatePart and (formset.has_changed() or not change):
                parts = inline_rows(formset, ("part", "stock_location", "quantity"))
            else:
                self.save_formset(request, form, formset, change)
        fields = {name: getattr(form.instance, name) for name in services.SCHEDULE_FIELDS if name in form.fields}
        if change:
            changed = {name: fields[name] for name in form.changed_data if name in fields}
            saved = services.update_schedule(form.instance, actor=request.user, parts=parts, **changed)
        else:
            organization = self.new_organization(request, form)
            saved = services.create_schedule(organization, actor=request.user, parts=parts, **fields)
        adopt(form.instance, saved)

    def delete_model(self, request, obj):
        services.delete_schedule(obj, actor=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
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

    @admin.action(description=_("Generate now what is due"))
    def generate_now(self, request, queryset):
        def do(schedule):
            return services.generate_now(schedule, actor=request.user).message

        self._each(request, queryset, do, "{name}: {result}")

    @admin.action(description=_("Pause the selected schedules"))
    def pause(self, request, queryset):
        reason = "paused in the back office"
        self._each(
            request,
            queryset,
            lambda s: services.pause_schedule(s, actor=request.user, reason=reason),
            "{name} paused.",
        )

    @admin.action(description=_("Resume the selected schedules"))
    def resume(self, request, queryset):
        self._each(request, queryset, lambda s: services.resume_schedule(s, actor=request.user), "{name} resumed.")


@admin.register(PreventiveOccurrence)
class PreventiveOccurrenceAdmin(ReadOnlyTenantAdmin):
    """Every occurrence the generator created or skipped (its own audit: no history page of its own)."""

    list_display = ["due_at", "schedule", "asset", "status", "skip_reason", "work_order", "missed_count"]
    list_filter = ["status", "skip_reason"]
    list_select_related = ["schedule", "asset", "work_order"]
    search_fields = ["schedule__name", "asset__code", "work_order__number"]
    # No date_hierarchy: one occurrence per asset and period (100,000 a pass), and its drill-down counts dates over
    # all of them on every view (maintenance_site.admin_lists).
    show_full_result_count = False


@admin.register(GenerationRun)
class GenerationRunAdmin(ReadOnlyAdminMixin, ThemeModelAdmin):
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


class CalendarFeedForm(ServiceForm):
    class Meta:
        model = CalendarFeed
        fields = ["name"]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ServiceAdmin):
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
            adopt(obj, services.rename_calendar_feed(obj, actor=request.user, name=form.cleaned_data["name"]))
            return
        organization = self.new_organization(request, form)
        feed, token = services.create_calendar_feed(organization, name=form.cleaned_data["name"], actor=request.user)
        adopt(obj, feed)
        self.message_user(
            request,
            _("Subscribe to %(url)s — copy it now: it is not shown again.") % {"url": feed_url(request, token)},
            messages.SUCCESS,
        )

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays as a record

    @admin.action(description=_("Revoke the selected feeds (their URLs stop working at once)"))
    def revoke(self, request, queryset):
        for feed in queryset:
            services.revoke_calendar_feed(feed, actor=request.user)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%(count)s feed revoked.", "%(count)s feeds revoked.", count) % {"count": count},
            messages.SUCCESS,
        )
