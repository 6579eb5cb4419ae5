"""Business-time arithmetic: the instants at which a calendar's clock runs, in the calendar's time zone.

A `Schedule` is a plain value (zone, spans per weekday, holidays), built from a `BusinessCalendar` by
`sla.services.schedule_for`, so these functions need no database and are tested on their own.

Each local working day is turned into UTC intervals by placing its spans' wall-clock times in the zone, by the
daylight-saving rule of `maintenance_site.recurrence`: a span that contains a daylight-saving change is as long
as the time that really passes (00:00–06:00 is 5 hours on the spring-forward night and 7 on the autumn one), a
wall-clock time that does not exist is shifted forward by the gap, and one that exists twice is its first
occurrence. Everything returned is timezone-aware UTC.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from maintenance_site.recurrence import to_utc

MIDNIGHT = time(0, 0)
# A calendar with no working day in this many consecutive days is treated as having none at all.
SEARCH_LIMIT_DAYS = 3 * 366


class NoWorkingTime(ValueError):
    """The schedule never runs: no spans (or every day a holiday), so no deadline can be computed."""


@dataclass(frozen=True)
class Schedule:
    """When a clock runs. `spans[weekday]` (Monday 0) holds (start, end) local times, end exclusive; an end
    of 00:00 means midnight at the end of the day. `holidays` are local dates on which it does not run."""

    zone: ZoneInfo
    spans: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @classmethod
    def build(cls, zone: str | ZoneInfo, spans: Iterable[tuple[int, time, time]], holidays: Iterable[date] = ()):
        """From (weekday, start, end) rows in any order; overlapping or touching spans are merged."""
        by_day: dict[int, list[tuple[time, time]]] = {}
        for weekday, start, end in spans:
            by_day.setdefault(int(weekday), []).append((start, end))
        merged = {}
        for weekday, rows in by_day.items():
            result: list[list[time]] = []
            for start, end in sorted(rows, key=lambda row: (row[0], _end_key(row[1]))):
                if result and start <= _end_value(result[-1][1]):
                    if _end_key(end) > _end_key(result[-1][1]):
                        result[-1][1] = end
                else:
                    result.append([start, end])
            merged[weekday] = tuple((start, end) for start, end in result)
        zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        return cls(zone=zone, spans=merged, holidays=frozenset(holidays))

    @classmethod
    def always(cls, zone: str | ZoneInfo, holidays: Iterable[date] = ()):
        """Around the clock, every day (24/7), except the holidays given."""
        return cls.build(zone, [(weekday, MIDNIGHT, MIDNIGHT) for weekday in range(7)], holidays)

    @property
    def has_working_time(self) -> bool:
        return any(self.spans.values())


def _end_key(end: time) -> tuple[int, time]:
    """Sort key of a span end: 00:00 is the end of the day, after every other time."""
    return (1, end) if end == MIDNIGHT else (0, end)


def _end_value(end: time) -> time:
    return time.max if end == MIDNIGHT else end


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local day (`maintenance_site.recurrence.to_utc`)."""
    return to_utc(datetime.combine(day, at), zone)


def intervals_on(schedule: Schedule, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC intervals in which the clock runs on one local day (empty on holidays and closed days)."""
    if day in schedule.holidays:
        return []
    result = []
    for start, end in schedule.spans.get(day.weekday(), ()):
        begins = _instant(day, start, schedule.zone)
        ends = _instant(day + timedelta(days=1), MIDNIGHT, schedule.zone) if end == MIDNIGHT else None
        if ends is None:
            ends = _instant(day, end, schedule.zone)
        if ends > begins:
            result.append((begins, ends))
    return result


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("Business-time arithmetic needs timezone-aware datetimes.")
    return moment.astimezone(UTC)


def _intervals_from(schedule: Schedule, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Every working interval that ends after `moment`, in order, forever (or NoWorkingTime)."""
    if not schedule.has_working_time:
        raise NoWorkingTime("The calendar has no working hours.")
    day = moment.astimezone(schedule.zone).date()
    empty_days = 0
    while True:
        found = False
        for begins, ends in intervals_on(schedule, day):
            found = True
            if ends > moment:
                yield begins, ends
        empty_days = 0 if found else empty_days + 1
        if empty_days > SEARCH_LIMIT_DAYS:
            raise NoWorkingTime(f"The calendar has no working time in the {SEARCH_LIMIT_DAYS} days after {day}.")
        day += timedelta(days=1)


def add_business_seconds(schedule: Schedule, start: datetime, seconds: float) -> datetime:
    """The instant at which `seconds` of working time have passed since `start`.

    Zero (or less) gives `start` itself. A deadline that falls exactly on the end of a span is that end
    (16:00), not the next opening.
    """
    start = _aware(start)
    remaining = timedelta(seconds=seconds)
    if remaining <= timedelta(0):
        return start
    for begins, ends in _intervals_from(schedule, start):
        begins = max(begins, start)
        available = ends - begins
        if remaining <= available:
            return begins + remaining
        remaining -= available
    raise AssertionError("unreachable")  # pragma: no cover


def add_business_minutes(schedule: Schedule, start: datetime, minutes: float) -> datetime:
    return add_business_seconds(schedule, start, minutes * 60)


def business_seconds_between(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Working time, in seconds, between two instants (0 when `end` is not after `start`)."""
    start, end = _aware(start), _aware(end)
    if end <= start or not schedule.has_working_time:
        return 0.0
    total = timedelta(0)
    for begins, ends in _intervals_from(schedule, start):
        if begins >= end:
            break
        total += min(ends, end) - max(begins, start)
    return total.total_seconds()


def business_minutes_between(schedule: Schedule, start: datetime, end: datetime) -> float:
    return business_seconds_between(schedule, start, end) / 60


def is_working(schedule: Schedule, moment: datetime) -> bool:
    """Whether the clock runs at this instant."""
    moment = _aware(moment)
    local_day = moment.astimezone(schedule.zone).date()
    for day in (local_day - timedelta(days=1), local_day):
        if any(begins <= moment < ends for begins, ends in intervals_on(schedule, day)):
            return True
    return False
