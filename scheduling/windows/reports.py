"""Reading maintenance windows: their metrics, the windows long enough for a work order, and the schedule and
history as plain records for Python callers (`get_maintenance_schedule`, `get_maintenance_history`, with `a…`
async wrappers)."""

from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site import formats
from maintenance_site.errors import Conflict
from scheduling.windows.mode import is_in_maintenance_mode
from scheduling.windows.models import MaintenanceWindow

Status = MaintenanceWindow.Status
Scope = MaintenanceWindow.Scope


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
    """The windows' metrics: how many windows are scheduled, their durations, actual versus scheduled timing,
    and the distribution by type (and by status)."""
    now = now or timezone.now()
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


def _covering(work_order) -> Q:
    """Windows that cover the work order's asset (or location): system-scope windows, windows of its location or
    a location above it, and windows naming its asset."""
    asset = work_order.asset
    location = work_order.location or (asset.location if asset is not None else None)
    covering = Q(scope=Scope.SYSTEM)
    if location is not None:
        covering |= Q(scope=Scope.LOCATION, location_id__in=[location.pk, *(node.pk for node in location.ancestors())])
    if asset is not None:
        covering |= Q(scope=Scope.ASSETS, assets=asset)
    return covering


def refuse_work_in_window(work_order, starts_at, ends_at) -> None:
    """The receiver of `hooks.work_order_planning`: a window takes the assets it covers out of service while it
    runs, so other work on them cannot be planned then (Conflict naming the window and its local times). Work that
    needs the asset down belongs in a window (`windows_that_fit`) and may be planned there."""
    if work_order.needs_downtime or (work_order.asset_id is None and work_order.location_id is None):
        return
    window = (
        MaintenanceWindow.objects.for_tenant(work_order.organization_id)
        .occurrences()
        .planned()
        .filter(_covering(work_order), starts_at__lt=ends_at, ends_at__gt=starts_at)
        .order_by("starts_at", "pk")
        .first()
    )
    if window is None:
        return
    zone = work_order.organization.zone
    what = work_order.asset.code if work_order.asset_id else work_order.location.name
    starts, ends = formats.date_time(window.starts_at, zone), formats.date_time(window.ends_at, zone)
    raise Conflict(
        _(
            "%(what)s is out of service in the maintenance window “%(window)s” (%(starts)s to %(ends)s): plan "
            "%(number)s outside it, or mark the order as needing downtime to do it in the window."
        )
        % {"what": what, "window": window.title, "starts": starts, "ends": ends, "number": work_order.number},
        code="window_blocks_asset",
        window=window.pk,
    )


def windows_that_fit(work_order, count: int = 5, now=None) -> list[MaintenanceWindow]:
    """The next scheduled or running windows that cover the work order's asset (or location) and leave at
    least its estimated duration (`_covering`)."""
    now = now or timezone.now()
    needed = timedelta(minutes=work_order.estimated_minutes or 0)
    covering = _covering(work_order)
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


def as_record(window: MaintenanceWindow) -> dict:
    """A window as a plain record (start_time, end_time, duration in minutes, status, whether it recurs…)."""
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


def get_maintenance_schedule(organization) -> list[dict]:
    """Scheduled and running windows, soonest first."""
    windows = MaintenanceWindow.objects.for_tenant(organization).occurrences().planned().order_by("starts_at", "pk")
    return [as_record(window) for window in windows]


def get_maintenance_history(organization, limit: int | None = None) -> list[dict]:
    """Finished windows (completed or failed), the latest first."""
    windows = MaintenanceWindow.objects.for_tenant(organization).occurrences().finished().order_by("-ends_at", "-pk")
    return [as_record(window) for window in windows[: limit or settings.MAINTENANCE_MAX_HISTORY]]


aget_maintenance_schedule = sync_to_async(get_maintenance_schedule)
aget_maintenance_history = sync_to_async(get_maintenance_history)
