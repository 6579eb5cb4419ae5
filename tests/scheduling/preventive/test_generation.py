"""Generation: what a tick creates and records, exactly once — coverage, routine rounds, paused and ended
schedules, lead time, skip-if-open, floating mode, misfire policies after 72 hours without beat, parts reserved,
checklists, events and history, and the query count of a tick."""

from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assets import services as asset_services
from inventory.models import Reservation, StockLevel
from maintenance_site import audit
from maintenance_site.audit import SYSTEM_USERNAME
from maintenance_site.events.models import Event
from scheduling.preventive.models import GenerationRun
from scheduling.preventive.services import generate_now, pause_schedule, resume_schedule
from sla.models import BusinessCalendar, SLAClock, SLAPolicy, WorkingHours
from tests.scheduling.preventive.support import (
    Occurrence,
    Schedule,
    complete,
    make_schedule,
    occurrences_of,
    orders_of,
    owed_from,
    tick,
    ticks,
    utc,
)
from workorders.models import ChecklistItem, WorkOrder
from workorders.services import reserve_numbers

MONDAY = utc(2027, 6, 7, 0, 0)  # a Monday; Europe/Berlin is UTC+2 then


def daily_0600(org, asset, **extra):
    """Every day at 06:00 Berlin (04:00 UTC)."""
    extra.setdefault("skip_if_open", False)
    return owed_from(make_schedule(org, asset=asset, cron_expression="0 6 * * *", **extra), MONDAY)


# --- the basics -----------------------------------------------------------------------------------------


def test_a_due_occurrence_becomes_one_preventive_order_with_its_template(org_a, pump, procedure, technician_a):
    schedule = daily_0600(
        org_a,
        pump,
        title="{asset_code} daily check",
        instructions="Look and listen.",
        priority="high",
        work_type="inspection",
        procedure=procedure,
        estimated_minutes=20,
        assignee=technician_a,
    )
    assert tick(utc(2027, 6, 7, 3, 59)).created == 0  # not yet due
    result = tick(utc(2027, 6, 7, 4, 0))
    assert result.created == 1
    order = WorkOrder.objects.get(pk=result.work_order_ids[0])
    assert order.title == "PMP-1 daily check"
    assert order.source == WorkOrder.Source.PREVENTIVE
    assert (order.type, order.priority, order.estimated_minutes) == ("inspection", "high", 20)
    assert order.asset == pump and order.location == pump.location
    assert order.assignee == technician_a and order.status == WorkOrder.Status.ASSIGNED
    assert order.due_at == utc(2027, 6, 7, 4, 0)
    assert order.number.startswith("WO-")
    assert "Look and listen." in order.description and "Preventive schedule" in order.description
    assert [item.text for item in ChecklistItem.objects.filter(work_order=order).order_by("position")] == [
        "Check the seal",
        "Grease",
    ]
    assert order.preventive_occurrence.schedule == schedule
    # history names the system user; the event is published with the order
    assert order.history.get().history_user.username == SYSTEM_USERNAME
    event = Event.objects.get(type="work-order:created", payload__id=order.pk)
    assert event.payload["schedule"] == schedule.pk and event.user_id == technician_a.pk
    run = GenerationRun.objects.get()
    assert (run.created_count, run.skipped_count, run.triggered_by.username) == (1, 0, SYSTEM_USERNAME)


def test_repeated_ticks_create_nothing_twice(org_a, pump):
    schedule = daily_0600(org_a, pump)
    moment = utc(2027, 6, 7, 4, 1)
    assert tick(moment).created == 1
    assert tick(moment).created == 0
    # even when the bookkeeping is rewound (a second beat that read the schedule before the first wrote it)
    owed_from(schedule, MONDAY)
    assert tick(moment).created == 0
    assert tick(moment + timedelta(minutes=5)).created == 0
    assert orders_of(schedule).count() == 1
    assert Event.objects.filter(type="work-order:created").count() == 1


