"""`/api/v1/iot/…` (seed 004): `POST iot/metrics` (a batch of points), `GET iot/devices/{id}/metrics` (an asset's
series, or one metric's points or buckets over a range), `GET iot/anomalies` (+ `acknowledge`, `resolve`),
`iot/definitions` (metric definitions) and `iot/settings` (the organisation's retention and notifications).
Posting points needs `ingest_telemetry`; definitions and the anomalies' workflow `manage_assets`; settings
`manage_settings`."""

from datetime import timedelta

import django_filters
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from assets.models import Asset
from assets.telemetry import queries, services
from assets.telemetry.messages import localized
from assets.telemetry.models import Anomaly, MetricDefinition, Series, TelemetrySettings
from maintenance_site.api.filters import FilterBackend, MomentFilter, UpdatedAfterFilter, parse_query_datetime
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.serializers import FastListSerializer, TenantModelSerializer
from maintenance_site.api.viewsets import TenantAPIMixin, TenantGenericViewSet, TenantModelViewSet
from maintenance_site.tenancy.roles import Action

# --- ingest ---------------------------------------------------------------------------------------------------


class PointInput(serializers.Serializer):
    """One point. Exactly one of `asset_id` and `asset_code`; `ts` ISO 8601 with a time zone; `unit` optional
    (converted or refused when it is not the metric's). Checked by the service, one message per point."""

    asset_id = serializers.IntegerField(required=False)
    asset_code = serializers.CharField(required=False)
    metric = serializers.CharField()
    ts = serializers.DateTimeField()
    value = serializers.FloatField()
    unit = serializers.CharField(required=False)


class BatchInput(serializers.Serializer):
    points = PointInput(many=True, help_text=f"At most {services.MAX_POINTS} points.")


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Already stored (same asset, metric and ts): not stored again.")
    not_analysed = serializers.IntegerField(
        help_text="Stored, but older than the re-analysis window allows: not run through detection."
    )
    anomalies = serializers.IntegerField(help_text="Anomalies this batch opened.")
    batch_id = serializers.IntegerField()


class IngestViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """Device metrics in: `{"points": [...]}` (or the list itself). All or nothing; a point already stored is
    counted as a duplicate, so a batch may be sent again safely."""

    serializer_class = BatchInput
    pagination_class = None
    filter_backends = []
    action_permissions = {"create": Action.INGEST_TELEMETRY}

    @extend_schema(request=BatchInput, responses={201: IngestResultSerializer}, operation_id="iot_metrics_ingest")
    def create(self, request, *args, **kwargs):
        data = request.data
        points = data.get("points") if isinstance(data, dict) else data
        if not isinstance(points, list):
            raise ValidationError({"points": [_('Send {"points": [...]}: a list of points.')]})
        result = services.ingest_points(self.organization, points, actor=request.user)
        return Response(IngestResultSerializer(result).data, status=status.HTTP_201_CREATED)


# --- reading ------------------------------------------------------------------------------------------------------


class SeriesSerializer(serializers.ModelSerializer):
    class Meta:
        model = Series
        fields = ["id", "metric", "unit", "first_ts", "last_ts", "last_value", "analysed_until"]
        read_only_fields = fields
        list_serializer_class = FastListSerializer


class BucketSerializer(serializers.Serializer):
    ts = serializers.DateTimeField(help_text="The point's time, or the bucket's start (UTC).")
    value = serializers.FloatField(required=False, help_text="Raw points only.")
    min = serializers.FloatField(required=False)
    avg = serializers.FloatField(required=False)
    max = serializers.FloatField(required=False)
    count = serializers.IntegerField(required=False)


@extend_schema_serializer(many=False)
class DeviceMetricsSerializer(serializers.Serializer):
    asset = serializers.IntegerField()
    metric = serializers.CharField(allow_null=True)
    unit = serializers.CharField(allow_null=True)
    bucket = serializers.CharField(allow_null=True)
    points = BucketSerializer(many=True, required=False)
    series = SeriesSerializer(many=True, required=False, help_text="Without ?metric=: the asset's series.")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["from"], data["to"] = instance.get("from"), instance.get("to")
        return data


class DeviceViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """An asset's telemetry: `GET iot/devices/{id}/metrics?metric=&from=&to=&bucket=`. Without `metric`, the
    asset's series. `bucket`: auto (default: the finest that fits), raw, minute, hour or day; a response never
    holds more than TELEMETRY_MAX_POINTS_PER_RESPONSE points or buckets: a request that would is a 400 naming the
    bucket to ask instead. `from` defaults to 24 hours before `to` (default now)."""

    queryset = Asset.objects.all()  # the schema's type of {id}; the view reads the organisation's assets only
    serializer_class = DeviceMetricsSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"metrics": Action.VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("metric", str, description="The metric; without it, the asset's series."),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (included); default: 24 h before to."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (excluded); default: now."),
            OpenApiParameter("bucket", str, enum=list(queries.CHOICES), description="Default: auto."),
        ],
        responses=DeviceMetricsSerializer,
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request, pk=None):
        asset = get_object_or_404(Asset.objects.filter(organization=self.organization), pk=pk)
        params = request.query_params
        metric = params.get("metric")
        if not metric:
            body = {"asset": asset.pk, "metric": None, "unit": None, "bucket": None}
            body["series"] = queries.asset_series(asset)
            return Response(DeviceMetricsSerializer(body).data)
        end = parse_query_datetime("to", params["to"]) if params.get("to") else timezone.now()
        try:
            start = parse_query_datetime("from", params["from"]) if params.get("from") else end - timedelta(hours=24)
        except OverflowError:
            raise ValidationError({"from": [_("Give from: a day before the year 1 does not exist.")]}) from None
        if start >= end:
            raise ValidationError({"from": [_("Must be before to.")]})
        bucket = params.get("bucket") or "auto"
        if bucket not in queries.CHOICES:
            raise ValidationError({"bucket": [_("One of %(choices)s.") % {"choices": ", ".join(queries.CHOICES)}]})
        series = Series.objects.filter(asset=asset, metric=metric).first()
        body = {"asset": asset.pk, "metric": metric, "from": start, "to": end}
        if series is None:
            return Response(DeviceMetricsSerializer({**body, "unit": None, "bucket": bucket, "points": []}).data)
        try:
            window = queries.series_window(series.pk, start, end, bucket)
        except queries.TooManyPoints as refused:
            raise ValidationError(
                {
                    "bucket": [
                        _("%(problem)s Ask for %(suggestion)s.")
                        % {"problem": refused.message, "suggestion": refused.suggestion}
                    ]
                }
            ) from None
        body.update(unit=series.unit, bucket=window.bucket, points=window.rows)
        return Response(DeviceMetricsSerializer(body).data)


