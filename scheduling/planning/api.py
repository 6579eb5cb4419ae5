"""`/api/v1/planning/calendar/` and `/api/v1/planning/board/`: what the planner's calendar and the dispatch board
show, for integrators and for the pages' own scripts. Reads for every member; the moves are the work-order actions
`schedule` and `dispatch` (`/api/v1/work-orders/{id}/…`)."""

from datetime import date, datetime, time, timedelta

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantAPIMixin
from maintenance_site.recurrence import to_utc
from maintenance_site.tenancy.roles import Action
from scheduling.planning import board as board_module
from scheduling.planning.calendar import Filters, calendar_items
from workorders.capacity.api import query_id, query_range

RANGE = [
    OpenApiParameter("from", date, description="First local day (default: today in the organisation's zone)."),
    OpenApiParameter("to", date, description="Last local day, included (default: six days on; at most 62 days)."),
]


def local_bounds(organization, first: date, last: date) -> tuple[datetime, datetime]:
    """The instants that begin the first local day and end the last (daylight-saving correct)."""
    zone = organization.zone
    return to_utc(datetime.combine(first, time(0)), zone), to_utc(
        datetime.combine(last + timedelta(days=1), time(0)), zone
    )


class CalendarViewSet(TenantAPIMixin, viewsets.ViewSet):
    action_permissions = {"list": Action.VIEW}

    @extend_schema(
        parameters=[
            *RANGE,
            OpenApiParameter("location", int, description="A location: it and everything below it."),
            OpenApiParameter("team", int),
            OpenApiParameter("assignee", int),
        ],
        responses=dict,
        description="The calendar's items overlapping the period, by start: `occurrence` (a preventive occurrence "
        "from the forecast, not generated yet), `window` (a maintenance window) and `work_order` (an order with a "
        "planned start, lasting its estimate; `draggable` when open). Each has `kind`, `id`, `title`, `start`, "
        "`end`, `url`, `status`. The number of queries does not grow with the items.",
    )
    def list(self, request):
        params = request.query_params
        first, last = query_range(self.organization, params)
        start, end = local_bounds(self.organization, first, last)
        filters = Filters(
            location=query_id(params, "location"), team=query_id(params, "team"), assignee=query_id(params, "assignee")
        )
        found = calendar_items(self.organization, start, end, filters)
        return Response({**found, "from": first, "to": last, "count": len(found["items"])})


class BoardViewSet(TenantAPIMixin, viewsets.ViewSet):
    action_permissions = {"list": Action.VIEW}

    @extend_schema(
        parameters=[*RANGE, OpenApiParameter("team", int, description="A team's members (default: technicians).")],
        responses=dict,
        description="The dispatch board: a lane per person (and `user: null` for unassigned work) with, per local "
        "day, the open orders planned then, the planned and available hours and `over_capacity`; and the open "
        "orders not planned yet (`unplanned`). Orders carry `overdue` and `sla_at_risk`.",
    )
    def list(self, request):
        params = request.query_params
        first, last = query_range(self.organization, params)
        found = board_module.board(self.organization, first, last, team=query_id(params, "team"))
        return Response(board_module.as_json(found))


router.register("planning/calendar", CalendarViewSet, basename="planning-calendar")
router.register("planning/board", BoardViewSet, basename="planning-board")
