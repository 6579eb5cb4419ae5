"""Statistics (PM compliance), forecast, the .ics document, the beat task and its registration, the SLA hook,
the demo data, and the back office."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from maintenance_site.ops import schedules as core_schedules
from maintenance_site.tenancy import SYSTEM
from scheduling.preventive import ical
from scheduling.preventive.generation import generate_due_work_orders
from scheduling.preventive.models import GenerationRun
from scheduling.preventive.reports import forecast, statistics
from scheduling.preventive.services import generate_now
from scheduling.tasks import generate_preventive_work_orders
from sla.models import BusinessCalendar, SLAClock, SLAPolicy
from tests.scheduling.preventive.support import Schedule, complete, make_schedule, orders_of, owed_from, tick, utc
from workorders.models import WorkOrder

MONDAY = utc(2027, 6, 7, 0, 0)


def daily(org, asset, **extra):
    return owed_from(make_schedule(org, asset=asset, cron_expression="0 6 * * *", **extra), MONDAY)


# --- statistics -----------------------------------------------------------------------------------------


def test_compliance_counts_on_time_late_overdue_and_skipped(org_a, plant):
    schedule = daily(org_a, plant["pump_1"], name="pump daily")  # skip-if-open
    second = daily(org_a, plant["pump_2"], name="other daily", skip_if_open=False)
    tick(utc(2027, 6, 7, 4, 0))
    complete(orders_of(schedule).get(), utc(2027, 6, 7, 9, 0))  # Monday's: on time
    tick(utc(2027, 6, 8, 4, 0))
    complete(orders_of(schedule).last(), utc(2027, 6, 10, 9, 0))  # Tuesday's: more than a day late
    tick(utc(2027, 6, 9, 4, 0))  # Wednesday's: left open
    tick(utc(2027, 6, 10, 4, 0))  # Thursday: skipped (Wednesday's is open)
    tick(utc(2027, 6, 11, 4, 0))  # Friday: skipped
    now = utc(2027, 6, 11, 12, 0)

    stats = statistics(org_a, start=MONDAY, end=utc(2027, 6, 12), group_by="schedule", now=now)
    by_schedule = {row["schedule_name"]: row for row in stats["groups"]}
    pump_row = by_schedule["pump daily"]
    assert (pump_row["generated"], pump_row["completed_on_time"], pump_row["completed_late"]) == (3, 1, 1)
    assert (pump_row["overdue"], pump_row["open"], pump_row["skipped"]) == (1, 0, 2)
    assert pump_row["compliance"] == 20.0  # 1 on time of 5 that had to be done
    other_row = by_schedule["other daily"]
    assert (other_row["generated"], other_row["overdue"], other_row["open"]) == (5, 4, 1)  # Friday's: within a day
    assert other_row["compliance"] == 0.0
    assert stats["totals"]["generated"] == 8 and stats["totals"]["compliance"] == round(100 / 9, 1)

    by_asset = statistics(org_a, start=MONDAY, end=utc(2027, 6, 12), group_by="asset", now=now)
    assert {row["asset_code"] for row in by_asset["groups"]} == {"PMP-1", "PMP-2"}
    by_week = statistics(org_a, start=MONDAY, end=utc(2027, 6, 12), period="week", now=now)
    assert [row["period"] for row in by_week["groups"]] == ["2027-06-07"]
    assert by_week["totals"]["generated"] == 8
    only = statistics(org_a, start=MONDAY, end=utc(2027, 6, 12), schedule=second, now=now)
    assert only["totals"]["generated"] == 5


# --- forecast and the .ics ------------------------------------------------------------------------------


def test_forecast_lists_occurrences_with_the_parts_they_need(org_a, plant, stores):
    daily(
        org_a,
        plant["pump_1"],
        name="pump daily",
        parts=[{"part": stores["seal"], "stock_location": stores["warehouse"], "quantity": 2}],
    )
    floating = make_schedule(
        org_a,
        asset=plant["compressor"],
        interval_count=10,
        mode="floating",
        start_date=date(2027, 6, 9),
        name="compressor floating",
    )
    make_schedule(
        org_a,
        asset=plant["pump_2"],
        trigger="meter",
        meter_name="Run hours",
        meter_mode="every",
        meter_interval=100,
        name="by hours",
    )
    tick(utc(2027, 6, 7, 4, 0))
    plan = forecast(org_a, days=7, now=utc(2027, 6, 7, 3, 0))
    pump_rows = [o for o in plan["occurrences"] if o["schedule_name"] == "pump daily"]
    assert len(pump_rows) == 7 and pump_rows[0]["generated"] and not pump_rows[1]["generated"]
    assert pump_rows[0]["local_due"] == "2027-06-07T06:00" and pump_rows[0]["time_zone"] == "Europe/Berlin"
    assert [o["due_at"] for o in plan["occurrences"] if o["schedule"] == floating.pk] == [utc(2027, 6, 9, 4, 0)]
    assert plan["parts_needed"] == [
        {
            "part": stores["seal"].pk,
            "sku": "SEAL-1",
            "name": "Seal kit",
            "unit": "each",
            "stock_location": stores["warehouse"].pk,
            "stock_location_name": "Warehouse",
            "quantity": "14.000",
            "occurrences": 7,
        },
    ]
    assert plan["meter_schedules"][0]["schedule_name"] == "by hours"


def test_the_ics_has_one_stable_event_per_occurrence(org_a, pump):
    daily(org_a, pump, title="Check {asset_code}", estimated_minutes=45)
    document = ical.calendar_for(org_a, days=3, now=utc(2027, 6, 7, 3, 0)).decode()
    assert document.count("BEGIN:VEVENT") == 3
    assert "SUMMARY:Check PMP-1" in document
    assert "DTSTART:20270607T040000Z" in document and "DTEND:20270607T044500Z" in document
    again = ical.calendar_for(org_a, days=3, now=utc(2027, 6, 7, 3, 30)).decode()
    uids = [line for line in document.splitlines() if line.startswith("UID:")]
    assert uids == [line for line in again.splitlines() if line.startswith("UID:")]


# --- beat ----------------------------------------------------------------------------------------------


def test_the_beat_task_is_a_core_periodic_task_and_generates(db, org_a, pump):
    from django_celery_beat.models import PeriodicTask

    core_schedules.ensure_core_periodic_tasks()
    task = PeriodicTask.objects.get(name="core: preventive generation")
    assert task.task == "scheduling.tasks.generate_preventive_work_orders" and task.enabled
    assert task.interval.every == 60
    owed_from(
        make_schedule(org_a, asset=pump, cron_expression="* * * * *".replace("* * * * *", "0 * * * *")), utc(2020, 1, 1)
    )
    result = generate_preventive_work_orders.delay().get()
    assert result["created"] == 1  # coalesced: one order for everything owed
    assert generate_preventive_work_orders.delay().get() == {"created": 0, "skipped": 0}


def test_each_generated_order_gets_its_sla_clock_when_a_policy_covers_it(org_a, pump):
    schedule = owed_from(make_schedule(org_a, asset=pump, cron_expression="0 6 * * *", skip_if_open=False), MONDAY)
    tick(utc(2027, 6, 7, 4, 0))
    assert not SLAClock.objects.filter(work_order__in=orders_of(schedule)).exists()  # no SLA policy: no clock
    calendar = BusinessCalendar.objects.create(organization=org_a, name="24/7", always_open=True)
    policy = SLAPolicy.objects.create(
        organization=org_a, name="PM", calendar=calendar, response_minutes=60, resolution_minutes=480
    )
    tick(utc(2027, 6, 8, 4, 0))
    order = orders_of(schedule).last()
    clock = SLAClock.objects.get(work_order__in=orders_of(schedule))
    assert (clock.work_order_id, clock.policy_id, clock.started_at) == (order.pk, policy.pk, order.created_at)
    assert clock.response_due_at == order.created_at + timedelta(minutes=60)  # 24/7: business time is time
    assert clock.resolution_due_at == order.created_at + timedelta(minutes=480)


# --- demo data -----------------------------------------------------------------------------------------


def test_the_demo_seeds_four_working_schedules(db, monkeypatch):
    from maintenance_site.ops.management.commands import seed_demo

    modules = [m for m in seed_demo.DEMO_MODULES if m != "scheduling.preventive.demo"] + ["scheduling.preventive.demo"]
    monkeypatch.setattr(seed_demo, "DEMO_MODULES", modules)
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115  (idempotent)
    names = set(Schedule.objects.filter(organization__slug="acme").values_list("name", flat=True))
    assert names == {
        "Daily plant walk-round",
        "Weekly compressor inspection",
        "Monthly pump service",
        "Compressor service every 500 h",
    }
    for schedule in Schedule.objects.all():
        assert not schedule.problems()
    result = generate_due_work_orders(now=utc(2027, 1, 1), actor=SYSTEM)
    assert result.created > 0 and GenerationRun.objects.exists()


# --- the back office -----------------------------------------------------------------------------------


@pytest.fixture
def back_office(client, org_a, planner_a):
    client.force_login(planner_a)
    session = client.session
    from maintenance_site.tenancy.middleware import SESSION_KEY

    session[SESSION_KEY] = org_a.pk
    session.save()
    return client


ADMIN = "/admin/scheduling/preventiveschedule/"


def test_the_admin_shows_the_trigger_the_next_five_dates_and_what_was_generated(back_office, org_a, pump, stores):
    schedule = daily(
        org_a,
        pump,
        name="Pump daily",
        parts=[{"part": stores["seal"], "stock_location": stores["warehouse"], "quantity": 1}],
    )
    generate_now(schedule, now=utc(2027, 6, 7, 5, 0), actor=SYSTEM)
    listing = back_office.get(ADMIN)
    assert listing.status_code == 200
    assert "cron “0 6 * * *”" in listing.content.decode()
    page = back_office.get(f"{ADMIN}{schedule.pk}/change/").content.decode()
    assert page.count(" 06:00 CE") >= 5  # the next five due dates, in the site's time zone (CET or CEST)
    assert "parts reserved for each order" in page.lower() and "SEAL-1" in page
    assert "generated orders and skips" in page.lower() and "WO-" in page


def test_the_admin_refuses_a_bad_cron_next_to_the_field(back_office, org_a, pump):
    data = {
        "name": "Bad",
        "coverage": "asset",
        "asset": pump.pk,
        "trigger": "cron",
        "cron_expression": "0 6 * *",
        "time_of_day": "06:00",
        "mode": "fixed",
        "lead_days": 0,
        "misfire_policy": "coalesce",
        "misfire_cap": 10,
        "start_date": "2027-01-01",
        "priority": "medium",
        "work_type": "preventive",
        "cooldown_minutes": 0,
        "template_parts-TOTAL_FORMS": 0,
        "template_parts-INITIAL_FORMS": 0,
        "occurrences-TOTAL_FORMS": 0,
        "occurrences-INITIAL_FORMS": 0,
    }
    response = back_office.post(f"{ADMIN}add/", data)
    assert response.status_code == 200
    assert "a cron expression has five" in response.content.decode()
    assert not Schedule.objects.exists()
    data["cron_expression"] = "0 6 * * *"
    response = back_office.post(f"{ADMIN}add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Schedule.objects.get().history.first().history_user.username == "planner-a"


def test_the_admin_actions_generate_now_and_pause(back_office, org_a, pump):
    schedule = make_schedule(org_a, asset=pump, cron_expression="0 6 * * *", start_date=date(2026, 1, 1))
    owed_from(schedule, utc(2026, 1, 1))
    response = back_office.post(ADMIN, {"action": "generate_now", "_selected_action": [schedule.pk]}, follow=True)
    assert "1 order(s) created" in response.content.decode()
    assert WorkOrder.objects.filter(source="preventive").count() == 1
    back_office.post(ADMIN, {"action": "pause", "_selected_action": [schedule.pk]})
    schedule.refresh_from_db()
    assert schedule.status == Schedule.Status.PAUSED


def test_the_admin_hides_other_organisations_and_technicians(client, org_b, manager_b, technician_a, org_a, pump):
    schedule = make_schedule(org_a, asset=pump, cron_expression="0 6 * * *")
    client.force_login(manager_b)
    assert client.get(f"{ADMIN}{schedule.pk}/change/").status_code == 404
    assert str(schedule.name) not in client.get(ADMIN).content.decode()
    client.force_login(technician_a)
    assert client.get(ADMIN).status_code in (302, 403)


def test_parts_reserved_quantity_decimal(org_a, pump, stores):
    schedule = daily(
        org_a, pump, parts=[{"part": stores["grease"], "stock_location": stores["warehouse"], "quantity": "0.25"}]
    )
    assert schedule.template_parts.get().quantity == Decimal("0.25")


def test_pm_statistics_and_analytics_agree(org_a, plant):
    """`/preventive-maintenance/statistics` and the `pm_compliance` KPI of `/analytics/*` are one computation."""
    from maintenance_site.analytics import services as analytics

    schedule = daily(org_a, plant["pump_1"], name="pump daily")
    tick(utc(2027, 6, 7, 4, 0))
    complete(orders_of(schedule).get(), utc(2027, 6, 7, 9, 0))  # on time
    tick(utc(2027, 6, 8, 4, 0))
    complete(orders_of(schedule).last(), utc(2027, 6, 10, 9, 0))  # late
    tick(utc(2027, 6, 9, 4, 0))  # left open
    tick(utc(2027, 6, 10, 4, 0))  # skipped
    now = utc(2027, 6, 11, 12, 0)
    scope = analytics.scope_for(org_a, first_day=date(2027, 6, 7), last_day=date(2027, 6, 10), now=now)
    stats = statistics(org_a, start=scope.start, end=scope.end, now=now)
    figure = analytics.kpi_values(scope, ["pm_compliance"])["pm_compliance"]
    assert figure == stats["totals"]["compliance"] == 25.0  # 1 on time of 4 decided
    by_day = analytics.trend(scope, ["pm_compliance"], "day")["rows"]
    daily_stats = statistics(org_a, start=scope.start, end=scope.end, period="day", now=now)["groups"]
    assert {row["period"].isoformat(): row["pm_compliance"] for row in by_day if row["pm_compliance"] is not None} == {
        group["period"]: group["compliance"] for group in daily_stats
    }
    route = analytics.pm_compliance(scope, "period", "day")  # /analytics/pm-compliance: the same function
    assert route["pm_compliance"] == figure and route["rows"] == daily_stats
    assert route["totals"] == stats["totals"]
