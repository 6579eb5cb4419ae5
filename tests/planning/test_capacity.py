"""Capacity arithmetic on hand-built patterns (`workorders.capacity.hours`): a pattern's hours on a local day less
time off, a daylight-saving day counting the hours the clock gives, a part-time week; and the per-person, per-day
table with planned hours, in a number of queries that does not grow with people, days or orders."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.recurrence import to_utc
from workorders import services as wo_services
from workorders.capacity import services
from workorders.capacity.hours import available_hours, capacity
from workorders.capacity.models import WorkingPattern, parse_day

BERLIN = ZoneInfo("Europe/Berlin")
STANDARD = [parse_day("08:00-12:00, 13:00-17:00")] * 5 + [[], []]


def week(*days: str) -> list:
    return [parse_day(text) for text in days]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return to_utc(datetime.combine(day, time(hour, minute)), BERLIN)


MONDAY = date(2026, 3, 23)  # a plain week in Berlin (CET)
SPRING_FORWARD = date(2026, 3, 29)  # Sunday: 02:00 CET becomes 03:00 CEST
FALL_BACK = date(2026, 10, 25)  # Sunday: 03:00 CEST becomes 02:00 CET


def test_a_standard_day_is_eight_hours_and_a_weekend_none():
    assert available_hours(STANDARD, MONDAY, BERLIN) == 8.0
    assert available_hours(STANDARD, MONDAY + timedelta(days=5), BERLIN) == 0.0


def test_time_off_comes_off_once_even_where_entries_overlap():
    afternoon = (local(MONDAY, 13), local(MONDAY, 17))
    assert available_hours(STANDARD, MONDAY, BERLIN, [afternoon]) == 4.0
    overlapping = [(local(MONDAY, 10), local(MONDAY, 14)), (local(MONDAY, 11), local(MONDAY, 15))]
    # 10:00-12:00 and 13:00-15:00 of the working periods are covered: 4 of 8 hours
    assert available_hours(STANDARD, MONDAY, BERLIN, overlapping) == 4.0
    whole_day = [(local(MONDAY, 0), local(MONDAY + timedelta(days=1), 0))]
    assert available_hours(STANDARD, MONDAY, BERLIN, whole_day) == 0.0
    the_day_before = [(local(MONDAY - timedelta(days=1), 0), local(MONDAY, 0))]
    assert available_hours(STANDARD, MONDAY, BERLIN, the_day_before) == 8.0


def test_a_night_shift_across_the_daylight_saving_changes_counts_the_clock():
    nights = week(*(["00:00-08:00"] * 7))
    assert available_hours(nights, SPRING_FORWARD - timedelta(days=1), BERLIN) == 8.0
    assert available_hours(nights, SPRING_FORWARD, BERLIN) == 7.0  # the hour 02:00-03:00 does not exist
    assert available_hours(nights, FALL_BACK, BERLIN) == 9.0  # 02:00-03:00 happens twice
    whole_days = week(*(["00:00-24:00"] * 7))
    assert available_hours(whole_days, SPRING_FORWARD, BERLIN) == 23.0
    assert available_hours(whole_days, FALL_BACK, BERLIN) == 25.0
    # a period starting in the gap starts when the gap ends (02:30 is 03:30): 03:30-06:00
    assert available_hours(week(*(["02:30-06:00"] * 7)), SPRING_FORWARD, BERLIN) == 2.5
    # an ordinary day shift is untouched by the change at night
    assert available_hours(week(*(["08:00-16:00"] * 7)), SPRING_FORWARD, BERLIN) == 8.0


def test_a_part_time_week_adds_up():
    part_time = week("07:00-12:00, 12:30-15:30", "07:00-12:00", "", "07:00-12:00", "", "", "")
    hours = [available_hours(part_time, MONDAY + timedelta(days=n), BERLIN) for n in range(7)]
    assert hours == [8.0, 5.0, 0.0, 5.0, 0.0, 0.0, 0.0]
    assert sum(hours) == 18.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("8-12", "not a period"),
        ("12:00-08:00", "ends before it starts"),
        ("08:00-12:00, 11:00-13:00", "overlaps"),
        ("08:00-25:00", "does not exist"),
    ],
)
def test_a_pattern_that_makes_no_sense_is_refused_with_a_sentence(org_a, planner_a, text, words):
    with pytest.raises(InvalidInput, match=words) as refused:
        services.save_working_pattern(org_a, actor=planner_a, monday=text)
    assert "monday" in refused.value.fields


def test_only_those_who_assign_work_change_capacity(org_a, technician_a, planner_a):
    with pytest.raises(PermissionDeniedError):
        services.save_working_pattern(org_a, actor=technician_a, user=technician_a, friday="")
    pattern = services.save_working_pattern(org_a, actor=planner_a, user=technician_a, friday="")
    assert pattern.history.first().history_user == planner_a


@pytest.mark.django_db
def test_the_table_takes_the_members_pattern_else_the_organisations_and_sums_planned_hours(
    org_a, planner_a, technician_a, technician2_a
):
    services.save_working_pattern(org_a, actor=planner_a, monday="09:00-13:00")  # the default: Mondays 4 h
    services.save_working_pattern(org_a, actor=planner_a, user=technician_a, monday="06:00-16:00")  # 10 h
    services.create_time_off(
        org_a, actor=planner_a, user=technician2_a, starts_at=local(MONDAY, 9), ends_at=local(MONDAY, 10)
    )
    for minutes, start in ((240, local(MONDAY, 8)), (480, local(MONDAY, 13)), (None, local(MONDAY, 23, 30))):
        order = wo_services.create_work_order(
            org_a, title="Job", actor=planner_a, assignee=technician_a, estimated_minutes=minutes
        )
        wo_services.schedule(order, actor=planner_a, scheduled_start=start)
    table = capacity(org_a, [technician_a.pk, technician2_a.pk], MONDAY, MONDAY + timedelta(days=1))
    mine = table[(technician_a.pk, MONDAY)]
    assert (mine.available, mine.planned, mine.orders, mine.over_capacity) == (10.0, 13.0, 3, True)
    theirs = table[(technician2_a.pk, MONDAY)]
    assert (theirs.available, theirs.planned, theirs.over_capacity) == (3.0, 0.0, False)
    assert table[(technician_a.pk, MONDAY + timedelta(days=1))].available == 8.0  # the default's Tuesday


@pytest.mark.django_db
def test_the_table_reads_in_a_constant_number_of_queries(org_a, planner_a, technician_a, technician2_a):
    def count(users, days):
        with CaptureQueriesContext(connection) as queries:
            capacity(org_a, [user.pk for user in users], MONDAY, MONDAY + timedelta(days=days - 1))
        return len(queries)

    small = count([technician_a], 1)
    for hour in range(8, 16):
        order = wo_services.create_work_order(
            org_a, title="Job", actor=planner_a, assignee=technician2_a, estimated_minutes=30
        )
        wo_services.schedule(order, actor=planner_a, scheduled_start=local(MONDAY, hour))
    services.save_working_pattern(org_a, actor=planner_a, user=technician2_a, friday="")
    services.create_time_off(
        org_a, actor=planner_a, user=technician2_a, starts_at=local(MONDAY, 9), ends_at=local(MONDAY, 10)
    )
    # patterns, time off, planned hours per assignee and local day
    assert small == count([technician_a, technician2_a], 31) == 3


def test_default_pattern_without_any_row_is_monday_to_friday(org_a):
    assert WorkingPattern(organization=org_a).week() == STANDARD
    assert datetime(2026, 3, 23, tzinfo=UTC).weekday() == 0
