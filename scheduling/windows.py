"""The only writers of maintenance windows and maintenance mode, and what reads them.

- `create_window` / `update_window` / `delete_window` / `end_window` / `cancel_window` / `fail_window`:
  one transaction each, refused with a DomainError a person can act on. A window that overlaps a scheduled
  or active window with an intersecting scope is a 409 naming that window, unless it is an emergency with a
  reason (audited).
- `tick(now)`: what beat runs every MAINTENANCE_CHECK_INTERVAL seconds. It creates the coming occurrences
  of recurring windows, reminds people of windows starting soon, ends the windows that are over, starts
  those that are due, marks missed ones failed, and reconciles the maintenance mode with the windows.
  Safe to run twice, late or on two machines at once: every transition is claimed by a conditional UPDATE
  (`WHERE status = ...`) under the organisation's mode-row lock, and only the run that changed the row
  does the side effects.
- Maintenance mode is **per organisation**: on while a system-scope window of the organisation runs or an
  operator switched it on by hand. A **platform** switch (superusers only) puts every organisation in
  maintenance mode at once. `mode_state(organization)` is what the API permission, the technician-view
  middleware and the banners read.
- The Python API of seed 000: `schedule_maintenance`, `get_maintenance_schedule`,
  `get_maintenance_history`, `is_in_maintenance_mode` (and `a…` async wrappers).

Lock order, everywhere: the organisation's MaintenanceMode row, then windows, then assets. Times are UTC;
recurrences are computed in the organisation's time zone, so a 02:00 window stays at 02:00 local time
across daylight-saving changes (a local time that does not exist that night moves forward by the gap).
"""

import bisect
import functools
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from dateutil.rrule import rrulestr
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from assets import services as asset_services
from assets.models import Asset, Location
from maintenance_site.audit import acting_as, current_user, system_user
from maintenance_site.errors import Conflict, InvalidInput, PermissionDeniedError
from maintenance_site.events.services import publish
from maintenance_site.notifications.kinds import register_kind
from maintenance_site.notifications.models import Channel
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import Action, Role, role_allows, roles_allowed
from maintenance_site.validation import validated
from scheduling.windows_models import MaintenanceMode, MaintenanceWindow, WindowAssetState, WindowFeedToken

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status
Scope = MaintenanceWindow.Scope

# Notification kinds of this module (started, ended and mode-changed are registered by notifications).
for _name, _label, _channels in [
    ("maintenance:window-scheduled", "Maintenance window scheduled", [Channel.EMAIL]),
    ("maintenance:window-starting-soon", "Maintenance window starting soon", [Channel.EMAIL, Channel.PUSH]),
    ("maintenance:window-cancelled", "Maintenance window cancelled", [Channel.EMAIL]),
    ("maintenance:window-failed", "Maintenance window failed", [Channel.EMAIL, Channel.SLACK]),
]:
    register_kind(_name, _label, _channels)

MISSED_REASON = (
    "Missed: no scheduler tick ran between its start and its end, so maintenance mode was never switched on "
    "for it. Is the worker with beat running?"
)
RRULE_REFUSED_FREQUENCIES = ("SECONDLY", "MINUTELY")
CHECK_HORIZON = timedelta(days=366)  # how far ahead a new series is checked for overlaps


# --- settings -----------------------------------------------------------------------------------------


def check_interval() -> int:
    """Seconds between ticks (MAINTENANCE_CHECK_INTERVAL, default 60)."""
    return int(getattr(settings, "MAINTENANCE_CHECK_INTERVAL", 60))


def max_history() -> int:
    """Finished windows kept per organisation (MAINTENANCE_MAX_HISTORY, default 1000)."""
    return int(getattr(settings, "MAINTENANCE_MAX_HISTORY", 1000))


def reminder_lead() -> timedelta:
    """How long before its start a window's "starting soon" notice goes out (MAINTENANCE_REMINDER_MINUTES)."""
    return timedelta(minutes=int(getattr(settings, "MAINTENANCE_REMINDER_MINUTES", 60)))


def recurrence_horizon() -> timedelta:
    """How far ahead occurrences of recurring windows exist as rows (MAINTENANCE_RECURRENCE_DAYS, default 60)."""
    return timedelta(days=int(getattr(settings, "MAINTENANCE_RECURRENCE_DAYS", 60)))


def _now(now=None) -> datetime:
    return now or timezone.now()


def _fmt(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "—"


# --- scopes ---------------------------------------------------------------------------------------------


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


def _asset_ids(window: MaintenanceWindow) -> set[int]:
    # Uses the prefetch cache when the caller prefetched "assets".
    return {asset.pk for asset in window.assets.all()} if window.pk else set()


def scope_label(window: MaintenanceWindow) -> str:
    if window.scope == Scope.SYSTEM:
        return "the whole system"
    if window.scope == Scope.LOCATION:
        return f"location “{window.location}”"
    codes = sorted(asset.code for asset in window.assets.all())
    return "asset" + ("s " if len(codes) != 1 else " ") + ", ".join(codes[:10]) + (" …" if len(codes) > 10 else "")


# --- recurrence -------------------------------------------------------------------------------------------


def _local_naive(moment: datetime, zone) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _to_utc(naive_local: datetime, zone) -> datetime:
    # fold=0: an ambiguous local time (autumn) is its first occurrence; a local time that does not exist
    # (spring gap) takes the offset before the change, i.e. moves forward by the gap.
    return naive_local.replace(tzinfo=zone).astimezone(UTC)


def normalize_recurrence(text: str) -> str:
    text = (text or "").strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :].strip()
    return text


def parse_recurrence(text: str, first_start: datetime, zone):
    """The rule as a dateutil rrule over naive local times, or InvalidInput keyed on `recurrence`."""

    def refuse(message):
        raise InvalidInput(f"Recurrence: {message}", fields={"recurrence": [message]})

    upper = text.upper()
    if "\n" in text or "DTSTART" in upper or "EXDATE" in upper or "RDATE" in upper:
        refuse("Give a single RRULE such as FREQ=WEEKLY;BYDAY=SU; the start comes from the window's start.")
    frequency = next((part.split("=", 1)[1] for part in upper.split(";") if part.startswith("FREQ=")), None)
    if frequency is None:
        refuse("The rule needs a FREQ, e.g. FREQ=WEEKLY;BYDAY=SU.")
    if frequency in RRULE_REFUSED_FREQUENCIES:
        refuse("Windows repeat at most hourly; use FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY.")
    try:
        rule = rrulestr(text, dtstart=_local_naive(first_start, zone))
    except (ValueError, TypeError) as exc:
        refuse(f"“{text}” is not a valid RRULE ({exc}).")
    return rule


def occurrence_starts(rule, zone, after: datetime, before: datetime, *, inclusive: bool = True) -> list[datetime]:
    """UTC starts of the rule's occurrences in [after, before) (or (after, before) when not inclusive)."""
    margin = timedelta(days=2)  # the local/UTC offset, generously
    starts = []
    for naive in rule.between(_local_naive(after, zone) - margin, _local_naive(before, zone) + margin, inc=True):
        start = _to_utc(naive, zone)
        if (start >= after if inclusive else start > after) and start < before:
            starts.append(start)
    return sorted(set(starts))


def _first_occurrence(rule, zone, not_before: datetime) -> datetime | None:
    naive = rule.after(_local_naive(not_before, zone) - timedelta(days=2), inc=True)
    while naive is not None:
        start = _to_utc(naive, zone)
        if start >= not_before:
            return start
        naive = rule.after(naive, inc=False)
    return None


