"""Benchmark: one generation pass that finds N preventive occurrences due (default 100,000) and creates them, side by
side with the floor: the same rows written by INSERT … SELECT alone, in the same run.

    DATABASE_URL=postgres://… python bench/preventive_generation.py --n 100000 [--sla]

The data: an organisation with N pumps of one type under one site, a daily schedule covering the type, a three-step
procedure and one part to reserve per order (with --sla, an SLA policy on office hours, so each order also gets its
SLA clock). `set_up` builds it and `clean_up` deletes it; both are the only places that know its shape, so the
shared dataset builder can take their place.

What it does and prints:
    1. the floor: a second, identical organisation gets the rows one pass writes (occurrences, work orders and
       their history, checklist items and their history, reservations and their history, the stock level's
       reserved quantity, events; with --sla the clocks and their history) from INSERT … SELECT statements alone,
       in one transaction: what the database needs, with no Python per row;
    2. the pass: `generate_due_work_orders` once, its time, rows per second and the ratio to the floor per row;
    3. the same pass again (its cursor rewound): it must create nothing; its time and share of the first pass's;
    4. the floor again, after the pass, so that a change in the machine's load shows.
Each step is timed by the wall clock and by the CPU seconds it took in this process and in the database process
(read from /proc when the database runs on this machine): on a shared, loaded machine the wall clock says how long
we waited, the CPU seconds how much work it was; the load average is printed with the figures. The after-commit
event dispatch (numbering and delivering events) is not part of generation and is switched off here.
"""

import argparse
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from assets.models import Asset, AssetType, Location  # noqa: E402
from inventory.models import Part, Reservation, StockLevel, StockLocation  # noqa: E402
from maintenance_site import audit  # noqa: E402
from maintenance_site.events import services as event_services  # noqa: E402
from maintenance_site.events.models import Event  # noqa: E402
from maintenance_site.tenancy import SYSTEM  # noqa: E402
from maintenance_site.tenancy.models import Organization  # noqa: E402
from scheduling.preventive.generation import generate_due_work_orders  # noqa: E402
from scheduling.preventive.models import GenerationRun, PreventiveOccurrence, PreventiveSchedule  # noqa: E402
from scheduling.preventive.planning import plan_generation  # noqa: E402
from scheduling.preventive.services import create_schedule  # noqa: E402
from sla.models import BusinessCalendar, SLAClock, SLAPolicy, WorkingHours  # noqa: E402
from workorders.models import ChecklistItem, Procedure, ProcedureItem, WorkOrder  # noqa: E402

DUE = datetime(2030, 1, 7, 5, 0, tzinfo=UTC)  # 06:00 in Europe/Berlin
NOW = DUE + timedelta(minutes=1)


# --- the data set (the shared dataset builder can replace these two functions) -------------------------------


@dataclass
class Dataset:
    """What the benchmark needs to know of its data: the organisation, its schedule, and what an order uses."""

    organization: Organization
    schedule: PreventiveSchedule
    asset_type: AssetType
    procedure: Procedure
    part: Part
    store: StockLocation
    policy: SLAPolicy | None
    assets: int


def set_up(n: int, sla: bool = False) -> Dataset:
    """N pumps of one type in a new organisation (Europe/Berlin), a daily 06:00 schedule over the type with a
    three-step procedure and one part per order, the schedule's cursor just before DUE."""
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    policy = None
    with transaction.atomic():
        org = Organization.objects.create(name=f"Benchmark {slug}", slug=slug, time_zone="Europe/Berlin")
        site = Location.objects.create(organization=org, name="Bench site")
        pump_type = AssetType.objects.create(organization=org, name="Pump")
        Asset.objects.bulk_create(
            [
                Asset(organization=org, code=f"P-{i:06d}", name=f"Pump {i}", asset_type=pump_type, location=site)
                for i in range(n)
            ],
            batch_size=5000,
        )
        procedure = Procedure.objects.create(organization=org, name="Pump check")
        for position, text in enumerate(["Check the seal", "Grease the bearings", "Listen for noise"]):
            ProcedureItem.objects.create(organization=org, procedure=procedure, position=position, text=text)
        store = StockLocation.objects.create(organization=org, name="Bench store")
        part = Part.objects.create(organization=org, sku="BENCH-SEAL", name="Seal kit", unit="each")
        StockLevel.objects.create(organization=org, part=part, location=store, on_hand=Decimal(2 * n))  # no low stock
        if sla:  # every order gets an SLA clock on office hours
            calendar = BusinessCalendar.objects.create(organization=org, name="Office hours")
            WorkingHours.objects.bulk_create(
                [
                    WorkingHours(
                        organization=org, calendar=calendar, weekday=day, start=time_of_day(8), end=time_of_day(17)
                    )
                    for day in range(5)
                ]
            )
            policy = SLAPolicy.objects.create(
                organization=org, name="Pumps", calendar=calendar, response_minutes=240, resolution_minutes=960
            )
    schedule = create_schedule(
        org,
        name="Daily pump check",
        coverage=PreventiveSchedule.Coverage.ASSETS,
        asset_type=pump_type,
        trigger=PreventiveSchedule.Trigger.CRON,
        cron_expression="0 6 * * *",
        start_date=date(2030, 1, 1),
        procedure=procedure,
        skip_if_open=False,
        parts=[{"part": part, "stock_location": store, "quantity": 1}],
        actor=SYSTEM,
    )
    rewind(schedule)
    return Dataset(org, schedule, pump_type, procedure, part, store, policy, n)


