from django.contrib import admin

from assets.models import Asset, AssetType, Location
from maintenance_site.tenancy.admin_base import TenantAdmin
from maintenance_site.tenancy.roles import Action


@admin.register(Location)
class LocationAdmin(TenantAdmin):
    write_action = Action.MANAGE_ASSETS
    list_display = ["name", "kind", "parent", "time_zone"]
    list_filter = ["kind"]
    list_select_related = ["parent"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]


@admin.register(AssetType)
class AssetTypeAdmin(TenantAdmin):
    write_action = Action.MANAGE_ASSETS
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Asset)
class AssetAdmin(TenantAdmin):
    write_action = Action.MANAGE_ASSETS
    list_display = ["code", "name", "asset_type", "location", "criticality", "status"]
    list_filter = ["status", "criticality", "asset_type", "location"]
    list_select_related = ["asset_type", "location"]
    search_fields = ["code", "name", "serial_number"]
    autocomplete_fields = ["asset_type", "location", "parent"]
    show_full_result_count = False
