"""Asset health over the API (seed 004): `POST diagnostics/run` (built-in checks: 201 with the results; `deep`: 202
with a run to poll at `diagnostics/runs/{id}`; `results` from an external tool: 201), `GET
diagnostics/history/{device_id}`, `POST diagnostics/analyze`, `GET iot/devices/{id}/health` and `GET
analytics/predictive-insights`. Running or submitting diagnostics needs `ingest_telemetry`; reading, `view`."""

import re
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from assets.models import Asset
from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantAPIMixin
from maintenance_site.tenancy.roles import Action
from workorders.health import services
from workorders.health.models import DiagnosticRun, Risk

MAX_HISTORY = 200
_DIGITS = re.compile(r"[0-9]{1,6}")


class DiagnosticResultSerializer(serializers.Serializer):
    check = serializers.CharField(source="check_name")
    status = serializers.CharField()
    measured = serializers.JSONField()
    message = serializers.CharField()


class DiagnosticRunSerializer(serializers.ModelSerializer):
    device_id = serializers.IntegerField(source="asset_id")
    results = DiagnosticResultSerializer(many=True, read_only=True)

    class Meta:
        model = DiagnosticRun
        fields = ["id", "device_id", "source", "tool", "deep", "status", "outcome", "created_at", "finished_at"]
        fields += ["error", "results"]


class DiagnosticResultInput(serializers.Serializer):
    check = serializers.CharField(help_text="e.g. insulation_resistance or vibration:bearing_de")
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    measured = serializers.JSONField(required=False)
    message = serializers.CharField(required=False, allow_blank=True)


class DiagnosticRunInput(serializers.Serializer):
    device_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    deep = serializers.BooleanField(
        default=False, help_text="Also the trend checks over 30 days: queued, answered 202 with the run to poll."
    )
    tool = serializers.CharField(required=False, allow_blank=True, max_length=120)
    results = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Results measured by an external tool (check, status, measured, message): stored as a run.",
    )


class DiagnosticAnalyzeInput(serializers.Serializer):
    device_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="One device; without it, every device."
    )
    days = serializers.IntegerField(default=30, min_value=1, max_value=3650, help_text="The period: the last N days.")


class CheckTrendSerializer(serializers.Serializer):
    check = serializers.CharField()
    runs = serializers.IntegerField()
    fail = serializers.IntegerField()
    warn = serializers.IntegerField()
    fail_rate = serializers.FloatField()
    first_half_problem_rate = serializers.FloatField(allow_null=True)
    second_half_problem_rate = serializers.FloatField(allow_null=True)
    degrading = serializers.BooleanField()


def _device(organization, raw) -> Asset:
    return get_object_or_404(Asset.objects.filter(organization=organization), pk=raw)


class DiagnosticsViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """Device diagnostics: run them, read their history, analyse their trends."""

    serializer_class = DiagnosticRunSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {
        "run": Action.INGEST_TELEMETRY,
        "history": Action.VIEW,
        "analyze": Action.VIEW,
        "run_detail": Action.VIEW,
    }

    def _runs(self):
        return DiagnosticRun.objects.filter(organization=self.organization).prefetch_related("results")

    @extend_schema(
        request=DiagnosticRunInput,
        responses={201: DiagnosticRunSerializer, 202: DiagnosticRunSerializer},
        operation_id="diagnostics_run",
    )
    @action(detail=False, methods=["post"])
    def run(self, request):
        given = DiagnosticRunInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        asset = _device(self.organization, data["device_id"])
        if "results" in data:
            run = services.submit_results(asset, tool=data.get("tool", ""), results=data["results"], actor=request.user)
        else:
            run = services.run_diagnostic(asset, deep=data["deep"], actor=request.user)
        run = self._runs().get(pk=run.pk)
        code = status.HTTP_202_ACCEPTED if run.status == DiagnosticRun.Status.PENDING else status.HTTP_201_CREATED
        return Response(DiagnosticRunSerializer(run).data, status=code)

    @extend_schema(
        parameters=[OpenApiParameter("run_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses=DiagnosticRunSerializer,
        operation_id="diagnostics_runs_retrieve",
    )
    @action(detail=False, methods=["get"], url_path=r"runs/(?P<run_id>[0-9]+)")
    def run_detail(self, request, run_id=None):
        return Response(DiagnosticRunSerializer(get_object_or_404(self._runs(), pk=run_id)).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("device_id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"Newest runs (1–{MAX_HISTORY}, default 50)."),
        ],
        responses=DiagnosticRunSerializer(many=True),
        operation_id="diagnostics_history",
    )
    @action(detail=False, methods=["get"], url_path=r"history/(?P<device_id>[0-9]+)")
    def history(self, request, device_id=None):
        asset = _device(self.organization, device_id)
        raw = request.query_params.get("limit", "50")
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_HISTORY:
            raise ValidationError({"limit": [_("A whole number from 1 to %(limit)s.") % {"limit": MAX_HISTORY}]})
        runs = self._runs().filter(asset=asset).order_by("-created_at", "-id")[: int(raw)]
        return Response(DiagnosticRunSerializer(runs, many=True).data)

    @extend_schema(
        request=DiagnosticAnalyzeInput, responses=CheckTrendSerializer(many=True), operation_id="diagnostics_analyze"
    )
    @action(detail=False, methods=["post"])
    def analyze(self, request):
        given = DiagnosticAnalyzeInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        asset = _device(self.organization, data["device_id"]) if "device_id" in data else None
        until = timezone.now()
        since = until - timedelta(days=data["days"])
        trends = services.analyze(self.organization, since=since, until=until, asset=asset)
        return Response(CheckTrendSerializer(trends, many=True).data, status=status.HTTP_200_OK)


class HealthTermSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    value = serializers.FloatField()
    weight = serializers.FloatField()
    cap = serializers.FloatField()
    penalty = serializers.FloatField(help_text="Points this term takes off 100: min(value × weight, cap).")
    detail = serializers.JSONField()


class HealthPointSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    score = serializers.FloatField()
    risk = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    asset = serializers.IntegerField()
    score = serializers.FloatField()
    risk = serializers.ChoiceField(choices=Risk.choices)
    computed_at = serializers.DateTimeField()
    terms = HealthTermSerializer(many=True)
    reasons = serializers.ListField(child=serializers.CharField())
    formula = serializers.CharField()
    history = HealthPointSerializer(many=True)


class DeviceHealthViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """`GET iot/devices/{id}/health?days=30`: the score now, each term (value, weight, penalty) and the score's
    history over the last `days` days."""

    serializer_class = HealthSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"health": Action.VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("days", OpenApiTypes.INT, description="History: the last N days (1–365)."),
        ],
        responses=HealthSerializer,
        operation_id="iot_devices_health",
    )
    @action(detail=True, methods=["get"])
    def health(self, request, pk=None):
        asset = _device(self.organization, pk)
        raw = request.query_params.get("days", "30")
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= 365:
            raise ValidationError({"days": [_("A whole number from 1 to %(limit)s.") % {"limit": 365}]})
        return Response(HealthSerializer(services.health_of(asset, history_days=int(raw))).data)


class FailurePredictionSerializer(serializers.Serializer):
    expected_at = serializers.DateTimeField()
    earliest = serializers.DateTimeField()
    latest = serializers.DateTimeField()
    mtbf_hours = serializers.FloatField()
    trend_factor = serializers.FloatField()
    confidence = serializers.ChoiceField(choices=["low", "medium", "high"])
    method = serializers.CharField(help_text="How the window was estimated.")


class PredictiveInsightSerializer(serializers.Serializer):
    asset = serializers.IntegerField()
    asset_code = serializers.CharField()
    asset_name = serializers.CharField()
    score = serializers.FloatField()
    risk = serializers.CharField()
    risk_since = serializers.DateTimeField()
    computed_at = serializers.DateTimeField()
    reasons = serializers.ListField(child=serializers.CharField())
    prediction = FailurePredictionSerializer(allow_null=True, help_text="Null when fewer than two failures are known.")


class PredictiveInsightsViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """`GET analytics/predictive-insights?risk=&limit=`: assets ranked by risk (lowest score first) with their
    reasons and, where the failure history allows, a predicted next-failure window with its method and confidence.
    Scores are as the health job last stored them (at most HEALTH_RECOMPUTE_INTERVAL old after a change)."""

    serializer_class = PredictiveInsightSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"predictive_insights": Action.VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("risk", str, enum=Risk.values, description="Only this risk level."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="How many assets (1–200, default 50)."),
        ],
        responses=PredictiveInsightSerializer(many=True),
        operation_id="analytics_predictive_insights",
    )
    @action(detail=False, methods=["get"], url_path="predictive-insights")
    def predictive_insights(self, request):
        params = request.query_params
        risk = params.get("risk") or None
        if risk is not None and risk not in Risk.values:
            raise ValidationError({"risk": [_("One of %(choices)s.") % {"choices": ", ".join(Risk.values)}]})
        raw = params.get("limit", "50")
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= 200:
            raise ValidationError({"limit": [_("A whole number from 1 to %(limit)s.") % {"limit": 200}]})
        rows = services.predictive_insights(self.organization, risk=risk, limit=int(raw))
        return Response(PredictiveInsightSerializer(rows, many=True).data)


router.register("diagnostics", DiagnosticsViewSet, basename="diagnostics")
router.register("iot/devices", DeviceHealthViewSet, basename="iot-device-health")
router.register("analytics", PredictiveInsightsViewSet, basename="analytics-predictive")
