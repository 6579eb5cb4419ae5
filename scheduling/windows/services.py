"""The only writers of maintenance windows: `create_window` / `update_window` / `delete_window` / `end_window` /
`cancel_window` / `fail_window`, the calendar feed's token (`issue_feed_token`), and `schedule_maintenance` for
Python callers. One transaction each, under the organisation's lock (`scheduling.windows.mode.lock_organization`),
refused with a DomainError a person can act on. A window that overlaps a scheduled or active window with an
intersecting scope is a 409 naming that window, unless it is an emergency with a reason (audited). Times are UTC;
recurrences are computed in the organisation's time zone (`scheduling.windows.series`).
"""

import logging
import math
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_site.audit import attributed
from maintenance_site.errors import Conflict, InvalidInput
from maintenance_site.events.services import publish
from maintenance_site.recurrence import normalize_rrule
from maintenance_site.validation import validated
from scheduling.windows import lifecycle
from scheduling.windows.mode import lock_organization, refresh_mode
from scheduling.windows.models import MAX_AHEAD, MAX_DURATION, MaintenanceWindow, WindowFeedToken, new_feed_token
from scheduling.windows.notifications import (
    format_utc,
    lazy_local,
    notify_about,
    window_payload,
    write_history,
)
from scheduling.windows.overlap import check_series_shape, find_collisions, planned_intervals, refuse_or_override
from scheduling.windows.scope import OrganizationTree, check_scope, lazy_scope_label
from scheduling.windows.series import materialize

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status
Scope = MaintenanceWindow.Scope


