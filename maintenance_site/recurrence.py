"""Recurrence: cron expressions and RRULEs, and local wall-clock times turned into UTC instants. Preventive
schedules, maintenance windows, SLA business hours and scenario schedules all use this module, so they share
one daylight-saving rule and one way of saying what is wrong with an expression.

The daylight-saving rule (PEP 495's fold=0)
    * A local time that does not exist (the spring-forward gap) is shifted forward by the length of the gap:
      02:30 on 28 March 2027 in Europe/Berlin is 03:30 CEST (01:30 UTC); 02:30 on 14 March 2027 in
      America/New_York is 03:30 EDT (07:30 UTC).
    * A local time that exists twice (the autumn fall-back) is its first occurrence, and a recurrence runs it
      once: 02:30 on 31 October 2027 in Berlin is 02:30 CEST (00:30 UTC), not again an hour later; 01:30 on
      7 November 2027 in New York is 01:30 EDT (05:30 UTC).
    * Two local times that land on the same instant (a shifted 02:30 and 03:30 itself) run once.

A recurrence is a *local series*: a function `(local start, local end) -> naive local times in [start, end],
ascending` (`cron_series`, `rrule_series`, or a caller's own, such as a fixed interval). `instants`,
`next_instants` and `previous_instant` turn a series into UTC instants by the rule above.

Errors: `parse_cron` and `parse_rrule` raise `RecurrenceError`, whose message is one sentence a person can act
on (quoting the expression, saying what is wrong and how to write it); callers key it on their own field.
"""

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError
from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, WEEKLY, rrule, rrulestr
from django.utils.translation import gettext, gettext_lazy, ngettext

LocalSeries = Callable[[datetime, datetime], Iterable[datetime]]

# More than any daylight-saving shift: local series are read this far beyond the asked interval, because a
# shifted time lands after local times that follow it on the wall clock.
MARGIN = timedelta(hours=3)
HORIZON = timedelta(days=366 * 5)  # how far ahead a next occurrence is looked for
HOUR = timedelta(hours=1)
CRON_FORMAT = gettext_lazy(
    "minute hour day-of-month month day-of-week, e.g. “30 2 * * *” for every day at 02:30 or “0 6 * * 1” for "
    "Mondays at 06:00"
)
RRULE_EXAMPLE = gettext_lazy("e.g. FREQ=WEEKLY;BYDAY=MO or FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=7;BYMINUTE=0")
CHECKED_OCCURRENCES = 40  # how many occurrences "at most once an hour" and "never fires" look at


class RecurrenceError(ValueError):
    """An expression that cannot be used; `message` says why in a sentence."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- local time and UTC --------------------------------------------------------------------------------------


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall-clock time, by the rule in the module docstring."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def in_gap(local: datetime, zone: ZoneInfo) -> bool:
    """Whether a naive local time does not exist (the clocks jumped over it)."""
    return to_local(to_utc(local, zone), zone) != local


def gap_start(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant the clocks jumped over a local time that does not exist (the first valid instant after the
    gap), or None for a time that exists."""
    if not in_gap(local, zone):
        return None
    # fold=1 reads a missing time with the offset after the change (an instant before the jump), fold=0 with
    # the offset before it (an instant after the jump): the jump lies between, found to the second.
    low = int(local.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(to_utc(local, zone).timestamp())
    after = to_utc(local, zone).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


# --- from a local series to UTC instants ----------------------------------------------------------------------


def instants(
    series: LocalSeries,
    zone: ZoneInfo,
    after: datetime,
    until: datetime,
    *,
    include_after: bool = False,
    include_until: bool = True,
) -> list[datetime]:
    """The UTC instants of a series between `after` and `until` (each bound included or not, as asked), each
    once, ascending."""
    found = set()
    for local in series(to_local(after, zone) - MARGIN, to_local(until, zone) + MARGIN):
        instant = to_utc(local, zone)
        if instant < after or instant > until:
            continue
        if (instant == after and not include_after) or (instant == until and not include_until):
            continue
        found.add(instant)
    return sorted(found)


def next_instants(
    series: LocalSeries, zone: ZoneInfo, after: datetime, count: int = 1, *, inclusive: bool = False
) -> list[datetime]:
    """The first `count` UTC instants of a series after `after` (or at it, when `inclusive`), each once,
    ascending; fewer when the series ends (or has nothing within five years)."""
    found: set[datetime] = set()
    start = to_local(after, zone)
    for local in series(start - MARGIN, start + HORIZON):
        if len(found) >= count and local > to_local(sorted(found)[count - 1], zone) + MARGIN:
            break  # nothing later on the wall clock can land before what was found
        instant = to_utc(local, zone)
        if instant > after or (inclusive and instant == after):
            found.add(instant)
    return sorted(found)[:count]


def previous_instant(series: LocalSeries, zone: ZoneInfo, before: datetime) -> datetime | None:
    """The latest UTC instant of a series strictly before `before`, or None (nothing in the five years before).
    Looks back a day first, then further."""
    for span in (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367), HORIZON):
        found = instants(series, zone, before - span, before, include_after=True, include_until=False)
        if found:
            return found[-1]
    return None