def _series_occurrences(head: MaintenanceWindow, after: datetime, before: datetime) -> list[tuple[datetime, datetime]]:
    zone = head.organization.zone
    rule = parse_recurrence(head.recurrence, head.starts_at, zone)
    duration = head.duration
    return [(start, start + duration) for start in occurrence_starts(rule, zone, after, before)]


# --- locking and the mode row -------------------------------------------------------------------------


def lock_organization(organization_id) -> MaintenanceMode:
    """Lock (and create if needed) the organisation's maintenance-mode row: every change to its windows and
    its mode holds this lock first, so overlap checks and transitions of one organisation take turns.
    `None` is the platform row. Must run inside a transaction."""
    if isinstance(organization_id, Organization):
        organization_id = organization_id.pk
    MaintenanceMode.objects.get_or_create(organization_id=organization_id)
    return MaintenanceMode.objects.select_for_update().get(organization_id=organization_id)


def _active_system_windows(organization_id: int):
    return (
        MaintenanceWindow.objects.occurrences()
        .filter(organization_id=organization_id, status=Status.ACTIVE, scope=Scope.SYSTEM)
        .order_by("ends_at")
    )


def _mode_payload(mode: MaintenanceMode, windows: list[MaintenanceWindow]) -> dict:
    if mode.manual:
        source = "manual"
    elif windows:
        source = "window"
    else:
        source = None
    return {
        "active": mode.active,
        "platform": mode.is_platform,
        "source": source,
        "reason": mode.reason if mode.manual else (windows[0].title if windows else ""),
        "since": mode.active_since,
        "expected_end": _expected_end(mode, windows),
        "windows": [window.pk for window in windows],
    }


def _expected_end(mode: MaintenanceMode, windows: list[MaintenanceWindow]) -> datetime | None:
    """When the mode should end: None when an operator switched it on without saying until when."""
    if mode.manual and mode.expected_end is None:
        return None
    ends = [window.ends_at for window in windows]
    if mode.manual:
        ends.append(mode.expected_end)
    return max(ends) if ends else None


def _refresh_mode(mode: MaintenanceMode, now: datetime, *, reconciling: bool = False) -> bool:
    """Make the (locked) mode row agree with its switch and the running system windows. Returns whether it
    changed; publishes maintenance:mode-changed when it did. `reconciling`: a mismatch found by the tick's
    check rather than caused by a transition, which is logged as such."""
    windows = [] if mode.is_platform else list(_active_system_windows(mode.organization_id))
    wanted = mode.manual or bool(windows)
    if wanted == mode.active:
        return False
    if reconciling:
        logger.warning(
            "maintenance mode of %s was %s but %s: corrected",
            f"organisation {mode.organization_id}" if mode.organization_id else "the platform",
            "on" if mode.active else "off",
            "a system window is running or the switch is on"
            if wanted
            else "no system window runs and the switch is off",
        )
    mode.active = wanted
    mode.active_since = now if wanted else None
    reason = ("Reconciled: " if reconciling else "") + ("maintenance mode on" if wanted else "maintenance mode off")
    mode._change_reason = reason
    mode.save()
    payload = _mode_payload(mode, windows)
    organizations = [mode.organization] if mode.organization_id else list(Organization.objects.all())
    for organization in organizations:
        publish(organization, "maintenance:mode-changed", payload)
    return True


# --- mode state (what the gates read) --------------------------------------------------------------


@dataclass
class ModeState:
    """Whether an organisation is in maintenance mode now, why, and until when (None: unknown)."""

    active: bool = False
    platform: bool = False
    manual: bool = False
    reason: str = ""
    since: datetime | None = None
    expected_end: datetime | None = None
    windows: list = field(default_factory=list)

    def retry_after(self, now=None) -> int | None:
        """Seconds until the expected end (at least 1), or None when nobody knows."""
        if not self.active or self.expected_end is None:
            return None
        return max(1, math.ceil((self.expected_end - _now(now)).total_seconds()))

    def as_dict(self) -> dict:
        return {
            "active": self.active,
            "platform": self.platform,
            "manual": self.manual,
            "reason": self.reason,
            "since": self.since,
            "expected_end": self.expected_end,
            "windows": [
                {"id": window.pk, "title": window.title, "starts_at": window.starts_at, "ends_at": window.ends_at}
                for window in self.windows
            ],
        }

    def message(self) -> str:
        who = "The platform is" if self.platform else "This organisation is"
        why = f" ({self.reason})" if self.reason else ""
        until = f" until about {_fmt(self.expected_end)}" if self.expected_end else ""
        return (
            f"{who} in maintenance mode{why}{until}: changes are refused until it ends. "
            "Reading still works; try again later."
        )


def mode_state(organization) -> ModeState:
    """The maintenance mode that applies to `organization` (its own or the platform's; None: the platform's
    only). One query when the mode is off, which is what every write asks."""
    scope = Q(organization__isnull=True)
    if organization:
        scope |= Q(organization=organization)
    rows = list(MaintenanceMode.objects.filter(scope, active=True))
    if not rows:
        return ModeState()
    platform = next((row for row in rows if row.is_platform), None)
    own = next((row for row in rows if not row.is_platform), None)
    windows = list(_active_system_windows(own.organization_id)) if own is not None else []
    ends = []
    unknown_end = False
    for row in filter(None, (platform, own)):
        end = _expected_end(row, windows if row is own else [])
        if end is None:
            unknown_end = True
        else:
            ends.append(end)
    reasons = []
    for row in filter(None, (platform, own)):
        if row.manual:
            reasons.append(row.reason)
    reasons += [window.title for window in windows]
    return ModeState(
        active=True,
        platform=platform is not None,
        manual=any(row.manual for row in filter(None, (platform, own))),
        reason="; ".join(reason for reason in reasons if reason),
        since=min((row.active_since for row in rows if row.active_since), default=None),
        expected_end=None if unknown_end or not ends else max(ends),
        windows=windows,
    )


def is_in_maintenance_mode(organization) -> bool:
    """Whether the organisation (or, with None, the platform) is in maintenance mode now."""
    return mode_state(organization).active


def may_bypass(user, membership, state: ModeState) -> bool:
    """Superusers always; during an organisation's own mode, members whose role may BYPASS_MAINTENANCE.
    The platform switch is bypassed by superusers only."""
    if user is not None and getattr(user, "is_superuser", False):
        return True
    if state.platform or membership is None:
        return False
    return role_allows(membership.role, Action.BYPASS_MAINTENANCE)


def platform_status() -> dict:
    """For /health/ready and /api/v1/status, which know no organisation: the platform switch and how many
    organisations are in maintenance mode."""
    platform = MaintenanceMode.objects.filter(organization__isnull=True).first()
    active = bool(platform and platform.active)
    return {
        "active": active,
        "platform": {
            "active": active,
            "reason": platform.reason if active else "",
            "since": platform.active_since if active else None,
            "expected_end": platform.expected_end if active else None,
        },
        "organizations_in_maintenance": MaintenanceMode.objects.filter(organization__isnull=False, active=True).count(),
    }


# --- manual switch ------------------------------------------------------------------------------------


def _check_manual_permission(organization, actor):
    if actor is None:
        return
    if organization is None and not actor.is_superuser:
        raise PermissionDeniedError("Only a superuser may switch the whole platform's maintenance mode.")