# --- anomalies --------------------------------------------------------------------------------------------------


class AnomalySerializer(serializers.ModelSerializer):
    asset_code = serializers.CharField(source="asset.code", read_only=True)
    message_text = serializers.SerializerMethodField(
        help_text="`message` in the reader's language (the stored `message` is the detector's English sentence)."
    )

    def get_message_text(self, anomaly) -> str:
        return localized(anomaly.message)

    class Meta:
        model = Anomaly
        fields = [
            "id",
            "asset",
            "asset_code",
            "metric",
            "detector",
            "severity",
            "status",
            "started_at",
            "last_seen_at",
            "ended_at",
            "peak_value",
            "peak_at",
            "limit",
            "points",
            "message",
            "message_text",
            "acknowledged_by",
            "acknowledged_at",
            "comment",
            "resolved_by",
            "resolved_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        list_serializer_class = FastListSerializer


class AnomalyFilter(django_filters.FilterSet):
    asset = django_filters.NumberFilter(field_name="asset_id")
    started_after = MomentFilter(field_name="started_at", lookup_expr="gte", param="started_after")
    started_before = MomentFilter(field_name="started_at", lookup_expr="lt", param="started_before")
    ongoing = django_filters.BooleanFilter(field_name="ended_at", lookup_expr="isnull")

    class Meta:
        model = Anomaly
        fields = ["asset", "metric", "severity", "status", "detector", "started_after", "started_before", "ongoing"]


class CommentInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class AnomalyViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """Detected anomalies, newest first, by cursor; filters: `asset`, `metric`, `severity`, `status` (open,
    acknowledged, resolved), `detector`, `ongoing`, `started_after` / `started_before`. `acknowledge` (with a
    comment) and `resolve` are audited."""

    queryset = Anomaly.objects.select_related("asset")
    serializer_class = AnomalySerializer
    pagination_class = CursorPagination
    filter_backends = [FilterBackend, UpdatedAfterFilter]
    filterset_class = AnomalyFilter
    ordering = ["-started_at", "-id"]
    write_action = Action.MANAGE_ASSETS

    @extend_schema(request=CommentInput, responses=AnomalySerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        data = self.input(CommentInput)
        anomaly = services.acknowledge_anomaly(self.get_object(), comment=data["comment"], actor=request.user)
        return self.one(AnomalySerializer, anomaly)

    @extend_schema(request=CommentInput, responses=AnomalySerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = self.input(CommentInput)
        anomaly = services.resolve_anomaly(self.get_object(), comment=data["comment"], actor=request.user)
        return self.one(AnomalySerializer, anomaly)


# --- definitions and settings ----------------------------------------------------------------------------------


class DefinitionSerializer(TenantModelSerializer):
    class Meta:
        model = MetricDefinition
        fields = ["id", *sorted(services.DEFINITION_FIELDS), "created_at", "updated_at"]


class DefinitionViewSet(TenantModelViewSet):
    """Metric definitions: per asset, per asset type, or (neither) for the whole organisation."""

    queryset = MetricDefinition.objects.all()
    serializer_class = DefinitionSerializer
    write_action = Action.MANAGE_ASSETS
    filterset_fields = ["metric", "asset", "asset_type"]
    ordering_fields = ["metric", "updated_at"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_definition(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_definition(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_definition(instance, actor=self.request.user)


class SettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = TelemetrySettings
        fields = sorted(services.SETTINGS_FIELDS)


class SettingsViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """`iot/settings`: the organisation's telemetry settings (retention of raw points and rollups, who is notified
    of what); PATCH changes them."""

    serializer_class = SettingsSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"current_settings": Action.VIEW, "change_settings": Action.MANAGE_SETTINGS}

    # not named `settings`: a view's `settings` is DRF's api_settings
    @extend_schema(responses=SettingsSerializer, operation_id="iot_settings_retrieve")
    @action(detail=False, methods=["get"], url_path="settings", url_name="settings")
    def current_settings(self, request):
        return Response(SettingsSerializer(services.settings_of(self.organization)).data)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer, operation_id="iot_settings_update")
    @current_settings.mapping.patch
    def change_settings(self, request):
        serializer = SettingsSerializer(services.settings_of(self.organization), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changed = services.update_settings(self.organization, actor=request.user, **serializer.validated_data)
        return Response(SettingsSerializer(changed).data)


router.register("iot/metrics", IngestViewSet, basename="iot-metrics")
router.register("iot/devices", DeviceViewSet, basename="iot-device")
router.register("iot/anomalies", AnomalyViewSet, basename="iot-anomaly")
router.register("iot/definitions", DefinitionViewSet, basename="iot-definition")
router.register("iot", SettingsViewSet, basename="iot")
