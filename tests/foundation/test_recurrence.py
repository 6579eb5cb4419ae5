"""The one recurrence module: its daylight-saving rule in Europe/Berlin and America/New_York across both changes
(a time in the spring-forward gap shifts forward by the gap; a repeated time runs once, the first time), series
turned into instants (each once, in order, even where the gap puts a shifted time after later wall-clock times),
one error style for cron expressions and RRULEs, and RRULE series read from near the asked start rather than
enumerated from a DTSTART years back."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from maintenance_site.recurrence import (
    RecurrenceError,
    cron_series,
    gap_start,
    in_gap,
    instants,
    next_instants,
    parse_cron,
    parse_rrule,
    previous_instant,
    rebased,
    rrule_series,
    shifted_from_gap,
    to_local,
    to_utc,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # Berlin, 28 March 2027: 02:00 CET → 03:00 CEST. 02:30 does not exist: 03:30 CEST.
        (BERLIN, datetime(2027, 3, 28, 1, 59), utc(2027, 3, 28, 0, 59)),
        (BERLIN, datetime(2027, 3, 28, 2, 30), utc(2027, 3, 28, 1, 30)),
        (BERLIN, datetime(2027, 3, 28, 3, 30), utc(2027, 3, 28, 1, 30)),
        # Berlin, 31 October 2027: 03:00 CEST → 02:00 CET. 02:30 happens twice: the first (CEST).
        (BERLIN, datetime(2027, 10, 31, 2, 30), utc(2027, 10, 31, 0, 30)),
        (BERLIN, datetime(2027, 10, 31, 3, 0), utc(2027, 10, 31, 2, 0)),
        # New York, 14 March 2027: 02:00 EST → 03:00 EDT. 02:30 does not exist: 03:30 EDT.
        (NEW_YORK, datetime(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 30)),
        (NEW_YORK, datetime(2027, 3, 14, 3, 30), utc(2027, 3, 14, 7, 30)),
        # New York, 7 November 2027: 02:00 EDT → 01:00 EST. 01:30 happens twice: the first (EDT).
        (NEW_YORK, datetime(2027, 11, 7, 1, 30), utc(2027, 11, 7, 5, 30)),
        (NEW_YORK, datetime(2027, 11, 7, 2, 30), utc(2027, 11, 7, 7, 30)),
    ],
)
def test_the_rule(zone, local, expected):
    assert to_utc(local, zone) == expected
    assert to_utc(local, zone).astimezone(zone).fold == 0


@pytest.mark.parametrize(
    ("zone", "local", "jump"),
    [
        (BERLIN, datetime(2027, 3, 28, 2, 30), utc(2027, 3, 28, 1, 0)),
        (NEW_YORK, datetime(2027, 3, 14, 2, 0), utc(2027, 3, 14, 7, 0)),
    ],
)
def test_a_missing_time_is_in_the_gap_that_starts_where_the_clocks_jumped(zone, local, jump):
    assert in_gap(local, zone) and gap_start(local, zone) == jump
    assert to_local(jump, zone) == local.replace(hour=3, minute=0)
    assert not in_gap(local - timedelta(hours=1), zone) and gap_start(local - timedelta(hours=1), zone) is None


@pytest.mark.parametrize(("zone", "spring"), [(BERLIN, (2027, 3, 28)), (NEW_YORK, (2027, 3, 14))])
def test_an_hourly_series_in_the_gap_runs_each_instant_once_in_order(zone, spring):
    """Every hour at :30: the shifted 02:30 and the real 03:30 are one instant."""
    day = datetime(*spring, tzinfo=zone)
    found = instants(cron_series("30 * * * *"), zone, day.astimezone(UTC), (day + timedelta(hours=5)).astimezone(UTC))
    assert [moment.astimezone(zone).strftime("%H:%M") for moment in found] == ["00:30", "01:30", "03:30", "04:30"]
    assert found == sorted(set(found))


@pytest.mark.parametrize(("zone", "autumn"), [(BERLIN, (2027, 10, 31)), (NEW_YORK, (2027, 11, 7))])
def test_an_hourly_series_in_the_repeated_hour_runs_it_once(zone, autumn):
    start = datetime(*autumn, tzinfo=zone).astimezone(UTC)
    found = instants(cron_series("0 * * * *"), zone, start, start + timedelta(hours=5), include_after=True)
    hours = [moment.astimezone(zone).hour for moment in found]
    assert hours == [0, 1, 2, 3, 4]  # five hours on the wall clock in six real ones: the repeated hour once
    assert len(found) == 5


@pytest.mark.parametrize(
    ("zone", "spring", "autumn", "repeated"),
    [(BERLIN, (2027, 3, 28), (2027, 10, 31), "30 2 * * *"), (NEW_YORK, (2027, 3, 14), (2027, 11, 7), "30 1 * * *")],
)
def test_next_and_previous_across_both_changes(zone, spring, autumn, repeated):
    daily = cron_series("30 2 * * *")
    eve = datetime(*spring, tzinfo=zone) - timedelta(hours=12)
    nights = next_instants(daily, zone, eve.astimezone(UTC), 2)
    assert [moment.astimezone(zone).strftime("%d %H:%M") for moment in nights] == [
        f"{spring[2]:02d} 03:30",
        f"{spring[2] + 1:02d} 02:30",
    ]
    assert previous_instant(daily, zone, nights[1]) == nights[0]
    assert nights[1] - nights[0] == timedelta(hours=23)  # 03:30 to 02:30 the next day: 23 hours
    # the autumn night: a daily time in the repeated hour runs once, the first time, and 25 hours before the next
    twice = cron_series(repeated)
    autumn_eve = datetime(*autumn, tzinfo=zone) - timedelta(hours=12)
    [first, second] = next_instants(twice, zone, autumn_eve.astimezone(UTC), 2)
    assert first.astimezone(zone).fold == 0 and first.astimezone(zone).date().day == autumn[2]
    assert second - first == timedelta(hours=25)
    assert previous_instant(twice, zone, second) == first


def test_a_shifted_instant_knows_where_the_clocks_jumped():
    daily = cron_series("30 2 * * *")
    assert shifted_from_gap(daily, BERLIN, utc(2027, 3, 28, 1, 30)) == utc(2027, 3, 28, 1, 0)
    assert shifted_from_gap(cron_series("30 3 * * *"), BERLIN, utc(2027, 3, 28, 1, 30)) is None  # a real 03:30
    assert shifted_from_gap(cron_series("30 2,3 * * *"), BERLIN, utc(2027, 3, 28, 1, 30)) is None  # 03:30 too
    assert shifted_from_gap(daily, BERLIN, utc(2027, 3, 29, 0, 30)) is None  # an ordinary night


def test_rrule_series_follow_the_same_rule():
    rule = parse_rrule("FREQ=WEEKLY;BYDAY=SU", datetime(2027, 3, 21, 2, 30))
    found = next_instants(rrule_series(rule), NEW_YORK, utc(2027, 3, 20), 3)
    assert found == [utc(2027, 3, 21, 6, 30), utc(2027, 3, 28, 6, 30), utc(2027, 4, 4, 6, 30)]
    found = next_instants(rrule_series(rule), BERLIN, utc(2027, 3, 27), 1)
    assert found == [utc(2027, 3, 28, 1, 30)]  # 02:30 shifted to 03:30 CEST


@pytest.mark.parametrize(
    ("expression", "hourly", "message"),
    [
        ("", False, "Give a cron expression"),
        ("bad", False, "“bad” is not a cron expression: it has 1 field; a cron expression has five"),
        ("0 6 * *", False, "has 4 fields; a cron expression has five"),
        ("61 * * * *", False, "“61 * * * *” is not a valid cron expression"),
        ("0 0 30 2 *", False, "is not a valid cron expression"),
        ("*/5 * * * *", True, "fires every 5 minutes; it may fire at most once an hour"),
    ],
)
def test_cron_errors_say_what_is_wrong(expression, hourly, message):
    with pytest.raises(RecurrenceError) as error:
        parse_cron(expression, at_most_hourly=hourly)
    assert message in error.value.message


def test_a_valid_cron_expression_comes_back_normalised():
    assert parse_cron("  30   2 * *  * ") == "30 2 * * *"
    assert parse_cron("*/5 * * * *") == "*/5 * * * *"  # fine where more than hourly is allowed


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "Give an RRULE"),
        ("FREQ=SOMETIMES", "not a valid RRULE"),
        ("BYDAY=SU", "not a valid RRULE"),
        ("DTSTART:20270101T000000\nRRULE:FREQ=DAILY", "without DTSTART"),
        ("FREQ=DAILY;EXDATE=20270102", "without DTSTART"),
        ("FREQ=MINUTELY", "more often than hourly"),
        ("FREQ=HOURLY;BYMINUTE=0,30", "more often than hourly"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never fires"),
        ("FREQ=DAILY;COUNT=0", "never fires"),
    ],
)
def test_rrule_errors_say_what_is_wrong(rule, message):
    with pytest.raises(RecurrenceError, match=message):
        parse_rrule(rule, datetime(2027, 1, 1, 6, 0), at_most_hourly=True)


def test_a_leading_rrule_prefix_is_accepted():
    rule = parse_rrule("RRULE:FREQ=DAILY;COUNT=2", datetime(2027, 1, 1, 6, 0))
    assert list(rule) == [datetime(2027, 1, 1, 6, 0), datetime(2027, 1, 2, 6, 0)]


# --- RRULEs with a DTSTART long ago --------------------------------------------------------------------------


REBASED_RULES = [
    "FREQ=HOURLY",
    "FREQ=HOURLY;INTERVAL=7;BYHOUR=1,2,3,13",
    "FREQ=HOURLY;INTERVAL=3;BYMINUTE=0,30",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=DAILY;BYHOUR=6,18;BYSETPOS=2",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
    "FREQ=WEEKLY;INTERVAL=3;WKST=SU;BYDAY=SU,SA",
    "FREQ=WEEKLY;BYDAY=MO,TU,WE;BYSETPOS=-1",
    "FREQ=WEEKLY;INTERVAL=2;UNTIL=20300101T000000",
    "FREQ=MONTHLY;BYMONTHDAY=31",
]


@pytest.mark.parametrize("text", REBASED_RULES)
@pytest.mark.parametrize("dtstart", [datetime(2000, 2, 29, 6, 30), datetime(2003, 8, 31, 23, 15, 17)])
def test_a_series_from_long_ago_gives_the_occurrences_its_dtstart_gives(text, dtstart):
    rule = parse_rrule(text, dtstart)
    for start, days in [(datetime(2026, 12, 6, 13, 7), 9), (datetime(2028, 2, 27), 40), (datetime(2029, 12, 30), 3)]:
        end = start + timedelta(days=days)
        enumerated = []
        for moment in rule.xafter(start, inc=True):  # every occurrence since DTSTART, the slow way
            if moment > end:
                break
            enumerated.append(moment)
        assert list(rrule_series(rule)(start, end)) == enumerated


def test_an_hourly_rule_from_long_ago_is_read_from_near_the_start():
    start = datetime(2026, 12, 6, 12, 0)
    moved = rebased(parse_rrule("FREQ=HOURLY;INTERVAL=5", datetime(2000, 1, 1, 6, 0)), start)
    assert start - timedelta(hours=10) <= moved._dtstart <= start and moved._dtstart.minute == 0
    counted = parse_rrule("FREQ=HOURLY;COUNT=999999", datetime(2000, 1, 1, 6, 0))
    assert rebased(counted, start) is counted  # COUNT counts from DTSTART
