"""What a maintenance window touches: the whole system, a location with everything under it, or a set of assets
(with their components), as id sets (`Footprint`) computed from the organisation's tree, loaded once."""

import functools
from collections import defaultdict
from dataclasses import dataclass

from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from assets.models import Asset, Location
from maintenance_site.errors import InvalidInput
from scheduling.windows.models import MaintenanceWindow

Scope = MaintenanceWindow.Scope


@dataclass(frozen=True)
class Footprint:
    """What a window touches: everything (system scope), or locations and assets (by id)."""

    everything: bool = False
    locations: frozenset = frozenset()
    assets: frozenset = frozenset()

    def intersects(self, other: "Footprint") -> bool:
        if self.everything or other.everything:
            return True
        return bool(self.locations & other.locations) or bool(self.assets & other.assets)


class OrganizationTree:
    """The organisation's locations and assets as id maps, loaded once (two queries) when first needed."""

    def __init__(self, organization_id: int):
        self.organization_id = organization_id

    @functools.cached_property
    def _locations(self) -> dict[int | None, list[int]]:
        children: dict[int | None, list[int]] = defaultdict(list)
        for pk, parent_id in Location.objects.filter(organization_id=self.organization_id).values_list(
            "pk", "parent_id"
        ):
            children[parent_id].append(pk)
        return children

    @functools.cached_property
    def _assets(self) -> tuple[dict[int | None, list[int]], dict[int | None, list[int]]]:
        by_location: dict[int | None, list[int]] = defaultdict(list)
        components: dict[int | None, list[int]] = defaultdict(list)
        rows = Asset.objects.filter(organization_id=self.organization_id).values_list("pk", "location_id", "parent_id")
        for pk, location_id, parent_id in rows:
            by_location[location_id].append(pk)
            components[parent_id].append(pk)
        return by_location, components

    def _walk(self, children, root) -> set[int]:
        found, stack = {root}, [root]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def subtree(self, location_id: int) -> set[int]:
        return self._walk(self._locations, location_id)

    def assets_in(self, location_ids) -> set[int]:
        by_location, _ = self._assets
        return {asset for location in location_ids for asset in by_location.get(location, [])}

    def with_components(self, asset_ids) -> set[int]:
        _, components = self._assets
        found = set()
        for asset in asset_ids:
            found |= self._walk(components, asset)
        return found

    def footprint(self, scope: str, location_id: int | None, asset_ids) -> Footprint:
        if scope == Scope.SYSTEM:
            return Footprint(everything=True)
        if scope == Scope.LOCATION:
            locations = self.subtree(location_id)
            return Footprint(locations=frozenset(locations), assets=frozenset(self.assets_in(locations)))
        return Footprint(assets=frozenset(self.with_components(asset_ids)))


def asset_ids(window: MaintenanceWindow) -> set[int]:
    # Uses the prefetch cache when the caller prefetched "assets".
    return {asset.pk for asset in window.assets.all()} if window.pk else set()


def scope_label(window: MaintenanceWindow) -> str:
    if window.scope == Scope.SYSTEM:
        return _("the whole system")
    if window.scope == Scope.LOCATION:
        return _("location “%(location)s”") % {"location": window.location}
    codes = sorted(asset.code for asset in window.assets.all())
    listed = ", ".join(codes[:10]) + (" …" if len(codes) > 10 else "")
    return ngettext("asset %(codes)s", "assets %(codes)s", len(codes)) % {"codes": listed}


# The scope in the language of each recipient of a notification (rendered by notify()).
lazy_scope_label = lazy(scope_label, str)


def check_scope(organization, scope, location, assets) -> list[Asset]:
    assets = list(assets or [])
    if scope not in Scope.values:
        raise InvalidInput(
            _("“%(value)s” is not a scope; choose one of %(choices)s.")
            % {"value": scope, "choices": ", ".join(Scope.values)},
            fields={"scope": [_("Unknown.")]},
        )
    foreign = sorted(str(asset.code) for asset in assets if asset.organization_id != organization.pk)
    if foreign:
        raise InvalidInput(
            _("Asset(s) %(codes)s belong to another organisation.") % {"codes": ", ".join(foreign)},
            fields={"assets": [_("These assets are not in your organisation.")]},
        )
    if location is not None and location.organization_id != organization.pk:
        raise InvalidInput(_("The location belongs to another organisation."), fields={"location": [_("Not yours.")]})
    if scope == Scope.ASSETS and not assets:
        raise InvalidInput(
            _("An asset-scope window needs at least one asset."), fields={"assets": [_("Choose the assets.")]}
        )
    if scope != Scope.ASSETS and assets:
        raise InvalidInput(
            _("Only an asset-scope window lists assets."), fields={"assets": [_("Leave empty for this scope.")]}
        )
    if scope == Scope.LOCATION and location is None:
        raise InvalidInput(
            _("A location-scope window needs a location."), fields={"location": [_("Choose the location.")]}
        )
    if scope != Scope.LOCATION and location is not None:
        raise InvalidInput(
            _("Only a location-scope window names a location."), fields={"location": [_("Leave empty.")]}
        )
    return assets
