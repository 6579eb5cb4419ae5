"""On PostgreSQL: generation passes running at the same moment (two beat processes, a beat and a "generate
now", overlapping ticks) create every due order exactly once — no duplicate occurrence, order, event or
reservation, and no gap in the work-order numbers."""

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from assets import services as asset_services
from inventory.models import Reservation, StockLevel
from maintenance_site.events.models import Event
from scheduling.preventive.services import generate_now
from tests.scheduling.preventive.support import Occurrence, Schedule, make_schedule, owed_from, tick, utc
from workorders.models import WorkOrder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

START = utc(2027, 6, 7, 0, 0)


def run_together(calls):
    """Start every call at the same moment in its own thread (own connection); re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def test_concurrent_generation_creates_each_order_once(org_a, plant, stores, procedure, planner_a):
    pump_type = plant["pump_type"]
    for n in range(40):
        asset_services.create_asset(org_a, code=f"PX-{n}", name="Pump", asset_type=pump_type, location=plant["hall"])
    schedule = owed_from(
        make_schedule(
            org_a,
            coverage=Schedule.Coverage.ASSETS,
            asset_type=pump_type,
            cron_expression="0 6 * * *",
            procedure=procedure,
            skip_if_open=False,
            name="Pumps daily",
            parts=[{"part": stores["seal"], "stock_location": stores["warehouse"], "quantity": 1}],
        ),
        START,
    )
    routine = owed_from(
        make_schedule(
            org_a, coverage=Schedule.Coverage.ROUTINE, cron_expression="0 7 * * *", name="Round", skip_if_open=False
        ),
        START,
    )
    per_day = 42 + 1  # 42 pumps, one round
    for day in range(3):
        moment = START + timedelta(days=day, hours=6)
        results = run_together(
            [lambda m=moment: tick(m) for _ in range(4)]
            + [lambda m=moment: generate_now(schedule, actor=planner_a, now=m)]
            + [lambda m=moment: tick(m + timedelta(seconds=30), organization=org_a)]
        )
        assert sum(result.created for result in results) == per_day

    orders = list(WorkOrder.objects.filter(source=WorkOrder.Source.PREVENTIVE))
    assert len(orders) == 3 * per_day
    assert not [key for key, n in Counter((o.asset_id, o.due_at) for o in orders).items() if n > 1]
    numbers = sorted(int(o.number.removeprefix("WO-")) for o in orders)
    assert numbers == list(range(numbers[0], numbers[0] + len(orders)))  # no gap, no repeat
    assert Occurrence.objects.filter(schedule__in=[schedule, routine]).count() == 3 * per_day
    assert Event.objects.filter(type="work-order:created").count() == len(orders)
    assert Reservation.objects.count() == 3 * 42
    level = StockLevel.objects.get(part=stores["seal"], location=stores["warehouse"])
    assert level.reserved == Decimal(3 * 42)
    assert WorkOrder.history.filter(history_type="+").count() == len(orders)


def test_two_passes_with_different_moments_overlap_without_deadlock(org_a, plant):
    """One pass catching up three days (catch-up policy) while another generates today's: the shared
    occurrences are created once."""
    pump_type = plant["pump_type"]
    for n in range(30):
        asset_services.create_asset(org_a, code=f"PY-{n}", name="Pump", asset_type=pump_type, location=plant["hall"])
    owed_from(
        make_schedule(
            org_a,
            coverage=Schedule.Coverage.ASSETS,
            asset_type=pump_type,
            cron_expression="0 6 * * *",
            misfire_policy=Schedule.Misfire.CATCH_UP,
            skip_if_open=False,
            name="Catch up",
        ),
        START,
    )
    late = START + timedelta(days=2, hours=6)
    results = run_together([lambda: tick(late), lambda: tick(late + timedelta(minutes=1)), lambda: tick(late)])
    assert sum(result.created for result in results) == 3 * 32
    assert WorkOrder.objects.count() == 3 * 32
