"""`/api/v1/analytics/`: `definitions`, `overview`, `trends`, `costs`, `device-performance`, `pm-compliance`, `sla`
(`predictive-insights` is asset health's, `workorders.health.api`). Read-only, for every
member who may view; each answer states its period (local days), time zone, currency and definitions version, and
comes as CSV with `?format=csv`. The figures come from `maintenance_site.analytics.services` (the same functions
the back-office dashboard calls); their definitions are in the OpenAPI descriptions below and at `definitions`.
"""

import csv
import io
from datetime import date
from decimal import Decimal

from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, viewsets
from rest_framework.response import Response

from maintenance_site.analytics import definitions, periods, services
from maintenance_site.analytics.definitions import KPIS
from maintenance_site.api.renderers import JSONRenderer
from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantAPIMixin
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy.roles import Action


class CSVRenderer(renderers.BaseRenderer):
    """An answer's `rows` (or the overview's `kpis`) as CSV, one column per field; nested values flattened as
    `parent.child`. An error answer is one `message` column."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict):
            data = {"rows": data if isinstance(data, list) else []}
        rows = data.get("rows")
        if rows is None:
            rows = data.get("kpis")
        if rows is None:
            error = data.get("error") if isinstance(data.get("error"), dict) else data
            rows = [{"message": error.get("message") or error.get("detail") or ""}]
        flat = [_flatten(row) for row in rows if isinstance(row, dict)]
        columns = list(dict.fromkeys(key for row in flat for key in row))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns or ["message"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(flat)
        return out.getvalue().encode("utf-8")


def _flatten(row: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = "" if value is None else value
    return flat


def as_json(value):
    """Money (Decimal) as text, as the rest of the API writes amounts ("215.75", never a float); the rest as is."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


