"""Preventive maintenance: the only writer of preventive schedules, and the generator that turns what is due
into work orders, exactly once.

Recurrence
    Calendar triggers are a cron expression (croniter) or an RFC 5545 RRULE (dateutil); interval triggers
    are every N days / weeks / months from the start date; meter triggers watch an asset meter (every N units,
    or a reading above / below a threshold, with a cooldown). Calendar and interval occurrences are computed
    in local wall-clock time of the asset's site (`Location.effective_time_zone`; routine rounds: their
    location's, else the organisation's) and then converted to UTC by one rule:

    Daylight saving
        * A local time that does not exist (the spring-forward gap) runs at the first valid instant after
          the gap: 02:30 on 29 March 2026 in Europe/Berlin runs at 03:00 CEST (01:00 UTC).
        * A local time that exists twice (the autumn fall-back) runs once, at its first occurrence (fold=0):
          02:30 on 25 October 2026 in Europe/Berlin runs at 02:30 CEST (00:30 UTC), not again an hour later.
        * Two local times that land on the same instant run once.
        So a daily 02:30 schedule gives exactly one occurrence per local day, all year round.

Generation (`generate_due_work_orders`, called by beat every PREVENTIVE_GENERATION_INTERVAL seconds)
    1. Plan (reads only, a fixed number of queries): the schedules with something to do, their targets
       (evaluated now: new assets of a type join by themselves), the occurrences due, the misfire policy
       and skip-if-open applied.
    2. Apply, in chunks of PREVENTIVE_GENERATION_CHUNK, each one transaction: insert the occurrence rows with
       ON CONFLICT DO NOTHING, each stamped with this pass's GenerationRun; the rows that carry our stamp
       afterwards are the ones we really inserted (a row another pass inserted keeps its stamp). Work orders,
       their history, checklists, part reservations and `work-order:created` events are written in bulk for
       those rows only. The unique key (schedule, target, due time) makes repeated ticks, two beat processes
       and concurrent calls harmless; rows are inserted in key order, so concurrent passes cannot deadlock.
    3. Bookkeeping: each schedule's `generated_through`, `next_due_at` and `next_run_at`.

    The number of queries of a pass does not depend on how many occurrences are due (up to the chunk size;
    beyond it, a fixed number per chunk).

Misfires (beat was not running): per schedule, `coalesce` (default) folds all late occurrences of a target into
one order at the latest of them; `catch_up` creates each of them, the most recent `misfire_cap` ones; `skip`
records the missed ones (older than PREVENTIVE_MISFIRE_GRACE) as one skipped row and goes on with the next.
"""

import hashlib
import math
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError
from dateutil.relativedelta import relativedelta
from dateutil.rrule import HOURLY, MINUTELY, SECONDLY, rrule, rrulestr
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, F, Min, Q, Value, When
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils import timezone

from assets.models import Asset, Location, Meter, MeterReading
from inventory.models import Part, Reservation, StockLevel, StockLocation
from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, NotFound
from maintenance_site.events.services import publish_many
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.roles import Action, Role
from maintenance_site.validation import delete_or_conflict, validated
from scheduling.preventive_models import (
    CalendarFeed,
    GenerationRun,
    PreventiveOccurrence,
    PreventiveSchedule,
    ScheduleTemplatePart,
)
from workorders.models import ChecklistItem, ProcedureItem, WorkOrder
from workorders.services import format_number, reserve_numbers, validate_assignee

Schedule = PreventiveSchedule
Occurrence = PreventiveOccurrence
Trigger = PreventiveSchedule.Trigger
Coverage = PreventiveSchedule.Coverage

MIN_SPACING = timedelta(hours=1)  # a schedule fires at most hourly
MAX_BACKLOG = timedelta(days=400)  # a pass looks at most this far back for missed occurrences
MAX_FORECAST_DAYS = 366
MAX_FORECAST_ROWS = 5000
ON_TIME_TOLERANCE = timedelta(hours=24)  # statistics: completed within a day of the due time is on time
LATEST_BATCH = 400  # targets per "latest occurrence" query
OR_BATCH = 300  # meter conditions per reading query
DONE_STATUSES = (WorkOrder.Status.COMPLETED, WorkOrder.Status.VERIFIED)
SCHEDULE_FIELDS = {
    "name",
    "description",
    "coverage",
    "asset",
    "asset_type",
    "location",
    "trigger",
    "cron_expression",
    "rrule",
    "interval_count",
    "interval_unit",
    "time_of_day",
    "meter_name",
    "meter_mode",
    "meter_interval",
    "meter_threshold",
    "cooldown_minutes",
    "mode",
    "lead_days",
    "skip_if_open",
    "misfire_policy",
    "misfire_cap",
    "start_date",
    "end_date",
    "title",
    "instructions",
    "priority",
    "work_type",
    "procedure",
    "estimated_minutes",
    "assignee",
    "team",
}
TRIGGER_FIELDS = {
    "trigger",
    "cron_expression",
    "rrule",
    "interval_count",
    "interval_unit",
    "time_of_day",
    "mode",
    "lead_days",
    "start_date",
    "end_date",
    "coverage",
    "asset",
    "asset_type",
    "location",
}


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def generation_interval() -> int:
    """Seconds between beat's generation passes (PREVENTIVE_GENERATION_INTERVAL, default 60)."""
    return _setting("PREVENTIVE_GENERATION_INTERVAL", 60)


def misfire_grace() -> timedelta:
    """How late an occurrence may be picked up and still count as on time (PREVENTIVE_MISFIRE_GRACE seconds)."""
    return timedelta(seconds=_setting("PREVENTIVE_MISFIRE_GRACE", 3600))


def chunk_size() -> int:
    return max(1, _setting("PREVENTIVE_GENERATION_CHUNK", 5000))


# =============================================================================================================
# Recurrence: parsing, validation, local occurrences, and the daylight-saving rule
# =============================================================================================================


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall-clock time, by the rule in the module docstring: a time in the
    spring-forward gap runs at the first valid instant after the gap; a repeated time at its first
    occurrence (fold=0)."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first  # exists (fold=0 is the earlier of two, when it exists twice)
    # In the gap: fold=1 reads it with the offset after the change (an instant before the change), fold=0 with
    # the offset before (an instant after it). The change itself is the first valid instant after the gap.
    low = int(local.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp())
    after = first.astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _clean_cron(expression: str) -> str:
    return " ".join((expression or "").split())


def cron_problem(expression: str) -> str | None:
    """What is wrong with a cron expression, in a sentence, or None."""
    text = _clean_cron(expression)
    example = "e.g. “30 2 * * *” for every day at 02:30 or “0 6 * * 1” for Mondays at 06:00"
    if not text:
        return f"Give a cron expression: minute hour day-of-month month day-of-week, {example}."
    fields = text.split(" ")
    if not text.startswith("@") and len(fields) != 5:
        return (
            f"“{text}” has {len(fields)} field{'s' if len(fields) != 1 else ''}; a cron expression has five: "
            f"minute hour day-of-month month day-of-week, {example}."
        )
    try:
        iterator = croniter(text, datetime(2001, 1, 1))
        previous = iterator.get_next(datetime)
        for _ in range(60):
            current = iterator.get_next(datetime)
            if current - previous < MIN_SPACING:
                return (
                    f"“{text}” fires every {int((current - previous).total_seconds() // 60)} minutes; preventive "
                    "work is generated at most once an hour. Give the minute a single value, e.g. “0 */4 * * *”."
                )
            previous = current
    except (CroniterError, ValueError, KeyError, TypeError, OverflowError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        return f"“{text}” is not a valid cron expression ({reason}). Write it as {example}."
    return None


def _rrule_body(text: str) -> str:
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:].strip()
    return body


def rrule_problem(text: str, start: date | None = None, time_of_day: time | None = None) -> str | None:
    """What is wrong with an RRULE, in a sentence, or None."""
    body = _rrule_body(text)
    example = "e.g. FREQ=WEEKLY;BYDAY=MO or FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=7;BYMINUTE=0"
    if not body:
        return f"Give an RRULE, {example}."
    if "\n" in body or "DTSTART" in body.upper() or "RRULE:" in body.upper():
        return (
            "Give a single RRULE without DTSTART: the schedule's start date and time of day are where it starts "
            f"({example})."
        )
    dtstart = datetime.combine(start or date(2001, 1, 1), time_of_day or time(6, 0))
    try:
        rule = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return f"“{body}” is not a valid RRULE ({str(exc).strip() or type(exc).__name__}). Write it as {example}."
    if not isinstance(rule, rrule):
        return f"Give a single RRULE, {example}."
    if rule._freq in (SECONDLY, MINUTELY):
        return f"“{body}” fires more often than hourly; preventive work is generated at most once an hour."
    try:
        upcoming = [occurrence for _, occurrence in zip(range(40), rule, strict=False)]
    except (ValueError, OverflowError) as exc:
        return f"“{body}” cannot be evaluated ({exc})."
    if not upcoming:
        return f"“{body}” never fires from the start date on: check BYMONTHDAY, BYMONTH, COUNT and UNTIL."
    for previous, current in zip(upcoming, upcoming[1:], strict=False):
        if current - previous < MIN_SPACING:
            return f"“{body}” fires more often than hourly; preventive work is generated at most once an hour."
    if rule._freq == HOURLY and rule._interval < 1:  # pragma: no cover - dateutil refuses it already
        return f"“{body}” has no interval."
    return None