def rewind(schedule: PreventiveSchedule) -> None:
    """Put the schedule's cursor back before DUE, so that a pass at NOW finds the day's occurrences due."""
    PreventiveSchedule.objects.filter(pk=schedule.pk).update(
        generated_through=DUE - timedelta(minutes=5), next_run_at=DUE
    )


def clean_up(org: Organization) -> None:
    """Delete every row of the benchmark organisation (foreign keys are checked at commit on PostgreSQL)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for model in apps.get_models(include_auto_created=True):
            names = {f.attname for f in model._meta.concrete_fields}
            if "organization_id" in names and model is not Organization:
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s", [org.pk])  # noqa: S608
        Organization.history.filter(id=org.pk).delete()
        Organization.objects.filter(pk=org.pk).delete()


# --- the floor: the same rows, INSERT … SELECT only ----------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


class P:
    """A parameter in `_insert_select`'s column expressions (the rest are SQL)."""

    def __init__(self, value):
        self.value = value


def _insert_select(cursor, model, known: dict, source: str, params=()) -> int:
    """INSERT INTO <model's table> (every column but the id) SELECT <known expression, parameter, or the column's
    default> FROM <source>; returns the rows written."""
    columns, expressions, values = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(_q(field.column))
        known_value = known.get(field.attname)
        if isinstance(known_value, str):
            expressions.append(known_value)
            continue
        expressions.append("%s")
        raw = known_value.value if isinstance(known_value, P) else field.get_default()
        values.append(field.get_db_prep_save(raw, connection))
    sql = f"INSERT INTO {_q(model._meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(expressions)} {source}"
    cursor.execute(sql, [*values, *params])
    return cursor.rowcount


def _history_select(cursor, model, where: str, params, user_id, reason: str) -> int:
    """INSERT INTO <history> SELECT <the rows' columns>, now, reason, '+', user FROM <table> WHERE …"""
    history_model = model.history.model
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user_id"}
    columns = [f.column for f in history_model._meta.concrete_fields if f.column not in own]
    names = ", ".join(_q(c) for c in [*columns, *sorted(own - {"history_id"})])
    select = ", ".join(f"t.{_q(c)}" for c in columns)
    # sorted(own - {history_id}): history_change_reason, history_date, history_type, history_user_id
    sql = (
        f"INSERT INTO {_q(history_model._meta.db_table)} ({names}) SELECT {select}, %s, now(), '+', %s "
        f"FROM {_q(model._meta.db_table)} t WHERE {where}"
    )
    cursor.execute(sql, [reason, user_id, *params])
    return cursor.rowcount


