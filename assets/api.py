"""`/api/v1/locations`, `/api/v1/asset-types`, `/api/v1/assets`."""

from rest_framework import serializers

from assets import services
from assets.models import Asset, AssetType, Location
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.serializers import FastListSerializer, TenantModelSerializer
from maintenance_site.api.viewsets import TenantModelViewSet
from maintenance_site.tenancy.roles import Action


class LocationSerializer(TenantModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "name", "kind", "parent", "time_zone", "address", "created_at", "updated_at"]


class AssetTypeSerializer(TenantModelSerializer):
    class Meta:
        model = AssetType
        fields = ["id", "name", "description", "created_at", "updated_at"]


class AssetSerializer(TenantModelSerializer):
    location_name = serializers.CharField(source="location.name", read_only=True, default=None)
    asset_type_name = serializers.CharField(source="asset_type.name", read_only=True, default=None)

    class Meta:
        model = Asset
        # What the service writes, and the names of the type and location alongside.
        fields = ["id", *services.ASSET_FIELDS, "asset_type_name", "location_name", "created_at", "updated_at"]
        list_serializer_class = FastListSerializer


class LocationViewSet(TenantModelViewSet):
    queryset = Location.objects.all()
    serializer_class = LocationSerializer
    write_action = Action.MANAGE_ASSETS
    filterset_fields = ["kind", "parent"]
    search_fields = ["name"]
    ordering_fields = ["name", "updated_at"]

    def perform_create(self, serializer):
        self.written(serializer, services.create_location(self.organization, **serializer.validated_data))

    def perform_update(self, serializer):
        self.written(serializer, services.update_location(serializer.instance, **serializer.validated_data))

    def perform_destroy(self, instance):
        services.delete_location(instance)


class AssetTypeViewSet(TenantModelViewSet):
    queryset = AssetType.objects.all()
    serializer_class = AssetTypeSerializer
    write_action = Action.MANAGE_ASSETS
    search_fields = ["name"]
    ordering_fields = ["name", "updated_at"]

    def perform_create(self, serializer):
        self.written(serializer, services.create_asset_type(self.organization, **serializer.validated_data))

    def perform_update(self, serializer):
        self.written(serializer, services.update_asset_type(serializer.instance, **serializer.validated_data))

    def perform_destroy(self, instance):
        services.delete_asset_type(instance)


class AssetViewSet(TenantModelViewSet):
    queryset = Asset.objects.select_related("location", "asset_type")
    serializer_class = AssetSerializer
    pagination_class = CursorPagination
    write_action = Action.MANAGE_ASSETS
    filterset_fields = ["status", "criticality", "location", "asset_type", "parent"]
    search_fields = ["code", "name", "serial_number", "manufacturer", "model"]
    ordering_fields = ["code", "name", "criticality", "status", "updated_at"]

    def perform_create(self, serializer):
        self.written(serializer, services.create_asset(self.organization, **serializer.validated_data))

    def perform_update(self, serializer):
        self.written(serializer, services.update_asset(serializer.instance, **serializer.validated_data))

    def perform_destroy(self, instance):
        services.delete_asset(instance)


router.register("locations", LocationViewSet, basename="location")
router.register("asset-types", AssetTypeViewSet, basename="asset-type")
router.register("assets", AssetViewSet, basename="asset")