def enter_maintenance_mode(organization, *, reason: str, actor=None, until: datetime | None = None, now=None):
    """Switch maintenance mode on by hand (an emergency), for `organization` or, with None, the platform.
    `until` is the expected end, announced to clients as Retry-After; without it they get none."""
    now = _now(now)
    _check_manual_permission(organization, actor)
    if not (reason or "").strip():
        raise InvalidInput("Say why maintenance mode is switched on (it is audited).", fields={"reason": ["Required."]})
    if until is not None and until <= now:
        raise InvalidInput("The expected end must be in the future.", fields={"until": ["In the past."]})
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        mode = lock_organization(organization.pk if organization else None)
        mode.manual = True
        mode.reason = reason.strip()
        mode.switched_by = actor
        mode.switched_at = now
        mode.expected_end = until
        mode._change_reason = f"Switched on by hand: {mode.reason}"
        mode.save()
        changed = _refresh_mode(mode, now)
        logger.warning("maintenance mode switched on by hand for %s: %s", organization or "the platform", mode.reason)
        if changed and organization is not None:
            _notify(
                organization,
                None,
                "maintenance:mode-changed",
                "Maintenance mode switched on",
                f"Maintenance mode is on: {mode.reason}. Changes are refused until it ends"
                + (f" (expected {_fmt(until)})." if until else "."),
                everyone=True,
            )
    return mode


def exit_maintenance_mode(organization, *, reason: str = "", actor=None, now=None):
    """Switch the manual maintenance mode off. The mode stays on while a system-scope window runs (end that
    window to leave it)."""
    now = _now(now)
    _check_manual_permission(organization, actor)
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        mode = lock_organization(organization.pk if organization else None)
        if mode.manual:
            mode.manual = False
            mode.expected_end = None
            mode.switched_by = actor
            mode.switched_at = now
            mode.reason = ""
            mode._change_reason = "Switched off by hand" + (f": {reason.strip()}" if reason and reason.strip() else "")
            mode.save()
        changed = _refresh_mode(mode, now)
        if changed and organization is not None:
            _notify(
                organization,
                None,
                "maintenance:mode-changed",
                "Maintenance mode switched off",
                "Maintenance mode is off: changes are accepted again.",
                everyone=True,
            )
    return mode


# --- notifications and events ------------------------------------------------------------------------


def _recipients(window: MaintenanceWindow | None, everyone: bool = False) -> list[str]:
    if everyone or (window is not None and window.notify_users):
        return [role.value for role in Role if role != Role.INTEGRATOR]
    return [role.value for role in roles_allowed(Action.MANAGE_WINDOWS)]


ALWAYS_SENT = ("maintenance:window-failed",)  # to the managers at least, whatever the window's flag


def _notify(organization, window, kind: str, title: str, body: str, *, everyone: bool = False) -> None:
    """Tell people: everyone for a window with `notify_users` (and for a manual mode switch); for a window
    without it, only its failure, and only to the managers."""
    if window is not None and not window.notify_users and kind not in ALWAYS_SENT:
        return
    context = {"title": title, "body": body}
    if window is not None:
        context.update(window=window.pk, url=f"/admin/scheduling/maintenancewindow/{window.pk}/change/")
    notify(organization, _recipients(window, everyone), kind, context)


def window_payload(window: MaintenanceWindow) -> dict:
    return {
        "id": window.pk,
        "title": window.title,
        "maintenance_type": window.maintenance_type,
        "scope": window.scope,
        "location": window.location_id,
        "assets": sorted(_asset_ids(window)),
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "status": window.status,
        "actual_start": window.actual_start,
        "actual_end": window.actual_end,
        "series": window.series_id,
        "emergency": window.emergency,
    }


def _write_history(window: MaintenanceWindow, reason: str) -> None:
    """The history row a conditional UPDATE owes (it bypassed save())."""
    MaintenanceWindow.history.bulk_history_create(
        [window], update=True, default_user=current_user(), default_change_reason=reason
    )


# --- validation ------------------------------------------------------------------------------------------


def _resolve_end(starts_at, ends_at, duration_minutes):
    if starts_at is None:
        raise InvalidInput("A window needs a start.", fields={"starts_at": ["Required."]})
    if ends_at is not None and duration_minutes is not None:
        raise InvalidInput(
            "Give either the end or the duration in minutes, not both.",
            fields={"duration_minutes": ["Leave empty when the end is given."]},
        )
    if duration_minutes is not None:
        if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int | float):
            raise InvalidInput("The duration is a number of minutes.", fields={"duration_minutes": ["A number."]})
        if duration_minutes <= 0:
            raise InvalidInput(
                f"The duration must be at least one minute (got {duration_minutes}).",
                fields={"duration_minutes": ["At least 1 minute."]},
            )
        return starts_at + timedelta(minutes=duration_minutes)
    if ends_at is None:
        raise InvalidInput(
            "A window needs an end or a duration in minutes.", fields={"ends_at": ["Give the end or a duration."]}
        )
    if ends_at <= starts_at:
        raise InvalidInput(
            f"The end ({_fmt(ends_at)}) must be after the start ({_fmt(starts_at)}).",
            fields={"ends_at": ["The end must be after the start."]},
        )
    return ends_at


def _check_scope(organization, scope, location, assets) -> list[Asset]:
    assets = list(assets or [])
    if scope not in Scope.values:
        raise InvalidInput(
            f"“{scope}” is not a scope; choose one of {', '.join(Scope.values)}.", fields={"scope": ["Unknown."]}
        )
    foreign = sorted(str(asset.code) for asset in assets if asset.organization_id != organization.pk)
    if foreign:
        raise InvalidInput(
            f"Asset(s) {', '.join(foreign)} belong to another organisation.",
            fields={"assets": ["These assets are not in your organisation."]},
        )
    if location is not None and location.organization_id != organization.pk:
        raise InvalidInput("The location belongs to another organisation.", fields={"location": ["Not yours."]})
    if scope == Scope.ASSETS and not assets:
        raise InvalidInput("An asset-scope window needs at least one asset.", fields={"assets": ["Choose the assets."]})
    if scope != Scope.ASSETS and assets:
        raise InvalidInput(
            "Only an asset-scope window lists assets.", fields={"assets": ["Leave empty for this scope."]}
        )
    if scope == Scope.LOCATION and location is None:
        raise InvalidInput("A location-scope window needs a location.", fields={"location": ["Choose the location."]})
    if scope != Scope.LOCATION and location is not None:
        raise InvalidInput("Only a location-scope window names a location.", fields={"location": ["Leave empty."]})
    return assets


# --- the overlap check --------------------------------------------------------------------------------


@dataclass
class Collision:
    window: MaintenanceWindow  # an occurrence, or the head of a series whose occurrence is not a row yet
    starts_at: datetime
    ends_at: datetime

    def describe(self) -> str:
        series = " (a recurring window)" if self.window.is_series else ""
        return f"“{self.window.title}” (#{self.window.pk}{series}, {_fmt(self.starts_at)} – {_fmt(self.ends_at)})"

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
        for start, end in _series_occurrences(head, after, high):
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
            footprints[window.pk] = tree.footprint(window.scope, window.location_id, _asset_ids(window))
        if footprints[window.pk].intersects(footprint):
            collisions.append(Collision(window, start, end))
    collisions.sort(key=lambda collision: collision.starts_at)
    return collisions


