"""The planner's calendar: what happens in a period, as items of three kinds.

- `occurrence`: a preventive occurrence due in the period that is not generated yet (the forecast,
  `scheduling.preventive.reports.forecast`), placed at its due time, lasting the schedule's estimate;
- `window`: a maintenance window (single, or an occurrence of a series) overlapping the period;
- `work_order`: a work order whose planned start falls in the period, lasting its estimate; open ones can be
  dragged (rescheduled through `workorders.services.schedule`).

Filters: a location (it and everything below it), a team, an assignee. The number of queries does not grow with
the items (tests pin it).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from assets.models import Location
from scheduling.preventive.models import PreventiveSchedule
from scheduling.preventive.reports import MAX_FORECAST_DAYS, forecast
from scheduling.windows.models import MaintenanceWindow
from workorders import services as work_orders
from workorders.models import WorkOrder

MAX_SPAN = timedelta(days=62)  # a month view with the days around it; more is a mistake (400 from the edges)
MAX_WORK_ORDERS = 1000  # a calendar of more orders than this is unreadable: the answer says it was cut


@dataclass(frozen=True)
class Filters:
    location: int | None = None
    team: int | None = None
    assignee: int | None = None


def _locations(organization, location_id: int) -> tuple[set[int], set[int]]:
    """(the location and everything below it, the locations above it): one query."""
    parents = dict(Location.objects.filter(organization=organization).values_list("id", "parent_id"))
    children: dict = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    below, stack = set(), [location_id] if location_id in parents else []
    while stack:
        node = stack.pop()
        below.add(node)
        stack.extend(children.get(node, ()))
    above, node = set(), parents.get(location_id)
    while node is not None and node not in above:
        above.add(node)
        node = parents.get(node)
    return below, above


def work_order_item(order: WorkOrder, now: datetime) -> dict:
    end = work_orders.planned_end(order)
    return {
        "kind": "work_order",
        "id": order.pk,
        "title": f"{order.number} {order.title}",
        "start": order.scheduled_start,
        "end": end,
        "url": reverse("admin:workorders_workorder_change", args=[order.pk]),
        "draggable": order.is_open,
        "status": order.status,
        "priority": order.priority,
        "asset": order.asset.code if order.asset_id else None,
        "location": order.location_id,
        "assignee": order.assignee_id,
        "assignee_name": (order.assignee.get_full_name() or order.assignee.get_username())
        if order.assignee_id
        else None,
        "team": order.team_id,
        "overdue": order.is_open and order.due_at is not None and order.due_at < now,
        "sla_state": getattr(order, "sla_state", None),
    }


def calendar_items(organization, start: datetime, end: datetime, filters: Filters = Filters(), now=None) -> dict:
    """The items overlapping [start, end), sorted by start: windows and orders of any status, occurrences from now
    on (an occurrence in the past is generated or missed: the generator has its record)."""
    now = now or timezone.now()
    below = above = None
    if filters.location is not None:
        below, above = _locations(organization, filters.location)

    orders = (
        work_orders.with_extensions(WorkOrder.objects.for_tenant(organization))
        .filter(scheduled_start__gte=start - timedelta(days=1), scheduled_start__lt=end)
        .select_related("asset", "assignee", "organization")
        .order_by("scheduled_start", "id")
    )
    if below is not None:
        orders = orders.filter(location_id__in=below)
    if filters.team is not None:
        orders = orders.filter(team_id=filters.team)
    if filters.assignee is not None:
        orders = orders.filter(assignee_id=filters.assignee)
    found = list(orders[: MAX_WORK_ORDERS + 1])
    truncated = len(found) > MAX_WORK_ORDERS
    items = [work_order_item(order, now) for order in found[:MAX_WORK_ORDERS]]
    items = [item for item in items if item["end"] > start]  # the day before: only what runs into the period

    windows = (
        MaintenanceWindow.objects.for_tenant(organization)
        .occurrences()
        .exclude(status=MaintenanceWindow.Status.CANCELLED)
        .filter(starts_at__lt=end, ends_at__gt=start)
        .select_related("location")
        .prefetch_related("assets")
        .order_by("starts_at", "id")
    )
    for window in windows:
        if below is not None and not _window_touches(window, below, above):
            continue
        items.append(
            {
                "kind": "window",
                "id": window.pk,
                "title": window.title,
                "start": window.starts_at,
                "end": window.ends_at,
                "url": reverse("admin:scheduling_maintenancewindow_change", args=[window.pk]),
                "draggable": False,
                "status": window.status,
                "scope": window.scope,
            }
        )

    if end > now:
        items.extend(_occurrences(organization, max(start, now), end, filters, below))
    items.sort(key=lambda item: (item["start"], item["kind"], item["title"]))
    return {"start": start, "end": end, "time_zone": organization.time_zone, "truncated": truncated, "items": items}


def _window_touches(window: MaintenanceWindow, below: set[int], above: set[int]) -> bool:
    if window.scope == MaintenanceWindow.Scope.SYSTEM:
        return True
    if window.scope == MaintenanceWindow.Scope.LOCATION:
        return window.location_id in below or window.location_id in above
    return any(asset.location_id in below for asset in window.assets.all())


def _occurrences(organization, start: datetime, end: datetime, filters: Filters, below) -> list[dict]:
    days = min(MAX_FORECAST_DAYS, max(1, math.ceil((end - start).total_seconds() / 86400)))
    found = forecast(organization, days=days, now=start)
    rows = [row for row in found["occurrences"] if not row["generated"] and row["due_at"] < end]
    if filters.team is not None or filters.assignee is not None:
        people = {
            pk: (team, assignee)
            for pk, team, assignee in PreventiveSchedule.objects.filter(
                pk__in={row["schedule"] for row in rows}
            ).values_list("pk", "team_id", "assignee_id")
        }
        rows = [
            row
            for row in rows
            if (filters.team is None or people[row["schedule"]][0] == filters.team)
            and (filters.assignee is None or people[row["schedule"]][1] == filters.assignee)
        ]
    if below is not None:
        rows = [row for row in rows if row["location"] in below]
    return [
        {
            "kind": "occurrence",
            "id": f"{row['schedule']}:{row['asset'] or ''}:{row['due_at'].isoformat()}",
            "title": row["title"],
            "start": row["due_at"],
            "end": row["due_at"] + timedelta(minutes=row["estimated_minutes"] or 60),
            "url": reverse("admin:scheduling_preventiveschedule_change", args=[row["schedule"]]),
            "draggable": False,
            "status": "forecast",
            "generated": False,
            "schedule": row["schedule"],
            "asset": row["asset_code"],
        }
        for row in rows
    ]
