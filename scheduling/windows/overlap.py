"""The overlap check: a window may not overlap a scheduled or running window (or a coming occurrence of a
series) whose scope intersects its own, unless it is an emergency with a reason; a series may not overlap
itself."""

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from maintenance_site.errors import Conflict, InvalidInput
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.notifications import format_utc
from scheduling.windows.scope import Footprint, OrganizationTree, asset_ids
from scheduling.windows.series import first_occurrence, occurrence_starts, parse_recurrence, series_occurrences

Status = MaintenanceWindow.Status

CHECK_HORIZON = timedelta(days=366)  # how far ahead a new series is checked for overlaps


@dataclass
class Collision:
    window: MaintenanceWindow  # an occurrence, or the head of a series whose occurrence is not a row yet
    starts_at: datetime
    ends_at: datetime

    def describe(self) -> str:
        values = {
            "title": self.window.title,
            "id": self.window.pk,
            "start": format_utc(self.starts_at),
            "end": format_utc(self.ends_at),
        }
        if self.window.is_series:
            return _("“%(title)s” (#%(id)s, a recurring window, %(start)s – %(end)s)") % values
        return _("“%(title)s” (#%(id)s, %(start)s – %(end)s)") % values

    def as_dict(self) -> dict:
        return {
            "id": self.window.pk,
            "title": self.window.title,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "status": self.window.status,
        }


def find_collisions(
    organization, intervals, footprint: Footprint, *, tree: OrganizationTree, exclude_ids=(), exclude_series=None
) -> list[Collision]:
    """Scheduled or active windows (and not-yet-created occurrences of running series) that overlap one of
    `intervals` (end exclusive) with a scope intersecting `footprint`."""
    if not intervals:
        return []
    low = min(start for start, _ in intervals)
    high = max(end for _, end in intervals)
    rows = (
        MaintenanceWindow.objects.for_tenant(organization)
        .occurrences()
        .planned()
        .filter(starts_at__lt=high, ends_at__gt=low)
        .exclude(pk__in=list(exclude_ids))
        .select_related("location")
        .prefetch_related("assets")
        .order_by("starts_at")
    )
    if exclude_series is not None:
        rows = rows.exclude(series_id=exclude_series)
    existing = [(window, window.starts_at, window.ends_at) for window in rows]
    heads = (
        MaintenanceWindow.objects.for_tenant(organization)
        .series()
        .filter(status=Status.SCHEDULED)
        .exclude(pk__in=[exclude_series, *exclude_ids] if exclude_series else list(exclude_ids))
        .select_related("organization", "location")
        .prefetch_related("assets")
    )
    for head in heads:
        after = max(low - head.duration, head.materialized_until or head.starts_at)
        for start, end in series_occurrences(head, after, high):
            if head.materialized_until is None or start >= head.materialized_until:
                existing.append((head, start, end))
    # The candidate intervals are sorted and never overlap each other (a series' shape is checked first), so
    # their ends are sorted too: an existing [start, end) overlaps one of them iff the last candidate starting
    # before `end` ends after `start`.
    candidates = sorted(intervals)
    candidate_starts = [start for start, _ in candidates]
    candidate_ends = [end for _, end in candidates]
    collisions = []
    footprints: dict[int, Footprint] = {}
    for window, start, end in existing:
        index = bisect.bisect_left(candidate_starts, end) - 1
        if index < 0 or candidate_ends[index] <= start:
            continue
        if window.pk not in footprints:
            footprints[window.pk] = tree.footprint(window.scope, window.location_id, asset_ids(window))
        if footprints[window.pk].intersects(footprint):
            collisions.append(Collision(window, start, end))
    collisions.sort(key=lambda collision: collision.starts_at)
    return collisions


def refuse_or_override(collisions: list[Collision], *, emergency: bool, emergency_reason: str) -> list[int]:
    """Raise the 409 for the first collision, or, for an emergency, return what it overrides."""
    if not collisions:
        return []
    if not emergency:
        first = collisions[0]
        others = len(collisions) - 1
        if others:
            message = ngettext(
                "This window overlaps the maintenance window %(window)s (and %(count)s more) on an intersecting "
                "scope: move it, or schedule it as an emergency with a reason.",
                "This window overlaps the maintenance window %(window)s (and %(count)s more) on an intersecting "
                "scope: move it, or schedule it as an emergency with a reason.",
                others,
            ) % {"window": first.describe(), "count": others}
        else:
            message = _(
                "This window overlaps the maintenance window %(window)s on an intersecting scope: move it, or "
                "schedule it as an emergency with a reason."
            ) % {"window": first.describe()}
        raise Conflict(
            message,
            code="window_overlap",
            conflicting_window=first.as_dict(),
            conflicting_windows=[collision.as_dict() for collision in collisions[:20]],
        )
    return sorted({collision.window.pk for collision in collisions})


def planned_intervals(recurrence, starts_at, ends_at, zone, now) -> list[tuple[datetime, datetime]]:
    if not recurrence:
        return [(starts_at, ends_at)]
    rule = parse_recurrence(recurrence, starts_at, zone)
    duration = ends_at - starts_at
    starts = occurrence_starts(rule, zone, max(starts_at, now - duration), max(starts_at, now) + CHECK_HORIZON)
    return [(start, start + duration) for start in starts]


def check_series_shape(recurrence, starts_at, ends_at, zone) -> datetime:
    """The series' first occurrence (at or after `starts_at`); refuses rules whose occurrences overlap each
    other or that never occur."""
    rule = parse_recurrence(recurrence, starts_at, zone)
    first = first_occurrence(rule, zone, starts_at)
    if first is None:
        raise InvalidInput(
            _("Recurrence: the rule gives no occurrence after the start."), fields={"recurrence": [_("No occurrence.")]}
        )
    duration = ends_at - starts_at
    starts = occurrence_starts(rule, zone, first, first + max(CHECK_HORIZON, duration * 3))
    for earlier, later in zip(starts, starts[1:], strict=False):
        if later - earlier < duration:
            raise InvalidInput(
                _(
                    "Recurrence: occurrences %(earlier)s and %(later)s would overlap each other; "
                    "shorten the window or repeat it less often."
                )
                % {"earlier": format_utc(earlier), "later": format_utc(later)},
                fields={"recurrence": [_("Occurrences overlap each other.")]},
            )
    return first