MAX_DURATION_MINUTES = int(MAX_DURATION.total_seconds() // 60)


def _check_start(starts_at: datetime, now: datetime) -> None:
    """A start people typed: within the next ten years, and at most a year back (a window already due starts at
    once; a series may begin in the recent past)."""
    if starts_at > now + MAX_AHEAD:
        raise InvalidInput(
            _("A window starts within the next ten years (by %(limit)s); %(start)s is further ahead.")
            % {"limit": format_utc(now + MAX_AHEAD), "start": format_utc(starts_at)},
            fields={"starts_at": [_("At most ten years ahead.")]},
        )
    if starts_at < now - MAX_DURATION:
        raise InvalidInput(
            _("A window starts at most a year in the past (not before %(limit)s); %(start)s is earlier.")
            % {"limit": format_utc(now - MAX_DURATION), "start": format_utc(starts_at)},
            fields={"starts_at": [_("At most a year in the past.")]},
        )


def _resolve_end(starts_at, ends_at, duration_minutes):
    """The end, from the end or the duration in minutes (one of them), at most MAX_DURATION after the start."""
    if starts_at is None:
        raise InvalidInput(_("A window needs a start."), fields={"starts_at": [_("Required.")]})
    if ends_at is not None and duration_minutes is not None:
        raise InvalidInput(
            _("Give either the end or the duration in minutes, not both."),
            fields={"duration_minutes": [_("Leave empty when the end is given.")]},
        )
    if duration_minutes is not None:
        if (
            isinstance(duration_minutes, bool)
            or not isinstance(duration_minutes, int | float)
            or not math.isfinite(duration_minutes)
        ):
            raise InvalidInput(_("The duration is a number of minutes."), fields={"duration_minutes": [_("A number.")]})
        if duration_minutes <= 0:
            raise InvalidInput(
                _("The duration must be at least one minute (got %(minutes)s).") % {"minutes": duration_minutes},
                fields={"duration_minutes": [_("At least 1 minute.")]},
            )
        if duration_minutes > MAX_DURATION_MINUTES:
            raise InvalidInput(
                _("A window lasts at most %(days)s days (%(most)s minutes); got %(minutes)s minutes.")
                % {"days": MAX_DURATION.days, "most": MAX_DURATION_MINUTES, "minutes": duration_minutes},
                fields={"duration_minutes": [_("At most %(most)s minutes.") % {"most": MAX_DURATION_MINUTES}]},
            )
        return starts_at + timedelta(minutes=duration_minutes)
    if ends_at is None:
        raise InvalidInput(
            _("A window needs an end or a duration in minutes."), fields={"ends_at": [_("Give the end or a duration.")]}
        )
    if ends_at <= starts_at:
        raise InvalidInput(
            _("The end (%(end)s) must be after the start (%(start)s).")
            % {"end": format_utc(ends_at), "start": format_utc(starts_at)},
            fields={"ends_at": [_("The end must be after the start.")]},
        )
    if ends_at - starts_at > MAX_DURATION:
        raise InvalidInput(
            _(
                "A window lasts at most %(days)s days: the end (%(end)s) is further than that "
                "from the start (%(start)s)."
            )
            % {"days": MAX_DURATION.days, "end": format_utc(ends_at), "start": format_utc(starts_at)},
            fields={"ends_at": [_("At most %(days)s days after the start.") % {"days": MAX_DURATION.days}]},
        )
    return ends_at


@attributed
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
    actor,
    now=None,
) -> MaintenanceWindow:
    """Schedule a window (or, with `recurrence`, a series of them). Refuses bad input (400) and overlaps
    with intersecting scope (409) unless `emergency` with a reason. A window already due starts at once."""
    now = now or timezone.now()
    if starts_at is not None:
        _check_start(starts_at, now)
    ends_at = _resolve_end(starts_at, ends_at, duration_minutes)
    assets = check_scope(organization, scope, location, assets)
    recurrence = normalize_rrule(recurrence)
    emergency_reason = (emergency_reason or "").strip()
    if emergency and not emergency_reason:
        raise InvalidInput(
            _("An emergency window needs a reason (it is audited)."), fields={"emergency_reason": [_("Required.")]}
        )
    zone = organization.zone
    if recurrence:
        first = check_series_shape(recurrence, starts_at, ends_at, zone)
        ends_at, starts_at = first + (ends_at - starts_at), first
    if ends_at <= now and not recurrence:
        raise InvalidInput(
            _("This window ended already (%(end)s); schedule one that ends in the future.")
            % {"end": format_utc(ends_at)},
            fields={"ends_at": [_("In the past.")]},
        )
    with transaction.atomic():
        mode = lock_organization(organization.pk)
        tree = OrganizationTree(organization.pk)
        footprint = tree.footprint(scope, location.pk if location else None, [asset.pk for asset in assets])
        intervals = planned_intervals(recurrence, starts_at, ends_at, zone, now)
        collisions = find_collisions(organization, intervals, footprint, tree=tree)
        overridden = refuse_or_override(collisions, emergency=emergency, emergency_reason=emergency_reason)
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
            created_by=actor,
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
        notify_about(
            organization,
            window,
            "maintenance:window-scheduled",
            format_lazy(gettext_lazy("Maintenance scheduled: {title}"), title=window.title),
            format_lazy(
                gettext_lazy("{type} maintenance of {scope} from {start} to {end}, repeating ({recurrence}).")
                if recurrence
                else gettext_lazy("{type} maintenance of {scope} from {start} to {end}."),
                type=lazy(window.get_maintenance_type_display, str)(),
                scope=lazy_scope_label(window),
                start=lazy_local(window.starts_at, organization),
                end=lazy_local(window.ends_at, organization),
                recurrence=window.recurrence,
            ),
        )
        if recurrence:
            materialize(window, now + timedelta(days=settings.MAINTENANCE_RECURRENCE_DAYS), now)
            for occurrence in window.occurrences.filter(status=Status.SCHEDULED, starts_at__lte=now, ends_at__gt=now):
                lifecycle.start(occurrence, now)
        elif window.starts_at <= now:
            lifecycle.start(window, now)
        refresh_mode(mode, now)
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


