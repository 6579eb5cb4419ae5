"""CSV import and export of assets (django-import-export), always within one organisation.

- Every name in a file is resolved inside the active organisation only: an asset type by its name, a
  location by its path ("Plant 1 / Hall 2 / Pump room") or, when that is unambiguous, its bare name, a
  parent asset by its code. A name the organisation does not have is an error on that row, never a new
  row (and never another organisation's).
- Rows are matched to existing assets by code within the organisation (codes are unique per
  organisation, so another organisation's asset with the same code is never touched).
- Rows are written through `assets.services` (the only writers), so marking an asset down opens its
  downtime exactly as the admin and the API do.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy
from import_export import fields, resources, widgets

from assets import services
from assets.models import Asset, AssetType, Location
from maintenance_site.db_routing import replica_alias
from maintenance_site.errors import DomainError

PATH_SEPARATOR = " / "

# The columns of the file, in order: the fields services.create_asset / update_asset write.
COLUMNS = list(services.ASSET_FIELDS)


def location_paths(organization_id) -> dict[int, str]:
    """Every location of the organisation with its full path, in one query."""
    rows = {
        pk: (name, parent_id)
        for pk, name, parent_id in Location.objects.filter(organization_id=organization_id).values_list(
            "pk", "name", "parent_id"
        )
    }
    paths: dict[int, str] = {}

    def path_of(pk, seen=()):
        if pk in paths:
            return paths[pk]
        name, parent_id = rows[pk]
        if parent_id is None or parent_id not in rows or parent_id in seen:
            paths[pk] = name
        else:
            paths[pk] = path_of(parent_id, (*seen, pk)) + PATH_SEPARATOR + name
        return paths[pk]

    for pk in rows:
        path_of(pk)
    return paths


class StrippedCharWidget(widgets.CharWidget):
    def clean(self, value, row=None, **kwargs):
        return (super().clean(value, row, **kwargs) or "").strip()


class ChoiceWidget(widgets.Widget):
    """A choice by its value or its label, in any case ("High", "high"); empty keeps the default."""

    def __init__(self, choices, what: str):
        super().__init__()
        self.what = what
        self.values = {}
        for value, label in choices:
            self.values[str(value).lower()] = value
            self.values[str(label).lower()] = value
        self.labels = [label for _, label in choices]

    def clean(self, value, row=None, **kwargs):
        text = ("" if value is None else str(value)).strip().lower()
        if not text:
            return None
        if text not in self.values:
            raise ValueError(
                gettext("“%(value)s” is not a %(what)s; use one of: %(choices)s.")
                % {"value": value, "what": self.what, "choices": ", ".join(str(label) for label in self.labels)}
            )
        return self.values[text]


class _OrganizationLookupWidget(widgets.Widget):
    """Resolves a name to a row of the resource's organisation (set by AssetResource)."""

    organization_id = None

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class AssetTypeWidget(_OrganizationLookupWidget):
    def clean(self, value, row=None, **kwargs):
        name = ("" if value is None else str(value)).strip()
        if not name:
            return None
        found = list(AssetType.objects.filter(organization_id=self.organization_id, name__iexact=name)[:2])
        if len(found) != 1:
            raise ValueError(
                gettext("No asset type named “%(name)s” in this organisation; add it first.") % {"name": name}
            )
        return found[0]

    def render(self, value, obj=None, **kwargs):
        return value.name if value is not None else ""


class LocationWidget(_OrganizationLookupWidget):
    paths: dict[int, str] | None = None

    def _paths(self) -> dict[int, str]:
        if self.paths is None:
            self.paths = location_paths(self.organization_id)
        return self.paths

    def clean(self, value, row=None, **kwargs):
        text = ("" if value is None else str(value)).strip()
        if not text:
            return None
        wanted = PATH_SEPARATOR.join(part.strip() for part in text.split("/")).lower()
        paths = self._paths()
        by_path = [pk for pk, path in paths.items() if path.lower() == wanted]
        if not by_path and "/" not in text:
            by_path = [pk for pk, path in paths.items() if path.rsplit(PATH_SEPARATOR, 1)[-1].lower() == wanted]
            if len(by_path) > 1:
                listed = "; ".join(sorted(paths[pk] for pk in by_path))
                raise ValueError(
                    gettext("Several locations are named “%(name)s” (%(paths)s): give the full path.")
                    % {"name": text, "paths": listed}
                )
        if not by_path:
            raise ValueError(
                gettext(
                    "No location “%(name)s” in this organisation; add it first or give its full path, such as "
                    "“%(example)s”."
                )
                % {
                    "name": text,
                    "example": PATH_SEPARATOR.join([gettext("Site"), gettext("Building"), gettext("Area")]),
                }
            )
        return Location.objects.get(pk=by_path[0], organization_id=self.organization_id)