def insert_select_floor(data: Dataset) -> int:
    """Write, for every pump of `data`, the rows a generation pass writes, with INSERT … SELECT only, in one
    transaction. Returns how many rows it wrote."""
    org, schedule = data.organization.pk, data.schedule.pk
    user = audit.system_user().pk
    now = timezone.now()
    stamps = {"created_at": P(now), "updated_at": P(now)}
    orders = f"FROM {_q(WorkOrder._meta.db_table)} w WHERE w.organization_id = %s"
    reason = "preventive generation"
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        run = GenerationRun.objects.create(organization_id=org, as_of=NOW, triggered_by_id=user)
        rows += _insert_select(
            cursor,
            WorkOrder,
            {
                **stamps,
                "organization_id": "a.organization_id",
                "number": "'WO-' || lpad(CAST(row_number() OVER (ORDER BY a.id) AS text), 6, '0')",
                "title": "'Daily pump check ' || a.code",
                "description": "'Preventive schedule “Daily pump check”, due 2030-01-07 06:00 CET.'",
                "type": "'preventive'",
                "status": "'open'",
                "asset_id": "a.id",
                "location_id": "a.location_id",
                "due_at": P(DUE),
                "source": "'preventive'",
            },
            f"FROM {_q(Asset._meta.db_table)} a WHERE a.organization_id = %s",
            [org],
        )
        rows += _history_select(cursor, WorkOrder, "t.organization_id = %s", [org], user, reason)
        rows += _insert_select(
            cursor,
            PreventiveOccurrence,
            {
                **stamps,
                "organization_id": "w.organization_id",
                "schedule_id": P(schedule),
                "asset_id": "w.asset_id",
                "target_key": "w.asset_id",
                "due_at": "w.due_at",
                "work_order_id": "w.id",
                "run_id": P(run.pk),
            },
            orders,
            [org],
        )
        rows += _insert_select(
            cursor,
            ChecklistItem,
            {
                **stamps,
                "organization_id": "w.organization_id",
                "work_order_id": "w.id",
                "position": 'row_number() OVER (PARTITION BY w.id ORDER BY p."position", p.id)',
                "text": "p.text",
                "kind": "p.kind",
                "unit": "p.unit",
                "required": "p.required",
            },
            f"FROM {_q(WorkOrder._meta.db_table)} w JOIN {_q(ProcedureItem._meta.db_table)} p "
            "ON p.procedure_id = %s WHERE w.organization_id = %s",
            [data.procedure.pk, org],
        )
        rows += _history_select(cursor, ChecklistItem, "t.organization_id = %s", [org], user, reason)
        rows += _insert_select(
            cursor,
            Reservation,
            {
                **stamps,
                "organization_id": "w.organization_id",
                "work_order_id": "w.id",
                "part_id": P(data.part.pk),
                "location_id": P(data.store.pk),
                "quantity": "1",
            },
            orders,
            [org],
        )
        rows += _history_select(cursor, Reservation, "t.organization_id = %s", [org], user, reason)
        cursor.execute(
            f"UPDATE {_q(StockLevel._meta.db_table)} SET reserved = reserved + %s, updated_at = %s "  # noqa: S608
            "WHERE part_id = %s AND location_id = %s",
            [data.assets, now, data.part.pk, data.store.pk],
        )
        payload = (
            "jsonb_build_object('id', w.id, 'number', w.number, 'title', w.title, 'status', w.status, "
            "'priority', w.priority, 'type', w.type, 'asset', w.asset_id, 'assignee', w.assignee_id, "
            f"'team', w.team_id, 'due_at', w.due_at, 'source', w.source, 'schedule', {int(schedule)})"
        )
        rows += _insert_select(
            cursor,
            Event,
            {
                "organization_id": "w.organization_id",
                "type": "'work-order:created'",
                "payload": payload,
                "user_id": "w.assignee_id",
                "created_at": P(now),
            },
            orders,
            [org],
        )
        if data.policy is not None:
            policy = data.policy
            rows += _insert_select(
                cursor,
                SLAClock,
                {
                    **stamps,
                    "organization_id": "w.organization_id",
                    "work_order_id": "w.id",
                    "policy_id": P(policy.pk),
                    "calendar_id": P(policy.calendar_id),
                    "response_minutes": P(policy.response_minutes),
                    "resolution_minutes": P(policy.resolution_minutes),
                    "warning_percent": P(policy.warning_percent),
                    "started_at": "w.created_at",
                    "response_due_at": "w.created_at + interval '4 hours'",
                    "response_warning_at": "w.created_at + interval '3 hours'",
                    "resolution_due_at": "w.created_at + interval '16 hours'",
                    "resolution_warning_at": "w.created_at + interval '12 hours'",
                },
                orders,
                [org],
            )
            rows += _history_select(cursor, SLAClock, "t.organization_id = %s", [org], user, "started")
    return rows


# --- the run ------------------------------------------------------------------------------------------------


