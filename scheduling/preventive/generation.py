"""Generating preventive work orders: the generator that turns what is due into work orders, exactly once.

`generate_due_work_orders`, called by beat every PREVENTIVE_GENERATION_INTERVAL seconds:
    1. Plan (`scheduling.preventive.planning`, reads only, a fixed number of queries): the schedules with
       something to do, their targets (evaluated now: new assets of a type join by themselves), the occurrences
       due, the misfire policy and skip-if-open applied.
    2. Apply, in chunks of PREVENTIVE_GENERATION_CHUNK, each one transaction: insert the occurrence rows with
       ON CONFLICT DO NOTHING, each stamped with this pass's GenerationRun and pointing at the id its order will
       have; the rows that carry our stamp afterwards are the ones we really inserted (a row another pass
       inserted keeps its stamp). For those rows only, the work orders (with their history, checklists, SLA
       clocks and `work-order:created` events) come from one call of `workorders.services.create_work_orders_bulk`,
       and the templates' parts are reserved by one call of `inventory.services.reserve_bulk`: the services stay
       the only writers of their tables. The unique key (schedule, target, due time) makes repeated ticks, two
       beat processes and concurrent calls harmless; rows are inserted in key order, so concurrent passes cannot
       deadlock.
    3. Bookkeeping: each schedule's `generated_through`, `next_due_at` and `next_run_at`.

    The number of queries of a pass does not depend on how many occurrences are due (up to the chunk size;
    beyond it, a fixed number per chunk).
"""

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from inventory import services as inventory_services
from maintenance_site import audit
from maintenance_site.bulk import collector_paused, insert_new_rows, take_ids
from maintenance_site.recurrence import to_local
from scheduling.preventive.models import GenerationRun, PreventiveOccurrence, PreventiveSchedule, ScheduleTemplatePart
from scheduling.preventive.occurrences import format_local
from scheduling.preventive.planning import Candidate, Plan, plan_generation
from scheduling.preventive.targets import Target
from workorders.models import WorkOrder
from workorders.services import NewWorkOrder, create_work_orders_bulk

logger = logging.getLogger(__name__)

Schedule = PreventiveSchedule
Occurrence = PreventiveOccurrence
OCCURRENCE_FIELDS = (
    "organization_id",
    "schedule_id",
    "asset_id",
    "target_key",
    "due_at",
    "status",
    "skip_reason",
    "note",
    "missed_count",
    "meter_value",
    "work_order_id",
    "run_id",
)


@dataclass
class GenerationResult:
    """What a pass did: orders created, occurrences skipped, the orders' ids and the run rows; the horizon it
    covered (what falls due by `horizon` plus each schedule's lead time), the occurrences within it that existed
    already, those left for later (skip-if-open decides them when their orders are due to be created) and the
    schedules it could not compute. `message` (set by "generate now") says it in sentences."""

    created: int = 0
    skipped: int = 0
    work_order_ids: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    as_of: datetime | None = None
    horizon: datetime | None = None
    days_ahead: int = 0
    due_until: datetime | None = None
    already_generated: int = 0
    deferred: list[dict] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "skipped": self.skipped,
            "work_orders": self.work_order_ids,
            "as_of": self.as_of,
            "horizon": {"days_ahead": self.days_ahead, "until": self.horizon, "due_until": self.due_until},
            "already_generated": self.already_generated,
            "deferred": self.deferred,
            "message": self.message,
        }


class _Safe(dict):
    def __missing__(self, key):
        return "{" + key + "}"


@functools.lru_cache(maxsize=4096)
def _local_date(due_at: datetime, zone_name: str) -> str:
    """The local date of a due time (a pass has few distinct due times for many orders)."""
    return to_local(due_at, ZoneInfo(zone_name)).date().isoformat()


