"""Planning a generation pass (reads only, a fixed number of queries whatever is due): the schedules with something
to do, their targets as of now, the occurrences due on each, the misfire policy and skip-if-open applied. The
result, a `Plan`, is what `scheduling.preventive.generation` inserts.

Misfires (beat was not running): an occurrence is *missed* when it was owed (its lead time had begun and the
generator had been told to look: the schedule's `next_run_at`) longer than PREVENTIVE_MISFIRE_GRACE ago. An
occurrence whose lead time began before the schedule was created, resumed or re-timed is owed from that moment,
not missed. When something was missed, per schedule: `coalesce` (default) folds all late occurrences of a target
into one order at the latest of them; `catch_up` creates each of them, the most recent `misfire_cap` missed ones;
`skip` records the missed ones as one skipped row and goes on with the next. Nothing missed: each is created.

Skip-if-open keeps at most one open order per schedule and target: an occurrence that falls due while the
previous order is open is recorded as skipped; one whose order is not due to be created yet (a "generate now"
ahead of time) is left for later, and the plan says so (`Plan.deferred`): whether it is skipped is decided then.

A schedule whose occurrences cannot be computed (dates beyond the calendar written before they were refused) is
left out of the pass and logged (`Plan.failed`), so that it cannot stop the generation of every other schedule.

Nights generated before the daylight-saving rule of `maintenance_site.recurrence`: a local time in the
spring-forward gap used to run at the first valid instant after the gap (the instant the clocks jumped); it now
runs a gap later. An occurrence already stored at the jump for the same schedule and target means that night
is done, so the shifted time is not generated again (the unique key holds the instant, which differs).
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from maintenance_site.recurrence import to_local, to_utc
from scheduling.preventive.meter_triggers import plan_meters
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule
from scheduling.preventive.occurrences import (
    add_interval,
    format_local,
    next_occurrence,
    occurrences_between,
    shifted_dues,
)
from scheduling.preventive.targets import Places, Target, latest_occurrences, resolve_targets
from workorders.models import WorkOrder

logger = logging.getLogger(__name__)

Schedule = PreventiveSchedule
Occurrence = PreventiveOccurrence
Trigger = PreventiveSchedule.Trigger

DONE_STATUSES = (WorkOrder.Status.COMPLETED, WorkOrder.Status.VERIFIED)


@dataclass
class Candidate:
    """One occurrence a pass inserts: created (it becomes a work order) or recorded as skipped."""

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
class Due:
    """A due time of one target, before it is tied to its schedule and target."""

    due_at: datetime
    status: str = Occurrence.Status.CREATED
    skip_reason: str = ""
    note: str = ""
    missed_count: int = 0
    meter_value: Decimal | None = None


@dataclass
class Deferred:
    """An occurrence within the pass's horizon that is left for later: skip-if-open decides it when its order is
    due to be created, and `blocker` is the open order that would make it a skip today."""

    schedule: Schedule
    target: Target
    due_at: datetime
    blocker: str


@dataclass
class Plan:
    """What a pass will insert (sorted by key), each schedule's bookkeeping afterwards, what it leaves for later
    within the horizon, and the schedules it could not compute (id → why)."""

    now: datetime
    horizon: datetime
    candidates: list[Candidate] = field(default_factory=list)
    bookkeeping: dict[int, dict] = field(default_factory=dict)
    schedules: dict[int, Schedule] = field(default_factory=dict)
    deferred: list[Deferred] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    already_generated: int = 0


def _owed_at(schedule: Schedule, due_at: datetime, lead: timedelta) -> datetime:
    """When the generator owed an occurrence: when its lead time began, or, if later, when the generator was told
    to look at the schedule (`next_run_at`: its creation, resumption or change of trigger, else its next
    occurrence's creation time)."""
    begun = due_at - lead
    return max(begun, schedule.next_run_at) if schedule.next_run_at is not None else begun


def _apply_misfire(schedule: Schedule, dues: list[datetime], now: datetime, zone_name: str) -> list[Due]:
    """The misfire policy over one target's due times (ascending); see the module docstring."""
    lead = timedelta(days=schedule.lead_days)
    late = [d for d in dues if d - lead <= now]
    ahead = [Due(d) for d in dues if d - lead > now]
    cutoff = now - timedelta(seconds=settings.PREVENTIVE_MISFIRE_GRACE)
    missed = [d for d in late if _owed_at(schedule, d, lead) < cutoff]  # a prefix of `late`
    if not missed:
        return [Due(d) for d in late] + ahead
    policy = schedule.misfire_policy
    if policy == Schedule.Misfire.CATCH_UP:
        kept = missed[-schedule.misfire_cap :]
        dropped = len(missed) - len(kept)
        note = (
            f"{dropped} older missed occurrence(s) beyond the cap of {schedule.misfire_cap} dropped." if dropped else ""
        )
        planned = [
            Due(d, missed_count=dropped if i == 0 else 0, note=note if i == 0 else "") for i, d in enumerate(kept)
        ]
        planned += [Due(d) for d in late[len(missed) :]]
    elif policy == Schedule.Misfire.SKIP:
        planned = [
            Due(
                missed[-1],
                Occurrence.Status.SKIPPED,
                Occurrence.SkipReason.MISFIRE,
                missed_count=len(missed) - 1,
                note=f"{len(missed)} occurrence(s) missed since {format_local(missed[0], zone_name)} skipped.",
            )
        ]
        planned += [Due(d) for d in late[len(missed) :]]
    else:  # coalesce
        folded = len(late) - 1
        note = (
            f"Coalesced with {folded} missed occurrence(s) since {format_local(late[0], zone_name)}." if folded else ""
        )
        planned = [Due(late[-1], missed_count=folded, note=note)]
    return planned + ahead


def _skip_if_open(
    schedule: Schedule, planned: list[Due], open_number: str | None, now: datetime
) -> tuple[list[Due], list[tuple[Due, str]]]:
    """No stacking: while this schedule's previous order on the target is open, a due occurrence is recorded as
    skipped; within one pass only the first of several new ones is created. Future ones (a "generate now" ahead
    of time) are left for later instead of being recorded: returned apart, each with the order that blocks it."""
    if not schedule.skip_if_open:
        return planned, []
    lead = timedelta(days=schedule.lead_days)
    result, deferred, blocker = [], [], open_number
    for due in planned:
        if due.status != Occurrence.Status.CREATED:
            result.append(due)
            continue
        if blocker is None:
            result.append(due)
            blocker = "the order created for " + due.due_at.strftime("%Y-%m-%d %H:%M UTC")
            continue
        if due.due_at - lead > now:
            deferred.append((due, blocker))  # not due yet: decided when it is
            continue
        result.append(
            Due(
                due.due_at,
                Occurrence.Status.SKIPPED,
                Occurrence.SkipReason.OPEN_ORDER,
                missed_count=due.missed_count,
                note=f"Skipped: {blocker} is still open.",
            )
        )
    return result, deferred


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
    places = Places({s.organization_id for s in schedules})
    targets = resolve_targets(schedules, places)
    open_orders = _open_orders([s.pk for s in schedules if s.skip_if_open])
    stateful = [s for s in schedules if s.trigger == Trigger.METER or s.mode == Schedule.Mode.FLOATING]
    latest = latest_occurrences([(s.pk, t.key) for s in stateful for t in targets[s.pk]])
    meter_plans = plan_meters([s for s in schedules if s.trigger == Trigger.METER], targets, latest, now)
    fixed = [s for s in schedules if s.trigger != Trigger.METER and s.mode == Schedule.Mode.FIXED]
    fixed_dues = {}
    for s in fixed:
        try:
            fixed_dues[s.pk] = _fixed_dues(s, by_zone(targets[s.pk]), now, horizon)
        except (ArithmeticError, ValueError) as error:
            _failed(plan, s, error)
    stored = _stored_occurrences(fixed_dues)

    for s in schedules:
        if s.pk in plan.failed:
            continue
        book = {"generated_through": s.generated_through, "next_due_at": None, "next_run_at": None}
        try:
            if s.trigger == Trigger.METER:
                per_target = {
                    target: [Due(read_at, note=note, meter_value=value)]
                    for target, (read_at, note, value) in meter_plans.get(s.pk, {}).items()
                }
                book["generated_through"] = max(filter(None, [s.generated_through, now]))
            elif s.mode == Schedule.Mode.FLOATING:
                per_target = _plan_floating(s, targets[s.pk], latest, now, horizon, book)
            else:
                groups = by_zone(targets[s.pk])
                per_target = _plan_fixed(s, groups, fixed_dues[s.pk], stored, now, horizon, book, plan)
        except (ArithmeticError, ValueError) as error:
            _failed(plan, s, error)
            continue
        plan.bookkeeping[s.pk] = book
        for target, dues in per_target.items():
            dues, deferred = _skip_if_open(s, dues, open_orders.get((s.pk, target.key)), now)
            plan.deferred += [Deferred(s, target, due.due_at, blocker) for due, blocker in deferred]
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


def _failed(plan: Plan, s: Schedule, error: Exception) -> None:
    """Leave a schedule whose occurrences cannot be computed out of the pass (its bookkeeping untouched, so the
    next pass tries again) and say why in the log."""
    plan.failed[s.pk] = str(error) or type(error).__name__
    logger.error("preventive schedule %s (“%s”) left out of generation: %s", s.pk, s.name, plan.failed[s.pk])


def by_zone(targets: list[Target]) -> dict[str, list[Target]]:
    groups: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        groups[target.zone_name].append(target)
    return groups


def _fixed_dues(s: Schedule, groups, now, horizon) -> dict[str, tuple[list[datetime], dict[datetime, datetime]]]:
    """Per time zone of the targets: the due times since the schedule's cursor, and those a spring-forward gap
    shifted, each with the instant the clocks jumped."""
    lead = timedelta(days=s.lead_days)
    due_after = s.generated_through + lead if s.generated_through is not None else None
    found = {}
    for zone_name in groups:
        zone = ZoneInfo(zone_name)
        dues = occurrences_between(s, zone, due_after, horizon + lead)
        found[zone_name] = (dues, shifted_dues(s, zone, dues))
    return found


def _stored_occurrences(fixed_dues) -> set[tuple[int, int, datetime]]:
    """(schedule id, target key, due time) of the occurrences already stored at the due times a pass plans (an
    earlier "generate now" ahead of time made them), or at the instants the clocks jumped for the due times a
    spring-forward gap shifted: one query, none when nothing is planned."""
    moments = {
        (sid, moment)
        for sid, zones in fixed_dues.items()
        for dues, jumps in zones.values()
        for moment in [*dues, *jumps.values()]
    }
    if not moments:
        return set()
    return set(
        Occurrence.objects.filter(
            schedule_id__in={sid for sid, _ in moments}, due_at__in={moment for _, moment in moments}
        ).values_list("schedule_id", "target_key", "due_at")
    )


def _plan_fixed(s: Schedule, groups, zone_dues, stored, now, horizon, book, plan) -> dict[Target, list[Due]]:
    lead = timedelta(days=s.lead_days)
    result = {}
    next_dues = []
    for zone_name, group in groups.items():
        zone = ZoneInfo(zone_name)
        dues, jumps = zone_dues[zone_name]
        if dues:
            planned = _apply_misfire(s, dues, now, zone_name)
            for target in group:
                # Stored already (generated ahead), or a night generated at the jump before the rule shifted its
                # time: not planned again, and not a misfire.
                kept = [
                    due
                    for due in dues
                    if (s.pk, target.key, due) not in stored and (s.pk, target.key, jumps.get(due)) not in stored
                ]
                plan.already_generated += len(dues) - len(kept)
                result[target] = list(planned) if len(kept) == len(dues) else _apply_misfire(s, kept, now, zone_name)
        upcoming = next_occurrence(s, zone, now + lead)
        if upcoming is not None:
            next_dues.append(upcoming)
    if not groups:  # nothing covered right now: wake up at the next date anyway (assets may be added)
        upcoming = next_occurrence(s, ZoneInfo(s.organization.time_zone), now + lead)
        if upcoming is not None:
            next_dues.append(upcoming)
    book["generated_through"] = max(filter(None, [s.generated_through, now]))
    book["next_due_at"] = min(next_dues) if next_dues else None
    book["next_run_at"] = book["next_due_at"] - lead if book["next_due_at"] else None
    return result


def floating_due(s: Schedule, latest: Occurrence | None, zone: ZoneInfo) -> datetime | None:
    """The next due time of a floating schedule on one target, or None while its order is open."""
    if latest is None:
        return to_utc(s.anchor, zone)
    order = latest.work_order
    if latest.status == Occurrence.Status.CREATED and order is not None and order.is_open:
        return None  # counted from its completion
    if order is not None and order.status in DONE_STATUSES and order.completed_at is not None:
        return _interval_after(s, order.completed_at, zone)
    return _interval_after(s, latest.due_at, zone)  # skipped, cancelled or deleted: count from when it was due


def _interval_after(s: Schedule, moment: datetime, zone: ZoneInfo) -> datetime:
    """One interval after the local day of `moment`, at the schedule's time of day."""
    return to_utc(add_interval(datetime.combine(to_local(moment, zone).date(), s.time_of_day), s), zone)


def _plan_floating(s: Schedule, targets, latest, now, horizon, book) -> dict[Target, list[Due]]:
    lead = timedelta(days=s.lead_days)
    cutoff = now - timedelta(seconds=settings.PREVENTIVE_MISFIRE_GRACE)
    result, upcoming = {}, []
    for target in targets:
        zone = ZoneInfo(target.zone_name)
        due = floating_due(s, latest.get((s.pk, target.key)), zone)
        if due is None:
            continue
        if s.end_date is not None and to_local(due, zone).date() > s.end_date:
            continue
        if due - lead > horizon:
            upcoming.append(due)
            continue
        planned = []
        if s.misfire_policy == Schedule.Misfire.SKIP and _owed_at(s, due, lead) < cutoff:
            skipped, first = 0, due
            while _owed_at(s, due, lead) < cutoff and skipped < 100_000:
                previous, due, skipped = due, _interval_after(s, due, zone), skipped + 1
            planned.append(
                Due(
                    previous,
                    Occurrence.Status.SKIPPED,
                    Occurrence.SkipReason.MISFIRE,
                    missed_count=skipped - 1,
                    note=f"{skipped} occurrence(s) missed since {format_local(first, target.zone_name)} skipped.",
                )
            )
            if due - lead <= horizon:
                planned.append(Due(due))
            else:
                upcoming.append(due)
        else:
            planned.append(Due(due))
        result[target] = planned
    book["generated_through"] = max(filter(None, [s.generated_through, now]))
    book["next_due_at"] = min(upcoming) if upcoming else None
    return result