def rows_written(org: Organization) -> dict[str, int]:
    """The rows a pass wrote for the organisation, per kind (history rows counted with their rows)."""
    counts = {
        "work orders": WorkOrder.objects.filter(organization=org).count(),
        "work-order history": WorkOrder.history.filter(organization_id=org.pk).count(),
        "occurrences": PreventiveOccurrence.objects.filter(organization=org).count(),
        "checklist items": ChecklistItem.objects.filter(organization=org).count(),
        "checklist history": ChecklistItem.history.filter(organization_id=org.pk).count(),
        "reservations": Reservation.objects.filter(organization=org).count(),
        "reservation history": Reservation.history.filter(organization_id=org.pk).count(),
        "events": Event.objects.filter(organization=org).count(),
        "SLA clocks": SLAClock.objects.filter(organization=org).count(),
        "SLA clock history": SLAClock.history.filter(organization_id=org.pk).count(),
    }
    return {name: count for name, count in counts.items() if count}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def _backend_cpu() -> float | None:
    """CPU seconds the database process serving this connection has used (from /proc: a database on this
    machine), or None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Measured:
    """Wall-clock seconds of a step, and the CPU seconds it took here (Python) and in the database process: on a
    loaded machine the wall clock says how long we waited, the CPU seconds how much work it was."""

    wall: float = 0.0
    python: float = 0.0
    database: float | None = None

    @property
    def cpu(self) -> float | None:
        return None if self.database is None else self.python + self.database

    def __str__(self) -> str:
        database = f", database {self.database:.2f} s" if self.database is not None else ""
        return f"{self.wall:.2f} s (CPU: Python {self.python:.2f} s{database})"


class measure:  # noqa: N801 - used as `with measure() as step:`
    def __enter__(self) -> Measured:
        self.step = Measured()
        self.backend = _backend_cpu() if connection.vendor == "postgresql" else None
        self.wall, self.python = time.perf_counter(), time.process_time()
        return self.step

    def __exit__(self, *exc) -> None:
        self.step.wall = time.perf_counter() - self.wall
        self.step.python = time.process_time() - self.python
        if self.backend is not None:
            after = _backend_cpu()
            self.step.database = after - self.backend if after is not None else None


def ratio(step: Measured, floor: Measured) -> str:
    cpu = f", CPU {step.cpu / floor.cpu:.2f}×" if step.cpu is not None and floor.cpu else ""
    return f"wall {step.wall / floor.wall:.2f}×{cpu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="due occurrences to create (default 100000)")
    parser.add_argument("--keep", action="store_true", help="keep the data (for inspection)")
    parser.add_argument("--sla", action="store_true", help="with an SLA policy: every order gets a clock")
    parser.add_argument("--no-floor", action="store_true", help="skip the INSERT … SELECT floor")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite too (figures not comparable)")
    args = parser.parse_args()
    if connection.vendor != "postgresql" and not args.allow_sqlite:
        print("Set DATABASE_URL=postgres://… (or pass --allow-sqlite).", file=sys.stderr)
        return 2
    floor_sql = connection.vendor == "postgresql" and not args.no_floor  # the floor's SQL is PostgreSQL's
    event_services._start_dispatch = lambda: None  # the after-commit dispatch is not generation

    print(f"database: {connection.vendor}, chunk: {settings.PREVENTIVE_GENERATION_CHUNK} occurrences per transaction")
    print(f"start: {load()}")
    started = time.perf_counter()
    data = set_up(args.n, sla=args.sla)
    floor_data = set_up(args.n, sla=args.sla) if floor_sql else None
    print(f"set-up: {args.n} assets{' twice' if floor_sql else ''} in {time.perf_counter() - started:.1f} s")
    floors: list[Measured] = []
    try:
        if floor_data is not None:
            with measure() as floor:
                rows = insert_select_floor(floor_data)
            floors.append(floor)
            print(f"floor (INSERT … SELECT): {rows:,} rows in {floor} = {rows / floor.wall:,.0f} rows/s; {load()}")

        with measure() as planning:
            plan = plan_generation(NOW, NOW, data.organization)
        print(f"planning alone: {len(plan.candidates)} due occurrences in {planning}")

        with measure() as generation:
            result = generate_due_work_orders(now=NOW, organization=data.organization, actor=SYSTEM)
        written = rows_written(data.organization)
        rows = sum(written.values())
        print(
            f"generation: {result.created} work orders in {generation} = {result.created / generation.wall:,.0f} "
            f"orders/s, {rows:,} rows = {rows / generation.wall:,.0f} rows/s; {load()}"
        )
        print("  rows: " + ", ".join(f"{count:,} {name}" for name, count in written.items()))
        assert result.created == written["work orders"] == written["occurrences"] == args.n, (result.created, written)
        if args.sla:
            assert written.get("SLA clocks") == args.n, written

        rewind(data.schedule)
        with measure() as rerun:
            again = generate_due_work_orders(now=NOW, organization=data.organization, actor=SYSTEM)
        print(
            f"the same pass again: {again.created} created in {rerun} = {rerun.wall / generation.wall:.1%} of the "
            "first pass"
        )
        assert again.created == 0

        if floor_data is not None:
            clean_up(floor_data.organization)
            floor_data = set_up(args.n, sla=args.sla)
            with measure() as floor:
                floor_rows = insert_select_floor(floor_data)
            floors.append(floor)
            print(f"floor again: {floor_rows:,} rows in {floor} = {floor_rows / floor.wall:,.0f} rows/s; {load()}")
            assert floor_rows == rows, (floor_rows, rows)
            mean = Measured(
                wall=sum(f.wall for f in floors) / len(floors),
                python=sum(f.python for f in floors) / len(floors),
                database=None if any(f.database is None for f in floors) else sum(f.database for f in floors) / 2,
            )
            print(
                f"generation / floor per row (same rows): {ratio(generation, floors[0])} (floor before), "
                f"{ratio(generation, floors[1])} (floor after), {ratio(generation, mean)} (their mean)"
            )
    finally:
        if not args.keep:
            started = time.perf_counter()
            clean_up(data.organization)
            if floor_data is not None:
                clean_up(floor_data.organization)
            print(f"clean-up: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
