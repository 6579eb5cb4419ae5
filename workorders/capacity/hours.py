"""Capacity arithmetic: available hours = the working pattern's periods on a local day less time off; planned hours
= the estimates of the open orders planned to start that day. Days are the organisation's local days, and a period
is measured between its UTC instants, so a working day across a daylight-saving change counts what the clock
really gives (a 00:00-08:00 shift is 7 hours on the spring-forward night); a local time in the spring-forward gap
moves forward by the gap (`maintenance_site.recurrence.to_utc`, the platform's one rule)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from maintenance_site.recurrence import to_utc
from maintenance_site.tenancy.roles import Role
from workorders.capacity.models import END_OF_DAY, TimeOff, WorkingPattern
from workorders.models import WorkOrder

MAX_DAYS = 62  # capacity is asked for a day, a week or a month: a longer range is a mistake (400)
UNESTIMATED_MINUTES = 60  # an order planned without an estimate counts this long (as the calendar draws it)


def people(organization, *, user: int | None = None, team: int | None = None) -> list:
    """Whose capacity is shown: one member (`user`), a team's members (`team`), or every active technician of the
    organisation, by name. One query; another organisation's user or team is a 404-like empty answer (nobody)."""
    members = (
        get_user_model()
        .objects.filter(memberships__organization=organization, memberships__is_active=True, is_active=True)
        .order_by("first_name", "last_name", "username")
    )
    if user is not None:
        members = members.filter(pk=user)
    elif team is not None:
        members = members.filter(maintenance_teams__id=team, maintenance_teams__organization=organization)
    else:
        members = members.filter(memberships__role=Role.TECHNICIAN)
    return list(members.distinct())


def days_between(first_day: date, last_day: date) -> list[date]:
    return [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]


def periods_on(week: list[list[tuple[time, time]]], day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The UTC periods a weekly pattern gives on a local day."""
    found = []
    for start, end in week[day.weekday()]:
        starts_at = to_utc(datetime.combine(day, start), zone)
        local_end = (
            datetime.combine(day + timedelta(days=1), time(0)) if end == END_OF_DAY else datetime.combine(day, end)
        )
        found.append((starts_at, to_utc(local_end, zone)))
    return found


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> timedelta:
    return max(timedelta(0), min(a[1], b[1]) - max(a[0], b[0]))


def available_hours(
    week: list[list[tuple[time, time]]], day: date, zone: ZoneInfo, time_off: list[tuple[datetime, datetime]] = ()
) -> float:
    """Hours of work the pattern gives on the local day, less what the time-off periods cover of them (time-off
    periods of one person may overlap each other: what they cover together comes off once)."""
    total = timedelta(0)
    for period in periods_on(week, day, zone):
        worked = [(max(period[0], a), min(period[1], b)) for a, b in time_off if _overlap(period, (a, b))]
        covered, cursor = timedelta(0), period[0]
        for start, end in sorted(worked):
            start = max(start, cursor)
            if end > start:
                covered += end - start
                cursor = end
        total += period[1] - period[0] - covered
    return round(total.total_seconds() / 3600, 2)


@dataclass
class PersonDay:
    """One person's day: available and planned hours, and the orders planned."""

    user_id: int
    day: date
    available: float
    planned: float = 0.0
    orders: int = 0
    time_off: list[dict] = field(default_factory=list)

    @property
    def over_capacity(self) -> bool:
        return self.planned > self.available

    def as_dict(self) -> dict:
        return {
            "user": self.user_id,
            "day": self.day,
            "available_hours": self.available,
            "planned_hours": self.planned,
            "planned_orders": self.orders,
            "over_capacity": self.over_capacity,
        }


def capacity(organization, user_ids, first_day: date, last_day: date) -> dict[tuple[int, date], PersonDay]:
    """Every (person, local day) of the range: three queries whatever the people, days and orders — the patterns,
    the time off, and the planned hours summed per assignee and local day by the database."""
    zone = organization.zone
    user_ids = sorted(set(user_ids))
    days = days_between(first_day, last_day)
    start, end = (
        to_utc(datetime.combine(first_day, time(0)), zone),
        to_utc(datetime.combine(last_day + timedelta(days=1), time(0)), zone),
    )
    patterns = {
        pattern.user_id: pattern.week()
        for pattern in WorkingPattern.objects.for_tenant(organization).filter(
            Q(user__isnull=True) | Q(user_id__in=user_ids)
        )
    }
    default = patterns.get(None) or WorkingPattern(organization=organization).week()
    off: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for user_id, starts_at, ends_at in (
        TimeOff.objects.for_tenant(organization)
        .filter(user_id__in=user_ids, starts_at__lt=end, ends_at__gt=start)
        .values_list("user_id", "starts_at", "ends_at")
    ):
        off[user_id].append((starts_at, ends_at))
    table = {
        (user_id, day): PersonDay(
            user_id, day, available_hours(patterns.get(user_id, default), day, zone, off.get(user_id, []))
        )
        for user_id in user_ids
        for day in days
    }
    planned = (
        WorkOrder.objects.for_tenant(organization)
        .open()
        .filter(assignee_id__in=user_ids, scheduled_start__gte=start, scheduled_start__lt=end)
        .annotate(day=TruncDate("scheduled_start", tzinfo=zone))
        .values("assignee_id", "day")
        .annotate(
            minutes=Sum("estimated_minutes"),
            orders=Count("id"),
            unestimated=Count("id", filter=Q(estimated_minutes__isnull=True)),
        )
        .order_by()
    )
    for row in planned:
        entry = table.get((row["assignee_id"], row["day"]))
        if entry is not None:
            minutes = (row["minutes"] or 0) + row["unestimated"] * UNESTIMATED_MINUTES
            entry.planned = round(minutes / 60, 2)
            entry.orders = row["orders"]
    return table
