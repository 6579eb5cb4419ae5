"""The only writers of locations, asset types, assets and their downtime."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assets.models import Asset, AssetType, Downtime, Location
from maintenance_site.errors import InvalidInput
from maintenance_site.validation import delete_or_conflict, validated

LOCATION_FIELDS = {"name", "kind", "parent", "time_zone", "address"}
ASSET_TYPE_FIELDS = {"name", "description"}
# In the order of the CSV columns (assets.resources).
ASSET_FIELDS = (
    "code",
    "name",
    "asset_type",
    "location",
    "parent",
    "criticality",
    "status",
    "manufacturer",
    "model",
    "serial_number",
    "install_date",
    "notes",
)
_UPDATABLE = {Location: LOCATION_FIELDS, AssetType: ASSET_TYPE_FIELDS, Asset: ASSET_FIELDS}


def _apply(instance, changes: dict):
    allowed = _UPDATABLE[type(instance)]
    unknown = set(changes).difference(allowed)
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
    delete_or_conflict(location, gettext_lazy("location"))


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
    delete_or_conflict(asset_type, gettext_lazy("asset type"))


@transaction.atomic
def create_asset(organization, **fields) -> Asset:
    """Register a piece of equipment; its code must be new in the organisation."""
    asset = validated(_apply(Asset(organization=organization), fields))
    asset.save()
    return asset


@transaction.atomic
def update_asset(asset: Asset, *, downtime_reason: str = "", **changes) -> Asset:
    """Edit an asset. Marking it down opens a downtime record; bringing it back closes it."""
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    was_down = asset.status == Asset.Status.DOWN
    validated(_apply(asset, changes)).save()
    if asset.status == Asset.Status.DOWN and not was_down:
        Downtime.objects.create(
            organization_id=asset.organization_id,
            asset=asset,
            started_at=timezone.now(),
            reason=downtime_reason.strip() or "Marked down",
        )
    elif was_down and asset.status != Asset.Status.DOWN:
        for downtime in asset.downtimes.filter(ended_at__isnull=True):
            downtime.ended_at = timezone.now()
            downtime.save(update_fields=["ended_at", "updated_at"])
    return asset


@transaction.atomic
def delete_asset(asset: Asset) -> None:
    delete_or_conflict(asset, gettext_lazy("asset"))


@transaction.atomic
def mark_asset_down(asset: Asset, *, reason: str, at=None) -> Downtime:
    """Record that an asset stopped working (or was taken down for work). Idempotent: an asset already
    down keeps its open downtime (and it is the one returned)."""
    if not reason.strip():
        raise InvalidInput(_("Say why the asset is down."), fields={"reason": [_("Required.")]})
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    open_downtime = asset.downtimes.filter(ended_at__isnull=True).first()
    if open_downtime is not None:
        return open_downtime
    downtime = Downtime.objects.create(
        organization_id=asset.organization_id,
        asset=asset,
        started_at=at or timezone.now(),
        reason=reason.strip(),
    )
    asset.status = Asset.Status.DOWN
    asset.save(update_fields=["status", "updated_at"])
    return downtime


@transaction.atomic
def mark_asset_up(asset: Asset, *, at=None, status=Asset.Status.OPERATIONAL) -> Downtime | None:
    """Close the asset's open downtime (if any) and set it back in service; returns the downtime closed."""
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    downtime = asset.downtimes.filter(ended_at__isnull=True).first()
    ended = at or timezone.now()
    if downtime is not None:
        if ended < downtime.started_at:
            raise InvalidInput(_("The asset cannot be back up before it went down."))
        downtime.ended_at = ended
        downtime.save(update_fields=["ended_at", "updated_at"])
    if asset.status in (Asset.Status.DOWN, Asset.Status.IN_MAINTENANCE):
        asset.status = status
        asset.save(update_fields=["status", "updated_at"])
    return downtime