def _rule(schedule: Schedule):
    return rrulestr(_rrule_body(schedule.rrule), dtstart=_anchor(schedule))


def _anchor(schedule: Schedule) -> datetime:
    return datetime.combine(schedule.start_date, schedule.time_of_day or time(6, 0))


def _add_interval(moment: datetime, schedule: Schedule, times: int = 1) -> datetime:
    count = (schedule.interval_count or 1) * times
    unit = schedule.interval_unit
    if unit == Schedule.IntervalUnit.MONTHS:
        return moment + relativedelta(months=count)  # 31 January + 1 month = 28/29 February
    return moment + timedelta(days=count * (7 if unit == Schedule.IntervalUnit.WEEKS else 1))


def local_occurrences(schedule: Schedule, start: datetime, until: datetime):
    """Naive local wall-clock occurrences of a calendar or fixed-interval schedule with start <= t <= until,
    ascending (before the daylight-saving rule; the series starts at the start date)."""
    start = max(start, datetime.combine(schedule.start_date, time.min))
    if schedule.end_date is not None:
        until = min(until, datetime.combine(schedule.end_date, time.max))
    if start > until:
        return
    if schedule.trigger == Trigger.CRON:
        iterator = croniter(_clean_cron(schedule.cron_expression), start - timedelta(seconds=1))
        while True:
            moment = iterator.get_next(datetime)
            if moment > until:
                return
            yield moment
    elif schedule.trigger == Trigger.RRULE:
        for moment in _rule(schedule).xafter(start, inc=True):
            if moment > until:
                return
            yield moment
    elif schedule.trigger == Trigger.INTERVAL:
        anchor = _anchor(schedule)
        if schedule.interval_unit == Schedule.IntervalUnit.MONTHS:
            months = (start.year - anchor.year) * 12 + start.month - anchor.month
            index = max(0, months // (schedule.interval_count or 1) - 1)
        else:
            step = _add_interval(anchor, schedule) - anchor
            index = max(0, math.floor((start - anchor) / step))
        while True:
            moment = _add_interval(anchor, schedule, index)
            index += 1
            if moment > until:
                return
            if moment >= start:
                yield moment


def occurrences_between(schedule: Schedule, zone: ZoneInfo, after: datetime | None, until: datetime) -> list:
    """UTC due times of a fixed-calendar schedule in the zone, after `after` (exclusive; None: from the start
    date) up to `until` (inclusive), at most MAX_BACKLOG back from `until`, each instant once."""
    margin = timedelta(hours=3)  # daylight-saving shifts: filter on the UTC instants below
    floor = to_local(until - MAX_BACKLOG, zone)
    start = max(to_local(after, zone) - margin, floor) if after is not None else floor
    found, seen = [], set()
    for local in local_occurrences(schedule, start, to_local(until, zone) + margin):
        instant = to_utc(local, zone)
        if (after is not None and instant <= after) or instant > until or instant in seen:
            continue
        seen.add(instant)
        found.append(instant)
    return found


def next_occurrence(schedule: Schedule, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first UTC due time of a fixed-calendar schedule strictly after `after`, or None (ended)."""
    margin = timedelta(hours=3)
    start = to_local(after, zone) - margin
    horizon = start + timedelta(days=366 * 5)
    for local in local_occurrences(schedule, start, horizon):
        instant = to_utc(local, zone)
        if instant > after:
            return instant
    return None


def schedule_problems(schedule: Schedule) -> dict[str, str]:
    """Field → what is wrong, for `clean()` (the admin form and the API say the same)."""
    errors: dict[str, str] = {}
    s = schedule
    org_id = s.organization_id
    for name in ("asset", "asset_type", "location", "procedure", "team"):
        related = getattr(s, name) if getattr(s, f"{name}_id") else None
        if related is not None and related.organization_id != org_id:
            errors[name] = f"The {name.replace('_', ' ')} belongs to another organisation."
    if s.coverage == Coverage.ASSET:
        if not s.asset_id:
            errors["asset"] = "Choose the asset this schedule covers."
        for name in ("asset_type", "location"):
            if getattr(s, f"{name}_id"):
                errors[name] = "Leave this empty for a one-asset schedule (or cover every asset of a type / location)."
    elif s.coverage == Coverage.ASSETS:
        if s.asset_id:
            errors["asset"] = "Leave this empty: the schedule covers every asset of the type and / or location."
        if not s.asset_type_id and not s.location_id:
            errors["asset_type"] = "Choose an asset type, a location, or both."
    elif s.coverage == Coverage.ROUTINE:
        for name in ("asset", "asset_type"):
            if getattr(s, f"{name}_id"):
                errors[name] = "A routine round covers no asset: leave this empty (a location is allowed)."

    if s.trigger == Trigger.CRON:
        problem = cron_problem(s.cron_expression)
        if problem:
            errors["cron_expression"] = problem
    elif s.trigger == Trigger.RRULE:
        problem = rrule_problem(s.rrule, s.start_date, s.time_of_day)
        if problem:
            errors["rrule"] = problem
    elif s.trigger == Trigger.INTERVAL:
        if not s.interval_count or not 1 <= s.interval_count <= 1000:
            shown = "nothing" if s.interval_count in (None, "") else f"{s.interval_count}"
            errors["interval_count"] = f"Every {shown} is not an interval: give a whole number from 1 to 1000."
        if s.interval_unit not in Schedule.IntervalUnit.values:
            errors["interval_unit"] = "Say whether the interval counts days, weeks or months."
    elif s.trigger == Trigger.METER:
        if s.coverage == Coverage.ROUTINE:
            errors["trigger"] = "A meter trigger needs assets (their meters): cover an asset, or a type / location."
        if not (s.meter_name or "").strip():
            errors["meter_name"] = "Name the meter to watch, e.g. “Run hours”."
        if s.meter_mode not in Schedule.MeterMode.values:
            errors["meter_mode"] = "Say whether to act every N units, or on a reading above or below a threshold."
        elif s.meter_mode == Schedule.MeterMode.EVERY:
            if s.meter_interval is None or s.meter_interval <= 0:
                errors["meter_interval"] = "Give how many units of the meter between services, more than zero."
        elif s.meter_threshold is None:
            errors["meter_threshold"] = "Give the threshold the readings are compared with."
    else:
        errors["trigger"] = "Choose a calendar (cron or RRULE), interval or meter trigger."

    if s.mode == Schedule.Mode.FLOATING and not (
        s.trigger == Trigger.INTERVAL or (s.trigger == Trigger.METER and s.meter_mode == Schedule.MeterMode.EVERY)
    ):
        errors["mode"] = (
            "Floating mode counts from the last completion, so it needs an interval (or a meter count); "
            "a cron expression, an RRULE or a threshold follows its own rule: choose fixed."
        )
    if s.start_date and s.end_date and s.end_date < s.start_date:
        errors["end_date"] = "The end date is before the start date."
    if s.misfire_policy not in Schedule.Misfire.values:
        errors["misfire_policy"] = "Choose coalesce, catch up or skip."
    return errors


# =============================================================================================================
# Targets and time zones
# =============================================================================================================


@dataclass(frozen=True)
class Target:
    asset_id: int | None
    zone_name: str
    location_id: int | None = None
    asset_code: str = ""
    asset_name: str = ""

    @property
    def key(self) -> int:
        return self.asset_id or 0


class _Places:
    """The location trees of some organisations, loaded with one query: effective time zones and subtrees."""

    def __init__(self, organization_ids):
        self.parent: dict[int, int | None] = {}
        self.zone: dict[int, str] = {}
        self.org_of: dict[int, int] = {}
        self.children: dict[int, list[int]] = defaultdict(list)
        rows = Location.objects.filter(organization_id__in=set(organization_ids)).values_list(
            "pk", "parent_id", "time_zone", "organization_id"
        )
        for pk, parent_id, zone, org_id in rows:
            self.parent[pk], self.zone[pk], self.org_of[pk] = parent_id, zone, org_id
            self.children[parent_id].append(pk)
        self._effective: dict[int, str] = {}

    def effective_zone(self, location_id: int | None, default: str) -> str:
        if location_id is None:
            return default
        if location_id in self._effective:
            return self._effective[location_id] or default
        chain, node, seen = [], location_id, set()
        while node is not None and node not in seen and node in self.parent:
            seen.add(node)
            chain.append(node)
            if self.zone.get(node):
                break
            node = self.parent[node]
        found = self.zone.get(chain[-1], "") if chain else ""
        for pk in chain:
            self._effective[pk] = found
        return found or default

    def subtree(self, location_id: int) -> set[int]:
        found, stack = set(), [location_id]
        while stack:
            node = stack.pop()
            if node in found:
                continue
            found.add(node)
            stack.extend(self.children.get(node, ()))
        return found


def _resolve_targets(schedules: list[Schedule], places: _Places) -> dict[int, list[Target]]:
    """Each schedule's targets as of now: its asset, the assets of its type / under its location (one query for
    all schedules), or one routine target. Retired assets get no preventive work."""
    targets: dict[int, list[Target]] = {s.pk: [] for s in schedules}
    many = [s for s in schedules if s.coverage == Coverage.ASSETS]
    if many:
        condition = Q()
        subtrees = {}
        for s in many:
            part = Q(organization_id=s.organization_id)
            if s.asset_type_id:
                part &= Q(asset_type_id=s.asset_type_id)
            if s.location_id:
                subtrees[s.pk] = places.subtree(s.location_id)
                part &= Q(location_id__in=subtrees[s.pk])
            condition |= part
        assets = list(
            Asset.objects.in_service()
            .filter(condition)
            .order_by("pk")
            .values_list("pk", "organization_id", "asset_type_id", "location_id", "code", "name")
        )
        by_org_type: dict[tuple, list] = defaultdict(list)
        for row in assets:
            by_org_type[(row[1], row[2])].append(row)
            by_org_type[(row[1], None)].append(row)
        for s in many:
            org_zone = s.organization.time_zone
            subtree = subtrees.get(s.pk)
            for pk, _, _, location_id, code, name in by_org_type[(s.organization_id, s.asset_type_id)]:
                if subtree is not None and location_id not in subtree:
                    continue
                zone = places.effective_zone(location_id, org_zone)
                targets[s.pk].append(Target(pk, zone, location_id, code, name))
    for s in schedules:
        org_zone = s.organization.time_zone
        if s.coverage == Coverage.ASSET:
            asset = s.asset
            if asset is not None and asset.status != Asset.Status.RETIRED:
                zone = places.effective_zone(asset.location_id, org_zone)
                targets[s.pk].append(Target(asset.pk, zone, asset.location_id, asset.code, asset.name))
        elif s.coverage == Coverage.ROUTINE:
            targets[s.pk].append(Target(None, places.effective_zone(s.location_id, org_zone), s.location_id))
    return targets


def schedule_zone(schedule: Schedule) -> str:
    """The zone a schedule's dates are shown in: its asset's site, its location's, else the organisation's."""
    location_id = schedule.asset.location_id if schedule.asset_id else schedule.location_id
    places = _Places([schedule.organization_id])
    return places.effective_zone(location_id, schedule.organization.time_zone)


def _latest_occurrences(pairs) -> dict[tuple[int, int], Occurrence]:
    """The most recent occurrence of each (schedule id, target key): one indexed lookup per pair, in one
    query per LATEST_BATCH pairs (a VALUES list joined by a correlated subquery; PostgreSQL and SQLite)."""
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    table = connection.ops.quote_name(Occurrence._meta.db_table)
    ids = []
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), LATEST_BATCH):
            batch = pairs[start : start + LATEST_BATCH]
            values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS bigint))"] * len(batch))
            sql = (
                f"WITH wanted(sid, tk) AS (VALUES {values}) "  # noqa: S608 - only placeholders are interpolated
                f"SELECT (SELECT o.id FROM {table} o WHERE o.schedule_id = wanted.sid AND o.target_key = wanted.tk "
                "ORDER BY o.due_at DESC LIMIT 1) FROM wanted"
            )
            cursor.execute(sql, [value for pair in batch for value in pair])
            ids.extend(row[0] for row in cursor.fetchall() if row[0] is not None)
    rows = Occurrence.objects.filter(pk__in=ids).select_related("work_order")
    return {(row.schedule_id, row.target_key): row for row in rows}


# =============================================================================================================
# Planning a pass
# =============================================================================================================


@dataclass
class Candidate:
    schedule: Schedule
    target: Target
    due_at: datetime
    status: str = Occurrence.Status.CREATED
    skip_reason: str = ""
    note: str = ""
    missed_count: int = 0
    meter_value: Decimal | None = None

    @property
    def key(self) -> tuple[int, int, datetime]:
        return (self.schedule.pk, self.target.key, self.due_at)


@dataclass
class _Due:
    due_at: datetime
    status: str = Occurrence.Status.CREATED
    skip_reason: str = ""
    note: str = ""
    missed_count: int = 0
    meter_value: Decimal | None = None


@dataclass
class Plan:
    now: datetime
    horizon: datetime
    candidates: list[Candidate] = field(default_factory=list)
    bookkeeping: dict[int, dict] = field(default_factory=dict)
    schedules: dict[int, Schedule] = field(default_factory=dict)


def _fmt_local(instant: datetime, zone_name: str) -> str:
    return instant.astimezone(ZoneInfo(zone_name)).strftime("%Y-%m-%d %H:%M %Z")


def _apply_misfire(schedule: Schedule, dues: list[datetime], now: datetime, zone_name: str) -> list[_Due]:
    """The misfire policy over one target's due times (ascending)."""
    lead = timedelta(days=schedule.lead_days)
    late = [d for d in dues if d - lead <= now]
    ahead = [_Due(d) for d in dues if d - lead > now]
    if not late:
        return ahead
    policy = schedule.misfire_policy
    if policy == Schedule.Misfire.CATCH_UP:
        kept = late[-schedule.misfire_cap :]
        dropped = len(late) - len(kept)
        note = (
            f"{dropped} older missed occurrence(s) beyond the cap of {schedule.misfire_cap} dropped." if dropped else ""
        )
        planned = [
            _Due(d, missed_count=dropped if i == 0 else 0, note=note if i == 0 else "") for i, d in enumerate(kept)
        ]
    elif policy == Schedule.Misfire.SKIP:
        cutoff = now - misfire_grace()
        missed = [d for d in late if d - lead < cutoff]
        planned = []
        if missed:
            planned.append(
                _Due(
                    missed[-1],
                    Occurrence.Status.SKIPPED,
                    Occurrence.SkipReason.MISFIRE,
                    missed_count=len(missed) - 1,
                    note=f"{len(missed)} occurrence(s) missed since {_fmt_local(missed[0], zone_name)} skipped.",
                )
            )
        planned += [_Due(d) for d in late[len(missed) :]]
    else:  # coalesce
        folded = len(late) - 1
        note = f"Coalesced with {folded} missed occurrence(s) since {_fmt_local(late[0], zone_name)}." if folded else ""
        planned = [_Due(late[-1], missed_count=folded, note=note)]
    return planned + ahead


def _skip_if_open(schedule: Schedule, planned: list[_Due], open_number: str | None, now: datetime) -> list[_Due]:
    """No stacking: while this schedule's previous order on the target is open, a due occurrence is recorded as
    skipped; within one pass only the first of several new ones is created. Future ones (a "generate now" ahead
    of time) are left for later instead of being recorded."""
    if not schedule.skip_if_open:
        return planned
    lead = timedelta(days=schedule.lead_days)
    result, blocker = [], open_number
    for due in planned:
        if due.status != Occurrence.Status.CREATED:
            result.append(due)
            continue
        if blocker is None:
            result.append(due)
            blocker = "the order created for " + due.due_at.strftime("%Y-%m-%d %H:%M UTC")
            continue
        if due.due_at - lead > now:
            continue  # not due yet: decided when it is
        result.append(
            _Due(
                due.due_at,
                Occurrence.Status.SKIPPED,
                Occurrence.SkipReason.OPEN_ORDER,
                missed_count=due.missed_count,
                note=f"Skipped: {blocker} is still open.",
            )
        )
    return result


def _open_orders(schedule_ids) -> dict[tuple[int, int], str]:
    """(schedule id, target key) → number of an open order generated by that schedule for that target."""
    rows = Occurrence.objects.filter(
        schedule_id__in=list(schedule_ids), work_order__status__in=WorkOrder.OPEN_STATUSES
    ).values_list("schedule_id", "target_key", "work_order__number")
    return {(sid, key): number for sid, key, number in rows}


def _select_schedules(now, horizon, organization, schedule_ids):
    queryset = Schedule.objects.active().select_related("organization", "asset")
    if organization is not None:
        queryset = queryset.filter(organization=organization)
    if schedule_ids is not None:
        queryset = queryset.filter(pk__in=list(schedule_ids))
    else:
        # next_run_at: when the generator next has something to do (null: nothing ever again)
        queryset = queryset.filter(
            Q(next_run_at__lte=horizon) | Q(trigger=Trigger.METER) | Q(mode=Schedule.Mode.FLOATING)
        )
    # An ended schedule has nothing more to do (two days of margin for time zones ahead of UTC).
    queryset = queryset.filter(Q(end_date__isnull=True) | Q(end_date__gte=(now - timedelta(days=2)).date()))
    return list(queryset.order_by("pk"))


def plan_generation(now, horizon, organization=None, schedule_ids=None) -> Plan:
    """Read everything a pass needs and decide what to insert (no writes)."""
    plan = Plan(now=now, horizon=horizon)
    schedules = _select_schedules(now, horizon, organization, schedule_ids)
    if not schedules:
        return plan
    plan.schedules = {s.pk: s for s in schedules}
    places = _Places({s.organization_id for s in schedules})
    targets = _resolve_targets(schedules, places)
    open_orders = _open_orders([s.pk for s in schedules if s.skip_if_open])
    stateful = [s for s in schedules if s.trigger == Trigger.METER or s.mode == Schedule.Mode.FLOATING]
    latest = _latest_occurrences([(s.pk, t.key) for s in stateful for t in targets[s.pk]])
    meter_plans = _plan_meters([s for s in schedules if s.trigger == Trigger.METER], targets, latest, now)

    for s in schedules:
        book = {"generated_through": s.generated_through, "next_due_at": None, "next_run_at": None}
        plan.bookkeeping[s.pk] = book
        if s.trigger == Trigger.METER:
            per_target = meter_plans.get(s.pk, {})
            book["generated_through"] = max(filter(None, [s.generated_through, now]))
        elif s.mode == Schedule.Mode.FLOATING:
            per_target = _plan_floating(s, targets[s.pk], latest, now, horizon, book)
        else:
            per_target = _plan_fixed(s, targets[s.pk], now, horizon, book)
        for target, dues in per_target.items():
            dues = _skip_if_open(s, dues, open_orders.get((s.pk, target.key)), now)
            for due in dues:
                plan.candidates.append(
                    Candidate(
                        s,
                        target,
                        due.due_at,
                        due.status,
                        due.skip_reason,
                        due.note[:300],
                        due.missed_count,
                        due.meter_value,
                    )
                )
    plan.candidates.sort(key=lambda c: c.key)  # one global order: concurrent passes cannot deadlock
    return plan


def _zones(targets: list[Target]) -> dict[str, list[Target]]:
    groups: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        groups[target.zone_name].append(target)
    return groups


def _plan_fixed(s: Schedule, targets, now, horizon, book) -> dict[Target, list[_Due]]:
    lead = timedelta(days=s.lead_days)
    cursor = s.generated_through
    due_after = cursor + lead if cursor is not None else None
    result = {}
    next_dues = []
    groups = _zones(targets)
    for zone_name, group in groups.items():
        zone = ZoneInfo(zone_name)
        dues = occurrences_between(s, zone, due_after, horizon + lead)
        if dues:
            planned = _apply_misfire(s, dues, now, zone_name)
            for target in group:
                result[target] = list(planned)
        upcoming = next_occurrence(s, zone, now + lead)
        if upcoming is not None:
            next_dues.append(upcoming)
    if not groups:  # nothing covered right now: wake up at the next date anyway (assets may be added)
        upcoming = next_occurrence(s, ZoneInfo(s.organization.time_zone), now + lead)
        if upcoming is not None:
            next_dues.append(upcoming)
    book["generated_through"] = max(filter(None, [cursor, now]))
    book["next_due_at"] = min(next_dues) if next_dues else None
    book["next_run_at"] = book["next_due_at"] - lead if book["next_due_at"] else None
    return result


def _floating_due(s: Schedule, latest: Occurrence | None, zone: ZoneInfo) -> datetime | None:
    """The next due time of a floating schedule on one target, or None while its order is open."""
    if latest is None:
        return to_utc(_anchor(s), zone)
    order = latest.work_order
    if latest.status == Occurrence.Status.CREATED and order is not None and order.is_open:
        return None  # counted from its completion
    if order is not None and order.status in DONE_STATUSES and order.completed_at is not None:
        base = datetime.combine(to_local(order.completed_at, zone).date(), s.time_of_day)
    else:  # skipped, cancelled or deleted: count from when it was due
        base = to_local(latest.due_at, zone)
    return to_utc(_add_interval(base, s), zone)


def _plan_floating(s: Schedule, targets, latest, now, horizon, book) -> dict[Target, list[_Due]]:
    lead = timedelta(days=s.lead_days)
    cutoff = now - misfire_grace()
    result, upcoming = {}, []
    for target in targets:
        zone = ZoneInfo(target.zone_name)
        due = _floating_due(s, latest.get((s.pk, target.key)), zone)
        if due is None:
            continue
        if s.end_date is not None and to_local(due, zone).date() > s.end_date:
            continue
        if due - lead > horizon:
            upcoming.append(due)
            continue
        planned = []
        if s.misfire_policy == Schedule.Misfire.SKIP and due - lead < cutoff:
            skipped, first = 0, due
            while due - lead < cutoff and skipped < 100_000:
                previous, due, skipped = due, to_utc(_add_interval(to_local(due, zone), s), zone), skipped + 1
            planned.append(
                _Due(
                    previous,
                    Occurrence.Status.SKIPPED,
                    Occurrence.SkipReason.MISFIRE,
                    missed_count=skipped - 1,
                    note=f"{skipped} occurrence(s) missed since {_fmt_local(first, target.zone_name)} skipped.",
                )
            )
            if due - lead <= horizon:
                planned.append(_Due(due))
            else:
                upcoming.append(due)
        else:
            planned.append(_Due(due))
        result[target] = planned
    book["generated_through"] = max(filter(None, [s.generated_through, now]))
    book["next_due_at"] = min(upcoming) if upcoming else None
    return result


# --- meters -----------------------------------------------------------------------------------------------


def _first_readings(conditions: dict[int, Q]) -> dict[int, tuple[datetime, Decimal]]:
    """For each meter id, the earliest reading matching its condition: (read_at, value). Two queries per
    OR_BATCH meters, whatever the number of readings (the (meter, read_at) index serves each branch)."""
    found: dict[int, tuple[datetime, Decimal]] = {}
    items = list(conditions.items())
    for start in range(0, len(items), OR_BATCH):
        batch = items[start : start + OR_BATCH]
        combined = Q()
        for meter_id, condition in batch:
            combined |= Q(meter_id=meter_id) & condition
        firsts = dict(
            MeterReading.objects.filter(combined)
            .values("meter_id")
            .annotate(first=Min("read_at"))
            .values_list("meter_id", "first")
        )
        if not firsts:
            continue
        exact = Q()
        for meter_id, read_at in firsts.items():
            exact |= Q(meter_id=meter_id, read_at=read_at)
        for meter_id, read_at, value in MeterReading.objects.filter(exact).values_list("meter_id", "read_at", "value"):
            found[meter_id] = (read_at, value)
    return found


def _in_rounds(items):
    """Split (schedule, target, meter, ...) tuples so that each meter appears once per round."""
    rounds: list[list] = []
    for item in items:
        meter_id = item[2].pk
        for bucket in rounds:
            if all(other[2].pk != meter_id for other in bucket):
                bucket.append(item)
                break
        else:
            rounds.append([item])
    return rounds


def _plan_meters(schedules, targets, latest, now) -> dict[int, dict[Target, list[_Due]]]:
    """Meter triggers. Every N units: due at the first reading that reaches the next mark (fixed: the next
    multiple of N above the last served value; floating: last served value + N); counting starts at the first
    reading on or after the start date. Threshold: due at the first reading above / below it, at most once per
    cooldown. Only meters with readings recorded since the schedule's last pass are looked at."""
    if not schedules:
        return {}
    pairs = [(s, t) for s in schedules for t in targets[s.pk] if t.asset_id]
    names = {s.meter_name.strip() for s in schedules}
    meters = {
        (m.asset_id, m.name): m
        for m in Meter.objects.filter(asset_id__in={t.asset_id for _, t in pairs}, name__in=names)
    }
    margin = timedelta(minutes=5)
    work = []  # (schedule, target, meter, latest, since_utc)
    for s, t in pairs:
        meter = meters.get((t.asset_id, s.meter_name.strip()))
        if meter is None or meter.last_read_at is None:
            continue
        if s.last_run_at is not None and meter.updated_at < s.last_run_at - margin:
            continue  # no reading recorded since the last look
        start = to_utc(datetime.combine(s.start_date, time.min), ZoneInfo(t.zone_name))
        work.append((s, t, meter, latest.get((s.pk, t.key)), start))

    result: dict[int, dict[Target, list[_Due]]] = defaultdict(dict)

    # Every N units without history: the baseline is the first reading on or after the start date.
    baselines: dict[tuple[int, int], tuple[datetime, Decimal]] = {}
    need_base = [w for w in work if w[0].meter_mode == Schedule.MeterMode.EVERY and w[3] is None]
    for bucket in _in_rounds(need_base):
        firsts = _first_readings({w[2].pk: Q(read_at__gte=w[4]) for w in bucket})
        for w in bucket:
            if w[2].pk in firsts:
                baselines[(w[0].pk, w[1].key)] = firsts[w[2].pk]

    crossing = []  # (schedule, target, meter, condition)
    for s, t, meter, last, start in work:
        if s.meter_mode == Schedule.MeterMode.EVERY:
            if last is not None:
                base_at, base_value = last.due_at, last.meter_value
                if base_value is None:
                    continue
            elif (s.pk, t.key) in baselines:
                base_at, base_value = baselines[(s.pk, t.key)]
            else:
                continue
            step = s.meter_interval
            mark = base_value + step if s.mode == Schedule.Mode.FLOATING else (base_value // step + 1) * step
            if meter.last_value is None or meter.last_value < mark:
                continue  # the newest reading has not reached it (counters only grow)
            crossing.append((s, t, meter, Q(read_at__gt=base_at, value__gte=mark), mark))
        else:
            since = start
            if last is not None:
                since = max(start, last.due_at + timedelta(minutes=s.cooldown_minutes))
            condition = Q(read_at__gte=since)
            if last is not None:
                condition &= Q(read_at__gt=last.due_at)
            if s.last_run_at is not None:
                condition &= Q(created_at__gte=s.last_run_at - margin)
            threshold = s.meter_threshold
            condition &= Q(value__gt=threshold) if s.meter_mode == Schedule.MeterMode.ABOVE else Q(value__lt=threshold)
            crossing.append((s, t, meter, condition, threshold))

    for bucket in _in_rounds(crossing):
        firsts = _first_readings({item[2].pk: item[3] for item in bucket})
        for s, t, meter, _, mark in bucket:
            if meter.pk not in firsts:
                continue
            read_at, value = firsts[meter.pk]
            if s.end_date is not None and to_local(read_at, ZoneInfo(t.zone_name)).date() > s.end_date:
                continue
            if s.meter_mode == Schedule.MeterMode.EVERY:
                note = f"{meter.name} reached {value:f} {meter.unit} (service mark {mark:f})."
            else:
                word = "above" if s.meter_mode == Schedule.MeterMode.ABOVE else "below"
                note = f"{meter.name} read {value:f} {meter.unit}, {word} the threshold of {mark:f}."
            result[s.pk][t] = [_Due(read_at, note=note.replace("  ", " "), meter_value=value)]
    return result


# =============================================================================================================
# Applying a plan: occurrences, work orders, checklists, reservations, events
# =============================================================================================================


@dataclass
class GenerationResult:
    created: int = 0
    skipped: int = 0
    work_order_ids: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    as_of: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "skipped": self.skipped,
            "work_orders": self.work_order_ids,
            "as_of": self.as_of,
        }


class _Safe(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def _title(s: Schedule, target: Target, due_at: datetime) -> str:
    template = s.title or s.name
    values = _Safe(
        asset=target.asset_name or "",
        asset_code=target.asset_code or "",
        due_date=to_local(due_at, ZoneInfo(target.zone_name)).date().isoformat(),
    )
    try:
        title = template.format_map(values)
    except (ValueError, IndexError, AttributeError):
        title = template
    return title[:200]


def _description(candidate: Candidate) -> str:
    s, target = candidate.schedule, candidate.target
    lines = [s.instructions.strip()] if s.instructions.strip() else []
    lines.append(f"Preventive schedule “{s.name}”, due {_fmt_local(candidate.due_at, target.zone_name)}.")
    if candidate.note:
        lines.append(candidate.note)
    return "\n\n".join(lines)


def _payload(order: WorkOrder, schedule: Schedule) -> dict:
    return {
        "id": order.pk,
        "number": order.number,
        "title": order.title,
        "status": order.status,
        "priority": order.priority,
        "type": order.type,
        "asset": order.asset_id,
        "assignee": order.assignee_id,
        "team": order.team_id,
        "due_at": order.due_at,
        "source": order.source,
        "schedule": schedule.pk,
    }


def _link_orders(pairs: list[tuple[int, int]]) -> None:
    """Point occurrences at their work orders: one UPDATE per chunk (UPDATE … FROM (VALUES …))."""
    if not pairs:
        return
    table = connection.ops.quote_name(Occurrence._meta.db_table)
    values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS bigint))"] * len(pairs))
    params = [value for pair in pairs for value in pair]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS o SET work_order_id = v.wo FROM (VALUES {values}) AS v(id, wo) "  # noqa: S608
                "WHERE o.id = v.id",
                params,
            )
        else:
            cursor.execute(
                f"WITH v(id, wo) AS (VALUES {values}) UPDATE {table} SET work_order_id = "  # noqa: S608
                f"(SELECT v.wo FROM v WHERE v.id = {table}.id) WHERE id IN (SELECT id FROM v)",
                params,
            )


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def _db_value(field, value):
    return field.get_db_prep_save(value, connection)


