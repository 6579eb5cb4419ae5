"""Benchmark: one generation pass that finds N preventive occurrences due (default 100,000) and creates them.

    DATABASE_URL=postgres://… python bench/preventive_generation.py --n 100000

It sets up its own organisation (N pumps of one type under one site, a daily schedule covering the type, a
three-step procedure and one part to reserve per order), runs `generate_due_work_orders` once, prints the time
and rows per second, checks the result, runs the same pass again (it must create nothing), and deletes
everything it made. The after-commit event dispatch (numbering and delivering the events) is not part of
generation and is switched off here. With --sla an SLA policy on office hours covers the pumps, so each order
also gets its SLA clock.
"""

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from pathlib import Path

from maintenance_site.tenancy import SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from assets.models import Asset, AssetType, Location  # noqa: E402
from inventory.models import Part, StockLevel, StockLocation  # noqa: E402
from maintenance_site import progress  # noqa: E402
from maintenance_site.events import services as event_services  # noqa: E402
from maintenance_site.tenancy.models import Organization  # noqa: E402
from scheduling.preventive.generation import generate_due_work_orders  # noqa: E402
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule  # noqa: E402
from scheduling.preventive.planning import plan_generation  # noqa: E402
from scheduling.preventive.services import create_schedule  # noqa: E402
from sla.models import BusinessCalendar, SLAClock, SLAPolicy, WorkingHours  # noqa: E402
from workorders.models import ChecklistItem, Procedure, ProcedureItem, WorkOrder  # noqa: E402

DUE = datetime(2030, 1, 7, 5, 0, tzinfo=UTC)  # 06:00 in Europe/Berlin


def set_up(n: int, sla: bool = False) -> tuple[Organization, PreventiveSchedule]:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
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
        StockLevel.objects.create(organization=org, part=part, location=store, on_hand=Decimal(n))
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
            SLAPolicy.objects.create(
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
    PreventiveSchedule.objects.filter(pk=schedule.pk).update(
        generated_through=DUE - timedelta(minutes=5), next_run_at=DUE
    )
    return org, schedule


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="due occurrences to create (default 100000)")
    parser.add_argument("--keep", action="store_true", help="keep the data (for inspection)")
    parser.add_argument("--sla", action="store_true", help="with an SLA policy: every order gets a clock")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite too (figures not comparable)")
    args = parser.parse_args()
    if connection.vendor != "postgresql" and not args.allow_sqlite:
        print("Set DATABASE_URL=postgres://… (or pass --allow-sqlite).", file=sys.stderr)
        return 2
    event_services._start_dispatch = lambda: None  # the after-commit dispatch is not generation

    print(f"database: {connection.vendor}, chunk: {settings.PREVENTIVE_GENERATION_CHUNK} occurrences per transaction")
    started = time.perf_counter()
    with progress.bars(stream=sys.stdout) as bars, bars.step("set-up"):  # a spinner while it runs
        org, schedule = set_up(args.n, sla=args.sla)
    print(f"set-up: {args.n} assets in {time.perf_counter() - started:.1f} s")
    try:
        started = time.perf_counter()
        plan = plan_generation(DUE + timedelta(minutes=1), DUE + timedelta(minutes=1), org)
        planned = time.perf_counter() - started
        print(f"planning alone: {len(plan.candidates)} due occurrences in {planned:.2f} s")
        PreventiveSchedule.objects.filter(pk=schedule.pk).update(next_run_at=DUE)

        started = time.perf_counter()
        with progress.bars(stream=sys.stdout) as bars, bars.step("generation"):
            result = generate_due_work_orders(now=DUE + timedelta(minutes=1), organization=org, actor=SYSTEM)
        elapsed = time.perf_counter() - started
        print(f"generation: {result.created} work orders in {elapsed:.2f} s = {result.created / elapsed:,.0f} orders/s")
        orders = WorkOrder.objects.filter(organization=org).count()
        occurrences = PreventiveOccurrence.objects.filter(organization=org).count()
        items = ChecklistItem.objects.filter(organization=org).count()
        rows = orders * 2 + occurrences + items * 2 + orders * 3  # orders+history, occurrences, checklist+history,
        # reservations+history, events
        print(
            f"rows written: ~{rows:,} ({rows / elapsed:,.0f} rows/s): {orders} orders, {occurrences} occurrences, "
            f"{items} checklist items, with history, reservations and events"
        )
        assert orders == occurrences == result.created == args.n, (orders, occurrences, result.created)
        if args.sla:
            clocks = SLAClock.objects.filter(organization=org).count()
            print(f"SLA clocks: {clocks}")
            assert clocks == args.n, clocks

        started = time.perf_counter()
        PreventiveSchedule.objects.filter(pk=schedule.pk).update(
            generated_through=DUE - timedelta(minutes=5), next_run_at=DUE
        )
        again = generate_due_work_orders(now=DUE + timedelta(minutes=1), organization=org, actor=SYSTEM)
        print(f"the same pass again: {again.created} created in {time.perf_counter() - started:.2f} s")
        assert again.created == 0
    finally:
        if not args.keep:
            started = time.perf_counter()
            clean_up(org)
            print(f"clean-up: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