@attributed
def update_window(window: MaintenanceWindow, *, actor, now=None, **changes) -> MaintenanceWindow:
    """Change a window. A scheduled window may change everything (its new time and scope are checked for
    overlaps again); a running one its title, description, notification flag and end (still in the future);
    a finished or cancelled one nothing. Changing a series changes its future scheduled occurrences."""
    now = now or timezone.now()
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise TypeError(f"A maintenance window has no editable field(s) {', '.join(sorted(unknown))}")
    with transaction.atomic():
        lock_organization(window.organization_id)
        window = (
            MaintenanceWindow.objects.select_related("organization", "location")
            .select_for_update(of=("self",))
            .get(pk=window.pk)
        )
        organization = window.organization
        if window.status not in MaintenanceWindow.PLANNED_STATUSES:
            raise Conflict(
                _("This window is %(status)s: it can no longer be changed.")
                % {"status": window.get_status_display().lower()},
                code="window_finished",
            )
        if window.status == Status.ACTIVE and set(changes) - _WHILE_ACTIVE:
            refused = ", ".join(sorted(set(changes) - _WHILE_ACTIVE))
            raise Conflict(
                _(
                    "This window is running: only its title, description, notification flag and end can change "
                    "(not %(refused)s). End it, or mark it failed, instead."
                )
                % {"refused": refused},
                code="window_active",
            )
        if window.series_id and "recurrence" in changes and normalize_rrule(changes["recurrence"]):
            raise InvalidInput(
                _("An occurrence of a recurring window cannot repeat itself; change the series instead."),
                fields={"recurrence": [_("Not on an occurrence.")]},
            )
        current_assets = list(window.assets.all())
        starts_at = changes.get("starts_at", window.starts_at)
        if "starts_at" in changes and starts_at is not None:
            _check_start(starts_at, now)
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
        assets = check_scope(organization, scope, location, assets)
        recurrence = normalize_rrule(changes.get("recurrence", window.recurrence))
        emergency = changes.get("emergency", window.emergency)
        emergency_reason = (changes.get("emergency_reason", window.emergency_reason) or "").strip()
        if emergency and not emergency_reason:
            raise InvalidInput(
                _("An emergency window needs a reason (it is audited)."), fields={"emergency_reason": [_("Required.")]}
            )
        if window.status == Status.ACTIVE and ends_at <= now:
            raise InvalidInput(
                _("The new end has passed already: end the window now instead."),
                fields={"ends_at": [_("In the past.")]},
            )
        if window.recurrence and not recurrence:
            raise InvalidInput(
                _("A recurring window stays recurring; cancel the series to stop it."),
                fields={"recurrence": [_("Cannot be removed.")]},
            )
        if not window.recurrence and recurrence and not window.series_id:
            raise InvalidInput(
                _("A single window cannot become a series; schedule a recurring window instead."),
                fields={"recurrence": [_("Cannot be added.")]},
            )
        zone = organization.zone
        if recurrence:
            first = check_series_shape(recurrence, starts_at, ends_at, zone)
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
            raise InvalidInput(_("The new end has passed already."), fields={"ends_at": [_("In the past.")]})
        overridden = list(window.overridden_conflicts)
        if shape_changed and (window.status == Status.SCHEDULED or ends_at > window.ends_at):
            tree = OrganizationTree(organization.pk)
            footprint = tree.footprint(scope, location.pk if location else None, [a.pk for a in assets])
            if window.status == Status.ACTIVE:
                intervals = [(window.ends_at, ends_at)]  # only the extension is new
            else:
                intervals = planned_intervals(recurrence, starts_at, ends_at, zone, now)
            collisions = find_collisions(
                organization,
                intervals,
                footprint,
                tree=tree,
                exclude_ids=[window.pk],
                exclude_series=window.pk if window.recurrence else None,
            )
            newly = refuse_or_override(collisions, emergency=emergency, emergency_reason=emergency_reason)
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
                materialize(window, now + timedelta(days=settings.MAINTENANCE_RECURRENCE_DAYS), now)
            else:
                for occurrence in future:
                    for name in _PROPAGATED:
                        setattr(occurrence, name, getattr(window, name))
                    occurrence.save()
        elif window.status == Status.SCHEDULED and window.starts_at <= now < window.ends_at:
            lifecycle.start(window, now)
        refresh_mode(lock_organization(organization.pk), now)
    return window


@attributed
def delete_window(window: MaintenanceWindow, *, actor) -> None:
    """Delete a window that never started (or a series none of whose occurrences started). A started window
    stays, for the record: end it early or mark it failed instead."""
    with transaction.atomic():
        lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_for_update(of=("self",)).get(pk=window.pk)
        if window.has_started:
            raise Conflict(
                _(
                    "This window has started (%(status)s) and is kept for the record: "
                    "end it early or mark it failed (with a reason) instead of deleting it."
                )
                % {"status": window.get_status_display().lower()},
                code="window_started",
            )
        if window.recurrence and window.occurrences.filter(status__in=MaintenanceWindow.STARTED_STATUSES).exists():
            raise Conflict(
                _(
                    "Some occurrences of this recurring window have run and are kept for the record: cancel the series "
                    "instead of deleting it."
                ),
                code="window_started",
            )
        window.delete()


# Why a window cannot take a step, per step (whole sentences, so that each language can word them).
_REFUSED_STEP = {
    "ended": gettext_lazy("This window is %(status)s: it cannot be ended."),
    "marked failed": gettext_lazy("This window is %(status)s: it cannot be marked failed."),
    "cancelled": gettext_lazy("This window is %(status)s: it cannot be cancelled."),
}


def _transition_guard(window: MaintenanceWindow, allowed: tuple, verb: str):
    if window.status not in allowed:
        raise Conflict(_REFUSED_STEP[verb] % {"status": window.get_status_display().lower()}, code="invalid_transition")


