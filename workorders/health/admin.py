"""Asset health in the back office: assets by risk (score, risk, why), diagnostic runs with their results, the
predictive alerts and the organisation's predictive settings (written through the service). Derived rows are shown
only."""

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from maintenance_site.tenancy.admin_base import (
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    ServiceAdmin,
    adopt,
    submitted,
)
from maintenance_site.tenancy.roles import Action
from workorders.health import charts, services
from workorders.health.models import AssetHealth, DiagnosticResult, DiagnosticRun, PredictiveAlert, PredictiveSettings


@admin.register(AssetHealth)
class AssetHealthAdmin(ReadOnlyTenantAdmin):
    """Assets by risk: the lowest score first, with the terms that took points off."""

    list_display = ["asset", "score", "risk", "risk_since", "computed_at", "reasons"]
    list_select_related = ["asset"]
    list_filter = ["risk"]
    search_fields = ["asset__code", "asset__name"]
    ordering = ["score", "asset_id"]
    show_full_result_count = False

    change_form_template = "admin/workorders/assethealth/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """One asset's health page: its score and risk over a chosen range (`?days=`), the anomalies by day, each
        metric with its limits, the open anomalies and the latest diagnostics (`charts.admin_charts`)."""
        obj = self.get_object(request, object_id)
        if obj is not None:
            raw = request.GET.get("days", "")
            days = int(raw) if raw.isdigit() and int(raw) in charts.RANGES else charts.DEFAULT_RANGE
            extra_context = {**(extra_context or {}), "health_charts": charts.admin_charts(obj.asset, days)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Why"))
    def reasons(self, obj):
        terms = sorted((t for t in obj.terms if t.get("penalty")), key=lambda t: -t["penalty"])
        return format_html_join("; ", "{} ({} → −{})", ((t["label"], t["value"], t["penalty"]) for t in terms))


class DiagnosticResultInline(ReadOnlyTenantInline):
    model = DiagnosticResult
    fields = ["check_name", "status", "measured", "message"]
    extra = 0


@admin.register(DiagnosticRun)
class DiagnosticRunAdmin(ReadOnlyTenantAdmin):
    """Diagnostic runs, newest first, with their results."""

    list_display = ["created_at", "asset", "source", "tool", "deep", "status", "outcome"]
    list_select_related = ["asset"]
    list_filter = ["status", "outcome", "source"]
    search_fields = ["asset__code", "tool"]
    inlines = [DiagnosticResultInline]
    show_full_result_count = False


@admin.register(PredictiveAlert)
class PredictiveAlertAdmin(ReadOnlyTenantAdmin):
    """Predictive work orders opened by the predictive job, and why."""

    list_display = ["created_at", "asset", "cause", "score", "risk", "work_order", "closed_at"]
    list_select_related = ["asset", "work_order"]
    list_filter = ["risk", "cause"]
    search_fields = ["asset__code", "work_order__number"]
    exclude = ["anomalies", "diagnostics"]


@admin.register(PredictiveSettings)
class PredictiveSettingsAdmin(ServiceAdmin):
    """When predictive work orders open (risk level, delay, cooldown, cap per run) and who hears of them."""

    write_action = Action.MANAGE_SETTINGS
    list_display = ["organization", "enabled", "risk_level", "delay_minutes", "cooldown_hours", "max_orders_per_run"]
    list_select_related = ["organization"]

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.SETTINGS_FIELDS, changed=change)
        organization = obj.organization if change else self.new_organization(request, form)
        adopt(obj, services.update_predictive_settings(organization, actor=request.user, **fields))

    def delete_model(self, request, obj):
        services.update_predictive_settings(
            obj.organization,
            actor=request.user,
            **{name: PredictiveSettings._meta.get_field(name).get_default() for name in services.SETTINGS_FIELDS},
        )
