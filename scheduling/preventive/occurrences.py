"""When a calendar or fixed-interval schedule is due: its occurrences as local wall-clock times (a cron
expression, an RRULE from the start date at the time of day, or every N days / weeks / months from there),
turned into UTC instants in a time zone by `maintenance_site.recurrence`'s daylight-saving rule: a time in the
spring-forward gap is shifted forward by the gap, a repeated time runs once (its first occurrence), two local
times on one instant run once. So a daily 02:30 schedule gives exactly one occurrence per local day.

Meter triggers have no calendar: `scheduling.preventive.meter_triggers` plans them from the readings.
"""

import math
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from maintenance_site import recurrence
from maintenance_site.recurrence import LocalSeries
from scheduling.preventive.models import PreventiveSchedule

Schedule = PreventiveSchedule
Trigger = PreventiveSchedule.Trigger

MAX_BACKLOG = timedelta(days=400)  # a pass looks at most this far back for missed occurrences


def add_interval(moment: datetime, schedule: Schedule, times: int = 1) -> datetime:
    """`moment` plus `times` times the schedule's interval (a month after 31 January is 28/29 February)."""
    count = (schedule.interval_count or 1) * times
    unit = schedule.interval_unit
    if unit == Schedule.IntervalUnit.MONTHS:
        return moment + relativedelta(months=count)
    return moment + timedelta(days=count * (7 if unit == Schedule.IntervalUnit.WEEKS else 1))


def _interval_series(schedule: Schedule) -> LocalSeries:
    anchor = schedule.anchor

    def times(start: datetime, end: datetime) -> Iterator[datetime]:
        if schedule.interval_unit == Schedule.IntervalUnit.MONTHS:
            months = (start.year - anchor.year) * 12 + start.month - anchor.month
            index = max(0, months // (schedule.interval_count or 1) - 1)
        else:
            step = add_interval(anchor, schedule) - anchor
            index = max(0, math.floor((start - anchor) / step))
        while (moment := add_interval(anchor, schedule, index)) <= end:
            index += 1
            if moment >= start:
                yield moment

    return times


def local_series(schedule: Schedule) -> LocalSeries:
    """The schedule's occurrences as naive local times, within its start and end dates."""
    if schedule.trigger == Trigger.CRON:
        series = recurrence.cron_series(schedule.cron_expression)
    elif schedule.trigger == Trigger.RRULE:
        series = recurrence.rrule_series(recurrence.parse_rrule(schedule.rrule, schedule.anchor))
    elif schedule.trigger == Trigger.INTERVAL:
        series = _interval_series(schedule)
    else:
        raise ValueError(f"A {schedule.trigger} trigger has no calendar.")
    first = datetime.combine(schedule.start_date, time.min)
    last = datetime.combine(schedule.end_date, time.max) if schedule.end_date is not None else None

    def within_dates(start: datetime, end: datetime) -> Iterator[datetime]:
        start, end = max(start, first), min(end, last) if last is not None else end
        if start <= end:
            yield from series(start, end)

    return within_dates


def occurrences_between(schedule: Schedule, zone: ZoneInfo, after: datetime | None, until: datetime) -> list:
    """UTC due times of a fixed-calendar schedule in the zone, after `after` (exclusive; None: from the start
    date) up to `until` (inclusive), at most MAX_BACKLOG back from `until`, each instant once."""
    floor = until - MAX_BACKLOG
    if after is None or after < floor:
        return recurrence.instants(local_series(schedule), zone, floor, until, include_after=True)
    return recurrence.instants(local_series(schedule), zone, after, until)


def next_occurrence(schedule: Schedule, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first UTC due time of a fixed-calendar schedule strictly after `after`, or None (ended)."""
    found = recurrence.next_instants(local_series(schedule), zone, after)
    return found[0] if found else None


def shifted_dues(schedule: Schedule, zone: ZoneInfo, dues: list[datetime]) -> dict[datetime, datetime]:
    """The due times a spring-forward gap shifted (a local time that did not exist that night, moved forward
    by the gap), each with the instant the clocks jumped: where the generator ran such a time before it
    followed this rule, so an occurrence stored at that instant means the night is done."""
    if not dues:
        return {}
    series = local_series(schedule)
    found = {}
    for due in dues:
        jumped = recurrence.shifted_from_gap(series, zone, due)
        if jumped is not None:
            found[due] = jumped
    return found


def format_local(instant: datetime, zone_name: str) -> str:
    """An instant as the local date and time of the zone, e.g. “2027-03-28 03:30 CEST”."""
    return instant.astimezone(ZoneInfo(zone_name)).strftime("%Y-%m-%d %H:%M %Z")
