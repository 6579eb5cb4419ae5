"""The reliability engineer's back office for telemetry: metric definitions (per asset type or asset: unit, sensor
range, limits, rate of change, detectors' settings, the meter fed), the organisation's telemetry settings
(retention, rollups, notifications), the anomalies list (acknowledge and resolve as actions, through the services)
and, shown only, the series and the ingest log."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from assets.telemetry import services
from assets.telemetry.messages import localized
from assets.telemetry.models import Anomaly, IngestBatch, MetricDefinition, Series, TelemetrySettings
from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import ReadOnlyTenantAdmin, ServiceAdmin, adopt, request_may, submitted
from maintenance_site.tenancy.roles import Action


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(ServiceAdmin):
    """What each metric means and when it is abnormal."""

    write_action = Action.MANAGE_ASSETS
    list_display = ["metric", "label", "asset", "asset_type", "unit", "warning_high", "critical_high", "feeds_meter"]
    list_select_related = ["asset", "asset_type"]
    search_fields = ["metric", "label"]
    autocomplete_fields = ["asset", "asset_type"]
    fieldsets = [
        (None, {"fields": ["metric", "label", "asset", "asset_type", "unit", "convert_units", "feeds_meter"]}),
        (
            _("Limits"),
            {
                "fields": [
                    ("sensor_min", "sensor_max"),
                    ("warning_low", "warning_high"),
                    ("critical_low", "critical_high"),
                    "max_rate_per_minute",
                    "flatline_minutes",
                ]
            },
        ),
        (
            _("Statistical detection"),
            {
                "fields": [
                    "statistical",
                    ("spike_sigmas", "drift_sigmas"),
                    ("ewma_lambda", "baseline_alpha"),
                    "warmup_points",
                    "clear_after_minutes",
                ]
            },
        ),
    ]

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.DEFINITION_FIELDS, changed=change)
        if change:
            saved = services.update_definition(obj, actor=request.user, **fields)
        else:
            saved = services.create_definition(self.new_organization(request, form), actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_definition(obj, actor=request.user)


@admin.register(TelemetrySettings)
class TelemetrySettingsAdmin(ServiceAdmin):
    """How long raw points and rollups are kept, and who hears of anomalies."""

    write_action = Action.MANAGE_SETTINGS
    list_display = ["organization", "raw_retention_days", "hourly_retention_days", "daily_retention_days", "notify"]
    list_select_related = ["organization"]

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.SETTINGS_FIELDS, changed=change)
        organization = obj.organization if change else self.new_organization(request, form)
        adopt(obj, services.update_settings(organization, actor=request.user, **fields))

    def delete_model(self, request, obj):
        services.update_settings(
            obj.organization,
            actor=request.user,
            **{name: TelemetrySettings._meta.get_field(name).get_default() for name in services.SETTINGS_FIELDS},
        )


@admin.register(Anomaly)
class AnomalyAdmin(ReadOnlyTenantAdmin):
    """Anomalies the detectors found, newest first; acknowledge or resolve the selected ones."""

    list_display = ["started_at", "asset", "metric", "detector", "severity", "status", "sentence", "ended_at"]
    list_select_related = ["asset"]
    list_filter = ["status", "severity", "detector"]
    search_fields = ["metric", "asset__code", "asset__name"]
    date_hierarchy = "started_at"
    actions = ["acknowledge_selected", "resolve_selected"]

    def has_manage_permission(self, request):
        return request_may(request, Action.MANAGE_ASSETS)

    @admin.display(description=_("what was seen"))
    def sentence(self, obj):
        return localized(obj.message)

    def _apply(self, request, queryset, service, done: str) -> int:
        """`done` is stored as the anomaly's comment (in English, as a record); returns how many changed."""
        changed = 0
        for anomaly in queryset.order_by("pk"):
            try:
                service(anomaly, comment=f"{done} in the back office", actor=request.user)
                changed += 1
            except DomainError as refusal:
                self.message_user(request, f"{anomaly}: {refusal.message}", messages.WARNING)
        return changed

    @admin.action(description=_("Acknowledge the selected anomalies"), permissions=["manage"])
    def acknowledge_selected(self, request, queryset):
        changed = self._apply(request, queryset, services.acknowledge_anomaly, "Acknowledged")
        if changed:
            text = ngettext("%(count)s anomaly acknowledged.", "%(count)s anomalies acknowledged.", changed)
            self.message_user(request, text % {"count": changed})

    @admin.action(description=_("Resolve the selected anomalies"), permissions=["manage"])
    def resolve_selected(self, request, queryset):
        changed = self._apply(request, queryset, services.resolve_anomaly, "Resolved")
        if changed:
            text = ngettext("%(count)s anomaly resolved.", "%(count)s anomalies resolved.", changed)
            self.message_user(request, text % {"count": changed})


@admin.register(Series)
class SeriesAdmin(ReadOnlyTenantAdmin):
    """Each asset's metrics: unit, first and newest point, how far detection has gone."""

    list_display = ["asset", "metric", "unit", "last_value", "last_ts", "analysed_until"]
    list_select_related = ["asset"]
    search_fields = ["metric", "asset__code"]
    exclude = ["state"]


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyTenantAdmin):
    """The ingest log: who sent which batch, and what became of its points."""

    list_display = ["created_at", "received_by", "points", "stored", "duplicates", "not_analysed", "anomalies_opened"]
    list_select_related = ["received_by"]
