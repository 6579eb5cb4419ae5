"""`/api/v1/assets/{id}/meters/` (list, add), `/api/v1/meters/` (read, edit, delete),
`/api/v1/meters/{id}/readings` (list; post one reading or a list) and `/api/v1/meters/readings` (post readings of
several meters at once). Posting readings needs `ingest_telemetry`; meters themselves `manage_assets`."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from assets import meters as services
from assets.models import Asset, Meter, MeterReading
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.serializers import FastListSerializer, TenantModelSerializer
from maintenance_site.api.viewsets import TenantGenericViewSet
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy.roles import Action


class MeterSerializer(TenantModelSerializer):
    asset_code = serializers.CharField(source="asset.code", read_only=True)

    class Meta:
        model = Meter
        fields = [
            "id",
            "asset",
            "asset_code",
            "name",
            "unit",
            "kind",
            "last_value",
            "last_read_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["asset", "last_value", "last_read_at"]


class MeterReadingSerializer(serializers.ModelSerializer):
    class Meta:
        model = MeterReading
        fields = ["id", "meter", "value", "read_at", "source", "recorded_by", "created_at"]
        read_only_fields = fields
        list_serializer_class = FastListSerializer


class ReadingInput(serializers.Serializer):
    """One reading; `read_at` defaults to now. Values are checked by the service (one message per reading)."""

    value = serializers.JSONField()
    read_at = serializers.CharField(required=False, allow_null=True, allow_blank=True)


class MeterReadingInput(ReadingInput):
    meter = serializers.IntegerField()


class RecordedSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    readings = MeterReadingSerializer(many=True)


def _readings_of(data, with_meter: bool) -> list[dict]:
    """The request body as a list of reading dicts (a single object or a list)."""
    items = data if isinstance(data, list) else [data]
    input_class = MeterReadingInput if with_meter else ReadingInput
    serializer = input_class(data=items, many=True)
    serializer.is_valid(raise_exception=True)
    return [dict(item) for item in serializer.validated_data]


def _recorded(result) -> Response:
    body = {"created": len(result.created), "duplicates": result.duplicates, "readings": result.created}
    return Response(RecordedSerializer(body).data, status=status.HTTP_201_CREATED)


class AssetMeterViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """The meters of one asset: list them, add one."""

    queryset = Meter.objects.select_related("asset")
    serializer_class = MeterSerializer
    write_action = Action.MANAGE_ASSETS

    def _asset(self) -> Asset:
        # DRF's get_object_or_404: an id that is not a number is a 404 like a missing one, not a ValueError.
        return get_object_or_404(Asset.objects.filter(organization=self.organization), pk=self.kwargs["asset_pk"])

    def get_queryset(self):
        return super().get_queryset().filter(asset=self._asset())

    def create(self, request, *args, **kwargs):
        asset = self._asset()  # first: another organisation's asset is a 404 whatever the body
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        meter = services.create_meter(self.organization, asset=asset, actor=request.user, **serializer.validated_data)
        return Response(self.get_serializer(meter).data, status=status.HTTP_201_CREATED)


class MeterViewSet(mixins.ListModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, TenantGenericViewSet):
    """The organisation's meters; their readings under `{id}/readings`."""

    queryset = Meter.objects.select_related("asset")
    serializer_class = MeterSerializer
    write_action = Action.MANAGE_ASSETS
    action_permissions = {"record": Action.INGEST_TELEMETRY, "record_many": Action.INGEST_TELEMETRY}
    filterset_fields = ["asset", "kind", "name"]
    ordering_fields = ["name", "updated_at"]

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_meter(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_meter(instance, actor=self.request.user)

    @extend_schema(responses=MeterReadingSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def readings(self, request, pk=None):
        """The meter's readings, newest first (by cursor: `next`)."""
        queryset = MeterReading.objects.filter(meter=self.get_object()).order_by("-read_at")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(MeterReadingSerializer(page, many=True).data)

    @extend_schema(request=ReadingInput(many=True), responses={201: RecordedSerializer})
    @readings.mapping.post
    def record(self, request, pk=None):
        """One reading ({value, read_at}) or a list of them."""
        meter = self.get_object()
        items = _readings_of(request.data, with_meter=False)
        for item in items:
            item["meter"] = meter
        return _recorded(services.record_readings(self.organization, items, actor=request.user))

    @extend_schema(
        request=MeterReadingInput(many=True), responses={201: RecordedSerializer}, operation_id="meters_readings_bulk"
    )
    @action(detail=False, methods=["post"], url_path="readings", url_name="record-many")
    def record_many(self, request):
        """Readings of several meters at once: a list of {meter, value, read_at}."""
        items = _readings_of(request.data, with_meter=True)
        if not items:
            raise InvalidInput(_("Send at least one reading."), fields={"readings": [_("Empty.")]})
        return _recorded(services.record_readings(self.organization, items, actor=request.user))


router.register(r"assets/(?P<asset_pk>[0-9]+)/meters", AssetMeterViewSet, basename="asset-meter")
router.register("meters", MeterViewSet, basename="meter")
