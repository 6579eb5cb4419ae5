"""What analytics asks of the assets app: the location subtree a filter names, and the labels of a breakdown's
groups (asset codes, asset type and location names). Registered in `AssetsConfig.ready()`; one query each."""

from assets.models import Asset, AssetType, Location
from maintenance_site.analytics import registry


def location_subtree(organization, location_id: int) -> tuple | None:
    """The location and every location below it (ids), or None when the organisation has no such location.
    One query: an organisation's locations are a small table, walked in memory."""
    parents = dict(Location.objects.filter(organization=organization).values_list("id", "parent_id"))
    if location_id not in parents:
        return None
    children: dict = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, stack = [], [location_id]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(children.get(node, ()))
    return tuple(sorted(found))


LABELS = {"asset": (Asset, "code"), "asset_type": (AssetType, "name"), "location": (Location, "name")}


def group_labels(group_by: str, organization, ids) -> dict:
    model, field = LABELS[group_by]
    wanted = [i for i in ids if i is not None]
    return dict(model.objects.filter(organization=organization, pk__in=wanted).values_list("pk", field))


def exists(kind: str, organization, pk: int) -> bool:
    """Whether the organisation has this asset or asset type (a filter naming another organisation's is refused)."""
    return LABELS[kind][0].objects.filter(organization=organization, pk=pk).exists()


def asset_exists(organization, pk: int) -> bool:
    return exists("asset", organization, pk)


def asset_type_exists(organization, pk: int) -> bool:
    return exists("asset_type", organization, pk)


def register() -> None:
    registry.register_function("location_subtree", location_subtree)
    registry.register_function("group_labels", group_labels)
    registry.register_function("exists:asset", asset_exists)
    registry.register_function("exists:asset_type", asset_type_exists)
