"""Meters and readings (service and API), and meter-triggered preventive work: every N units, and thresholds
with a cooldown so that a stream of readings cannot flood work orders."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from assets import meters
from assets.models import Meter, MeterReading
from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.tenancy import SYSTEM
from tests.scheduling.preventive.support import (
    Occurrence,
    Schedule,
    make_schedule,
    occurrences_of,
    orders_of,
    owed_from,
    tick,
    utc,
)

START = utc(2026, 6, 7, 0, 0)  # readings cannot be in the future


@pytest.fixture
def hours(org_a, pump):
    return meters.create_meter(org_a, asset=pump, name="Run hours", unit="h", actor=SYSTEM)


@pytest.fixture
def temperature(org_a, pump):
    return meters.create_meter(
        org_a, asset=pump, name="Bearing temperature", unit="°C", kind=Meter.Kind.GAUGE, actor=SYSTEM
    )


def read(meter, *values, start=START, step=timedelta(minutes=10)):
    """Readings at start, start + step, … (through the service, as telemetry would post them)."""
    items = [{"meter": meter, "value": value, "read_at": start + n * step} for n, value in enumerate(values)]
    return meters.record_readings(meter.organization, items, actor=SYSTEM)


# --- recording readings ---------------------------------------------------------------------------------


def test_readings_are_recorded_in_a_batch_and_a_replay_changes_nothing(hours):
    result = read(hours, 10, 11, "11.5")
    assert len(result.created) == 3 and result.duplicates == 0
    hours.refresh_from_db()
    assert (hours.last_value, hours.last_read_at) == (Decimal("11.5"), START + timedelta(minutes=20))
    again = read(hours, 10, 11, "11.5")
    assert (len(again.created), again.duplicates) == (0, 3)
    assert MeterReading.objects.count() == 3


def test_a_counter_never_goes_down(hours):
    read(hours, 100, 120)
    with pytest.raises(InvalidInput) as refused:
        read(hours, 130, 125, start=START + timedelta(hours=1))
    assert "readings[1].value" in refused.value.fields
    assert "is a counter" in refused.value.message and "create a new meter" in refused.value.message
    with pytest.raises(InvalidInput):  # back-dated, but above the reading that follows it
        read(hours, 150, start=START + timedelta(minutes=5))
    read(hours, 110, start=START + timedelta(minutes=5))  # back-dated and in order: fine
    assert MeterReading.objects.count() == 3


def test_a_gauge_goes_up_and_down(temperature):
    read(temperature, 60, 40, 80)
    temperature.refresh_from_db()
    assert temperature.last_value == Decimal("80")


@pytest.mark.parametrize(
    ("reading", "where", "words"),
    [
        ({"value": "lots"}, "readings[0].value", "not a number"),
        ({"value": "NaN"}, "readings[0].value", "not a usable reading"),
        ({"value": 1, "read_at": "yesterday"}, "readings[0].read_at", "ISO 8601"),
        ({"value": 1, "read_at": "2027-06-07T10:00:00"}, "readings[0].read_at", "no time zone"),
        ({"value": 1, "read_at": "2999-01-01T00:00:00Z"}, "readings[0].read_at", "in the future"),
        ({"value": 1, "meter": 999999}, "readings[0].meter", "No such meter"),
    ],
)
def test_a_bad_reading_is_refused_with_its_position(hours, reading, where, words):
    with pytest.raises(InvalidInput) as refused:
        meters.record_readings(hours.organization, [{"meter": hours, **reading}], actor=SYSTEM)
    assert where in refused.value.fields and words in refused.value.message
    assert not MeterReading.objects.exists()


def test_the_same_moment_with_another_value_is_refused(hours):
    read(hours, 10)
    with pytest.raises(InvalidInput) as refused:
        read(hours, 12)
    assert "already has 10" in refused.value.message


def test_who_may_post_readings(org_a, hours, technician_a, viewer_a):
    meters.record_reading(hours, 1, START, actor=technician_a)
    with pytest.raises(PermissionDeniedError):
        meters.record_reading(hours, 2, START + timedelta(hours=1), actor=viewer_a)


# --- the meter API --------------------------------------------------------------------------------------


def test_meters_and_readings_over_the_api(api, org_a, org_b, planner_a, technician_a, viewer_a, manager_b, pump):
    planner = api(planner_a, org_a)
    response = planner.post(f"/api/v1/assets/{pump.pk}/meters/", {"name": "Run hours", "unit": "h"}, format="json")
    assert response.status_code == 201, response.json()
    meter_id = response.json()["id"]
    assert planner.post(f"/api/v1/assets/{pump.pk}/meters/", {"name": "Run hours"}, format="json").status_code == 400
    assert planner.get(f"/api/v1/assets/{pump.pk}/meters/").json()["count"] == 1

    technician = api(technician_a, org_a)
    readings = f"/api/v1/meters/{meter_id}/readings/"
    one = technician.post(readings, {"value": "12.5", "read_at": "2026-01-01T10:00:00Z"}, format="json")
    assert one.status_code == 201, one.json()
    assert one.json()["created"] == 1 and one.json()["readings"][0]["value"] == "12.5000"
    many = technician.post(
        readings,
        [{"value": 13, "read_at": "2026-01-01T11:00:00Z"}, {"value": 14, "read_at": "2026-01-01T12:00:00Z"}],
        format="json",
    )
    assert many.status_code == 201 and many.json()["created"] == 2
    bad = technician.post(readings, [{"value": 15}, {"value": 1, "read_at": "2026-01-01T13:00:00Z"}], format="json")
    assert bad.status_code == 400 and "readings[1].value" in bad.json()["error"]["fields"]
    listed = api(viewer_a, org_a).get(readings).json()
    assert listed["count"] == 3 and listed["results"][0]["value"] == "14.0000"  # newest first
    bulk = technician.post(
        "/api/v1/meters/readings/", [{"meter": meter_id, "value": 20, "read_at": "2026-01-02T10:00:00Z"}], format="json"
    )
    assert bulk.status_code == 201, bulk.json()

    # roles and tenancy
    assert api(viewer_a, org_a).post(readings, {"value": 30}, format="json").status_code == 403
    assert technician.post(f"/api/v1/assets/{pump.pk}/meters/", {"name": "X"}, format="json").status_code == 403
    assert api().get(readings).status_code == 401
    stranger = api(manager_b, org_b)
    assert stranger.get(readings).status_code == 404
    assert stranger.post(readings, {"value": 30}, format="json").status_code == 404
    assert stranger.get(f"/api/v1/assets/{pump.pk}/meters/").status_code == 404
    assert (
        stranger.post("/api/v1/meters/readings/", [{"meter": meter_id, "value": 40}], format="json").status_code == 400
    )


# --- meter-triggered schedules --------------------------------------------------------------------------


def meter_schedule(org, pump, **fields):
    fields.setdefault("trigger", Schedule.Trigger.METER)
    fields.setdefault("skip_if_open", False)
    return owed_from(make_schedule(org, asset=pump, **fields), START)


def test_every_n_units_creates_an_order_at_each_mark(org_a, pump, hours):
    schedule = meter_schedule(org_a, pump, meter_name="Run hours", meter_mode="every", meter_interval=500)
    read(hours, 1234)  # counting starts at the first reading after the start date
    assert tick(START + timedelta(minutes=5)).created == 0
    read(hours, 1400, 1499, start=START + timedelta(hours=1))
    assert tick(START + timedelta(hours=2)).created == 0
    read(hours, 1502, 1520, start=START + timedelta(hours=3))
    assert tick(START + timedelta(hours=4)).created == 1
    occurrence = occurrences_of(schedule).get()
    assert occurrence.meter_value == Decimal("1502") and occurrence.due_at == START + timedelta(hours=3)
    assert "service mark 1500" in occurrence.work_order.description
    assert tick(START + timedelta(hours=5)).created == 0  # the same mark once
    read(hours, 2100, start=START + timedelta(hours=6))  # passes 2000 (not 2002: fixed marks)
    assert tick(START + timedelta(hours=7)).created == 1
    assert occurrences_of(schedule).last().meter_value == Decimal("2100")


def test_every_n_units_floating_counts_from_the_last_service(org_a, pump, hours):
    schedule = meter_schedule(
        org_a, pump, meter_name="Run hours", meter_mode="every", meter_interval=500, mode="floating"
    )
    read(hours, 1234, 1740, 1750)
    tick(START + timedelta(hours=1))
    assert occurrences_of(schedule).get().meter_value == Decimal("1740")  # 1234 + 500 reached
    read(hours, 2200, 2240, start=START + timedelta(hours=2))
    assert tick(START + timedelta(hours=3)).created == 1
    assert occurrences_of(schedule).last().meter_value == Decimal("2240")  # 1740 + 500


def test_a_threshold_with_cooldown_does_not_flood(org_a, pump, temperature):
    schedule = meter_schedule(
        org_a, pump, meter_name="Bearing temperature", meter_mode="above", meter_threshold=80, cooldown_minutes=120
    )
    # a hot bearing reporting every 10 minutes for 4 hours, with beat every 10 minutes
    created = 0
    for n in range(24):
        moment = START + timedelta(minutes=10 * n)
        read(temperature, 85 + n % 3, start=moment)
        created += tick(moment + timedelta(minutes=1)).created
    assert created == 2  # at the first hot reading, then once the two-hour cooldown is over
    dues = [o.due_at for o in occurrences_of(schedule)]
    assert dues == [START, START + timedelta(hours=2)]
    assert "above the threshold of 80" in occurrences_of(schedule).first().work_order.description


def test_a_reading_below_a_threshold(org_a, pump, temperature):
    schedule = meter_schedule(org_a, pump, meter_name="Bearing temperature", meter_mode="below", meter_threshold=5)
    read(temperature, 20, 10, 4, 3)
    assert tick(START + timedelta(hours=1)).created == 1
    assert occurrences_of(schedule).get().meter_value == Decimal("4")


def test_skip_if_open_on_a_threshold_records_skips(org_a, pump, temperature):
    schedule = meter_schedule(
        org_a,
        pump,
        meter_name="Bearing temperature",
        meter_mode="above",
        meter_threshold=80,
        cooldown_minutes=30,
        skip_if_open=True,
    )
    read(temperature, 90)
    tick(START + timedelta(minutes=1))
    read(temperature, 95, start=START + timedelta(hours=1))
    assert tick(START + timedelta(hours=1, minutes=1)).skipped == 1
    assert orders_of(schedule).count() == 1
    assert occurrences_of(schedule).last().skip_reason == Occurrence.SkipReason.OPEN_ORDER


def test_a_meter_schedule_covers_every_asset_of_a_type(org_a, plant):
    schedule = owed_from(
        make_schedule(
            org_a,
            coverage=Schedule.Coverage.ASSETS,
            asset_type=plant["pump_type"],
            trigger="meter",
            meter_name="Run hours",
            meter_mode="every",
            meter_interval=100,
            name="Pumps by hours",
        ),
        START,
    )
    for pump in (plant["pump_1"], plant["pump_2"]):
        meter = meters.create_meter(org_a, asset=pump, name="Run hours", actor=SYSTEM)
        read(meter, 50, 90 if pump == plant["pump_1"] else 160)
    assert tick(START + timedelta(hours=1)).created == 1
    assert occurrences_of(schedule).get().asset == plant["pump_2"]


def test_the_cooldown_counts_from_the_reading_not_from_now(org_a, pump, temperature):
    """Readings posted late (an offline device) are judged by when they were read."""
    schedule = meter_schedule(
        org_a, pump, meter_name="Bearing temperature", meter_mode="above", meter_threshold=80, cooldown_minutes=60
    )
    read(temperature, 90, 91, 92, 93, 94, 95, 96, 97, start=START, step=timedelta(minutes=15))
    tick(timezone.now())
    assert [o.due_at for o in occurrences_of(schedule)] == [START]
    tick(timezone.now())
    assert [o.due_at for o in occurrences_of(schedule)] == [START, START + timedelta(minutes=60)]
