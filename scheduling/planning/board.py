"""The dispatch board: for a day or a week, one lane per person (every technician, or a team's members) and one
for unassigned work; in each lane the open orders planned on each local day, and those not planned yet; per person
and day the planned hours against the available hours (`workorders.capacity.hours`), marked when over capacity;
each order marked when overdue or its SLA at risk (warning or breached).

A handful of queries whatever the people, days and orders: the people, the capacity (three), the orders planned in
the range, and the open orders not planned (the most urgent `MAX_UNPLANNED`)."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from maintenance_site.recurrence import to_utc
from workorders import services as work_orders
from workorders.capacity.hours import UNESTIMATED_MINUTES, capacity, days_between, people
from workorders.models import WorkOrder

MAX_UNPLANNED = 200  # the open orders not planned yet that the board lists (by due date), at most
AT_RISK = ("warning", "breached")


@dataclass
class Card:
    """An order on the board."""

    id: int
    number: str
    title: str
    priority: str
    status: str
    asset: str | None
    team: str | None
    start: datetime | None
    minutes: int | None
    overdue: bool
    sla_at_risk: bool
    url: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Cell:
    day: date
    cards: list[Card] = field(default_factory=list)
    available: float | None = None  # None: the unassigned lane
    planned: float = 0.0

    @property
    def over_capacity(self) -> bool:
        return self.available is not None and self.planned > self.available


@dataclass
class Lane:
    user_id: int | None  # None: unassigned work
    name: str
    cells: list[Cell]
    unplanned: list[Card] = field(default_factory=list)

    @property
    def over_capacity_days(self) -> int:
        return sum(1 for cell in self.cells if cell.over_capacity)


def _card(order: WorkOrder, now: datetime) -> Card:
    return Card(
        id=order.pk,
        number=order.number,
        title=order.title,
        priority=order.priority,
        status=order.status,
        asset=order.asset.code if order.asset_id else None,
        team=order.team.name if order.team_id else None,
        start=order.scheduled_start,
        minutes=order.estimated_minutes,
        overdue=order.due_at is not None and order.due_at < now,
        sla_at_risk=getattr(order, "sla_state", None) in AT_RISK,
        url=reverse("admin:workorders_workorder_change", args=[order.pk]),
    )


def board(organization, first_day: date, last_day: date, *, team: int | None = None, now=None) -> dict:
    now = now or timezone.now()
    zone = organization.zone
    days = days_between(first_day, last_day)
    members = people(organization, team=team)
    table = capacity(organization, [m.pk for m in members], first_day, last_day)
    lanes = [Lane(None, "Unassigned", [Cell(day) for day in days])]
    for member in members:
        cells = []
        for day in days:
            entry = table[(member.pk, day)]
            cells.append(Cell(day, available=entry.available, planned=entry.planned))
        lanes.append(Lane(member.pk, member.get_full_name() or member.get_username(), cells))
    by_user = {lane.user_id: lane for lane in lanes}
    start = to_utc(datetime.combine(first_day, time(0)), zone)
    end = to_utc(datetime.combine(last_day + timedelta(days=1), time(0)), zone)

    base = work_orders.with_extensions(WorkOrder.objects.for_tenant(organization).open()).select_related(
        "asset", "team"
    )
    in_lanes = Q(assignee__isnull=True) | Q(assignee_id__in=[m.pk for m in members])
    if team is not None:
        in_lanes = Q(team_id=team) | Q(assignee_id__in=[m.pk for m in members])
    planned = base.filter(in_lanes, scheduled_start__gte=start, scheduled_start__lt=end).order_by(
        "scheduled_start", "id"
    )
    for order in planned:
        lane = by_user.get(order.assignee_id)
        if lane is None:
            continue
        day = timezone.localtime(order.scheduled_start, zone).date()
        cell = lane.cells[(day - first_day).days]
        cell.cards.append(_card(order, now))
        if lane.user_id is None:  # the unassigned lane's hours: what its cards add up to
            cell.planned = round(cell.planned + (order.estimated_minutes or UNESTIMATED_MINUTES) / 60, 2)
    unplanned = base.filter(in_lanes, scheduled_start__isnull=True).order_by(F("due_at").asc(nulls_last=True), "id")[
        :MAX_UNPLANNED
    ]
    for order in unplanned:
        lane = by_user.get(order.assignee_id)
        if lane is not None:
            lane.unplanned.append(_card(order, now))
    return {
        "from": first_day,
        "to": last_day,
        "days": days,
        "time_zone": organization.time_zone,
        "lanes": lanes,
        "over_capacity": sum(lane.over_capacity_days for lane in lanes),
    }


def as_json(found: dict) -> dict:
    """The board for the API: lanes of cells of cards, plain data."""
    return {
        "from": found["from"],
        "to": found["to"],
        "time_zone": found["time_zone"],
        "lanes": [
            {
                "user": lane.user_id,
                "name": lane.name,
                "days": [
                    {
                        "day": cell.day,
                        "available_hours": cell.available,
                        "planned_hours": cell.planned,
                        "over_capacity": cell.over_capacity,
                        "orders": [card.as_dict() for card in cell.cards],
                    }
                    for cell in lane.cells
                ],
                "unplanned": [card.as_dict() for card in lane.unplanned],
            }
            for lane in found["lanes"]
        ],
    }
