"""Starting and ending windows (callers hold the organisation's lock): each transition is claimed by a
conditional UPDATE (`WHERE status = ...`), and only the call that changed the row marks or gives back the
assets, publishes and notifies. Safe to run twice, late or on two machines at once."""

import logging
from datetime import datetime

from django.conf import settings
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from assets import services as asset_services
from assets.models import Asset
from maintenance_site.audit import acting_as, current_user, system_user
from maintenance_site.events.services import publish
from scheduling.windows.models import MaintenanceWindow, WindowAssetState
from scheduling.windows.notifications import (
    format_utc,
    lazy_local,
    notify_about,
    window_payload,
    write_history,
)
from scheduling.windows.scope import OrganizationTree, lazy_scope_label

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status
Scope = MaintenanceWindow.Scope

MISSED_REASON = (
    "Missed: no scheduler tick ran between its start and its end, so maintenance mode was never switched on "
    "for it. Is the worker with beat running?"
)


def start(window: MaintenanceWindow, now: datetime) -> bool:
    """Claim scheduled → active with a conditional UPDATE; only the claimant marks the assets, publishes and
    notifies. Returns whether this call started it."""
    claimed = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.SCHEDULED, recurrence="").update(
        status=Status.ACTIVE, actual_start=now, updated_at=now
    )
    if not claimed:
        return False
    window.refresh_from_db()
    late = (now - window.starts_at).total_seconds()
    write_history(window, "Started" + (f" {late:.0f}s late" if late > settings.MAINTENANCE_CHECK_INTERVAL else ""))
    _mark_assets(window, now)
    publish(window.organization, "maintenance:window-started", window_payload(window))
    notify_about(
        window.organization,
        window,
        "maintenance:window-started",
        format_lazy(gettext_lazy("Maintenance started: {title}"), title=window.title),
        format_lazy(
            gettext_lazy("{type} maintenance of {scope} has started; it should end at {end}."),
            type=lazy(window.get_maintenance_type_display, str)(),
            scope=lazy_scope_label(window),
            end=lazy_local(window.ends_at, window.organization),
        ),
    )
    if late > 2 * settings.MAINTENANCE_CHECK_INTERVAL:
        logger.warning(
            "maintenance window %s should have been active since %s but was not: started now, %.0fs late (caught up)",
            window.pk,
            format_utc(window.starts_at),
            late,
        )
    else:
        logger.info("maintenance window %s started (%.0fs after its start)", window.pk, late)
    return True


def end(window: MaintenanceWindow, now: datetime, *, status=Status.COMPLETED, reason: str = "") -> bool:
    """Claim active → completed/failed; only the claimant gives the assets back, publishes and notifies."""
    claimed = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.ACTIVE).update(
        status=status, actual_end=now, status_reason=reason, updated_at=now
    )
    if not claimed:
        return False
    window.refresh_from_db()
    write_history(window, ("Failed: " if status == Status.FAILED else "Ended") + (f" {reason}" if reason else ""))
    _restore_assets(window, now)
    publish(window.organization, "maintenance:window-ended", window_payload(window))
    if status == Status.FAILED:
        publish(window.organization, "maintenance:window-failed", window_payload(window))
        notify_about(
            window.organization,
            window,
            "maintenance:window-failed",
            format_lazy(gettext_lazy("Maintenance failed: {title}"), title=window.title),
            format_lazy(
                gettext_lazy("The maintenance of {scope} failed: {reason}"),
                scope=lazy_scope_label(window),
                reason=reason,
            ),
        )
    else:
        notify_about(
            window.organization,
            window,
            "maintenance:window-ended",
            format_lazy(gettext_lazy("Maintenance ended: {title}"), title=window.title),
            format_lazy(
                gettext_lazy("The maintenance of {scope} has ended ({reason}).")
                if reason
                else gettext_lazy("The maintenance of {scope} has ended."),
                scope=lazy_scope_label(window),
                reason=reason,
            ),
        )
    overdue = (now - window.ends_at).total_seconds()
    if overdue > 2 * settings.MAINTENANCE_CHECK_INTERVAL:
        logger.warning(
            "maintenance window %s was still active %.0fs after its end (%s): ended now (caught up)",
            window.pk,
            overdue,
            format_utc(window.ends_at),
        )
    else:
        logger.info("maintenance window %s ended as %s", window.pk, status)
    return True


def miss(window: MaintenanceWindow, now: datetime) -> bool:
    """A scheduled window whose end passed before any tick started it: failed, said why, nothing marked."""
    claimed = MaintenanceWindow.objects.filter(pk=window.pk, status=Status.SCHEDULED, recurrence="").update(
        status=Status.FAILED, status_reason=MISSED_REASON, updated_at=now
    )
    if not claimed:
        return False
    window.refresh_from_db()
    write_history(window, "Missed")
    logger.warning("maintenance window %s (%s) was missed: no tick ran before its end", window.pk, window.title)
    publish(window.organization, "maintenance:window-failed", window_payload(window))
    notify_about(
        window.organization,
        window,
        "maintenance:window-failed",
        format_lazy(gettext_lazy("Maintenance window missed: {title}"), title=window.title),
        gettext_lazy(
            "Missed: no scheduler tick ran between its start and its end, so maintenance mode was never switched on "
            "for it. Is the worker with beat running?"
        ),
    )
    return True


def window_assets(window: MaintenanceWindow) -> list[Asset]:
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
        for asset in window_assets(window):
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