def _history_by_select(model, ids: list[int], *, reason: str) -> None:
    """The "+" history rows of rows just bulk-inserted, written by the database itself:
    INSERT INTO <history> (…) SELECT <the row's columns>, <date>, <reason>, '+', <user> FROM <table> WHERE id IN
    (…) — one statement, no Python object per row. simple-history's history model has the model's columns plus
    history_id / history_date / history_change_reason / history_type / history_user_id."""
    if not ids:
        return
    history_model = model.history.model
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user_id"}
    columns = [f.column for f in history_model._meta.concrete_fields if f.column not in own]
    user = audit.current_user()
    date_field = history_model._meta.get_field("history_date")
    insert = ", ".join(
        _quoted(c) for c in [*columns, "history_date", "history_change_reason", "history_type", "history_user_id"]
    )
    select = ", ".join(f"t.{_quoted(c)}" for c in columns)
    sql = (
        f"INSERT INTO {_quoted(history_model._meta.db_table)} ({insert}) "  # noqa: S608 - names are quoted
        f"SELECT {select}, %s, %s, %s, %s FROM {_quoted(model._meta.db_table)} t "
        f"WHERE t.{_quoted(model._meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})"
    )
    params = [_db_value(date_field, timezone.now()), reason[:100], "+", user.pk if user is not None else None, *ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _copy_checklists(order_ids: list[int]) -> int:
    """Copy each new order's procedure steps onto its checklist in the database: INSERT INTO checklist item
    SELECT … FROM the orders joined to their occurrence, schedule and the procedure's steps (positions 1, 2, …
    in step order, as `apply_procedure` numbers them), then their history. Columns this code does not know get
    their model default. Returns how many items were written."""
    if not order_ids:
        return 0
    item = ChecklistItem._meta
    step, order, occurrence, schedule = (
        _quoted(ProcedureItem._meta.db_table),
        _quoted(WorkOrder._meta.db_table),
        _quoted(Occurrence._meta.db_table),
        _quoted(Schedule._meta.db_table),
    )
    now_value = _db_value(item.get_field("created_at"), timezone.now())
    known = {
        "organization_id": ("w.organization_id", []),
        "created_at": ("%s", [now_value]),
        "updated_at": ("%s", [now_value]),
        "work_order_id": ("w.id", []),
        "position": (f"ROW_NUMBER() OVER (PARTITION BY w.id ORDER BY p.{_quoted('position')}, p.id)", []),
        "text": (f"p.{_quoted('text')}", []),
        "kind": (f"p.{_quoted('kind')}", []),
        "unit": (f"p.{_quoted('unit')}", []),
        "required": (f"p.{_quoted('required')}", []),
    }
    columns, expressions, params = [], [], []
    for column in item.concrete_fields:
        if column.primary_key:
            continue
        expression, values = known.get(column.attname, ("%s", [_db_value(column, column.get_default())]))
        columns.append(_quoted(column.column))
        expressions.append(expression)
        params.extend(values)
    placeholders = ", ".join(["%s"] * len(order_ids))
    sql = (
        f"INSERT INTO {_quoted(item.db_table)} ({', '.join(columns)}) "  # noqa: S608 - names are quoted
        f"SELECT {', '.join(expressions)} FROM {order} w "
        f"JOIN {occurrence} o ON o.work_order_id = w.id JOIN {schedule} s ON s.id = o.schedule_id "
        f"JOIN {step} p ON p.procedure_id = s.procedure_id WHERE w.id IN ({placeholders})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *order_ids])
        written = cursor.rowcount
    if written:
        ids = list(ChecklistItem.objects.filter(work_order_id__in=order_ids).values_list("pk", flat=True))
        _history_by_select(ChecklistItem, ids, reason="copied from the procedure")
    return written


class _Caches:
    """What several chunks of one pass share: the template parts of the schedules."""

    def __init__(self):
        self.parts: dict[int, list[ScheduleTemplatePart]] = {}

    def load_parts(self, schedule_ids):
        missing = set(schedule_ids) - set(self.parts)
        if missing:
            for pk in missing:
                self.parts[pk] = []
            rows = ScheduleTemplatePart.objects.filter(schedule_id__in=missing).select_related("part", "stock_location")
            for line in rows.order_by("schedule_id", "id"):
                self.parts[line.schedule_id].append(line)


def _reserve_parts(orders_with_schedules, caches: _Caches) -> list[str]:
    """Reserve the templates' parts for new orders, in bulk: per (part, stock location) one UPDATE of the stock
    level, one insert of all reservations with their history, one low-stock check per part. What cannot be
    reserved (a part or location no longer in use) is reported, not fatal."""
    from inventory import services as inventory_services

    caches.load_parts({s.pk for _, s in orders_with_schedules})
    totals: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    reservations, problems, parts = [], [], {}
    for order, s in orders_with_schedules:
        for line in caches.parts[s.pk]:
            if not line.part.is_active or not line.stock_location.is_active:
                problems.append(f"{line.part.sku} at {line.stock_location.name} is no longer in use: not reserved.")
                continue
            totals[(line.part_id, line.stock_location_id)] += line.quantity
            parts[line.part_id] = line.part
            reservations.append(
                Reservation(
                    organization_id=order.organization_id,
                    work_order=order,
                    part_id=line.part_id,
                    location_id=line.stock_location_id,
                    quantity=line.quantity,
                )
            )
    if not reservations:
        return problems
    organization_of = {pk: part.organization_id for pk, part in parts.items()}
    StockLevel.objects.bulk_create(
        [StockLevel(organization_id=organization_of[p], part_id=p, location_id=loc) for p, loc in totals],
        ignore_conflicts=True,
    )
    now = timezone.now()
    for (part_id, location_id), quantity in sorted(totals.items()):
        StockLevel.objects.filter(part_id=part_id, location_id=location_id).update(
            reserved=F("reserved") + quantity, updated_at=now
        )
    reservations = Reservation.objects.bulk_create(reservations, batch_size=chunk_size())
    _history_by_select(Reservation, [r.pk for r in reservations], reason="reserved for a preventive order")
    for part in parts.values():
        inventory_services.check_low_stock(part)
    return problems


def _sla_created(orders) -> None:
    """The SLA module's "order created" hook, for every new order: its batch form when it has one; otherwise the
    per-order hook, called only in organisations that have an active SLA policy (without one no clock starts,
    and the per-order policy lookup would cost a few queries per order for nothing)."""
    from sla import services as sla_services

    many = getattr(sla_services, "on_work_orders_created", None)
    if many is not None:
        many(orders)
        return
    try:
        from sla.models import SLAPolicy
    except ImportError:  # pragma: no cover - the SLA app is always installed
        covered = {order.organization_id for order in orders}
    else:
        organization_ids = {order.organization_id for order in orders}
        covered = set(
            SLAPolicy.objects.active()
            .filter(organization_id__in=organization_ids)
            .values_list("organization_id", flat=True)
        )
    for order in orders:
        if order.organization_id in covered:
            sla_services.on_work_order_created(order)


def _apply_chunk(candidates: list[Candidate], run: GenerationRun, caches: _Caches, result: GenerationResult) -> None:
    with transaction.atomic():
        before = Occurrence.objects.filter(run=run).order_by("-pk").values_list("pk", flat=True).first() or 0
        rows = [
            Occurrence(
                organization_id=c.schedule.organization_id,
                schedule_id=c.schedule.pk,
                asset_id=c.target.asset_id,
                target_key=c.target.key,
                due_at=c.due_at,
                status=c.status,
                skip_reason=c.skip_reason,
                note=c.note,
                missed_count=c.missed_count,
                meter_value=c.meter_value,
                run=run,
            )
            for c in candidates
        ]
        Occurrence.objects.bulk_create(rows, ignore_conflicts=True, batch_size=chunk_size())
        # The rows stamped with this run are the ones this pass inserted; a conflicting row kept its own stamp.
        mine = {
            (sid, key, due): (pk, status)
            for pk, sid, key, due, status in Occurrence.objects.filter(run=run, pk__gt=before).values_list(
                "pk", "schedule_id", "target_key", "due_at", "status"
            )
        }
        to_create = [(c, mine[c.key][0]) for c in candidates if c.key in mine and c.status == Occurrence.Status.CREATED]
        result.skipped += sum(1 for _, status in mine.values() if status == Occurrence.Status.SKIPPED)
        if not to_create:
            return
        by_org: dict[int, list] = defaultdict(list)
        for c, occurrence_id in to_create:
            by_org[c.schedule.organization_id].append((c, occurrence_id))
        orders, sources = [], []
        for organization_id, items in sorted(by_org.items()):
            organization = items[0][0].schedule.organization
            numbers = reserve_numbers(organization, len(items))
            for (c, occurrence_id), number in zip(items, numbers, strict=True):
                s, target = c.schedule, c.target
                orders.append(
                    WorkOrder(
                        organization_id=organization_id,
                        number=format_number(number),
                        title=_title(s, target, c.due_at),
                        description=_description(c),
                        type=s.work_type,
                        priority=s.priority,
                        status=WorkOrder.Status.ASSIGNED if s.assignee_id else WorkOrder.Status.OPEN,
                        asset_id=target.asset_id,
                        location_id=target.location_id,
                        assignee_id=s.assignee_id,
                        team_id=s.team_id,
                        due_at=c.due_at,
                        estimated_minutes=s.estimated_minutes,
                        source=WorkOrder.Source.PREVENTIVE,
                    )
                )
                sources.append((c, occurrence_id))
        orders = WorkOrder.objects.bulk_create(orders, batch_size=chunk_size())
        order_ids = [order.pk for order in orders]
        _history_by_select(WorkOrder, order_ids, reason="generated by a preventive schedule")
        _link_orders([(occurrence_id, order.pk) for (_, occurrence_id), order in zip(sources, orders, strict=True)])
        if any(c.schedule.procedure_id for c, _ in sources):
            _copy_checklists(order_ids)
        _reserve_parts([(order, c.schedule) for (c, _), order in zip(sources, orders, strict=True)], caches)
        _sla_created(orders)
        per_org: dict[int, list] = defaultdict(list)
        for (c, _), order in zip(sources, orders, strict=True):
            per_org[order.organization_id].append((order, c.schedule))
        for items_of_org in per_org.values():
            organization = items_of_org[0][1].organization
            publish_many(
                organization,
                "work-order:created",
                [_payload(order, s) for order, s in items_of_org],
                user_ids=[order.assignee_id for order, _ in items_of_org],
            )
        result.created += len(orders)
        result.work_order_ids.extend(order.pk for order in orders)


def _save_bookkeeping(plan: Plan) -> None:
    """Record each schedule's cursor and next dates in one UPDATE; a schedule edited meanwhile (its
    `updated_at` moved) is left alone: its edit recomputed them."""
    if not plan.bookkeeping:
        return
    ids = list(plan.bookkeeping)
    unchanged = Q()
    for pk in ids:
        unchanged |= Q(pk=pk, updated_at=plan.schedules[pk].updated_at)

    def case(name):
        whens = [When(pk=pk, then=Value(book[name])) for pk, book in plan.bookkeeping.items()]
        return Case(*whens, default=F(name), output_field=Schedule._meta.get_field(name))

    Schedule.objects.filter(unchanged).update(
        generated_through=case("generated_through"),
        next_due_at=case("next_due_at"),
        next_run_at=case("next_run_at"),
        last_run_at=Value(plan.now),
    )


def generate_due_work_orders(
    now=None, organization=None, *, schedule_ids=None, days_ahead: int = 0, actor=None
) -> GenerationResult:
    """Create the work orders that are due (and record the skips), exactly once, however often and from however
    many processes this runs. `organization` limits it to one; `schedule_ids` to some schedules (then their
    bookkeeping is not waited for); `days_ahead` also creates what falls due within that many days."""
    now = now or timezone.now()
    horizon = now + timedelta(days=days_ahead)
    user = actor or audit.system_user()
    result = GenerationResult(as_of=now)
    with audit.acting_as(user, reason="preventive generation"):
        plan = plan_generation(now, horizon, organization, schedule_ids)
        if plan.candidates:
            run = GenerationRun.objects.create(organization=organization, as_of=now, triggered_by=user)
            result.runs.append(run.pk)
            caches = _Caches()
            size = chunk_size()
            for start in range(0, len(plan.candidates), size):
                _apply_chunk(plan.candidates[start : start + size], run, caches, result)
            GenerationRun.objects.filter(pk=run.pk).update(
                finished_at=timezone.now(), created_count=result.created, skipped_count=result.skipped
            )
        _save_bookkeeping(plan)
    return result


# =============================================================================================================
# Schedule services (the only writers of schedules)
# =============================================================================================================


def _require(organization_id, actor, action: Action = Action.MANAGE_SCHEDULES) -> None:
    tenancy_services.require_role(organization_id, actor, action)


def _parse_parts(organization_id, parts) -> list[dict]:
    """Template part lines: dicts of part, stock_location, quantity (objects or ids)."""
    from inventory.services import parse_quantity

    lines, seen = [], set()
    for index, raw in enumerate(parts or ()):
        prefix = f"parts[{index}]"
        part, location = raw.get("part"), raw.get("stock_location")
        if not isinstance(part, Part):
            part = Part.objects.filter(organization_id=organization_id, pk=part).first() if part else None
        if not isinstance(location, StockLocation):
            location = (
                StockLocation.objects.filter(organization_id=organization_id, pk=location).first() if location else None
            )
        if part is None or part.organization_id != organization_id:
            raise InvalidInput(f"Part line {index + 1}: no such part.", fields={f"{prefix}.part": ["No such part."]})
        if location is None or location.organization_id != organization_id:
            raise InvalidInput(
                f"Part line {index + 1}: no such stock location.",
                fields={f"{prefix}.stock_location": ["No such stock location."]},
            )
        try:
            quantity = parse_quantity(part, raw.get("quantity"))
        except InvalidInput as exc:
            raise InvalidInput(
                f"Part line {index + 1}: {exc.message}", fields={f"{prefix}.quantity": [exc.message]}
            ) from None
        if (part.pk, location.pk) in seen:
            raise InvalidInput(
                f"Part line {index + 1}: {part.sku} at {location.name} is listed twice; add the quantities up.",
                fields={f"{prefix}.part": ["Listed twice."]},
            )
        seen.add((part.pk, location.pk))
        lines.append({"part": part, "stock_location": location, "quantity": quantity})
    return lines


def _replace_parts(schedule: Schedule, lines: list[dict]) -> None:
    existing = list(schedule.template_parts.all())
    for line in existing:
        line.delete()
    audit.bulk_create_with_history(
        [ScheduleTemplatePart(organization_id=schedule.organization_id, schedule=schedule, **line) for line in lines],
        ScheduleTemplatePart,
    )


def _refresh_next(schedule: Schedule, now=None) -> None:
    """After an edit: the next pass looks at the schedule (`next_run_at` = now) and computes the exact moments
    per target zone; `next_due_at` is filled for display (in the schedule's own zone)."""
    now = now or timezone.now()
    schedule.next_run_at = now
    schedule.next_due_at = None
    if schedule.trigger != Trigger.METER and schedule.mode == Schedule.Mode.FIXED:
        after = max(filter(None, [schedule.generated_through, now - timedelta(days=schedule.lead_days)]))
        schedule.next_due_at = next_occurrence(
            schedule, ZoneInfo(schedule_zone(schedule)), after + timedelta(days=schedule.lead_days)
        )


def _owed_from(schedule: Schedule, now) -> datetime:
    """The generation cursor of a schedule that starts (or resumes) now: occurrences due before now are not
    owed; those due later are, even when their lead time has begun already."""
    return now - timedelta(days=schedule.lead_days)


def _apply_fields(schedule: Schedule, fields: dict) -> None:
    unknown = set(fields) - SCHEDULE_FIELDS
    if unknown:
        raise InvalidInput(
            f"A preventive schedule has no field(s) {', '.join(sorted(unknown))}.",
            fields={name: ["Unknown field."] for name in unknown},
        )
    for name, value in fields.items():
        if name in ("cron_expression",) and isinstance(value, str):
            value = _clean_cron(value)
        elif name in ("rrule", "name", "meter_name", "title") and isinstance(value, str):
            value = value.strip()
        setattr(schedule, name, value)


@audit.attributed
@transaction.atomic
def create_schedule(organization, *, actor=None, parts=None, **fields) -> Schedule:
    """Add a preventive schedule (`parts`: list of {part, stock_location, quantity}). Bad expressions and
    inconsistent coverage are an InvalidInput saying, per field, what is wrong."""
    _require(organization.pk, actor)
    fields.setdefault("start_date", timezone.localdate(timezone.now(), organization.zone))
    schedule = Schedule(organization=organization)
    _apply_fields(schedule, fields)
    validated(schedule)
    validate_assignee(organization.pk, schedule.assignee)
    lines = _parse_parts(organization.pk, parts)
    now = timezone.now()
    schedule.generated_through = _owed_from(schedule, now)
    _refresh_next(schedule, now)
    schedule.save()
    if lines:
        _replace_parts(schedule, lines)
    return schedule


def _locked(schedule: Schedule) -> Schedule:
    return Schedule.objects.select_for_update(of=("self",)).select_related("organization", "asset").get(pk=schedule.pk)


@audit.attributed
@transaction.atomic
def update_schedule(schedule: Schedule, *, actor=None, parts=None, **changes) -> Schedule:
    """Edit a schedule; `parts`, when given, replaces its part list. Occurrences already generated stay."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    _apply_fields(schedule, changes)
    validated(schedule)
    if "assignee" in changes:
        validate_assignee(schedule.organization_id, schedule.assignee)
    if set(changes) & TRIGGER_FIELDS:
        _refresh_next(schedule)
    schedule.save()
    if parts is not None:
        _replace_parts(schedule, _parse_parts(schedule.organization_id, parts))
    return schedule


@audit.attributed
@transaction.atomic
def delete_schedule(schedule: Schedule, *, actor=None) -> None:
    """Delete a schedule that never generated anything; one with history must be paused or ended (409)."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    generated = schedule.occurrences.count()
    if generated:
        raise Conflict(
            f"“{schedule.name}” has {generated} generated occurrence(s): pause it or give it an end date instead, "
            "so its history and statistics stay.",
            code="in_use",
        )
    schedule.template_parts.all().delete()
    delete_or_conflict(schedule, "preventive schedule")


@audit.attributed
@transaction.atomic
def pause_schedule(schedule: Schedule, *, actor=None, reason: str = "") -> Schedule:
    """Stop generating (nothing is owed for the paused time: resuming does not catch up)."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    if schedule.status == Schedule.Status.PAUSED:
        raise Conflict(f"“{schedule.name}” is already paused.", code="already_paused")
    schedule.status = Schedule.Status.PAUSED
    schedule.paused_at = timezone.now()
    schedule.pause_reason = (reason or "").strip()[:300]
    schedule._change_reason = f"paused: {schedule.pause_reason}" if schedule.pause_reason else "paused"
    schedule.save()
    return schedule


@audit.attributed
@transaction.atomic
def resume_schedule(schedule: Schedule, *, actor=None, now=None) -> Schedule:
    """Generate again from now on; occurrences that fell in the pause are not created."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    if schedule.status == Schedule.Status.ACTIVE:
        raise Conflict(f"“{schedule.name}” is not paused.", code="not_paused")
    now = now or timezone.now()
    schedule.status = Schedule.Status.ACTIVE
    schedule.paused_at = None
    schedule.pause_reason = ""
    schedule.generated_through = max(filter(None, [schedule.generated_through, _owed_from(schedule, now)]))
    schedule.last_run_at = max(filter(None, [schedule.last_run_at, now]))
    _refresh_next(schedule, now)
    schedule._change_reason = "resumed"
    schedule.save()
    return schedule


def generate_now(schedule: Schedule, *, actor=None, days_ahead: int = 0, now=None) -> GenerationResult:
    """“Generate now” (admin action, API): create what this schedule has due, or due within `days_ahead` days."""
    _require(schedule.organization_id, actor)
    if schedule.status != Schedule.Status.ACTIVE:
        raise Conflict(f"“{schedule.name}” is paused: resume it to generate.", code="paused")
    if not 0 <= int(days_ahead) <= 366:
        raise InvalidInput("Generate at most 366 days ahead.", fields={"days_ahead": ["From 0 to 366."]})
    return generate_due_work_orders(
        now, schedule.organization, schedule_ids=[schedule.pk], days_ahead=int(days_ahead), actor=actor
    )


# =============================================================================================================
# Forecast and statistics
# =============================================================================================================


def _parts_of(schedules) -> dict[int, list[ScheduleTemplatePart]]:
    parts: dict[int, list] = defaultdict(list)
    rows = ScheduleTemplatePart.objects.filter(schedule__in=list(schedules)).select_related("part", "stock_location")
    for line in rows.order_by("schedule_id", "id"):
        parts[line.schedule_id].append(line)
    return parts


def forecast(organization, *, days: int = 30, schedule: Schedule | None = None, now=None) -> dict:
    """The occurrences due over the next `days` days (per schedule, or for the organisation), with the parts
    they will need in total. Calendar and interval schedules are listed by date; floating ones by their next
    due date; meter schedules cannot be dated and are listed with the meter's state. Already generated ones
    are marked so."""
    now = now or timezone.now()
    if not 1 <= int(days) <= MAX_FORECAST_DAYS:
        raise InvalidInput(
            f"Forecast 1 to {MAX_FORECAST_DAYS} days ahead.", fields={"days": [f"From 1 to {MAX_FORECAST_DAYS}."]}
        )
    until = now + timedelta(days=int(days))
    queryset = Schedule.objects.for_tenant(organization).active().select_related("organization", "asset")
    if schedule is not None:
        queryset = queryset.filter(pk=schedule.pk)
    queryset = queryset.filter(start_date__lte=until.date()).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=now.date())
    )
    schedules = list(queryset.order_by("name", "pk"))
    places = _Places([organization.pk])
    targets = _resolve_targets(schedules, places)
    floating = [s for s in schedules if s.mode == Schedule.Mode.FLOATING and s.trigger != Trigger.METER]
    latest = _latest_occurrences([(s.pk, t.key) for s in floating for t in targets[s.pk]])
    parts = _parts_of(schedules)
    rows, meter_rows, truncated = [], [], False
    for s in schedules:
        if s.trigger == Trigger.METER:
            meter_rows.append(
                {
                    "schedule": s.pk,
                    "schedule_name": s.name,
                    "assets": len(targets[s.pk]),
                    "meter": s.meter_name,
                    "rule": trigger_summary(s),
                }
            )
            continue
        for target in targets[s.pk]:
            zone = ZoneInfo(target.zone_name)
            if s.mode == Schedule.Mode.FLOATING:
                due = _floating_due(s, latest.get((s.pk, target.key)), zone)
                dues = [due] if due is not None and now < due <= until else []
            else:
                dues = occurrences_between(s, zone, now, until)
            for due in dues:
                if len(rows) >= MAX_FORECAST_ROWS:
                    truncated = True
                    break
                rows.append((s, target, due))
    generated = set()
    if rows:
        generated = set(
            Occurrence.objects.filter(
                schedule_id__in={s.pk for s, _, _ in rows}, due_at__gt=now, due_at__lte=until
            ).values_list("schedule_id", "target_key", "due_at")
        )
    rows.sort(key=lambda row: (row[2], row[0].name, row[1].asset_code))
    needed: dict[tuple[int, int], dict] = {}
    occurrences = []
    for s, target, due in rows:
        lines = []
        for line in parts.get(s.pk, ()):
            lines.append(
                {
                    "part": line.part_id,
                    "sku": line.part.sku,
                    "quantity": f"{line.quantity:f}",
                    "stock_location": line.stock_location_id,
                }
            )
            entry = needed.setdefault(
                (line.part_id, line.stock_location_id),
                {
                    "part": line.part_id,
                    "sku": line.part.sku,
                    "name": line.part.name,
                    "unit": line.part.unit,
                    "stock_location": line.stock_location_id,
                    "stock_location_name": line.stock_location.name,
                    "quantity": Decimal("0"),
                    "occurrences": 0,
                },
            )
            entry["quantity"] += line.quantity
            entry["occurrences"] += 1
        occurrences.append(
            {
                "schedule": s.pk,
                "schedule_name": s.name,
                "asset": target.asset_id,
                "asset_code": target.asset_code,
                "asset_name": target.asset_name,
                "location": target.location_id,
                "due_at": due,
                "local_due": to_local(due, ZoneInfo(target.zone_name)).isoformat(timespec="minutes"),
                "time_zone": target.zone_name,
                "title": _title(s, target, due),
                "estimated_minutes": s.estimated_minutes,
                "generated": (s.pk, target.key, due) in generated,
                "parts": lines,
            }
        )
    for entry in needed.values():
        entry["quantity"] = f"{entry['quantity']:f}"  # as the API writes quantities: "4.000"
    return {
        "from": now,
        "until": until,
        "days": int(days),
        "count": len(occurrences),
        "truncated": truncated,
        "occurrences": occurrences,
        "parts_needed": sorted(needed.values(), key=lambda entry: (entry["sku"], entry["stock_location_name"])),
        "meter_schedules": meter_rows,
    }


PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
GROUPS = ("period", "schedule", "asset")


def statistics(
    organization,
    *,
    start=None,
    end=None,
    group_by: str = "period",
    period: str = "month",
    schedule=None,
    asset=None,
    now=None,
) -> dict:
    """Generated, completed on time (within ON_TIME_TOLERANCE of the due time), completed late, overdue,
    skipped, and PM compliance = on time ÷ occurrences whose time to be done has passed (skips count against
    it; orders still open within the tolerance are not counted yet), per period, schedule or asset. One
    aggregate query; the same SQL on SQLite and PostgreSQL."""
    now = now or timezone.now()
    end = end or now
    start = start or end - timedelta(days=90)
    if start >= end:
        raise InvalidInput("The start of the period must be before its end.", fields={"start": ["After the end."]})
    if group_by not in GROUPS:
        raise InvalidInput(f"Group by one of {', '.join(GROUPS)}.", fields={"group_by": ["Unknown grouping."]})
    if period not in PERIODS:
        raise InvalidInput(f"A period is one of {', '.join(PERIODS)}.", fields={"period": ["Unknown period."]})
    rows = Occurrence.objects.filter(organization=organization, due_at__gte=start, due_at__lt=end)
    if schedule is not None:
        rows = rows.filter(schedule=schedule)
    if asset is not None:
        rows = rows.filter(asset=asset)
    deadline = F("due_at") + Value(ON_TIME_TOLERANCE)
    created = Q(status=Occurrence.Status.CREATED)
    done = created & Q(work_order__status__in=DONE_STATUSES)
    on_time = done & Q(work_order__completed_at__lte=deadline)
    is_open = created & Q(work_order__status__in=WorkOrder.OPEN_STATUSES)
    measures = {
        "generated": Count("pk", filter=created),
        "completed_on_time": Count("pk", filter=on_time),
        "completed_late": Count("pk", filter=done & Q(work_order__completed_at__gt=deadline)),
        "overdue": Count("pk", filter=is_open & Q(due_at__lt=now - ON_TIME_TOLERANCE)),
        "open": Count("pk", filter=is_open & Q(due_at__gte=now - ON_TIME_TOLERANCE)),
        "cancelled": Count("pk", filter=created & Q(work_order__status=WorkOrder.Status.CANCELLED)),
        "skipped": Count("pk", filter=Q(status=Occurrence.Status.SKIPPED)),
    }
    if group_by == "period":
        rows = rows.annotate(group=PERIODS[period]("due_at", tzinfo=organization.zone)).values("group")
    elif group_by == "schedule":
        rows = rows.values("schedule_id", "schedule__name").annotate(group=F("schedule_id"))
    else:
        rows = rows.values("asset_id", "asset__code").annotate(group=F("asset_id"))
    groups = []
    for row in rows.annotate(**measures).order_by("group"):
        entry = {name: row[name] for name in measures}
        if group_by == "period":
            moment = row["group"]
            entry["period"] = (moment.date() if isinstance(moment, datetime) else moment).isoformat()
        elif group_by == "schedule":
            entry["schedule"], entry["schedule_name"] = row["schedule_id"], row["schedule__name"]
        else:
            entry["asset"], entry["asset_code"] = row["asset_id"], row["asset__code"]
        groups.append(_with_compliance(entry))
    totals = _with_compliance({name: sum(g[name] for g in groups) for name in measures})
    return {"start": start, "end": end, "group_by": group_by, "period": period, "totals": totals, "groups": groups}