def test_each_day_gets_its_order(org_a, pump):
    schedule = daily_0600(org_a, pump)
    created = ticks(MONDAY, MONDAY + timedelta(days=7) - timedelta(minutes=1), step=timedelta(minutes=30))
    assert created == 7
    assert [o.due_at.day for o in orders_of(schedule)] == [7, 8, 9, 10, 11, 12, 13]
    schedule.refresh_from_db()
    assert schedule.next_due_at == utc(2027, 6, 14, 4, 0) and schedule.next_run_at == utc(2027, 6, 14, 4, 0)


def test_a_routine_round_has_no_asset(org_a, plant):
    schedule = owed_from(
        make_schedule(
            org_a,
            coverage=Schedule.Coverage.ROUTINE,
            location=plant["hall"],
            name="Weekly safety round",
            rrule="FREQ=WEEKLY;BYDAY=MO",
            time_of_day=time(7, 0),
            work_type="routine",
        ),
        MONDAY,
    )
    assert tick(utc(2027, 6, 7, 5, 0)).created == 1  # 07:00 Berlin
    order = orders_of(schedule).get()
    assert order.asset is None and order.location == plant["hall"] and order.type == "routine"
    assert occurrences_of(schedule).get().target_key == 0
    assert tick(utc(2027, 6, 7, 5, 0)).created == 0
    assert tick(utc(2027, 6, 14, 5, 0)).skipped == 1  # last week's round is still open
    complete(order, utc(2027, 6, 15, 9, 0))
    assert tick(utc(2027, 6, 21, 5, 0)).created == 1


def test_type_coverage_is_evaluated_at_generation_time(org_a, plant):
    schedule = owed_from(
        make_schedule(
            org_a,
            coverage=Schedule.Coverage.ASSETS,
            asset_type=plant["pump_type"],
            name="Pump check",
            cron_expression="0 6 * * *",
            skip_if_open=False,
        ),
        MONDAY,
    )
    tick(utc(2027, 6, 7, 4, 0))
    assert sorted(o.asset.code for o in orders_of(schedule)) == ["PMP-1", "PMP-2"]  # not the compressor
    asset_services.create_asset(
        org_a, code="PMP-3", name="Pump 3", asset_type=plant["pump_type"], location=plant["hall"]
    )
    asset_services.update_asset(plant["pump_2"], status="retired")
    tick(utc(2027, 6, 8, 4, 0))
    assert sorted(o.asset.code for o in orders_of(schedule).filter(due_at__day=8)) == ["PMP-1", "PMP-3"]


def test_location_coverage_includes_everything_below_it(org_a, plant):
    room = asset_services.create_location(org_a, name="Pump room", kind="area", parent=plant["hall"])
    asset_services.create_asset(org_a, code="FAN-1", name="Fan", location=room)
    schedule = owed_from(
        make_schedule(
            org_a,
            coverage=Schedule.Coverage.ASSETS,
            location=plant["hall"],
            cron_expression="0 6 * * *",
            name="Everything in the hall",
        ),
        MONDAY,
    )
    tick(utc(2027, 6, 7, 4, 0))
    assert sorted(o.asset.code for o in orders_of(schedule)) == ["CMP-1", "FAN-1", "PMP-1", "PMP-2"]


def test_paused_and_ended_schedules_generate_nothing(org_a, pump, planner_a):
    paused = daily_0600(org_a, pump, name="paused")
    ended = daily_0600(org_a, pump, name="ended", end_date=date(2027, 6, 8))
    pause_schedule(paused, actor=planner_a, reason="Pump out for overhaul")
    ticks(MONDAY, MONDAY + timedelta(days=4), step=timedelta(hours=2))
    assert orders_of(paused).count() == 0
    assert [o.due_at.day for o in orders_of(ended)] == [7, 8]  # the end date is the last day
    ended.refresh_from_db()
    assert ended.next_run_at is None  # never looked at again

    # resuming does not create what fell due during the pause
    resume_schedule(paused, actor=planner_a, now=utc(2027, 6, 11, 12, 0))
    assert tick(utc(2027, 6, 11, 12, 1)).created == 0
    assert tick(utc(2027, 6, 12, 4, 0)).created == 1
    assert paused.history.first().history_user == planner_a