def _day(params, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        day = parse_date(raw)
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(
            _("“%(raw)s” is not a date: give %(name)s as a local date, YYYY-MM-DD.") % {"raw": raw[:40], "name": name},
            fields={name: [_("A date, YYYY-MM-DD.")]},
        )
    return day


def _id(params, name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(_("%(name)s is an id (a whole number).") % {"name": name}, fields={name: [_("An id.")]})
    return int(raw)


FILTERS = [
    OpenApiParameter("from", date, description="First local day of the period (default: 29 days before `to`)."),
    OpenApiParameter("to", date, description="Last local day, included (default: today in the organisation's zone)."),
    OpenApiParameter("location", int, description="A location: it and every location below it."),
    OpenApiParameter("asset_type", int),
    OpenApiParameter("asset", int),
    OpenApiParameter("team", int, description="Work-order KPIs only (see each KPI's `filters`)."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="`csv`: the rows as a CSV download."),
]
RULES = definitions.__doc__.split("Rules shared by every KPI:", 1)[1].strip()


class _AnalyticsViewSet(TenantAPIMixin, viewsets.ViewSet):
    """A read-only analytics answer: GET only, for every member who may view."""

    action_permissions = {"list": Action.VIEW}
    renderer_classes = [JSONRenderer, CSVRenderer]
    name_for_download = "analytics"

    def scope(self):
        params = self.request.query_params
        return services.scope_for(
            self.organization,
            first_day=_day(params, "from"),
            last_day=_day(params, "to"),
            location=_id(params, "location"),
            asset_type=_id(params, "asset_type"),
            asset=_id(params, "asset"),
            team=_id(params, "team"),
        )

    def answer(self, body: dict) -> Response:
        headers = {}
        if (
            getattr(self.request, "accepted_renderer", None) is not None
            and self.request.accepted_renderer.format == "csv"
        ):
            name = f"{self.name_for_download}-{body.get('from')}-{body.get('to')}.csv"
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(as_json(body), headers=headers)


class DefinitionsViewSet(_AnalyticsViewSet):
    name_for_download = "kpi-definitions"

    @extend_schema(
        description="Every KPI's definition: formula, what counts, unit, edge cases, the filters it honours.\n\n"
        + RULES,
        responses=dict,
        parameters=[FILTERS[-1]],
    )
    def list(self, request):
        body = definitions.describe()
        return Response({**body, "rows": body["kpis"]} if request.accepted_renderer.format == "csv" else body)


class OverviewViewSet(_AnalyticsViewSet):
    name_for_download = "overview"

    @extend_schema(
        description="The headline KPIs for the period, each with the value of the period of the same length just "
        "before it and the link a dashboard tile leads to; links to trends, costs, device performance and "
        "predictive insights.\n\n" + RULES + "\n\n" + definitions.openapi_text(definitions.OVERVIEW),
        parameters=FILTERS,
        responses=dict,
    )
    def list(self, request):
        return self.answer(services.overview(self.scope()))


class TrendsViewSet(_AnalyticsViewSet):
    name_for_download = "trends"

    @extend_schema(
        description="Any KPIs over time, one point per local day, ISO week or month (at most "
        f"{periods.MAX_BUCKETS} points; ask by week or month for longer periods).\n\n"
        + RULES
        + "\n\n"
        + definitions.openapi_text(),
        parameters=[
            OpenApiParameter("kpi", str, description=f"Comma-separated KPIs: {', '.join(KPIS)}.", required=True),
            OpenApiParameter("interval", str, enum=list(periods.INTERVALS), description="Default: day."),
            *FILTERS,
        ],
        responses=dict,
    )
    def list(self, request):
        params = request.query_params
        keys = [key.strip() for key in (params.get("kpi") or "").split(",") if key.strip()]
        for key in keys:
            if key not in KPIS:
                raise services.unknown_kpi(key[:40])
        keys = list(dict.fromkeys(keys))
        return self.answer(services.trend(self.scope(), keys, params.get("interval") or "day"))


class CostsViewSet(_AnalyticsViewSet):
    name_for_download = "costs"

    @extend_schema(
        description="Maintenance cost by category (labour, parts, external), by period, or per asset, asset type "
        "or location; the totals; and the budgets of the period against their actual, committed (open purchase "
        "orders) and forecast spend. Amounts in the organisation's currency (`currency`).\n\n"
        + RULES
        + "\n\n"
        + definitions.openapi_text(("labour_cost", "parts_cost", "external_cost", "total_cost")),
        parameters=[
            OpenApiParameter("group_by", str, enum=list(services.COST_GROUP_BYS), description="Default: category."),
            OpenApiParameter("interval", str, enum=list(periods.INTERVALS), description="For group_by=period."),
            *FILTERS,
        ],
        responses=dict,
    )
    def list(self, request):
        params = request.query_params
        return self.answer(
            services.costs(self.scope(), params.get("group_by") or "category", params.get("interval") or "month")
        )


class DevicePerformanceViewSet(_AnalyticsViewSet):
    name_for_download = "device-performance"

    @extend_schema(
        description="MTBF, MTTR, availability, failures and downtime per asset, asset type or location, the totals, "
        "and failures by cause and by problem code (a Pareto, most frequent first).\n\n"
        + RULES
        + "\n\n"
        + definitions.openapi_text(services.DEVICE_KPIS),
        parameters=[
            OpenApiParameter("group_by", str, enum=list(services.GROUP_BYS), description="Default: asset_type."),
            *FILTERS,
        ],
        responses=dict,
    )
    def list(self, request):
        return self.answer(
            services.device_performance(self.scope(), request.query_params.get("group_by") or "asset_type")
        )


class PMComplianceViewSet(_AnalyticsViewSet):
    name_for_download = "pm-compliance"

    @extend_schema(
        description="PM compliance of the preventive occurrences due in the period, with its counts (generated, "
        "completed on time and late, overdue, still open, cancelled, skipped) per period, schedule or asset: the "
        "figures of /api/v1/preventive-maintenance/statistics, computed by the same code.\n\n"
        + RULES
        + "\n\n"
        + definitions.openapi_text(("pm_compliance",)),
        parameters=[
            OpenApiParameter("group_by", str, enum=list(services.PM_GROUP_BYS), description="Default: period."),
            OpenApiParameter("interval", str, enum=list(periods.INTERVALS), description="For group_by=period."),
            *FILTERS,
        ],
        responses=dict,
    )
    def list(self, request):
        params = request.query_params
        return self.answer(
            services.pm_compliance(self.scope(), params.get("group_by") or "period", params.get("interval") or "month")
        )


class SLAViewSet(_AnalyticsViewSet):
    name_for_download = "sla"

    @extend_schema(
        description="SLA response and resolution performance of the clocks started in the period: met, breached, "
        "compliance, mean and 90th-percentile business minutes, per priority, policy, asset or period and overall "
        "— the figures of /api/v1/sla/performance, computed by the same code.\n\n"
        + RULES
        + "\n\n"
        + definitions.openapi_text(("response_compliance", "resolution_compliance")),
        parameters=[
            OpenApiParameter("group_by", str, enum=list(services.SLA_GROUP_BYS), description="Default: priority."),
            OpenApiParameter("interval", str, enum=list(periods.INTERVALS), description="For group_by=period."),
            *FILTERS,
        ],
        responses=dict,
    )
    def list(self, request):
        params = request.query_params
        return self.answer(
            services.sla(self.scope(), params.get("group_by") or "priority", params.get("interval") or "month")
        )


router.register("analytics/definitions", DefinitionsViewSet, basename="analytics-definitions")
router.register("analytics/overview", OverviewViewSet, basename="analytics-overview")
router.register("analytics/trends", TrendsViewSet, basename="analytics-trends")
router.register("analytics/costs", CostsViewSet, basename="analytics-costs")
router.register("analytics/device-performance", DevicePerformanceViewSet, basename="analytics-device-performance")
router.register("analytics/pm-compliance", PMComplianceViewSet, basename="analytics-pm-compliance")
router.register("analytics/sla", SLAViewSet, basename="analytics-sla")