def _refuse_or_override(collisions: list[Collision], *, emergency: bool, emergency_reason: str) -> list[int]:
    """Raise the 409 for the first collision, or, for an emergency, return what it overrides."""
    if not collisions:
        return []
    if not emergency:
        first = collisions[0]
        more = f" (and {len(collisions) - 1} more)" if len(collisions) > 1 else ""
        raise Conflict(
            f"This window overlaps the maintenance window {first.describe()}{more} on an intersecting scope: "
            "move it, or schedule it as an emergency with a reason.",
            code="window_overlap",
            conflicting_window=first.as_dict(),
            conflicting_windows=[collision.as_dict() for collision in collisions[:20]],
        )
    return sorted({collision.window.pk for collision in collisions})


def _planned_intervals(recurrence, starts_at, ends_at, zone, now) -> list[tuple[datetime, datetime]]:
    if not recurrence:
        return [(starts_at, ends_at)]
    rule = parse_recurrence(recurrence, starts_at, zone)
    duration = ends_at - starts_at
    starts = occurrence_starts(rule, zone, max(starts_at, now - duration), max(starts_at, now) + CHECK_HORIZON)
    return [(start, start + duration) for start in starts]


def _check_series_shape(recurrence, starts_at, ends_at, zone) -> datetime:
    """The series' first occurrence (at or after `starts_at`); refuses rules whose occurrences overlap each
    other or that never occur."""
    rule = parse_recurrence(recurrence, starts_at, zone)
    first = _first_occurrence(rule, zone, starts_at)
    if first is None:
        raise InvalidInput(
            "Recurrence: the rule gives no occurrence after the start.", fields={"recurrence": ["No occurrence."]}
        )
    duration = ends_at - starts_at
    starts = occurrence_starts(rule, zone, first, first + max(CHECK_HORIZON, duration * 3))
    for earlier, later in zip(starts, starts[1:], strict=False):
        if later - earlier < duration:
            raise InvalidInput(
                f"Recurrence: occurrences {_fmt(earlier)} and {_fmt(later)} would overlap each other; "
                "shorten the window or repeat it less often.",
                fields={"recurrence": ["Occurrences overlap each other."]},
            )
    return first


# --- creating and changing windows ---------------------------------------------------------------------