def _with_compliance(entry: dict) -> dict:
    decided = entry["generated"] + entry["skipped"] - entry["open"]
    entry["compliance"] = round(100 * entry["completed_on_time"] / decided, 1) if decided > 0 else None
    return entry


# =============================================================================================================
# Reading a schedule: the trigger in words, the next due dates
# =============================================================================================================


def trigger_summary(s: Schedule) -> str:
    """The trigger as a person would say it."""
    if s.trigger == Trigger.CRON:
        text = f"cron “{s.cron_expression}”"
    elif s.trigger == Trigger.RRULE:
        text = f"RRULE {s.rrule} from {s.start_date:%Y-%m-%d} {s.time_of_day:%H:%M}"
    elif s.trigger == Trigger.INTERVAL:
        count, unit = s.interval_count or 1, s.interval_unit or "days"
        every = f"every {count} {unit}" if count != 1 else f"every {unit.rstrip('s')}"
        text = f"{every} at {s.time_of_day:%H:%M}"
        if s.mode == Schedule.Mode.FLOATING:
            text += " after the last completion"
    elif s.trigger == Trigger.METER:
        unit = ""
        if s.meter_mode == Schedule.MeterMode.EVERY:
            text = f"every {s.meter_interval:f} of “{s.meter_name}”{unit}"
            if s.mode == Schedule.Mode.FLOATING:
                text += " after the last service"
        else:
            word = "above" if s.meter_mode == Schedule.MeterMode.ABOVE else "below"
            text = f"“{s.meter_name}” {word} {s.meter_threshold:f}"
            if s.cooldown_minutes:
                text += f", at most once per {s.cooldown_minutes} min"
    else:
        text = "no trigger"
    if s.lead_days:
        text += f"; created {s.lead_days} day(s) ahead"
    return text