@attributed
def end_window(window: MaintenanceWindow, *, reason: str = "", actor, now=None) -> MaintenanceWindow:
    """End a running window now (early, by hand): completed, assets given back, mode updated."""
    now = now or timezone.now()
    with transaction.atomic():
        mode = lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_related("organization").get(pk=window.pk)
        _transition_guard(window, (Status.ACTIVE,), "ended")
        reason = (reason or "").strip() or ("Ended early by hand" if now < window.ends_at else "")
        lifecycle.end(window, now, status=Status.COMPLETED, reason=reason)
        refresh_mode(mode, now)
    return window


@attributed
def fail_window(window: MaintenanceWindow, *, reason: str, actor, now=None) -> MaintenanceWindow:
    """Mark a running (or completed) window failed, with the reason; a running one ends now."""
    now = now or timezone.now()
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the maintenance failed."), fields={"reason": [_("Required.")]})
    with transaction.atomic():
        mode = lock_organization(window.organization_id)
        window = MaintenanceWindow.objects.select_related("organization").get(pk=window.pk)
        _transition_guard(window, (Status.ACTIVE, Status.COMPLETED), "marked failed")
        if window.status == Status.ACTIVE:
            lifecycle.end(window, now, status=Status.FAILED, reason=reason.strip())
        else:
            updated = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.COMPLETED).update(
                status=Status.FAILED, status_reason=reason.strip(), updated_at=now
            )
            if updated:
                window.refresh_from_db()
                write_history(window, f"Marked failed: {reason.strip()}")
                publish(window.organization, "maintenance:window-failed", window_payload(window))
                notify_about(
                    window.organization,
                    window,
                    "maintenance:window-failed",
                    format_lazy(gettext_lazy("Maintenance failed: {title}"), title=window.title),
                    format_lazy(gettext_lazy("Marked failed after it ended: {reason}"), reason=reason.strip()),
                )
        refresh_mode(mode, now)
    return window


@attributed
def cancel_window(window: MaintenanceWindow, *, reason: str, actor, now=None) -> MaintenanceWindow:
    """Cancel a scheduled window (a series: the series and its scheduled occurrences), with the reason."""
    now = now or timezone.now()
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the window is cancelled."), fields={"reason": [_("Required.")]})
    with transaction.atomic():
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
                write_history(target, f"Cancelled: {reason.strip()}")
        window.refresh_from_db()
        publish(window.organization, "maintenance:window-cancelled", window_payload(window))
        notify_about(
            window.organization,
            window,
            "maintenance:window-cancelled",
            format_lazy(gettext_lazy("Maintenance cancelled: {title}"), title=window.title),
            format_lazy(
                gettext_lazy("The maintenance planned for {start} is cancelled: {reason}"),
                start=lazy_local(window.starts_at, window.organization),
                reason=reason.strip(),
            ),
        )
    return window


def current_feed_token(organization) -> WindowFeedToken | None:
    """The organisation's calendar-feed token, or None while nobody has created one (reads only)."""
    return WindowFeedToken.objects.filter(organization=organization).first()


@attributed
def issue_feed_token(organization, *, actor) -> tuple[WindowFeedToken, bool]:
    """Create the organisation's calendar-feed token, or replace it (every copy of the old address stops
    working). Returns the token and whether it was created (rather than replaced)."""
    with transaction.atomic():
        token, created = WindowFeedToken.objects.select_for_update().get_or_create(organization=organization)
        if not created:
            token.token = new_feed_token()
            token._change_reason = "Address replaced: the old one stops working"
            token.save()
    return token, created


@attributed
def schedule_maintenance(
    organization,
    maintenance_type: str,
    start_time: datetime,
    duration: int,
    description: str = "",
    *,
    actor,
    **options,
) -> int:
    """Schedule a system-wide window of `duration` minutes; returns its id. `options`: create_window's
    keywords (title, scope, assets, location, recurrence, emergency, emergency_reason...)."""
    if maintenance_type not in MaintenanceWindow.Type.values:
        raise InvalidInput(
            _("“%(value)s” is not a maintenance type; choose one of %(choices)s.")
            % {"value": maintenance_type, "choices": ", ".join(MaintenanceWindow.Type.values)},
            fields={"maintenance_type": [_("Unknown type.")]},
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
        actor=actor,
        **options,
    )
    return window.pk


aschedule_maintenance = sync_to_async(schedule_maintenance)