def test_lead_time_creates_the_order_days_before_it_is_due(org_a, pump):
    schedule = owed_from(
        make_schedule(org_a, asset=pump, rrule="FREQ=MONTHLY;BYMONTHDAY=15", time_of_day=time(8, 0), lead_days=3),
        MONDAY,
    )
    assert tick(utc(2027, 6, 12, 5, 59)).created == 0  # due 15 June 08:00 Berlin = 06:00 UTC
    assert tick(utc(2027, 6, 12, 6, 0)).created == 1
    order = orders_of(schedule).get()
    assert order.due_at == utc(2027, 6, 15, 6, 0)
    schedule.refresh_from_db()
    assert schedule.next_due_at == utc(2027, 7, 15, 6, 0)
    assert schedule.next_run_at == utc(2027, 7, 12, 6, 0)


def test_skip_if_open_records_the_skip(org_a, pump):
    schedule = daily_0600(org_a, pump, skip_if_open=True)
    tick(utc(2027, 6, 7, 4, 0))
    first = orders_of(schedule).get()
    assert tick(utc(2027, 6, 8, 4, 0)).skipped == 1
    skipped = occurrences_of(schedule).get(due_at=utc(2027, 6, 8, 4, 0))
    assert skipped.status == Occurrence.Status.SKIPPED
    assert skipped.skip_reason == Occurrence.SkipReason.OPEN_ORDER
    assert first.number in skipped.note and skipped.work_order is None
    assert orders_of(schedule).count() == 1
    complete(first, utc(2027, 6, 8, 9, 0))
    assert tick(utc(2027, 6, 9, 4, 0)).created == 1


def test_floating_mode_counts_from_the_last_completion(org_a, pump):
    schedule = make_schedule(
        org_a,
        asset=pump,
        interval_count=2,
        interval_unit="weeks",
        time_of_day=time(6, 0),
        mode=Schedule.Mode.FLOATING,
        start_date=date(2027, 6, 7),
    )
    assert tick(utc(2027, 6, 7, 4, 0)).created == 1  # the first is due on the start date
    first = orders_of(schedule).get()
    assert tick(utc(2027, 6, 21, 4, 0)).created == 0  # open: the next is counted from its completion
    complete(first, utc(2027, 6, 25, 15, 0))  # finished late, on a Friday
    assert tick(utc(2027, 6, 25, 16, 0)).created == 0
    assert tick(utc(2027, 7, 9, 4, 0)).created == 1  # two weeks after the completion day, at 06:00
    assert orders_of(schedule).last().due_at == utc(2027, 7, 9, 4, 0)
    schedule.refresh_from_db()
    assert schedule.next_due_at is None  # waiting for the second one to be completed


def test_parts_are_reserved_when_the_order_is_created(org_a, pump, stores):
    schedule = daily_0600(
        org_a,
        pump,
        parts=[
            {"part": stores["seal"], "stock_location": stores["warehouse"], "quantity": 2},
            {"part": stores["grease"].pk, "stock_location": stores["warehouse"].pk, "quantity": "0.5"},
        ],
    )
    tick(utc(2027, 6, 7, 4, 0))
    tick(utc(2027, 6, 8, 4, 0))
    orders = list(orders_of(schedule))
    for order in orders:
        held = {(r.part.sku, r.quantity) for r in Reservation.objects.filter(work_order=order)}
        assert held == {("SEAL-1", Decimal("2")), ("GRS-1", Decimal("0.5"))}
    seal = StockLevel.objects.get(part=stores["seal"], location=stores["warehouse"])
    grease = StockLevel.objects.get(part=stores["grease"], location=stores["warehouse"])
    assert (seal.on_hand, seal.reserved) == (Decimal("50"), Decimal("4"))
    assert grease.reserved == Decimal("1")  # a shortage: nothing on hand, reserved all the same
    assert Reservation.objects.first().history.get().history_user.username == SYSTEM_USERNAME


