"""Daylight saving: a daily 02:30 schedule gives exactly one order per local day across both changes, in
Europe/Berlin and America/New_York. The rule (`maintenance_site.recurrence`): a local time in the spring-forward
gap is shifted forward by the gap's length (02:30 runs at 03:30); a local time that happens twice runs once, at
its first occurrence (fold=0). A spring night generated under the earlier rule (02:30 ran at 03:00, the first
valid instant after the gap) is not generated a second time."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from assets import services as asset_services
from maintenance_site.recurrence import to_utc
from scheduling.preventive.models import PreventiveOccurrence
from tests.scheduling.preventive.support import (
    Schedule,
    make_schedule,
    occurrences_of,
    orders_of,
    owed_from,
    ticks,
    utc,
)

# (zone, spring-forward day, fall-back day) in 2027
CHANGES = [
    ("Europe/Berlin", date(2027, 3, 28), date(2027, 10, 31)),
    ("America/New_York", date(2027, 3, 14), date(2027, 11, 7)),
]


@pytest.mark.parametrize(
    ("zone", "local", "expected_utc"),
    [
        # ordinary times
        ("Europe/Berlin", datetime(2027, 3, 27, 2, 30), utc(2027, 3, 27, 1, 30)),
        ("Europe/Berlin", datetime(2027, 3, 29, 2, 30), utc(2027, 3, 29, 0, 30)),
        # the gap: 02:30 does not exist, it is shifted forward by the gap's length, to 03:30 CEST
        ("Europe/Berlin", datetime(2027, 3, 28, 2, 30), utc(2027, 3, 28, 1, 30)),
        ("Europe/Berlin", datetime(2027, 3, 28, 2, 0), utc(2027, 3, 28, 1, 0)),
        # twice: the first (summer-time) 02:30
        ("Europe/Berlin", datetime(2027, 10, 31, 2, 30), utc(2027, 10, 31, 0, 30)),
        ("America/New_York", datetime(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 30)),
        ("America/New_York", datetime(2027, 11, 7, 1, 30), utc(2027, 11, 7, 5, 30)),
        # a zone with a 30-minute change (Lord Howe Island: 02:00 → 02:30): 02:15 runs at 02:45
        ("Australia/Lord_Howe", datetime(2027, 10, 3, 2, 15), utc(2027, 10, 2, 15, 45)),
    ],
)
def test_the_rule_for_missing_and_repeated_local_times(zone, local, expected_utc):
    assert to_utc(local, ZoneInfo(zone)) == expected_utc
    assert to_utc(local, ZoneInfo(zone)).astimezone(ZoneInfo(zone)).fold == 0


def _site_asset(org, zone):
    site = asset_services.create_location(org, name=f"Site {zone}", time_zone=zone)
    return asset_services.create_asset(org, code=f"A-{zone[:6]}", name="Boiler", location=site)


@pytest.mark.parametrize(("zone", "spring", "autumn"), CHANGES)
@pytest.mark.parametrize(
    "trigger",
    [
        {"cron_expression": "30 2 * * *"},
        {"rrule": "FREQ=DAILY", "time_of_day": time(2, 30)},
        {"interval_count": 1, "time_of_day": time(2, 30)},
    ],
    ids=["cron", "rrule", "interval"],
)
@pytest.mark.parametrize("change", ["spring", "autumn"])
def test_a_daily_0230_schedule_gives_one_order_per_local_day(org_a, zone, spring, autumn, trigger, change):
    """Beat every 20 minutes from two days before to two days after the change: five local days, five orders,
    each on its own local day at 02:30, except 03:30 on the spring-forward day."""
    asset = _site_asset(org_a, zone)
    day = spring if change == "spring" else autumn
    tz = ZoneInfo(zone)
    first_day = day - timedelta(days=2)
    start = datetime.combine(first_day, time(0, 0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=3), time(0, 0), tz).astimezone(UTC)
    schedule = owed_from(make_schedule(org_a, asset=asset, skip_if_open=False, **trigger), start)

    ticks(start, end, step=timedelta(minutes=20))
    ticks(start, end, step=timedelta(minutes=45))  # a second beat over the same hours changes nothing

    orders = list(orders_of(schedule))
    local_times = [order.due_at.astimezone(tz) for order in orders]
    assert [moment.date() for moment in local_times] == [first_day + timedelta(days=n) for n in range(5)]
    for moment in local_times:
        if moment.date() == spring:
            assert (moment.hour, moment.minute) == (3, 30)  # 02:30 does not exist that night: a gap later
        else:
            assert (moment.hour, moment.minute) == (2, 30)
        assert moment.fold == 0
    for moment in local_times:
        naive = moment.replace(tzinfo=None)
        first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
        if first.utcoffset() != second.utcoffset() and moment.date() == autumn:  # 02:30 happened twice
            assert moment.astimezone(UTC) == first.astimezone(UTC)  # the first one (summer time)
    assert occurrences_of(schedule).count() == 5


def test_new_york_0130_happens_twice_and_runs_once(org_a):
    """In New York the repeated hour is 01:00–02:00: a daily 01:30 runs at the first 01:30 (EDT)."""
    asset = _site_asset(org_a, "America/New_York")
    start = utc(2027, 11, 6, 4, 0)
    schedule = owed_from(make_schedule(org_a, asset=asset, cron_expression="30 1 * * *", skip_if_open=False), start)
    ticks(start, utc(2027, 11, 8, 12, 0), step=timedelta(minutes=20))
    assert [o.due_at for o in orders_of(schedule)] == [
        utc(2027, 11, 6, 5, 30),
        utc(2027, 11, 7, 5, 30),
        utc(2027, 11, 8, 6, 30),
    ]  # EDT, EDT (the first 01:30), EST


def test_an_hourly_cron_in_the_gap_and_the_repeated_hour(org_a):
    """Every hour: the missing 02:00 lands on 03:00 together with 03:00 itself (one occurrence); the repeated
    02:00 in the autumn runs once."""
    asset = _site_asset(org_a, "Europe/Berlin")
    schedule = owed_from(
        make_schedule(org_a, asset=asset, cron_expression="0 * * * *", skip_if_open=False), utc(2027, 3, 27, 20, 0)
    )
    ticks(utc(2027, 3, 27, 20, 0), utc(2027, 3, 28, 4, 0), step=timedelta(minutes=20))
    tz = ZoneInfo("Europe/Berlin")
    hours = [o.due_at.astimezone(tz).hour for o in orders_of(schedule) if o.due_at.astimezone(tz).day == 28]
    assert hours == [0, 1, 3, 4, 5, 6]  # up to 04:00 UTC; 02:00 does not exist and folds into 03:00

    autumn = owed_from(
        make_schedule(org_a, asset=asset, cron_expression="0 * * * *", skip_if_open=False, name="autumn"),
        utc(2027, 10, 30, 20, 0),
    )
    ticks(utc(2027, 10, 30, 20, 0), utc(2027, 10, 31, 3, 0), step=timedelta(minutes=20))
    hours = [o.due_at.astimezone(tz).hour for o in orders_of(autumn) if o.due_at.astimezone(tz).day == 31]
    assert hours == [0, 1, 2, 3, 4]  # up to 03:00 UTC; 02:00 once (summer time), not again an hour later


TRIGGERS = [
    {"cron_expression": "30 2 * * *"},
    {"rrule": "FREQ=DAILY", "time_of_day": time(2, 30)},
    {"interval_count": 1, "time_of_day": time(2, 30)},
]


@pytest.mark.parametrize(("zone", "spring"), [(zone, spring) for zone, spring, _ in CHANGES])
@pytest.mark.parametrize("trigger", TRIGGERS, ids=["cron", "rrule", "interval"])
@pytest.mark.parametrize("lead_days", [0, 1])
def test_a_spring_night_generated_under_the_earlier_rule_is_not_generated_again(
    org_a, zone, spring, trigger, lead_days
):
    """The earlier rule ran 02:30 of the spring-forward night at 03:00 (the instant the clocks jumped), and the
    last pass before the new rule ran ten minutes after that order was created. The unique key holds the due
    instant, so nothing in the database stops 03:30 from being inserted beside 03:00: the generator itself must
    read an occurrence at the jump as "this night is done". With a lead time, the earlier pass ran a day ahead."""
    asset = _site_asset(org_a, zone)
    tz = ZoneInfo(zone)
    jump = datetime.combine(spring, time(3, 0), tz).astimezone(UTC)  # 03:00 after the jump, in UTC
    lead = timedelta(days=lead_days)
    last_pass = jump - lead + timedelta(minutes=10)
    schedule = make_schedule(org_a, asset=asset, skip_if_open=False, lead_days=lead_days, **trigger)
    Schedule.objects.filter(pk=schedule.pk).update(generated_through=last_pass, next_run_at=last_pass)  # as it left
    PreventiveOccurrence.objects.create(
        organization=org_a, schedule=schedule, asset=asset, target_key=asset.pk, due_at=jump, note="earlier rule"
    )

    ticks(last_pass, jump - lead + timedelta(days=2), step=timedelta(minutes=20))

    local_days = [occurrence.due_at.astimezone(tz).date() for occurrence in occurrences_of(schedule)]
    assert local_days == [spring, spring + timedelta(days=1), spring + timedelta(days=2)]  # the night once
    assert occurrences_of(schedule).first().due_at == jump  # the earlier rule's occurrence, not a second one
    assert not orders_of(schedule).filter(due_at=jump + timedelta(minutes=30)).exists()


@pytest.mark.parametrize(("zone", "spring"), [(zone, spring) for zone, spring, _ in CHANGES])
def test_a_spring_night_not_generated_yet_runs_a_gap_later(org_a, zone, spring):
    """Without an occurrence at the jump, the shifted time is generated: 03:30, once."""
    asset = _site_asset(org_a, zone)
    tz = ZoneInfo(zone)
    jump = datetime.combine(spring, time(3, 0), tz).astimezone(UTC)
    schedule = owed_from(make_schedule(org_a, asset=asset, cron_expression="30 2 * * *", skip_if_open=False), jump)
    ticks(jump, jump + timedelta(hours=2), step=timedelta(minutes=10))
    assert [order.due_at for order in orders_of(schedule)] == [jump + timedelta(minutes=30)]