def create_window(
    organization,
    *,
    title: str,
    starts_at: datetime,
    ends_at: datetime | None = None,
    duration_minutes: int | None = None,
    maintenance_type: str = MaintenanceWindow.Type.OTHER,
    description: str = "",
    scope: str = Scope.SYSTEM,
    location=None,
    assets=(),
    recurrence: str = "",
    notify_users: bool = True,
    emergency: bool = False,
    emergency_reason: str = "",
    actor=None,
    now=None,
) -> MaintenanceWindow:
    """Schedule a window (or, with `recurrence`, a series of them). Refuses bad input (400) and overlaps
    with intersecting scope (409) unless `emergency` with a reason. A window already due starts at once."""
    now = _now(now)
    ends_at = _resolve_end(starts_at, ends_at, duration_minutes)
    assets = _check_scope(organization, scope, location, assets)
    recurrence = normalize_recurrence(recurrence)
    emergency_reason = (emergency_reason or "").strip()
    if emergency and not emergency_reason:
        raise InvalidInput(
            "An emergency window needs a reason (it is audited).", fields={"emergency_reason": ["Required."]}
        )
    zone = organization.zone
    if recurrence:
        first = _check_series_shape(recurrence, starts_at, ends_at, zone)
        ends_at, starts_at = first + (ends_at - starts_at), first
    if ends_at <= now and not recurrence:
        raise InvalidInput(
            f"This window ended already ({_fmt(ends_at)}); schedule one that ends in the future.",
            fields={"ends_at": ["In the past."]},
        )
    actor_for_history = actor or current_user() or system_user()
    with transaction.atomic(), acting_as(actor_for_history):
        mode = lock_organization(organization.pk)
        tree = OrganizationTree(organization.pk)
        footprint = tree.footprint(scope, location.pk if location else None, [asset.pk for asset in assets])
        intervals = _planned_intervals(recurrence, starts_at, ends_at, zone, now)
        collisions = find_collisions(organization, intervals, footprint, tree=tree)
        overridden = _refuse_or_override(collisions, emergency=emergency, emergency_reason=emergency_reason)
        window = MaintenanceWindow(
            organization=organization,
            title=(title or "").strip(),
            maintenance_type=maintenance_type,
            description=description or "",
            scope=scope,
            location=location,
            starts_at=starts_at,
            ends_at=ends_at,
            recurrence=recurrence,
            notify_users=notify_users,
            emergency=emergency,
            emergency_reason=emergency_reason,
            overridden_conflicts=overridden,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        validated(window)
        if overridden:
            overlapped = ", ".join(f"#{pk}" for pk in overridden)
            window._change_reason = f"Emergency override: {emergency_reason} (overlaps window(s) {overlapped})"
            logger.warning(
                "emergency maintenance window “%s” in organisation %s overrides windows %s: %s",
                window.title,
                organization.pk,
                overridden,
                emergency_reason,
            )
        window.save()
        if assets:
            window.assets.set(assets)
        publish(organization, "maintenance:window-scheduled", window_payload(window))
        _notify(
            organization,
            window,
            "maintenance:window-scheduled",
            f"Maintenance scheduled: {window.title}",
            f"{window.get_maintenance_type_display()} maintenance of {scope_label(window)} from "
            f"{_fmt(window.starts_at)} to {_fmt(window.ends_at)}"
            + (f", repeating ({window.recurrence})" if recurrence else "")
            + ".",
        )
        if recurrence:
            _materialize(window, now + recurrence_horizon(), now)
            for occurrence in window.occurrences.filter(status=Status.SCHEDULED, starts_at__lte=now, ends_at__gt=now):
                _start(occurrence, now)
        elif window.starts_at <= now:
            _start(window, now)
        _refresh_mode(mode, now)
    return window


_UPDATABLE = {
    "title",
    "description",
    "maintenance_type",
    "notify_users",
    "starts_at",
    "ends_at",
    "duration_minutes",
    "scope",
    "location",
    "assets",
    "recurrence",
    "emergency",
    "emergency_reason",
}
_WHILE_ACTIVE = {"title", "description", "notify_users", "ends_at", "duration_minutes"}
_SHAPE = {"starts_at", "ends_at", "duration_minutes", "scope", "location", "assets", "recurrence"}
_PROPAGATED = ("title", "description", "maintenance_type", "notify_users")


def update_window(window: MaintenanceWindow, *, actor=None, now=None, **changes) -> MaintenanceWindow:
    """Change a window. A scheduled window may change everything (its new time and scope are checked for
    overlaps again); a running one its title, description, notification flag and end (still in the future);
    a finished or cancelled one nothing. Changing a series changes its future scheduled occurrences."""
    now = _now(now)
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise TypeError(f"A maintenance window has no editable field(s) {', '.join(sorted(unknown))}")
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        lock_organization(window.organization_id)
        window = (
            MaintenanceWindow.objects.select_related("organization", "location")
            .select_for_update(of=("self",))
            .get(pk=window.pk)
        )
        organization = window.organization
        if window.status not in MaintenanceWindow.PLANNED_STATUSES:
            raise Conflict(
                f"This window is {window.get_status_display().lower()}: it can no longer be changed.",
                code="window_finished",
            )
        if window.status == Status.ACTIVE and set(changes) - _WHILE_ACTIVE:
            refused = ", ".join(sorted(set(changes) - _WHILE_ACTIVE))
            raise Conflict(
                f"This window is running: only its title, description, notification flag and end can change "
                f"(not {refused}). End it, or mark it failed, instead.",
                code="window_active",
            )
        if window.series_id and "recurrence" in changes and normalize_recurrence(changes["recurrence"]):
            raise InvalidInput(
                "An occurrence of a recurring window cannot repeat itself; change the series instead.",
                fields={"recurrence": ["Not on an occurrence."]},
            )
        current_assets = list(window.assets.all())
        starts_at = changes.get("starts_at", window.starts_at)
        if "duration_minutes" in changes and changes["duration_minutes"] is not None:
            ends_at = _resolve_end(starts_at, None, changes["duration_minutes"])
        elif "ends_at" in changes or "starts_at" in changes:
            ends_at = _resolve_end(starts_at, changes.get("ends_at", window.ends_at), None)
        else:
            ends_at = window.ends_at
        scope = changes.get("scope", window.scope)
        location = changes.get(
            "location", window.location if "scope" not in changes or scope == Scope.LOCATION else None
        )
        assets = changes.get("assets", current_assets if scope == Scope.ASSETS else [])
        assets = _check_scope(organization, scope, location, assets)
        recurrence = normalize_recurrence(changes.get("recurrence", window.recurrence))
        emergency = changes.get("emergency", window.emergency)
        emergency_reason = (changes.get("emergency_reason", window.emergency_reason) or "").strip()
        if emergency and not emergency_reason:
            raise InvalidInput(
                "An emergency window needs a reason (it is audited).", fields={"emergency_reason": ["Required."]}
            )
        if window.status == Status.ACTIVE and ends_at <= now:
            raise InvalidInput(
                "The new end has passed already: end the window now instead.", fields={"ends_at": ["In the past."]}
            )
        if window.recurrence and not recurrence:
            raise InvalidInput(
                "A recurring window stays recurring; cancel the series to stop it.",
                fields={"recurrence": ["Cannot be removed."]},
            )
        if not window.recurrence and recurrence and not window.series_id:
            raise InvalidInput(
                "A single window cannot become a series; schedule a recurring window instead.",
                fields={"recurrence": ["Cannot be added."]},
            )
        zone = organization.zone
        if recurrence:
            first = _check_series_shape(recurrence, starts_at, ends_at, zone)
            ends_at, starts_at = first + (ends_at - starts_at), first
        shape_changed = (
            starts_at != window.starts_at
            or ends_at != window.ends_at
            or scope != window.scope
            or (location.pk if location else None) != window.location_id
            or {a.pk for a in assets} != {a.pk for a in current_assets}
            or recurrence != window.recurrence
        )
        if window.status == Status.SCHEDULED and not window.recurrence and ends_at <= now:
            raise InvalidInput("The new end has passed already.", fields={"ends_at": ["In the past."]})
        overridden = list(window.overridden_conflicts)
        if shape_changed and (window.status == Status.SCHEDULED or ends_at > window.ends_at):
            tree = OrganizationTree(organization.pk)
            footprint = tree.footprint(scope, location.pk if location else None, [a.pk for a in assets])
            if window.status == Status.ACTIVE:
                intervals = [(window.ends_at, ends_at)]  # only the extension is new
            else:
                intervals = _planned_intervals(recurrence, starts_at, ends_at, zone, now)
            collisions = find_collisions(
                organization,
                intervals,
                footprint,
                tree=tree,
                exclude_ids=[window.pk],
                exclude_series=window.pk if window.recurrence else None,
            )
            newly = _refuse_or_override(collisions, emergency=emergency, emergency_reason=emergency_reason)
            if newly:
                overridden = sorted(set(overridden) | set(newly))
                window._change_reason = f"Emergency override: {emergency_reason} (overlaps {newly})"
                logger.warning("emergency change of maintenance window %s overrides %s", window.pk, newly)
        for name in _PROPAGATED:
            if name in changes:
                setattr(window, name, changes[name])
        window.starts_at, window.ends_at, window.scope, window.location = starts_at, ends_at, scope, location
        window.recurrence, window.emergency, window.emergency_reason = recurrence, emergency, emergency_reason
        window.overridden_conflicts = overridden
        window.title = (window.title or "").strip()
        validated(window)
        if window.recurrence and shape_changed:
            window.materialized_until = None
        window.save()
        if {a.pk for a in assets} != {a.pk for a in current_assets}:
            window.assets.set(assets)
        if window.recurrence:
            future = window.occurrences.filter(status=Status.SCHEDULED)
            if shape_changed:
                future.delete()  # re-created below from the new rule, time and scope
                _materialize(window, now + recurrence_horizon(), now)
            else:
                for occurrence in future:
                    for name in _PROPAGATED:
                        setattr(occurrence, name, getattr(window, name))
                    occurrence.save()
        elif window.status == Status.SCHEDULED and window.starts_at <= now < window.ends_at:
            _start(window, now)
        _refresh_mode(lock_organization(organization.pk), now)
    return window


def delete_window(window: MaintenanceWindow, *, actor=None) -> None:
    """Delete a window that never started (or a series none of whose occurrences started). A started window
    stays, for the record: end it early or mark it failed instead."""
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_for_update(of=("self",)).get(pk=window.pk)
        if window.has_started:
            raise Conflict(
                f"This window has started ({window.get_status_display().lower()}) and is kept for the record: "
                "end it early or mark it failed (with a reason) instead of deleting it.",
                code="window_started",
            )
        if window.recurrence and window.occurrences.filter(status__in=MaintenanceWindow.STARTED_STATUSES).exists():
            raise Conflict(
                "Some occurrences of this recurring window have run and are kept for the record: cancel the series "
                "instead of deleting it.",
                code="window_started",
            )
        window.delete()


def _transition_guard(window: MaintenanceWindow, allowed: tuple, verb: str):
    if window.status not in allowed:
        raise Conflict(
            f"This window is {window.get_status_display().lower()}: it cannot be {verb}.", code="invalid_transition"
        )


def end_window(window: MaintenanceWindow, *, reason: str = "", actor=None, now=None) -> MaintenanceWindow:
    """End a running window now (early, by hand): completed, assets given back, mode updated."""
    now = _now(now)
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        mode = lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_related("organization").get(pk=window.pk)
        _transition_guard(window, (Status.ACTIVE,), "ended")
        reason = (reason or "").strip() or ("Ended early by hand" if now < window.ends_at else "")
        _end(window, now, status=Status.COMPLETED, reason=reason)
        _refresh_mode(mode, now)
    return window


def fail_window(window: MaintenanceWindow, *, reason: str, actor=None, now=None) -> MaintenanceWindow:
    """Mark a running (or completed) window failed, with the reason; a running one ends now."""
    now = _now(now)
    if not (reason or "").strip():
        raise InvalidInput("Say why the maintenance failed.", fields={"reason": ["Required."]})
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        mode = lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_related("organization").get(pk=window.pk)
        _transition_guard(window, (Status.ACTIVE, Status.COMPLETED), "marked failed")
        if window.status == Status.ACTIVE:
            _end(window, now, status=Status.FAILED, reason=reason.strip())
        else:
            updated = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.COMPLETED).update(
                status=Status.FAILED, status_reason=reason.strip(), updated_at=now
            )
            if updated:
                window.refresh_from_db()
                _write_history(window, f"Marked failed: {reason.strip()}")
                publish(window.organization, "maintenance:window-failed", window_payload(window))
                _notify(
                    window.organization,
                    window,
                    "maintenance:window-failed",
                    f"Maintenance failed: {window.title}",
                    f"Marked failed after it ended: {reason.strip()}",
                )
        _refresh_mode(mode, now)
    return window