# --- misfires: 72 hours without beat --------------------------------------------------------------------


@pytest.fixture
def three_days_down(org_a, pump):
    """Daily 06:00; beat ran on Monday 04:00 UTC, then nothing until Thursday 12:00 UTC (72 h later + 8 h):
    Tuesday, Wednesday and Thursday 06:00 were missed."""

    def make(policy, **extra):
        schedule = daily_0600(org_a, pump, misfire_policy=policy, name=policy, **extra)
        tick(utc(2027, 6, 7, 4, 0))
        return schedule

    return make


def test_after_downtime_coalesce_creates_one_order_for_the_missed_ones(three_days_down):
    schedule = three_days_down(Schedule.Misfire.COALESCE)
    result = tick(utc(2027, 6, 10, 12, 0))
    assert result.created == 1
    latest = occurrences_of(schedule).last()
    assert latest.due_at == utc(2027, 6, 10, 4, 0) and latest.missed_count == 2
    assert "Coalesced with 2 missed" in latest.work_order.description
    assert tick(utc(2027, 6, 11, 4, 0)).created == 1  # and on with the normal rhythm


def test_after_downtime_catch_up_creates_each_up_to_the_cap(three_days_down):
    schedule = three_days_down(Schedule.Misfire.CATCH_UP)
    assert tick(utc(2027, 6, 10, 12, 0)).created == 3
    assert [o.due_at.day for o in orders_of(schedule)] == [7, 8, 9, 10]


def test_catch_up_keeps_the_most_recent_when_over_the_cap(org_a, pump):
    schedule = daily_0600(org_a, pump, misfire_policy=Schedule.Misfire.CATCH_UP, misfire_cap=2)
    tick(utc(2027, 6, 7, 4, 0))
    assert tick(utc(2027, 6, 10, 12, 0)).created == 2
    occurrences = list(occurrences_of(schedule))
    assert [o.due_at.day for o in occurrences] == [7, 9, 10]
    assert occurrences[1].missed_count == 1


def test_after_downtime_skip_records_the_missed_ones_and_waits_for_the_next(three_days_down):
    schedule = three_days_down(Schedule.Misfire.SKIP)
    result = tick(utc(2027, 6, 10, 12, 0))
    assert (result.created, result.skipped) == (0, 1)
    skipped = occurrences_of(schedule).last()
    assert skipped.status == Occurrence.Status.SKIPPED and skipped.skip_reason == Occurrence.SkipReason.MISFIRE
    assert skipped.due_at == utc(2027, 6, 10, 4, 0) and skipped.missed_count == 2
    assert tick(utc(2027, 6, 10, 12, 5)).created == 0
    assert tick(utc(2027, 6, 11, 4, 0)).created == 1


def test_skip_still_creates_what_is_due_within_the_grace(three_days_down):
    schedule = three_days_down(Schedule.Misfire.SKIP)
    result = tick(utc(2027, 6, 10, 4, 30))  # Thursday's 06:00 is 30 minutes late: within the hour of grace
    assert (result.created, result.skipped) == (1, 1)
    assert orders_of(schedule).last().due_at == utc(2027, 6, 10, 4, 0)


# --- generate now ---------------------------------------------------------------------------------------


def test_generate_now_creates_what_is_due_within_days_ahead(org_a, pump, planner_a):
    schedule = daily_0600(org_a, pump)
    result = generate_now(schedule, actor=planner_a, days_ahead=3, now=utc(2027, 6, 7, 12, 0))
    assert result.created == 4  # today's (due this morning) and the next three days'
    assert orders_of(schedule).first().history.get().history_user == planner_a
    assert tick(utc(2027, 6, 8, 4, 0)).created == 0  # already there
    assert tick(utc(2027, 6, 11, 4, 0)).created == 1


# --- batched: the query count does not grow with the number of due occurrences -------------------------


