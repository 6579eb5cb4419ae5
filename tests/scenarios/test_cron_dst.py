"""Scenario and preset-window cron times across both daylight-saving changes in Europe/Berlin and
America/New_York, by the one rule of `maintenance_site.recurrence`: a time in the spring-forward gap runs a gap
later (02:30 → 03:30); a time that happens twice runs once, the first time."""

from datetime import UTC, datetime

import pytest

from scenarios.models import cron_next, cron_previous


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # Berlin, 28 March 2027: 02:30 does not exist; it runs at 03:30 CEST (01:30 UTC)
        ("Europe/Berlin", utc(2027, 3, 27, 12), [utc(2027, 3, 28, 1, 30), utc(2027, 3, 29, 0, 30)]),
        # New York, 14 March 2027: 02:30 does not exist; 03:30 EDT (07:30 UTC)
        ("America/New_York", utc(2027, 3, 13, 12), [utc(2027, 3, 14, 7, 30), utc(2027, 3, 15, 6, 30)]),
    ],
)
def test_a_missing_time_runs_a_gap_later(zone, after, expected):
    assert cron_next("30 2 * * *", zone, after, 2) == expected
    assert cron_previous("30 2 * * *", zone, expected[1]) == expected[0]


@pytest.mark.parametrize(
    ("zone", "cron", "after", "expected"),
    [
        # Berlin, 31 October 2027: 02:30 CEST (00:30 UTC), then 02:30 CET an hour later is not a second run
        ("Europe/Berlin", "30 2 * * *", utc(2027, 10, 30, 12), [utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)]),
        # New York, 7 November 2027: 01:30 EDT (05:30 UTC) once, not again at 01:30 EST
        ("America/New_York", "30 1 * * *", utc(2027, 11, 6, 12), [utc(2027, 11, 7, 5, 30), utc(2027, 11, 8, 6, 30)]),
    ],
)
def test_a_repeated_time_runs_once_the_first_time(zone, cron, after, expected):
    assert cron_next(cron, zone, after, 2) == expected
    assert cron_previous(cron, zone, expected[0] + (expected[1] - expected[0]) / 2) == expected[0]


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        ("Europe/Berlin", utc(2027, 3, 27, 23, 30), [utc(2027, 3, 28, 0), utc(2027, 3, 28, 1), utc(2027, 3, 28, 2)]),
        ("America/New_York", utc(2027, 3, 14, 5, 30), [utc(2027, 3, 14, 6), utc(2027, 3, 14, 7), utc(2027, 3, 14, 8)]),
    ],
)
def test_an_hourly_cron_through_the_short_night(zone, after, expected):
    """01:00, then the missing 02:00 shifted onto 03:00 together with 03:00 itself (one run), then 04:00."""
    assert cron_next("0 * * * *", zone, after, 3) == expected
