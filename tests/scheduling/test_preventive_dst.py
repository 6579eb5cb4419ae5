"""Daylight saving: a daily 02:30 schedule gives exactly one order per local day across both changes, in
Europe/Berlin and America/New_York. The rule: a local time in the spring-forward gap runs at the first valid
instant after the gap (03:00); a local time that happens twice runs once, at its first occurrence (fold=0)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from assets import services as asset_services
from scheduling.preventive import to_utc
from tests.scheduling.preventive_support import make_schedule, occurrences_of, orders_of, owed_from, ticks, utc

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
        # the gap: 02:30 does not exist, it runs at 03:00 CEST (the first instant after the gap)
        ("Europe/Berlin", datetime(2027, 3, 28, 2, 30), utc(2027, 3, 28, 1, 0)),
        ("Europe/Berlin", datetime(2027, 3, 28, 2, 0), utc(2027, 3, 28, 1, 0)),
        # twice: the first (summer-time) 02:30
        ("Europe/Berlin", datetime(2027, 10, 31, 2, 30), utc(2027, 10, 31, 0, 30)),
        ("America/New_York", datetime(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 0)),
        ("America/New_York", datetime(2027, 11, 7, 1, 30), utc(2027, 11, 7, 5, 30)),
        # a zone with a 30-minute change (Lord Howe Island: 02:00 → 02:30)
        ("Australia/Lord_Howe", datetime(2027, 10, 3, 2, 15), utc(2027, 10, 2, 15, 30)),
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
    each on its own local day at 02:30, except 03:00 on the spring-forward day."""
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
            assert (moment.hour, moment.minute) == (3, 0)  # 02:30 does not exist that night
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