def cancel_window(window: MaintenanceWindow, *, reason: str, actor=None, now=None) -> MaintenanceWindow:
    """Cancel a scheduled window (a series: the series and its scheduled occurrences), with the reason."""
    now = _now(now)
    if not (reason or "").strip():
        raise InvalidInput("Say why the window is cancelled.", fields={"reason": ["Required."]})
    with transaction.atomic(), acting_as(actor or current_user() or system_user()):
        lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_related("organization").get(pk=window.pk)
        _transition_guard(window, (Status.SCHEDULED,), "cancelled")
        targets = [window]
        if window.recurrence:
            targets += list(window.occurrences.filter(status=Status.SCHEDULED))
        for target in targets:
            updated = MaintenanceWindow.objects.filter(pk=target.pk, status=Status.SCHEDULED).update(
                status=Status.CANCELLED, status_reason=reason.strip(), updated_at=now
            )
            if updated:
                target.refresh_from_db()
                _write_history(target, f"Cancelled: {reason.strip()}")
        window.refresh_from_db()
        publish(window.organization, "maintenance:window-cancelled", window_payload(window))
        _notify(
            window.organization,
            window,
            "maintenance:window-cancelled",
            f"Maintenance cancelled: {window.title}",
            f"The maintenance planned for {_fmt(window.starts_at)} is cancelled: {reason.strip()}",
        )
    return window


# --- starting and ending (callers hold the organisation lock) -----------------------------------------------


def _start(window: MaintenanceWindow, now: datetime) -> bool:
    """Claim scheduled → active with a conditional UPDATE; only the claimant marks the assets, publishes and
    notifies. Returns whether this call started it."""
    claimed = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.SCHEDULED, recurrence="").update(
        status=Status.ACTIVE, actual_start=now, updated_at=now
    )
    if not claimed:
        return False
    window.refresh_from_db()
    late = (now - window.starts_at).total_seconds()
    _write_history(window, "Started" + (f" {late:.0f}s late" if late > check_interval() else ""))
    _mark_assets(window, now)
    publish(window.organization, "maintenance:window-started", window_payload(window))
    _notify(
        window.organization,
        window,
        "maintenance:window-started",
        f"Maintenance started: {window.title}",
        f"{window.get_maintenance_type_display()} maintenance of {scope_label(window)} has started; "
        f"it should end at {_fmt(window.ends_at)}.",
    )
    if late > 2 * check_interval():
        logger.warning(
            "maintenance window %s should have been active since %s but was not: started now, %.0fs late (caught up)",
            window.pk,
            _fmt(window.starts_at),
            late,
        )
    else:
        logger.info("maintenance window %s started (%.0fs after its start)", window.pk, late)
    return True


def _end(window: MaintenanceWindow, now: datetime, *, status=Status.COMPLETED, reason: str = "") -> bool:
    """Claim active → completed/failed; only the claimant gives the assets back, publishes and notifies."""
    claimed = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.ACTIVE).update(
        status=status, actual_end=now, status_reason=reason, updated_at=now
    )
    if not claimed:
        return False
    window.refresh_from_db()
    _write_history(window, ("Failed: " if status == Status.FAILED else "Ended") + (f" {reason}" if reason else ""))
    _restore_assets(window, now)
    publish(window.organization, "maintenance:window-ended", window_payload(window))
    if status == Status.FAILED:
        publish(window.organization, "maintenance:window-failed", window_payload(window))
        _notify(
            window.organization,
            window,
            "maintenance:window-failed",
            f"Maintenance failed: {window.title}",
            f"The maintenance of {scope_label(window)} failed: {reason}",
        )
    else:
        _notify(
            window.organization,
            window,
            "maintenance:window-ended",
            f"Maintenance ended: {window.title}",
            f"The maintenance of {scope_label(window)} has ended" + (f" ({reason})." if reason else "."),
        )
    overdue = (now - window.ends_at).total_seconds()
    if overdue > 2 * check_interval():
        logger.warning(
            "maintenance window %s was still active %.0fs after its end (%s): ended now (caught up)",
            window.pk,
            overdue,
            _fmt(window.ends_at),
        )
    else:
        logger.info("maintenance window %s ended as %s", window.pk, status)
    return True


def _miss(window: MaintenanceWindow, now: datetime) -> bool:
    """A scheduled window whose end passed before any tick started it: failed, said why, nothing marked."""
    claimed = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.SCHEDULED, recurrence="").update(
        status=Status.FAILED, status_reason=MISSED_REASON, updated_at=now
    )
    if not claimed:
        return False
    window.refresh_from_db()
    _write_history(window, "Missed")
    logger.warning("maintenance window %s (%s) was missed: no tick ran before its end", window.pk, window.title)
    publish(window.organization, "maintenance:window-failed", window_payload(window))
    _notify(
        window.organization,
        window,
        "maintenance:window-failed",
        f"Maintenance window missed: {window.title}",
        MISSED_REASON,
    )
    return True


def _window_assets(window: MaintenanceWindow) -> list[Asset]:
    if window.scope == Scope.ASSETS:
        queryset = window.assets.all()
    elif window.scope == Scope.LOCATION:
        tree = OrganizationTree(window.organization_id)
        queryset = Asset.objects.filter(pk__in=tree.assets_in(tree.subtree(window.location_id)))
    else:
        return []
    return list(queryset.order_by("pk"))  # pk order: the lock order of concurrent windows


MARKABLE = (Asset.Status.OPERATIONAL, Asset.Status.DEGRADED, Asset.Status.IN_MAINTENANCE)


def _mark_assets(window: MaintenanceWindow, now: datetime) -> None:
    """Mark the window's assets in maintenance (through assets.services), remembering their status. Assets
    that are down or retired are left alone."""
    reason = f"Maintenance window #{window.pk} “{window.title}” started"
    with acting_as(current_user() or system_user(), reason=reason):
        for asset in _window_assets(window):
            if asset.status not in MARKABLE:
                continue
            previous = asset.status
            if previous == Asset.Status.IN_MAINTENANCE:
                held = WindowAssetState.objects.filter(asset=asset, restored_at__isnull=True).first()
                if held is None:
                    continue  # put in maintenance by hand: not ours to give back
                previous = held.previous_status
            WindowAssetState.objects.create(
                organization_id=window.organization_id,
                window=window,
                asset=asset,
                previous_status=previous,
                marked_at=now,
            )
            if asset.status != Asset.Status.IN_MAINTENANCE:
                asset_services.update_asset(asset, status=Asset.Status.IN_MAINTENANCE)