def next_due_dates(s: Schedule, count: int = 5, now=None) -> list[datetime]:
    """The next `count` due times of a fixed calendar / interval schedule (in its zone); [] otherwise."""
    if s.trigger == Trigger.METER or s.mode == Schedule.Mode.FLOATING or not s.start_date:
        return [s.next_due_at] if s.next_due_at else []
    if schedule_problems(s):
        return []
    now = now or timezone.now()
    zone = ZoneInfo(schedule_zone(s))
    found, after = [], now
    for _ in range(count):
        upcoming = next_occurrence(s, zone, after)
        if upcoming is None:
            break
        found.append(upcoming)
        after = upcoming
    return found


# =============================================================================================================
# Calendar feeds (the .ics of upcoming preventive work)
# =============================================================================================================


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@audit.attributed
@transaction.atomic
def create_calendar_feed(organization, *, name: str, actor=None) -> tuple[CalendarFeed, str]:
    """A new secret feed URL token; returned once (only its hash is kept)."""
    _require(organization.pk, actor)
    token = secrets.token_urlsafe(24)
    feed = CalendarFeed(
        organization=organization,
        name=(name or "").strip() or "Calendar feed",
        token_hash=_hash(token),
        token_prefix=token[:8],
        created_by=actor,
    )
    validated(feed, exclude=["token_hash"]).save()
    return feed, token


@audit.attributed
@transaction.atomic
def revoke_calendar_feed(feed: CalendarFeed, *, actor=None) -> CalendarFeed:
    """Retire a feed URL at once (calendar apps get a 404 from then on)."""
    feed = CalendarFeed.objects.select_for_update().get(pk=feed.pk)
    _require(feed.organization_id, actor)
    if feed.revoked_at is None:
        feed.revoked_at = timezone.now()
        feed._change_reason = "revoked"
        feed.save()
    return feed


def calendar_feed_for_token(token: str) -> CalendarFeed:
    """The active feed of a token, or NotFound (the same answer for unknown and revoked tokens)."""
    if not token or len(token) > 100:
        raise NotFound("No such calendar feed.")
    feed = CalendarFeed.objects.select_related("organization").filter(token_hash=_hash(token)).first()
    if feed is None or feed.revoked_at is not None:
        raise NotFound("No such calendar feed.")
    CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=timezone.now())
    return feed


# Roles that see preventive work in the back office and the API (for the admin and docs).
PLANNING_ROLES = (Role.MANAGER, Role.PLANNER)