def shifted_from_gap(series: LocalSeries, zone: ZoneInfo, instant: datetime) -> datetime | None:
    """When every local time of the series that lands on `instant` lies in a spring-forward gap (the instant is
    a shifted one): the instant the clocks jumped; else None."""
    if instant.astimezone(zone).utcoffset() == (instant - MARGIN).astimezone(zone).utcoffset():
        return None  # the clocks did not change just before: nothing was shifted onto this instant
    local = to_local(instant, zone)
    sources = [moment for moment in series(local - MARGIN, local) if to_utc(moment, zone) == instant]
    if not sources or not all(in_gap(moment, zone) for moment in sources):
        return None
    return gap_start(sources[0], zone)


# --- cron ----------------------------------------------------------------------------------------------------


def normalize_cron(expression: str) -> str:
    return " ".join((expression or "").split())


def parse_cron(expression: str, *, at_most_hourly: bool = False) -> str:
    """The expression, with its white space normalised, or RecurrenceError saying what is wrong with it.
    `at_most_hourly` also refuses an expression that fires more than once an hour."""
    text = normalize_cron(expression)
    if not text:
        raise RecurrenceError(gettext("Give a cron expression: %(format)s.") % {"format": CRON_FORMAT})
    fields = text.split(" ")
    if not text.startswith("@") and len(fields) != 5:
        raise RecurrenceError(
            ngettext(
                "“%(text)s” is not a cron expression: it has %(count)s field; a cron expression has five: %(format)s.",
                "“%(text)s” is not a cron expression: it has %(count)s fields; a cron expression has five: %(format)s.",
                len(fields),
            )
            % {"text": text, "count": len(fields), "format": CRON_FORMAT}
        )
    try:
        iterator = croniter(text, datetime(2001, 1, 1))
        times = [iterator.get_next(datetime) for _ in range(61 if at_most_hourly else 1)]
    except (CroniterError, ValueError, KeyError, TypeError, OverflowError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise RecurrenceError(
            gettext("“%(text)s” is not a valid cron expression (%(reason)s). Write it as %(format)s.")
            % {"text": text, "reason": reason, "format": CRON_FORMAT}
        ) from None
    for previous, current in zip(times, times[1:], strict=False):
        if current - previous < HOUR:
            raise RecurrenceError(
                gettext(
                    "“%(text)s” fires every %(minutes)s minutes; it may fire at most once an hour. Give the minute a "
                    "single value, e.g. “0 */4 * * *”."
                )
                % {"text": text, "minutes": int((current - previous).total_seconds() // 60)}
            )
    return text


def cron_series(expression: str) -> LocalSeries:
    """The local series of a (valid) cron expression."""
    text = normalize_cron(expression)

    def times(start: datetime, end: datetime) -> Iterator[datetime]:
        iterator = croniter(text, start - timedelta(seconds=1))
        while (moment := iterator.get_next(datetime)) <= end:
            yield moment

    return times


# --- RRULE ---------------------------------------------------------------------------------------------------


def normalize_rrule(text: str) -> str:
    """The rule without surrounding white space and without a leading “RRULE:”."""
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :].strip()
    return body


def too_often(body: str) -> str:
    return gettext("“%(text)s” fires more often than hourly; it may fire at most once an hour.") % {"text": body}


def parse_rrule(text: str, dtstart: datetime, *, at_most_hourly: bool = False) -> rrule:
    """An RFC 5545 RRULE as a dateutil rule over naive local times from `dtstart` (the caller's start: the rule
    may not carry its own DTSTART, EXDATE or RDATE), or RecurrenceError saying what is wrong. A rule that never
    fires is refused; `at_most_hourly` also refuses one that fires more than once an hour."""
    body = normalize_rrule(text)
    if not body:
        raise RecurrenceError(gettext("Give an RRULE, %(example)s.") % {"example": RRULE_EXAMPLE})
    upper = body.upper()
    if "\n" in body or any(word in upper for word in ("DTSTART", "RRULE:", "EXDATE", "RDATE")):
        raise RecurrenceError(
            gettext("Give a single RRULE without DTSTART (%(example)s): where it starts is given separately.")
            % {"example": RRULE_EXAMPLE}
        )
    try:
        rule = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise RecurrenceError(
            gettext("“%(text)s” is not a valid RRULE (%(reason)s). Write it as %(example)s.")
            % {"text": body, "reason": reason, "example": RRULE_EXAMPLE}
        ) from None
    if not isinstance(rule, rrule):  # pragma: no cover - a single RRULE line always gives an rrule
        raise RecurrenceError(gettext("Give a single RRULE, %(example)s.") % {"example": RRULE_EXAMPLE})
    if at_most_hourly and rule._freq in (SECONDLY, MINUTELY):
        raise RecurrenceError(too_often(body))
    try:
        upcoming = [moment for _, moment in zip(range(CHECKED_OCCURRENCES), rule, strict=False)]
    except (ValueError, OverflowError) as exc:
        raise RecurrenceError(
            gettext("“%(text)s” cannot be evaluated (%(reason)s).") % {"text": body, "reason": exc}
        ) from None
    if not upcoming:
        raise RecurrenceError(
            gettext("“%(text)s” never fires from its start on: check BYMONTHDAY, BYMONTH, COUNT and UNTIL.")
            % {"text": body}
        )
    if at_most_hourly and any(later - earlier < HOUR for earlier, later in zip(upcoming, upcoming[1:], strict=False)):
        raise RecurrenceError(too_often(body))
    return rule


def rrule_series(rule: rrule) -> LocalSeries:
    """The local series of a parsed rule."""

    def times(start: datetime, end: datetime) -> Iterator[datetime]:
        for moment in rebased(rule, start).xafter(start, inc=True):
            if moment > end:
                return
            yield moment

    return times


# Rules whose occurrences repeat every INTERVAL of these units whatever the calendar does (a shift by whole
# periods keeps the weekday, the time of day and the weeks counted from WKST that the rule's defaults take from
# DTSTART); monthly and yearly periods differ in length, so those rules are read from their DTSTART.
_PERIODS = {WEEKLY: timedelta(weeks=1), DAILY: timedelta(days=1), HOURLY: HOUR, MINUTELY: timedelta(minutes=1)}
_PERIODS[SECONDLY] = timedelta(seconds=1)


def rebased(rule: rrule, start: datetime) -> rrule:
    """The rule with its DTSTART moved forward by whole periods to just before `start`: the same occurrences from
    `start` on, without enumerating every one since DTSTART (an hourly rule from 2000 took seconds). A rule with
    COUNT counts from its DTSTART and is returned as it is."""
    period = _PERIODS.get(rule._freq)
    if period is None or rule._count is not None or rule._dtstart is None:
        return rule
    step = period * rule._interval
    periods = (start - rule._dtstart) // step - 1  # a whole period of margin before `start`
    if periods < 1:
        return rule
    return rule.replace(dtstart=rule._dtstart + step * periods)