def order_title(s: Schedule, target: Target, due_at: datetime) -> str:
    """The work-order title: the schedule's title (or name) with {asset}, {asset_code} and {due_date} filled in."""
    template = s.title or s.name
    values = _Safe(
        asset=target.asset_name or "",
        asset_code=target.asset_code or "",
        due_date=_local_date(due_at, target.zone_name),
    )
    try:
        title = template.format_map(values)
    except (ValueError, IndexError, AttributeError):
        title = template
    return title[:200]


class _Caches:
    """What several chunks of one pass share: the schedules' template parts and what their orders take from them,
    and the due times in words."""

    def __init__(self):
        self.parts: dict[int, list[tuple]] = {}
        self.local: dict[tuple[datetime, str], str] = {}
        self.templates: dict[int, dict] = {}

    def load_parts(self, schedule_ids):
        """Each schedule's template parts as (part, stock location, quantity)."""
        missing = set(schedule_ids) - set(self.parts)
        if missing:
            for pk in missing:
                self.parts[pk] = []
            rows = ScheduleTemplatePart.objects.filter(schedule_id__in=missing).select_related("part", "stock_location")
            for line in rows.order_by("schedule_id", "id"):
                self.parts[line.schedule_id].append((line.part, line.stock_location, line.quantity))

    def order_template(self, s: Schedule) -> dict:
        """What every order of a schedule takes from it."""
        if s.pk not in self.templates:
            self.templates[s.pk] = {
                "organization_id": s.organization_id,
                "type": s.work_type,
                "priority": s.priority,
                "assignee_id": s.assignee_id,
                "team_id": s.team_id,
                "estimated_minutes": s.estimated_minutes,
                "source": WorkOrder.Source.PREVENTIVE,
                "procedure_id": s.procedure_id,
                "event": {"source": WorkOrder.Source.PREVENTIVE, "schedule": s.pk},
            }
        return self.templates[s.pk]

    def format_local(self, instant: datetime, zone_name: str) -> str:
        key = (instant, zone_name)
        if key not in self.local:
            self.local[key] = format_local(instant, zone_name)
        return self.local[key]


def _description(candidate: Candidate, caches: _Caches) -> str:
    s, target = candidate.schedule, candidate.target
    lines = [s.instructions.strip()] if s.instructions.strip() else []
    lines.append(f"Preventive schedule “{s.name}”, due {caches.format_local(candidate.due_at, target.zone_name)}.")
    if candidate.note:
        lines.append(candidate.note)
    return "\n\n".join(lines)


def _new_order(candidate: Candidate, caches: _Caches, order_id: int) -> NewWorkOrder:
    s, target = candidate.schedule, candidate.target
    return NewWorkOrder(
        id=order_id,
        title=order_title(s, target, candidate.due_at),
        description=_description(candidate, caches),
        asset_id=target.asset_id,
        location_id=target.location_id,
        due_at=candidate.due_at,
        scheduled_start=candidate.due_at if s.plan_start else None,
        **caches.order_template(s),
    )


def _reserve_parts(orders_with_schedules, caches: _Caches, actor) -> list[str]:
    """Reserve the templates' parts for the new orders, all in one call of `inventory.services.reserve_bulk`.
    What cannot be reserved (a part or location no longer in use) is reported, not fatal."""
    caches.load_parts({s.pk for _, s in orders_with_schedules})
    parts = caches.parts
    lines = [(order, *line) for order, s in orders_with_schedules for line in parts[s.pk]]
    reserved = inventory_services.reserve_bulk(lines, actor=actor)
    problems = [f"{lines[index][0].number}: {why}: not reserved." for index, why in reserved.refused]
    for problem in problems:
        logger.warning("preventive generation: %s", problem)
    return problems


