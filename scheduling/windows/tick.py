"""The tick: what beat runs every MAINTENANCE_CHECK_INTERVAL seconds. It creates the coming occurrences of
recurring windows, reminds people of windows starting soon, ends the windows that are over, starts those that
are due, marks missed ones failed, and reconciles the maintenance mode with the windows; and, daily, prunes
the history. Safe to run twice, late or on two machines at once: every transition is claimed by a conditional
UPDATE under the organisation's mode-row lock (`scheduling.windows.lifecycle`).
"""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from maintenance_site.audit import acting_as, system_user
from scheduling.windows import lifecycle
from scheduling.windows.mode import lock_organization, refresh_mode
from scheduling.windows.models import MaintenanceMode, MaintenanceWindow
from scheduling.windows.notifications import format_local, notify_about
from scheduling.windows.scope import scope_label
from scheduling.windows.series import materialize

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status
Scope = MaintenanceWindow.Scope


def tick(now=None) -> dict:
    """Start due windows, end finished ones, fail missed ones, create coming occurrences, send "starting
    soon" notices and reconcile the maintenance mode. Idempotent; see the module docstring.

    Late-tick policy: a window whose start passed but not its end starts now (its actual start records the
    delay); one whose end passed before any tick started it is marked failed as missed; an active window past
    its end ends now (actual end = now).
    """
    now = now or timezone.now()
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
                    if what == "end" and lifecycle.end(window, now):
                        summary["ended"].append(pk)
                    elif what == "start" and lifecycle.start(window, now):
                        summary["started"].append(pk)
                    elif what == "miss" and lifecycle.miss(window, now):
                        summary["missed"].append(pk)
            except Exception:  # one broken window must not stop the others; the next tick retries it
                logger.exception("maintenance tick could not %s window %s", what, pk)
        refresh_mode(mode, now)


def _materialize_all(now: datetime) -> int:
    until = now + timedelta(days=settings.MAINTENANCE_RECURRENCE_DAYS)
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
                created += materialize(head, until, now)
        except Exception:
            logger.exception("could not create the occurrences of recurring window %s", head.pk)
    return created


def _send_reminders(now: datetime) -> int:
    soon = (
        MaintenanceWindow.objects.occurrences()
        .filter(status=Status.SCHEDULED, reminder_sent_at__isnull=True, starts_at__gt=now)
        .filter(starts_at__lte=now + timedelta(minutes=settings.MAINTENANCE_REMINDER_MINUTES))
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
            notify_about(
                window.organization,
                window,
                "maintenance:window-starting-soon",
                f"Maintenance in {minutes} min: {window.title}",
                f"{window.get_maintenance_type_display()} maintenance of {scope_label(window)} starts at "
                f"{format_local(window.starts_at, window.organization)} and should end at "
                f"{format_local(window.ends_at, window.organization)}.",
            )
            sent += 1
    return sent


def reconcile_modes(now=None) -> list:
    """Compare every stored mode with what its switch and windows say; correct and log each mismatch.
    Returns the organisation ids (None: the platform) corrected."""
    now = now or timezone.now()
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
            if refresh_mode(lock_organization(org_id), now, reconciling=True):
                corrected.append(org_id)
    return corrected


# --- history, metrics, fitting work ---------------------------------------------------------------------


def prune_history(max_size: int | None = None) -> int:
    """Keep the newest `max_size` finished windows (completed or failed) per organisation; delete older ones.
    Returns how many were deleted."""
    keep = settings.MAINTENANCE_MAX_HISTORY if max_size is None else max_size
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


atick = sync_to_async(tick)