def _restore_assets(window: MaintenanceWindow, now: datetime) -> None:
    """Give the assets back the status they had, unless someone changed it meanwhile or another running window
    still holds them."""
    reason = f"Maintenance window #{window.pk} “{window.title}” ended"
    states = list(window.asset_states.filter(restored_at__isnull=True).select_related("asset").order_by("asset_id"))
    with acting_as(current_user() or system_user(), reason=reason):
        for state in states:
            still_held = (
                WindowAssetState.objects.filter(asset_id=state.asset_id, restored_at__isnull=True)
                .exclude(pk=state.pk)
                .exists()
            )
            asset = Asset.objects.get(pk=state.asset_id)
            restored = ""
            if not still_held and asset.status == Asset.Status.IN_MAINTENANCE:
                asset_services.update_asset(asset, status=state.previous_status)
                restored = state.previous_status
            WindowAssetState.objects.filter(pk=state.pk, restored_at__isnull=True).update(
                restored_at=now, restored_status=restored, updated_at=now
            )


# --- recurring windows -------------------------------------------------------------------------------------


def _materialize(head: MaintenanceWindow, until: datetime, now: datetime) -> int:
    """Create the series' occurrences that start before `until` and end after now (each once: the unique
    (series, occurrence_start) makes a concurrent run's duplicate an IntegrityError, skipped)."""
    if not head.recurrence or head.status != Status.SCHEDULED:
        return 0
    if head.materialized_until is not None and head.materialized_until >= until:
        return 0
    after = max(head.materialized_until or head.starts_at, now - head.duration)
    slots = _series_occurrences(head, after, until)
    existing = set(head.occurrences.filter(occurrence_start__gte=after).values_list("occurrence_start", flat=True))
    assets = list(head.assets.all())
    created = 0
    for start, end in slots:
        if start in existing:
            continue
        occurrence = MaintenanceWindow(
            organization_id=head.organization_id,
            series=head,
            occurrence_start=start,
            starts_at=start,
            ends_at=end,
            title=head.title,
            description=head.description,
            maintenance_type=head.maintenance_type,
            scope=head.scope,
            location_id=head.location_id,
            notify_users=head.notify_users,
            emergency=head.emergency,
            emergency_reason=head.emergency_reason,
            created_by_id=head.created_by_id,
        )
        try:
            with transaction.atomic():
                occurrence.save()
                if assets:
                    occurrence.assets.set(assets)
        except IntegrityError:
            continue  # created by a concurrent run
        created += 1
    MaintenanceWindow.objects.filter(pk=head.pk).filter(
        Q(materialized_until__isnull=True) | Q(materialized_until__lt=until)
    ).update(materialized_until=until)
    head.materialized_until = until
    return created


# --- the tick ----------------------------------------------------------------------------------------------


def tick(now=None) -> dict:
    """Start due windows, end finished ones, fail missed ones, create coming occurrences, send "starting
    soon" notices and reconcile the maintenance mode. Idempotent; see the module docstring.

    Late-tick policy: a window whose start passed but not its end starts now (its actual start records the
    delay); one whose end passed before any tick started it is marked failed as missed; an active window past
    its end ends now (actual end = now).
    """
    now = _now(now)
    summary = {"occurrences": 0, "reminded": 0, "started": [], "ended": [], "missed": [], "mode_corrected": []}
    with acting_as(system_user()):
        summary["occurrences"] = _materialize_all(now)
        summary["reminded"] = _send_reminders(now)
        due = defaultdict(list)
        # ends, misses and starts, per organisation, so that back-to-back windows hand over without the mode
        # flapping off and on.
        for pk, org_id in (
            MaintenanceWindow.objects.occurrences()
            .filter(status=Status.ACTIVE, ends_at__lte=now)
            .values_list("pk", "organization_id")
            .order_by("ends_at", "pk")
        ):
            due[org_id].append(("end", pk))
        for pk, org_id, ends_at in (
            MaintenanceWindow.objects.occurrences()
            .filter(status=Status.SCHEDULED, starts_at__lte=now)
            .values_list("pk", "organization_id", "ends_at")
            .order_by("starts_at", "pk")
        ):
            due[org_id].append(("miss" if ends_at <= now else "start", pk))
        for org_id in sorted(due):
            _run_organization(org_id, due[org_id], now, summary)
        summary["mode_corrected"] = reconcile_modes(now)
    if any(summary[key] for key in ("started", "ended", "missed", "mode_corrected")):
        logger.info("maintenance tick: %s", summary)
    return summary


def _run_organization(org_id: int, work: list[tuple[str, int]], now: datetime, summary: dict) -> None:
    with transaction.atomic():
        mode = lock_organization(org_id)
        windows = {
            window.pk: window
            for window in MaintenanceWindow.objects.select_related("organization", "location").filter(
                pk__in=[pk for _, pk in work]
            )
        }
        for what, pk in work:
            window = windows.get(pk)
            if window is None:
                continue  # deleted meanwhile
            try:
                with transaction.atomic():
                    if what == "end" and _end(window, now):
                        summary["ended"].append(pk)
                    elif what == "start" and _start(window, now):
                        summary["started"].append(pk)
                    elif what == "miss" and _miss(window, now):
                        summary["missed"].append(pk)
            except Exception:  # one broken window must not stop the others; the next tick retries it
                logger.exception("maintenance tick could not %s window %s", what, pk)
        _refresh_mode(mode, now)


def _materialize_all(now: datetime) -> int:
    until = now + recurrence_horizon()
    # A day of slack: a series is topped up once a day, not on every tick.
    heads = (
        MaintenanceWindow.objects.series()
        .filter(status=Status.SCHEDULED)
        .filter(Q(materialized_until__isnull=True) | Q(materialized_until__lt=until - timedelta(days=1)))
        .select_related("organization")
        .prefetch_related("assets")
    )
    created = 0
    for head in heads:
        try:
            with transaction.atomic():
                created += _materialize(head, until, now)
        except Exception:
            logger.exception("could not create the occurrences of recurring window %s", head.pk)
    return created


def _send_reminders(now: datetime) -> int:
    soon = (
        MaintenanceWindow.objects.occurrences()
        .filter(status=Status.SCHEDULED, reminder_sent_at__isnull=True, starts_at__gt=now)
        .filter(starts_at__lte=now + reminder_lead())
        .select_related("organization", "location")
    )
    sent = 0
    for window in soon:
        with transaction.atomic():
            claimed = MaintenanceWindow.objects.filter(pk=window.pk, reminder_sent_at__isnull=True).update(
                reminder_sent_at=now
            )
            if not claimed:
                continue
            minutes = max(1, round((window.starts_at - now).total_seconds() / 60))
            _notify(
                window.organization,
                window,
                "maintenance:window-starting-soon",
                f"Maintenance in {minutes} min: {window.title}",
                f"{window.get_maintenance_type_display()} maintenance of {scope_label(window)} starts at "
                f"{_fmt(window.starts_at)} and should end at {_fmt(window.ends_at)}.",
            )
            sent += 1
    return sent


def reconcile_modes(now=None) -> list:
    """Compare every stored mode with what its switch and windows say; correct and log each mismatch.
    Returns the organisation ids (None: the platform) corrected."""
    now = _now(now)
    should_be_on = set(
        MaintenanceWindow.objects.occurrences()
        .filter(status=Status.ACTIVE, scope=Scope.SYSTEM)
        .values_list("organization_id", flat=True)
    )
    rows = MaintenanceMode.objects.values_list("organization_id", "active", "manual")
    known = set()
    suspects = []
    for org_id, active, manual in rows:
        known.add(org_id)
        if active != (manual or org_id in should_be_on):
            suspects.append(org_id)
    suspects += sorted(org_id for org_id in should_be_on - known)
    corrected = []
    for org_id in suspects:
        with transaction.atomic():
            if _refresh_mode(lock_organization(org_id), now, reconciling=True):
                corrected.append(org_id)
    return corrected


