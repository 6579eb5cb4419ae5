"""Business-time arithmetic on its own (no database): weekends, holidays, several spans a day, and both
daylight-saving changes in Europe/Berlin and America/New_York."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from sla.business_hours import (
    NoWorkingTime,
    Schedule,
    add_business_minutes,
    business_minutes_between,
    intervals_on,
    is_working,
)
from tests.sla.conftest import BERLIN, NEW_YORK, SPANS


def office(zone, holidays=()):
    """Mon–Fri 07:00–12:00 and 12:30–16:00 (8.5 hours a day)."""
    return Schedule.build(zone, [(day, start, end) for day in range(5) for start, end in SPANS], holidays)


def local(zone, *args):
    return datetime(*args, tzinfo=zone)


# --- several spans a day, weekends, holidays -----------------------------------------------------------


def test_minutes_within_one_span():
    assert add_business_minutes(office(BERLIN), local(BERLIN, 2026, 3, 2, 9, 0), 60) == local(BERLIN, 2026, 3, 2, 10)


def test_lunch_break_between_two_spans_does_not_count():
    start = local(BERLIN, 2026, 3, 2, 11, 30)
    assert add_business_minutes(office(BERLIN), start, 60) == local(BERLIN, 2026, 3, 2, 13, 0)
    assert business_minutes_between(office(BERLIN), start, local(BERLIN, 2026, 3, 2, 13, 0)) == 60


def test_a_deadline_at_the_end_of_a_span_is_that_end_not_the_next_opening():
    due = add_business_minutes(office(BERLIN), local(BERLIN, 2026, 3, 2, 15, 0), 60)
    assert due == local(BERLIN, 2026, 3, 2, 16, 0)


def test_time_outside_working_hours_starts_at_the_next_opening():
    evening = local(BERLIN, 2026, 3, 2, 19, 0)
    assert add_business_minutes(office(BERLIN), evening, 30) == local(BERLIN, 2026, 3, 3, 7, 30)
    assert add_business_minutes(office(BERLIN), local(BERLIN, 2026, 3, 2, 12, 10), 10) == local(
        BERLIN, 2026, 3, 2, 12, 40
    )


def test_across_a_weekend():
    friday = local(BERLIN, 2026, 3, 6, 15, 0)
    monday = local(BERLIN, 2026, 3, 9, 8, 0)
    assert add_business_minutes(office(BERLIN), friday, 120) == monday
    assert business_minutes_between(office(BERLIN), friday, monday) == 120
    saturday = local(BERLIN, 2026, 3, 7, 10, 0)
    assert business_minutes_between(office(BERLIN), saturday, local(BERLIN, 2026, 3, 8, 23, 0)) == 0


def test_across_a_holiday_and_the_weekend_after_it():
    schedule = office(BERLIN, holidays=[date(2026, 12, 25)])  # a Friday
    thursday = local(BERLIN, 2026, 12, 24, 15, 0)
    monday = local(BERLIN, 2026, 12, 28, 8, 0)
    assert add_business_minutes(schedule, thursday, 120) == monday
    assert business_minutes_between(schedule, thursday, monday) == 120
    assert intervals_on(schedule, date(2026, 12, 25)) == []
    without_holiday = office(BERLIN)
    assert add_business_minutes(without_holiday, thursday, 120) == local(BERLIN, 2026, 12, 25, 8, 0)


def test_several_days_of_work():
    # 3 business days of 8.5 hours from Wednesday 09:00: Wed (7 h) + Thu, Fri (17 h) + Mon 07:00 + 1.5 h
    due = add_business_minutes(office(BERLIN), local(BERLIN, 2026, 3, 4, 9, 0), 3 * 510)
    assert due == local(BERLIN, 2026, 3, 9, 9, 0)


def test_between_is_zero_when_the_end_is_not_after_the_start():
    moment = local(BERLIN, 2026, 3, 2, 9, 0)
    assert business_minutes_between(office(BERLIN), moment, moment) == 0
    assert business_minutes_between(office(BERLIN), moment, local(BERLIN, 2026, 3, 2, 8, 0)) == 0


def test_zero_minutes_is_the_start_itself():
    saturday = local(BERLIN, 2026, 3, 7, 10, 0)
    assert add_business_minutes(office(BERLIN), saturday, 0) == saturday


def test_overlapping_spans_are_merged():
    schedule = Schedule.build(BERLIN, [(0, time(8), time(12)), (0, time(10), time(14)), (0, time(14), time(15))])
    assert schedule.spans[0] == ((time(8), time(15)),)
    assert business_minutes_between(schedule, local(BERLIN, 2026, 3, 2, 0), local(BERLIN, 2026, 3, 3, 0)) == 420


def test_a_span_ending_at_midnight():
    saturday_evening = Schedule.build(BERLIN, [(5, time(20), time(0))])
    start = local(BERLIN, 2026, 3, 7, 23, 0)
    assert add_business_minutes(saturday_evening, start, 90) == local(BERLIN, 2026, 3, 14, 20, 30)


def test_a_schedule_without_working_time_cannot_give_a_deadline():
    with pytest.raises(NoWorkingTime):
        add_business_minutes(Schedule.build(BERLIN, []), local(BERLIN, 2026, 3, 2, 9), 10)
    assert not Schedule.build(BERLIN, []).has_working_time


def test_is_working():
    schedule = office(BERLIN)
    assert is_working(schedule, local(BERLIN, 2026, 3, 2, 7, 0))
    assert not is_working(schedule, local(BERLIN, 2026, 3, 2, 12, 15))
    assert not is_working(schedule, local(BERLIN, 2026, 3, 2, 16, 0))  # spans end exclusive


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(office(BERLIN), datetime(2026, 3, 2, 9), 10)


# --- daylight saving: Europe/Berlin (last Sunday of March and of October) ------------------------------


def test_berlin_office_hours_keep_their_local_times_across_spring_forward():
    friday = local(BERLIN, 2026, 3, 27, 15, 0)  # CET, UTC+1
    due = add_business_minutes(office(BERLIN), friday, 120)
    assert due == local(BERLIN, 2026, 3, 30, 8, 0)  # CEST
    assert due == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert business_minutes_between(office(BERLIN), friday, due) == 120


def test_berlin_office_hours_keep_their_local_times_across_fall_back():
    friday = local(BERLIN, 2026, 10, 23, 15, 0)  # CEST, UTC+2
    due = add_business_minutes(office(BERLIN), friday, 120)
    assert due == local(BERLIN, 2026, 10, 26, 8, 0)  # CET
    assert due == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_berlin_24_7_counts_real_time_through_the_short_night():
    always = Schedule.always(BERLIN)
    evening = local(BERLIN, 2026, 3, 28, 23, 0)
    due = add_business_minutes(always, evening, 240)
    assert due == local(BERLIN, 2026, 3, 29, 4, 0)  # 5 hours on the wall clock, 4 real hours
    assert (due - evening).total_seconds() == 4 * 3600
    assert business_minutes_between(always, evening, local(BERLIN, 2026, 3, 29, 4, 0)) == 240


def test_berlin_24_7_counts_real_time_through_the_long_night():
    always = Schedule.always(BERLIN)
    evening = local(BERLIN, 2026, 10, 24, 23, 0)
    assert business_minutes_between(always, evening, local(BERLIN, 2026, 10, 25, 4, 0)) == 360
    assert add_business_minutes(always, evening, 300) == local(BERLIN, 2026, 10, 25, 3, 0)  # CET


def test_berlin_a_night_shift_span_is_shorter_in_spring_and_longer_in_autumn():
    night = Schedule.build(BERLIN, [(6, time(0), time(6))])  # Sundays 00:00–06:00
    spring = intervals_on(night, date(2026, 3, 29))
    autumn = intervals_on(night, date(2026, 10, 25))
    assert [(end - start).total_seconds() / 3600 for start, end in spring] == [5]
    assert [(end - start).total_seconds() / 3600 for start, end in autumn] == [7]
    ordinary = intervals_on(night, date(2026, 3, 22))
    assert [(end - start).total_seconds() / 3600 for start, end in ordinary] == [6]


def test_berlin_a_span_starting_in_the_missing_hour_starts_a_gap_later():
    # 02:30 does not exist on 29 March 2026: shifted forward by the gap, to 03:30 CEST
    schedule = Schedule.build(BERLIN, [(6, time(2, 30), time(4, 0))])
    [(start, end)] = intervals_on(schedule, date(2026, 3, 29))
    assert start == local(BERLIN, 2026, 3, 29, 3, 30)
    assert (end - start).total_seconds() == 30 * 60


# --- daylight saving: America/New_York (second Sunday of March, first Sunday of November) ---------------


def test_new_york_office_hours_across_spring_forward():
    friday = local(NEW_YORK, 2026, 3, 6, 15, 0)  # EST, UTC-5
    due = add_business_minutes(office(NEW_YORK), friday, 120)
    assert due == local(NEW_YORK, 2026, 3, 9, 8, 0)  # EDT
    assert due == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    assert business_minutes_between(office(NEW_YORK), friday, due) == 120


def test_new_york_office_hours_across_fall_back():
    friday = local(NEW_YORK, 2026, 10, 30, 15, 0)  # EDT, UTC-4
    due = add_business_minutes(office(NEW_YORK), friday, 120)
    assert due == local(NEW_YORK, 2026, 11, 2, 8, 0)  # EST
    assert due == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)


def test_new_york_24_7_through_both_changes():
    always = Schedule.always(NEW_YORK)
    spring_eve = local(NEW_YORK, 2026, 3, 8, 0, 0)
    assert business_minutes_between(always, spring_eve, local(NEW_YORK, 2026, 3, 9, 0, 0)) == 23 * 60
    autumn_eve = local(NEW_YORK, 2026, 11, 1, 0, 0)
    assert business_minutes_between(always, autumn_eve, local(NEW_YORK, 2026, 11, 2, 0, 0)) == 25 * 60
    assert add_business_minutes(always, spring_eve, 3 * 60) == local(NEW_YORK, 2026, 3, 8, 4, 0)


def test_new_york_a_span_starting_in_the_missing_hour_starts_a_gap_later():
    # 02:30 does not exist on 8 March 2026 in New York: shifted forward by the gap, to 03:30 EDT
    schedule = Schedule.build(NEW_YORK, [(6, time(2, 30), time(4, 0))])
    [(start, end)] = intervals_on(schedule, date(2026, 3, 8))
    assert start == local(NEW_YORK, 2026, 3, 8, 3, 30) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert (end - start).total_seconds() == 30 * 60


@pytest.mark.parametrize(
    ("zone", "day", "repeated", "first", "hours"),
    [
        # 02:30 CEST; until 04:00 CET: 1.5 hours on the wall clock, plus the repeated hour
        (BERLIN, date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 2.5),
        # 01:30 EDT; until 04:00 EST: 2.5 hours on the wall clock, plus the repeated hour
        (NEW_YORK, date(2026, 11, 1), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC), 3.5),
    ],
)
def test_a_span_starting_at_a_repeated_time_starts_at_its_first_occurrence(zone, day, repeated, first, hours):
    schedule = Schedule.build(zone, [(6, repeated, time(4, 0))])
    [(start, end)] = intervals_on(schedule, day)
    assert start == first
    assert end - start == timedelta(hours=hours)


def test_the_same_instant_is_office_time_in_one_zone_and_not_in_the_other():
    instant = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin, 03:00 in New York
    assert is_working(office(BERLIN), instant)
    assert not is_working(office(NEW_YORK), instant)