def _apply_chunk(
    candidates: list[Candidate], run: GenerationRun, caches: _Caches, result: GenerationResult, actor
) -> None:
    with transaction.atomic():
        before = Occurrence.objects.filter(run=run).order_by("-pk").values_list("pk", flat=True).first() or 0
        # Each occurrence to be created points at its order from the start: the order's id is taken now and the
        # order written below, in the same transaction (foreign keys are checked at commit). An occurrence that
        # meets a conflict is not inserted, and the id taken for it stays unused.
        created = Occurrence.Status.CREATED
        order_ids = iter(take_ids(WorkOrder, sum(1 for c in candidates if c.status == created)))
        rows = [
            (
                c.schedule.organization_id,
                c.schedule.pk,
                c.target.asset_id,
                c.target.key,
                c.due_at,
                c.status,
                c.skip_reason,
                c.note,
                c.missed_count,
                c.meter_value,
                next(order_ids) if c.status == created else None,
                run.pk,
            )
            for c in candidates
        ]
        keyed = [(c, c.key) for c in candidates]
        if insert_new_rows(Occurrence, OCCURRENCE_FIELDS, rows):
            # every row went in: all are this pass's
            mine = {key: (row[-2], c.status) for (c, key), row in zip(keyed, rows, strict=True)}
        else:
            # The rows stamped with this run are the ones this pass inserted; a conflicting row kept its own stamp.
            mine = {
                (sid, key, due): (order_id, status)
                for order_id, sid, key, due, status in Occurrence.objects.filter(run=run, pk__gt=before).values_list(
                    "work_order_id", "schedule_id", "target_key", "due_at", "status"
                )
            }
        to_create = [(c, mine[key][0]) for c, key in keyed if key in mine and c.status == created]
        result.skipped += sum(1 for _, status in mine.values() if status == Occurrence.Status.SKIPPED)
        result.already_generated += sum(1 for _, key in keyed if key not in mine)
        if not to_create:
            return
        # numbers are taken per organisation in this order (the orders of one organisation in candidate order)
        to_create.sort(key=lambda item: item[0].schedule.organization_id)
        orders = create_work_orders_bulk([_new_order(c, caches, order_id) for c, order_id in to_create], actor=actor)
        _reserve_parts([(order, c.schedule) for (c, _), order in zip(to_create, orders, strict=True)], caches, actor)
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


@audit.attributed
def generate_due_work_orders(
    now=None, organization=None, *, schedule_ids=None, days_ahead: int = 0, actor
) -> GenerationResult:
    """Create the work orders that are due (and record the skips), exactly once, however often and from however
    many processes this runs. `organization` limits it to one; `schedule_ids` to some schedules (then their
    bookkeeping is not waited for); `days_ahead` also creates what falls due within that many days."""
    now = now or timezone.now()
    horizon = now + timedelta(days=days_ahead)
    user = actor  # SYSTEM arrives as the system user (audit.attributed)
    result = GenerationResult(as_of=now, horizon=horizon, days_ahead=days_ahead)
    with audit.acting_as(user, reason="preventive generation"), collector_paused():
        plan = plan_generation(now, horizon, organization, schedule_ids)
        result.failed = dict(plan.failed)
        result.already_generated = plan.already_generated
        if plan.candidates:
            run = GenerationRun.objects.create(organization=organization, as_of=now, triggered_by=user)
            result.runs.append(run.pk)
            caches = _Caches()
            size = settings.PREVENTIVE_GENERATION_CHUNK
            for start in range(0, len(plan.candidates), size):
                _apply_chunk(plan.candidates[start : start + size], run, caches, result, actor)
            GenerationRun.objects.filter(pk=run.pk).update(
                finished_at=timezone.now(), created_count=result.created, skipped_count=result.skipped
            )
        _save_bookkeeping(plan)
    _report_deferred(plan, result)
    return result


def _report_deferred(plan: Plan, result: GenerationResult) -> None:
    """The occurrences the plan left for later (skip if open), soonest first, each with why."""
    for item in sorted(plan.deferred, key=lambda d: (d.due_at, d.schedule.pk, d.target.key)):
        result.deferred.append(
            {
                "schedule": item.schedule.pk,
                "asset": item.target.asset_id,
                "due_at": item.due_at,
                "reason": f"skip if open: decided when its order is due to be created ({item.blocker} is open)",
            }
        )