# --- history, metrics, fitting work ---------------------------------------------------------------------


def prune_history(max_size: int | None = None) -> int:
    """Keep the newest `max_size` finished windows (completed or failed) per organisation; delete older ones.
    Returns how many were deleted."""
    keep = max_history() if max_size is None else max_size
    deleted = 0
    busy = (
        MaintenanceWindow.objects.occurrences()
        .finished()
        .order_by()
        .values("organization_id")
        .annotate(total=Count("pk"))
        .filter(total__gt=keep)
    )
    for row in busy:
        finished = (
            MaintenanceWindow.objects.occurrences()
            .finished()
            .filter(organization_id=row["organization_id"])
            .order_by("-ends_at", "-pk")
        )
        old = list(finished.values_list("pk", flat=True)[keep:])
        for start in range(0, len(old), 500):
            count, _ = MaintenanceWindow.objects.filter(pk__in=old[start : start + 500]).delete()
            deleted += count
    return deleted


def _stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "average": None, "minimum": None, "maximum": None}
    return {
        "count": len(values),
        "average": round(sum(values) / len(values), 1),
        "minimum": round(min(values), 1),
        "maximum": round(max(values), 1),
    }


def window_metrics(organization, now=None) -> dict:
    """The seed's metrics: how many windows are scheduled, their durations, actual versus scheduled timing,
    and the distribution by type (and by status)."""
    now = _now(now)
    windows = MaintenanceWindow.objects.for_tenant(organization).occurrences()
    by_status = dict(windows.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    by_type = dict(
        windows.order_by().values_list("maintenance_type").annotate(n=Count("pk")).values_list("maintenance_type", "n")
    )
    started = list(
        windows.filter(actual_start__isnull=False).values_list("starts_at", "ends_at", "actual_start", "actual_end")
    )
    planned = [(end - start).total_seconds() / 60 for start, end, _, _ in started]
    actual = [(a_end - a_start).total_seconds() / 60 for _, _, a_start, a_end in started if a_end]
    start_delay = [(a_start - start).total_seconds() for start, _, a_start, _ in started]
    end_delay = [(a_end - end).total_seconds() for _, end, _, a_end in started if a_end]
    return {
        "windows_scheduled": by_status.get(Status.SCHEDULED, 0),
        "upcoming": windows.filter(status=Status.SCHEDULED, starts_at__gt=now).count(),
        "total": sum(by_status.values()),
        "by_status": {status: by_status.get(status, 0) for status in Status.values},
        "by_type": {kind: by_type.get(kind, 0) for kind in MaintenanceWindow.Type.values},
        "emergencies": windows.filter(emergency=True).count(),
        "duration_minutes": {"scheduled": _stats(planned), "actual": _stats(actual)},
        "start_delay_seconds": _stats(start_delay),
        "end_delay_seconds": _stats(end_delay),
        "ended_early": sum(1 for delay in end_delay if delay < 0),
        "in_maintenance_mode": is_in_maintenance_mode(organization),
    }


def windows_that_fit(work_order, count: int = 5, now=None) -> list[MaintenanceWindow]:
    """The next scheduled or running windows that cover the work order's asset (or location) and leave at
    least its estimated duration: system-scope windows, windows of its location or a location above it, and
    windows naming its asset."""
    now = _now(now)
    needed = timedelta(minutes=work_order.estimated_minutes or 0)
    asset = work_order.asset
    location = work_order.location or (asset.location if asset is not None else None)
    covering = Q(scope=Scope.SYSTEM)
    if location is not None:
        covering |= Q(scope=Scope.LOCATION, location_id__in=[location.pk, *(node.pk for node in location.ancestors())])
    if asset is not None:
        covering |= Q(scope=Scope.ASSETS, assets=asset)
    candidates = (
        MaintenanceWindow.objects.for_tenant(work_order.organization_id)
        .occurrences()
        .planned()
        .filter(covering, ends_at__gt=now)
        .distinct()
        .order_by("starts_at", "pk")
    )
    found = []
    for window in candidates.iterator(chunk_size=100):
        if window.ends_at - max(window.starts_at, now) >= needed:
            found.append(window)
            if len(found) >= count:
                break
    return found


# --- the iCalendar feed's token ---------------------------------------------------------------------------


def feed_token(organization, *, regenerate: bool = False) -> WindowFeedToken:
    """The organisation's calendar-feed token (created on first use; `regenerate` retires the old one)."""
    with transaction.atomic():
        token, created = WindowFeedToken.objects.get_or_create(organization=organization)
        if regenerate and not created:
            from scheduling.windows_models import new_feed_token

            token.token = new_feed_token()
            token.save()
    return token


# --- the Python API of seed 000 -------------------------------------------------------------------------


def as_record(window: MaintenanceWindow) -> dict:
    """A window as the seed's service describes one."""
    return {
        "id": window.pk,
        "maintenance_type": window.maintenance_type,
        "title": window.title,
        "description": window.description,
        "scope": window.scope,
        "start_time": window.starts_at,
        "end_time": window.ends_at,
        "duration": window.duration_minutes,
        "status": window.status,
        "actual_start": window.actual_start,
        "actual_end": window.actual_end,
        "emergency": window.emergency,
        "recurring": bool(window.series_id),
    }


def schedule_maintenance(
    organization, maintenance_type: str, start_time: datetime, duration: int, description: str = "", **options
) -> int:
    """Schedule a system-wide window of `duration` minutes; returns its id. `options`: create_window's
    keywords (title, scope, assets, location, recurrence, emergency, emergency_reason, actor...)."""
    if maintenance_type not in MaintenanceWindow.Type.values:
        raise InvalidInput(
            f"“{maintenance_type}” is not a maintenance type; "
            f"choose one of {', '.join(MaintenanceWindow.Type.values)}.",
            fields={"maintenance_type": ["Unknown type."]},
        )
    if timezone.is_naive(start_time):
        start_time = start_time.replace(tzinfo=organization.zone)
    title = options.pop("title", None) or (description.strip().splitlines()[0][:200] if description.strip() else "")
    title = title or f"{MaintenanceWindow.Type(maintenance_type).label} maintenance"
    window = create_window(
        organization,
        title=title,
        maintenance_type=maintenance_type,
        starts_at=start_time,
        duration_minutes=duration,
        description=description,
        **options,
    )
    return window.pk


def get_maintenance_schedule(organization) -> list[dict]:
    """Scheduled and running windows, soonest first."""
    windows = MaintenanceWindow.objects.for_tenant(organization).occurrences().planned().order_by("starts_at", "pk")
    return [as_record(window) for window in windows]


def get_maintenance_history(organization, limit: int | None = None) -> list[dict]:
    """Finished windows (completed or failed), the latest first."""
    windows = MaintenanceWindow.objects.for_tenant(organization).occurrences().finished().order_by("-ends_at", "-pk")
    return [as_record(window) for window in windows[: limit or max_history()]]


aschedule_maintenance = sync_to_async(schedule_maintenance)
aget_maintenance_schedule = sync_to_async(get_maintenance_schedule)
aget_maintenance_history = sync_to_async(get_maintenance_history)
ais_in_maintenance_mode = sync_to_async(is_in_maintenance_mode)
atick = sync_to_async(tick)