class ParentAssetWidget(_OrganizationLookupWidget):
    def clean(self, value, row=None, **kwargs):
        code = ("" if value is None else str(value)).strip()
        if not code:
            return None
        parent = Asset.objects.filter(organization_id=self.organization_id, code=code).first()
        if parent is None:
            raise ValueError(
                gettext("No asset with code “%(code)s” in this organisation to be the parent.") % {"code": code}
            )
        return parent

    def render(self, value, obj=None, **kwargs):
        return value.code if value is not None else ""


class AssetResource(resources.ModelResource):
    """Assets of one organisation as CSV rows; see the module docstring for the rules."""

    code = fields.Field(attribute="code", column_name="code", widget=StrippedCharWidget())
    name = fields.Field(attribute="name", column_name="name", widget=StrippedCharWidget())
    asset_type = fields.Field(attribute="asset_type", column_name="asset_type", widget=AssetTypeWidget())
    location = fields.Field(attribute="location", column_name="location", widget=LocationWidget())
    parent = fields.Field(attribute="parent", column_name="parent", widget=ParentAssetWidget())
    # Empty keeps the default (new rows) or the current value (existing rows).
    criticality = fields.Field(
        attribute="criticality",
        column_name="criticality",
        saves_null_values=False,
        widget=ChoiceWidget(Asset.Criticality.choices, gettext_lazy("criticality")),
    )
    status = fields.Field(
        attribute="status",
        column_name="status",
        saves_null_values=False,
        widget=ChoiceWidget(Asset.Status.choices, gettext_lazy("status")),
    )
    manufacturer = fields.Field(attribute="manufacturer", column_name="manufacturer", widget=StrippedCharWidget())
    model = fields.Field(attribute="model", column_name="model", widget=StrippedCharWidget())
    serial_number = fields.Field(attribute="serial_number", column_name="serial_number", widget=StrippedCharWidget())
    install_date = fields.Field(
        attribute="install_date", column_name="install_date", widget=widgets.DateWidget(format="%Y-%m-%d")
    )
    notes = fields.Field(attribute="notes", column_name="notes", widget=widgets.CharWidget())

    class Meta:
        model = Asset
        name = "Assets"
        fields = COLUMNS
        import_order = COLUMNS
        export_order = COLUMNS
        import_id_fields = ["code"]
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def __init__(self, organization=None, **kwargs):
        super().__init__(**kwargs)
        self.organization = organization or None
        for name in ("asset_type", "location", "parent"):
            self.fields[name].widget.organization_id = getattr(self.organization, "pk", None)

    # --- import --------------------------------------------------------------------------------------
    def get_queryset(self):
        """Rows match existing assets of the organisation only."""
        queryset = Asset.objects.select_related("asset_type", "location", "parent")
        if self.organization is None:
            return queryset.none()
        return queryset.filter(organization=self.organization)

    def before_import(self, dataset, **kwargs):
        if self.organization is None:
            raise ValueError(gettext("Choose the organisation to import into first."))
        missing = {"code", "name"} - {str(header).strip() for header in dataset.headers or ()}
        if missing:
            raise ValueError(
                gettext("The file needs the column(s) %(columns)s.") % {"columns": ", ".join(sorted(missing))}
            )

    def init_instance(self, row=None):
        return Asset(organization=self.organization)

    def do_instance_save(self, instance, is_create):
        values = {name: getattr(instance, name) for name in COLUMNS}
        try:
            if is_create:
                saved = services.create_asset(self.organization, **values)
            else:
                saved = services.update_asset(instance, **values)
        except DomainError as exc:
            raise ValidationError(exc.fields or exc.message) from None
        for field in Asset._meta.concrete_fields:
            setattr(instance, field.attname, getattr(saved, field.attname))
        instance._state.adding = False

    # --- export --------------------------------------------------------------------------------------
    def filter_export(self, queryset, **kwargs):
        if self.organization is not None:
            queryset = queryset.filter(organization=self.organization)
        # An export is a replica-safe read (maintenance_site/db_routing.py): the replica when one is configured.
        return queryset.using(replica_alias()).select_related("asset_type", "parent")

    def dehydrate_location(self, asset):
        if asset.location_id is None:
            return ""
        paths = getattr(self, "_export_paths", {})
        if asset.organization_id not in paths:
            paths[asset.organization_id] = location_paths(asset.organization_id)
            self._export_paths = paths
        return paths[asset.organization_id].get(asset.location_id, "")
