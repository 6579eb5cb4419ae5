"""What preventive schedules cover, read in bulk: each schedule's targets (its asset, the assets of its type and /
or under its location, or no asset for a routine round) with the time zone each one's dates are computed in (the
asset's site, else the organisation's), and the latest occurrence of each (schedule, target).
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from assets.models import Asset, Location
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule

Schedule = PreventiveSchedule
Occurrence = PreventiveOccurrence
Coverage = PreventiveSchedule.Coverage

LATEST_BATCH = 400  # targets per "latest occurrence" query


@dataclass(frozen=True)
class Target:
    """What one occurrence is for: an asset (with the time zone of its site), or none (a routine round)."""

    asset_id: int | None
    zone_name: str
    location_id: int | None = None
    asset_code: str = ""
    asset_name: str = ""

    @property
    def key(self) -> int:
        return self.asset_id or 0


class Places:
    """The location trees of some organisations, loaded with one query: effective time zones and subtrees."""

    def __init__(self, organization_ids):
        self.parent: dict[int, int | None] = {}
        self.zone: dict[int, str] = {}
        self.org_of: dict[int, int] = {}
        self.children: dict[int, list[int]] = defaultdict(list)
        rows = Location.objects.filter(organization_id__in=set(organization_ids)).values_list(
            "pk", "parent_id", "time_zone", "organization_id"
        )
        for pk, parent_id, zone, org_id in rows:
            self.parent[pk], self.zone[pk], self.org_of[pk] = parent_id, zone, org_id
            self.children[parent_id].append(pk)
        self._effective: dict[int, str] = {}

    def effective_zone(self, location_id: int | None, default: str) -> str:
        if location_id is None:
            return default
        if location_id in self._effective:
            return self._effective[location_id] or default
        chain, node, seen = [], location_id, set()
        while node is not None and node not in seen and node in self.parent:
            seen.add(node)
            chain.append(node)
            if self.zone.get(node):
                break
            node = self.parent[node]
        found = self.zone.get(chain[-1], "") if chain else ""
        for pk in chain:
            self._effective[pk] = found
        return found or default

    def subtree(self, location_id: int) -> set[int]:
        found, stack = set(), [location_id]
        while stack:
            node = stack.pop()
            if node in found:
                continue
            found.add(node)
            stack.extend(self.children.get(node, ()))
        return found


def resolve_targets(schedules: list[Schedule], places: Places) -> dict[int, list[Target]]:
    """Each schedule's targets as of now: its asset, the assets of its type / under its location (one query for
    all schedules), or one routine target. Retired assets get no preventive work."""
    targets: dict[int, list[Target]] = {s.pk: [] for s in schedules}
    many = [s for s in schedules if s.coverage == Coverage.ASSETS]
    if many:
        condition = Q()
        subtrees = {}
        for s in many:
            part = Q(organization_id=s.organization_id)
            if s.asset_type_id:
                part &= Q(asset_type_id=s.asset_type_id)
            if s.location_id:
                subtrees[s.pk] = places.subtree(s.location_id)
                part &= Q(location_id__in=subtrees[s.pk])
            condition |= part
        assets = list(
            Asset.objects.in_service()
            .filter(condition)
            .order_by("pk")
            .values_list("pk", "organization_id", "asset_type_id", "location_id", "code", "name")
        )
        by_org_type: dict[tuple, list] = defaultdict(list)
        for row in assets:
            by_org_type[(row[1], row[2])].append(row)
            by_org_type[(row[1], None)].append(row)
        for s in many:
            org_zone = s.organization.time_zone
            subtree = subtrees.get(s.pk)
            for pk, _, _, location_id, code, name in by_org_type[(s.organization_id, s.asset_type_id)]:
                if subtree is not None and location_id not in subtree:
                    continue
                zone = places.effective_zone(location_id, org_zone)
                targets[s.pk].append(Target(pk, zone, location_id, code, name))
    for s in schedules:
        org_zone = s.organization.time_zone
        if s.coverage == Coverage.ASSET:
            asset = s.asset
            if asset is not None and asset.status != Asset.Status.RETIRED:
                zone = places.effective_zone(asset.location_id, org_zone)
                targets[s.pk].append(Target(asset.pk, zone, asset.location_id, asset.code, asset.name))
        elif s.coverage == Coverage.ROUTINE:
            targets[s.pk].append(Target(None, places.effective_zone(s.location_id, org_zone), s.location_id))
    return targets


def schedule_zone(schedule: Schedule) -> str:
    """The zone a schedule's dates are shown in: its asset's site, its location's, else the organisation's."""
    location_id = schedule.asset.location_id if schedule.asset_id else schedule.location_id
    places = Places([schedule.organization_id])
    return places.effective_zone(location_id, schedule.organization.time_zone)


def latest_occurrences(pairs) -> dict[tuple[int, int], Occurrence]:
    """The most recent occurrence of each (schedule id, target key): one indexed lookup per pair, in one
    query per LATEST_BATCH pairs (a VALUES list joined by a correlated subquery; PostgreSQL and SQLite)."""
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    table = connection.ops.quote_name(Occurrence._meta.db_table)
    ids = []
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), LATEST_BATCH):
            batch = pairs[start : start + LATEST_BATCH]
            values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS bigint))"] * len(batch))
            sql = (
                f"WITH wanted(sid, tk) AS (VALUES {values}) "  # noqa: S608 - only placeholders are interpolated
                f"SELECT (SELECT o.id FROM {table} o WHERE o.schedule_id = wanted.sid AND o.target_key = wanted.tk "
                "ORDER BY o.due_at DESC LIMIT 1) FROM wanted"
            )
            cursor.execute(sql, [value for pair in batch for value in pair])
            ids.extend(row[0] for row in cursor.fetchall() if row[0] is not None)
    rows = Occurrence.objects.filter(pk__in=ids).select_related("work_order")
    return {(row.schedule_id, row.target_key): row for row in rows}
