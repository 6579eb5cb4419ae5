"""Maintenance mode, per organisation: on while a system-scope window of the organisation runs or an operator
switched it on by hand. A **platform** switch (superusers only) puts every organisation in maintenance mode at
once. `mode_state(organization)` is what the API permission, the technician-view middleware and the banners
read; `lock_organization` is the lock every change to an organisation's windows and mode takes first.

Lock order, everywhere: the organisation's MaintenanceMode row, then windows, then assets.
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from maintenance_site.audit import attributed
from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.events.services import publish
from maintenance_site.tenancy.actors import is_system
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import Action, role_allows
from scheduling.windows.models import MAX_AHEAD, MaintenanceMode, MaintenanceWindow
from scheduling.windows.notifications import format_utc, lazy_local, notify_about

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status
Scope = MaintenanceWindow.Scope


def lock_organization(organization_id) -> MaintenanceMode:
    """Lock (and create if needed) the organisation's maintenance-mode row: every change to its windows and
    its mode holds this lock first, so overlap checks and transitions of one organisation take turns.
    `None` is the platform row. Must run inside a transaction."""
    if isinstance(organization_id, Organization):
        organization_id = organization_id.pk
    MaintenanceMode.objects.get_or_create(organization_id=organization_id)
    return MaintenanceMode.objects.select_for_update().get(organization_id=organization_id)


def active_system_windows(organization_id: int):
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


def refresh_mode(mode: MaintenanceMode, now: datetime, *, reconciling: bool = False) -> bool:
    """Make the (locked) mode row agree with its switch and the running system windows. Returns whether it
    changed; publishes maintenance:mode-changed when it did. `reconciling`: a mismatch found by the tick's
    check rather than caused by a transition, which is logged as such."""
    windows = [] if mode.is_platform else list(active_system_windows(mode.organization_id))
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
        return max(1, math.ceil((self.expected_end - (now or timezone.now())).total_seconds()))

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
        parts = {"why": f" ({self.reason})" if self.reason else ""}
        if self.expected_end:
            parts["until"] = format_utc(self.expected_end)
            if self.platform:
                message = gettext(
                    "The platform is in maintenance mode%(why)s until about %(until)s: changes are refused until it "
                    "ends. Reading still works; try again later."
                )
            else:
                message = gettext(
                    "This organisation is in maintenance mode%(why)s until about %(until)s: changes are refused "
                    "until it ends. Reading still works; try again later."
                )
        elif self.platform:
            message = gettext(
                "The platform is in maintenance mode%(why)s: changes are refused until it ends. Reading still "
                "works; try again later."
            )
        else:
            message = gettext(
                "This organisation is in maintenance mode%(why)s: changes are refused until it ends. Reading "
                "still works; try again later."
            )
        return message % parts


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
    windows = list(active_system_windows(own.organization_id)) if own is not None else []
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


def mode_body(organization) -> dict:
    """What GET /api/v1/maintenance/mode answers and `manage.py windows mode status --json` prints."""
    state = mode_state(organization)
    return {**state.as_dict(), "retry_after": state.retry_after()}


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


def _check_manual_permission(organization, actor):
    if is_system(actor):
        return
    if organization is None and not actor.is_superuser:
        raise PermissionDeniedError(_("Only a superuser may switch the whole platform's maintenance mode."))


@attributed
def enter_maintenance_mode(organization, *, reason: str, actor, until: datetime | None = None, now=None):
    """Switch maintenance mode on by hand (an emergency), for `organization` or, with None, the platform.
    `until` is the expected end, announced to clients as Retry-After; without it they get none."""
    now = now or timezone.now()
    _check_manual_permission(organization, actor)
    if not (reason or "").strip():
        raise InvalidInput(
            _("Say why maintenance mode is switched on (it is audited)."), fields={"reason": [_("Required.")]}
        )
    if until is not None and until <= now:
        raise InvalidInput(_("The expected end must be in the future."), fields={"until": [_("In the past.")]})
    if until is not None and until > now + MAX_AHEAD:
        raise InvalidInput(
            _("The expected end is at most ten years ahead (by %(limit)s); leave it empty when nobody knows.")
            % {"limit": format_utc(now + MAX_AHEAD)},
            fields={"until": [_("At most ten years ahead.")]},
        )
    with transaction.atomic():
        mode = lock_organization(organization.pk if organization else None)
        mode.manual = True
        mode.reason = reason.strip()
        mode.switched_by = actor
        mode.switched_at = now
        mode.expected_end = until
        mode._change_reason = f"Switched on by hand: {mode.reason}"
        mode.save()
        changed = refresh_mode(mode, now)
        logger.warning("maintenance mode switched on by hand for %s: %s", organization or "the platform", mode.reason)
        if changed and organization is not None:
            notify_about(
                organization,
                None,
                "maintenance:mode-changed",
                gettext_lazy("Maintenance mode switched on"),
                format_lazy(
                    gettext_lazy(
                        "Maintenance mode is on: {reason}. Changes are refused until it ends (expected {until})."
                    )
                    if until
                    else gettext_lazy("Maintenance mode is on: {reason}. Changes are refused until it ends."),
                    reason=mode.reason,
                    until=lazy_local(until, organization),
                ),
                everyone=True,
            )
    return mode


@attributed
def exit_maintenance_mode(organization, *, reason: str = "", actor, now=None):
    """Switch the manual maintenance mode off. The mode stays on while a system-scope window runs (end that
    window to leave it)."""
    now = now or timezone.now()
    _check_manual_permission(organization, actor)
    with transaction.atomic():
        mode = lock_organization(organization.pk if organization else None)
        if mode.manual:
            mode.manual = False
            mode.expected_end = None
            mode.switched_by = actor
            mode.switched_at = now
            mode.reason = ""
            mode._change_reason = "Switched off by hand" + (f": {reason.strip()}" if reason and reason.strip() else "")
            mode.save()
        changed = refresh_mode(mode, now)
        if changed and organization is not None:
            notify_about(
                organization,
                None,
                "maintenance:mode-changed",
                gettext_lazy("Maintenance mode switched off"),
                gettext_lazy("Maintenance mode is off: changes are accepted again."),
                everyone=True,
            )
    return mode


ais_in_maintenance_mode = sync_to_async(is_in_maintenance_mode)