@pytest.fixture
def sla_policy(org_a):
    """An SLA policy on office hours, so that every generated order gets a clock (started in bulk)."""
    calendar = BusinessCalendar.objects.create(organization=org_a, name="Office hours")
    WorkingHours.objects.bulk_create(
        [
            WorkingHours(organization=org_a, calendar=calendar, weekday=day, start=time(8), end=time(17))
            for day in range(5)
        ]
    )
    return SLAPolicy.objects.create(
        organization=org_a, name="Preventive", calendar=calendar, response_minutes=240, resolution_minutes=960
    )


def _queries_of_a_tick(moment, organization) -> tuple[int, int, list[str]]:
    """The queries of one tick, the SLA clocks of its orders included; each order got its clock."""
    reserve_numbers(organization, 0)  # the organisation's number counter exists (its first use creates it)
    audit.system_user()  # created once, outside the measured tick
    with CaptureQueriesContext(connection) as captured:
        result = tick(moment)
    assert SLAClock.objects.filter(work_order_id__in=result.work_order_ids).count() == result.created
    return result.created, len(captured), [q["sql"][:120] for q in captured.captured_queries]


def _large() -> int:
    """30 due occurrences; on SQLite 20, because Django splits a bulk INSERT there at 999 parameters (a work-order
    history row has 36 columns), which would add one INSERT per ~27 orders. PostgreSQL has no such split."""
    return 30 if connection.vendor == "postgresql" else 20


def test_the_queries_of_a_tick_do_not_grow_with_the_due_occurrences(org_a, stores, procedure, sla_policy):
    """The same tick, once with 3 and once with 30 due occurrences (one type-based schedule, a procedure to copy
    and a part to reserve for each): the same number of queries. They are: the system user; schedules; locations;
    assets of the type; latest occurrences (2); the run; in the chunk's transaction: the run's last row, the
    orders' ids, the COPY of the occurrences (pointing at those ids); `create_work_orders_bulk`: organisations, the
    assets and the procedure named, the number counter (2), the COPY of the orders, their history, the checklist
    items with their history (one statement), the SLA clocks (policies, assets, the calendar's holidays and hours,
    the clocks, their history), the COPY of the events; template parts; `reserve_bulk`: parts, locations, the
    orders locked, their active reservations, the stock levels made sure of, the reservations' ids, COPY and
    history, the stock level's UPDATE, the low-stock check (2); then the run's counts, the schedules' bookkeeping,
    and savepoints."""
    counts = []
    for size, day in ((3, 7), (_large(), 8)):
        pump_type = asset_services.create_asset_type(org_a, name=f"Pump {size}")
        for n in range(size):
            asset_services.create_asset(org_a, code=f"P{size}-{n}", name="Pump", asset_type=pump_type)
        owed_from(
            make_schedule(
                org_a,
                coverage=Schedule.Coverage.ASSETS,
                asset_type=pump_type,
                cron_expression=f"0 6 {day} 6 *",
                procedure=procedure,
                name=f"Pumps {size}",
                parts=[{"part": stores["seal"], "stock_location": stores["warehouse"], "quantity": 1}],
            ),
            MONDAY,
        )
        created, queries, sql = _queries_of_a_tick(utc(2027, 6, day, 4, 0), org_a)
        assert created == size
        counts.append((queries, sql))
    assert counts[0][0] == counts[1][0], "\n".join(counts[1][1])


def test_a_tick_over_many_schedules_costs_the_same_as_over_few(org_a, plant, stores, procedure, sla_policy):
    counts = []
    for size, day in ((3, 7), (_large(), 8)):
        for n in range(size):
            asset = asset_services.create_asset(org_a, code=f"S{size}-{n}", name="Fan", location=plant["hall"])
            owed_from(make_schedule(org_a, asset=asset, name=f"S{size}-{n}", cron_expression=f"0 6 {day} 6 *"), MONDAY)
        created, queries, _ = _queries_of_a_tick(utc(2027, 6, day, 4, 0), org_a)
        assert created == size
        counts.append(queries)
    assert counts[0] == counts[1]
