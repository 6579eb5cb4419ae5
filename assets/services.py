"""The only writers of locations, asset types and assets."""

from django.db import transaction

from assets.models import Asset, AssetType, Location
from maintenance_site.validation import delete_or_conflict, validated

_UPDATABLE = {
    Location: {"name", "kind", "parent", "time_zone", "address"},
    AssetType: {"name", "description"},
    Asset: {
        "code", "name", "asset_type", "location", "parent", "criticality", "status", "manufacturer",
        "model", "serial_number", "install_date", "notes",
    },
}  # fmt: skip


def _apply(instance, changes: dict):
    allowed = _UPDATABLE[type(instance)]
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"{type(instance).__name__} has no editable field(s) {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance


@transaction.atomic
def create_location(organization, **fields) -> Location:
    """Add a location (site, building or area) to the organisation's tree."""
    location = validated(_apply(Location(organization=organization), fields))
    location.save()
    return location


@transaction.atomic
def update_location(location: Location, **changes) -> Location:
    location = Location.objects.select_for_update().get(pk=location.pk)
    validated(_apply(location, changes)).save()
    return location


@transaction.atomic
def delete_location(location: Location) -> None:
    delete_or_conflict(location, "location")


@transaction.atomic
def create_asset_type(organization, **fields) -> AssetType:
    """Add a kind of equipment."""
    asset_type = validated(_apply(AssetType(organization=organization), fields))
    asset_type.save()
    return asset_type


@transaction.atomic
def update_asset_type(asset_type: AssetType, **changes) -> AssetType:
    asset_type = AssetType.objects.select_for_update().get(pk=asset_type.pk)
    validated(_apply(asset_type, changes)).save()
    return asset_type


@transaction.atomic
def delete_asset_type(asset_type: AssetType) -> None:
    delete_or_conflict(asset_type, "asset type")


@transaction.atomic
def create_asset(organization, **fields) -> Asset:
    """Register a piece of equipment; its code must be new in the organisation."""
    asset = validated(_apply(Asset(organization=organization), fields))
    asset.save()
    return asset


@transaction.atomic
def update_asset(asset: Asset, **changes) -> Asset:
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    validated(_apply(asset, changes)).save()
    return asset


@transaction.atomic
def delete_asset(asset: Asset) -> None:
    delete_or_conflict(asset, "asset")
