"""The back office of locations, asset types, assets (with their downtime, CSV import and export, QR labels) and
meters. Every write goes through `assets.services` and `assets.meters`, as in the API: an asset marked down from
its form opens a downtime record, brought back it closes it."""

from datetime import timedelta

import segno
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from assets import meters, services
from assets.models import Asset, AssetType, Downtime, Location, Meter, MeterReading
from assets.resources import AssetResource, location_paths
from maintenance_site.tenancy.admin_base import (
    CsvImportExportMixin,
    ReadOnlyTenantInline,
    ServiceAdmin,
    adopt,
    submitted,
)
from maintenance_site.tenancy.roles import Action


class LocationTreeFilter(admin.SimpleListFilter):
    """The organisation's locations as an indented tree; choosing one keeps the rows in it and in every
    location below it. One query, whatever the size of the tree."""

    title = _("location")
    parameter_name = "location_tree"
    field_path = "location"  # subclasses filter other models' location fields
    INDENT = "\u00a0\u00a0\u00a0"

    def __init__(self, request, params, model, model_admin):
        self._children, self._names = self._load_tree(request, model_admin)
        super().__init__(request, params, model, model_admin)

    @staticmethod
    def _load_tree(request, model_admin):
        children: dict[int | None, list[int]] = {}
        names: dict[int, str] = {}
        locations = model_admin.scoped(request, Location.objects.all()).order_by("name")
        rows = list(locations.values_list("pk", "name", "parent_id"))
        known = {pk for pk, _, _ in rows}
        for pk, name, parent_id in rows:
            names[pk] = name
            children.setdefault(parent_id if parent_id in known else None, []).append(pk)
        return children, names

    def _walk(self, root, depth=0, seen=None):
        seen = set() if seen is None else seen
        for pk in self._children.get(root, []):
            if pk in seen:
                continue
            seen.add(pk)
            yield pk, depth
            yield from self._walk(pk, depth + 1, seen)

    def lookups(self, request, model_admin):
        return [(str(pk), self.INDENT * depth + self._names[pk]) for pk, depth in self._walk(None)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            root = int(value)
        except (TypeError, ValueError):
            return queryset.none()
        if root not in self._names:
            return queryset.none()  # another organisation's location, or none at all
        subtree = [root, *(pk for pk, _ in self._walk(root))]
        return queryset.filter(**{f"{self.field_path}__in": subtree})


# --- locations and asset types ---------------------------------------------------------------------------


@admin.register(Location)
class LocationAdmin(ServiceAdmin):
    write_action = Action.MANAGE_ASSETS
    list_display = ["name", "kind", "parent", "time_zone"]
    list_filter = ["kind"]
    list_select_related = ["parent"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]

    def save_model(self, request, obj, form, change):
        if change:
            saved = services.update_location(obj, **submitted(form, services.LOCATION_FIELDS, changed=True))
        else:
            organization = self.new_organization(request, form)
            saved = services.create_location(organization, **submitted(form, services.LOCATION_FIELDS))
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_location(obj)


@admin.register(AssetType)
class AssetTypeAdmin(ServiceAdmin):
    write_action = Action.MANAGE_ASSETS
    list_display = ["name"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        if change:
            saved = services.update_asset_type(obj, **submitted(form, services.ASSET_TYPE_FIELDS, changed=True))
        else:
            organization = self.new_organization(request, form)
            saved = services.create_asset_type(organization, **submitted(form, services.ASSET_TYPE_FIELDS))
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_asset_type(obj)


# --- assets ---------------------------------------------------------------------------------------------


class DowntimeInline(ReadOnlyTenantInline):
    """The asset's downtime, newest first; written only by the services (marking down, work orders). Work that
    took the asset down names its order in the reason; the orders tied to each downtime are in the asset's
    history (`workorders.asset_history`)."""

    model = Downtime
    fk_name = "asset"
    fields = ["started_at", "ended_at", "duration_display", "reason"]
    ordering = ["-started_at"]
    show_change_link = False
    verbose_name_plural = _("downtime (newest first)")

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-started_at")

    @admin.display(description=_("duration"))
    def duration_display(self, downtime):
        total_minutes = int(downtime.duration.total_seconds() // 60)
        days, rest = divmod(total_minutes, 24 * 60)
        hours, minutes = divmod(rest, 60)
        text = f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"
        return text + ("" if downtime.ended_at else " (still down)")


@admin.register(Asset)
class AssetAdmin(CsvImportExportMixin, ServiceAdmin):
    write_action = Action.MANAGE_ASSETS
    list_display = ["code", "name", "asset_type", "location", "criticality", "status"]
    list_filter = ["status", "criticality", "asset_type", LocationTreeFilter]
    list_select_related = ["asset_type", "location"]
    # What the columns read (the type's and the location's names): not the notes, specifications or the other joins.
    list_columns = ["code", "name", "criticality", "status", "organization_id", "asset_type__name", "location__name"]
    search_fields = ["code", "name", "serial_number"]
    autocomplete_fields = ["asset_type", "location", "parent"]
    show_full_result_count = False
    inlines = [DowntimeInline]

    # CSV import / export, scoped to the active organisation (rows written through the services).
    resource_classes = [AssetResource]
    # Our own changelist template adds the Import / Export links: it works whether or not the
    # import_export app's templates are installed (only the import and export pages need them).
    import_export_change_list_template = "admin/assets/asset/change_list.html"

    def get_inlines(self, request, obj):
        # The downtime inline is read-only: shown on the change page, left out of the add page (a new asset
        # has none) and of POSTs (nothing to submit, so saving needs no management form for it).
        if obj is None or request.method == "POST":
            return []
        return self.inlines

    def save_model(self, request, obj, form, change):
        """Through the services, as in the API: marking the asset down opens its downtime, bringing it back
        closes it (`services.update_asset`)."""
        if change:
            saved = services.update_asset(obj, **submitted(form, services.ASSET_FIELDS, changed=True))
        else:
            organization = self.new_organization(request, form)
            saved = services.create_asset(organization, **submitted(form, services.ASSET_FIELDS))
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_asset(obj)

    # --- printable QR label ------------------------------------------------------------------------
    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        urls = [
            path(
                "<path:object_id>/label/",
                self.admin_site.admin_view(self.label_view),
                name=f"{prefix}_label",
            ),
        ]
        return urls + super().get_urls()

    def label_view(self, request, object_id):
        """A printable label: a QR code to the technician's asset page and the public problem-report
        address, both by the asset's public token (never its id)."""
        asset = self.get_object(request, unquote(object_id))
        if asset is None:
            raise Http404(_("No asset with id %(id)s.") % {"id": object_id})
        if not self.has_view_permission(request, asset):
            raise PermissionDenied
        technician_url = request.build_absolute_uri(f"/t/assets/{asset.public_token}/")
        report_url = request.build_absolute_uri(f"/report/a/{asset.public_token}/")
        qr_svg = segno.make(technician_url, error="m").svg_inline(scale=5, border=2)
        location = ""
        if asset.location_id:
            location = location_paths(asset.organization_id).get(asset.location_id, str(asset.location))
        context = {
            "title": _("Label %(code)s") % {"code": asset.code},
            "asset": asset,
            "organization": asset.organization,
            "location": location,
            "technician_url": technician_url,
            "report_url": report_url,
            "qr_svg": qr_svg,
        }
        return TemplateResponse(request, "admin/assets/asset_label.html", context)


# --- meters ---------------------------------------------------------------------------------------------


class ReadingInline(ReadOnlyTenantInline):
    model = MeterReading
    fields = ["read_at", "value", "source", "recorded_by"]
    ordering = ["-read_at"]
    verbose_name_plural = _("latest readings (last 30 days)")

    def get_queryset(self, request):
        since = timezone.now() - timedelta(days=30)
        return super().get_queryset(request).filter(read_at__gte=since).select_related("recorded_by")


@admin.register(Meter)
class MeterAdmin(ServiceAdmin):
    """Asset meters (run hours, temperatures…) that meter-based schedules watch; readings come from the API."""

    write_action = Action.MANAGE_ASSETS
    list_display = ["asset", "name", "kind", "last_value", "unit", "last_read_at"]
    list_select_related = ["asset"]
    list_filter = ["kind"]
    search_fields = ["name", "asset__code", "asset__name"]
    autocomplete_fields = ["asset"]
    readonly_fields = ["last_value", "last_read_at"]
    inlines = [ReadingInline]

    def get_readonly_fields(self, request, obj=None):
        return (
            [*self.readonly_fields, "asset"] if obj is not None else self.readonly_fields
        )  # a meter stays on its asset

    def save_model(self, request, obj, form, change):
        fields = submitted(form, meters.METER_FIELDS, changed=change)
        if change:
            saved = meters.update_meter(obj, actor=request.user, **fields)
        else:
            organization = self.new_organization(request, form)
            saved = meters.create_meter(organization, asset=form.cleaned_data["asset"], actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        meters.delete_meter(obj, actor=request.user)


# Telemetry's pages live in its package; importing them registers them.
import assets.telemetry.admin  # noqa: E402, F401
