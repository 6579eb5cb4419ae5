"""Every date and number a person can type into a preventive schedule or its reports: start and end dates in year 1
or 9999, far RRULE ends, huge `days_ahead` and forecast `days`, statistics periods at the ends of the calendar.
Each is a 400 naming the field or parameter (or an answer), never a 500 (issue 16, finding 5)."""

from datetime import date

import pytest

from maintenance_site.tenancy.middleware import SESSION_KEY
from scheduling.preventive.models import EARLIEST_DATE, LATEST_DATE
from tests.scheduling.preventive.support import Schedule, make_schedule

URL = "/api/v1/preventive-maintenance/schedules/"
STATISTICS = "/api/v1/preventive-maintenance/statistics/"
FORECAST = "/api/v1/preventive-maintenance/forecast/"


@pytest.fixture
def planner(api, org_a, planner_a):
    client = api(planner_a, org_a)
    client.raise_request_exception = False  # a 500 is an answer here, not an exception
    return client


@pytest.fixture
def schedule(org_a, pump):
    return make_schedule(org_a, asset=pump, cron_expression="0 6 * * 1", name="Weekly", start_date=date(2026, 1, 1))


def body(pump):
    return {"name": "Pump service", "coverage": "asset", "asset": pump.pk, "trigger": "rrule", "rrule": "FREQ=WEEKLY"}


def refused(response, field: str) -> str:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    error = response.json()["error"]
    assert field in error["fields"], error
    return error["message"]


# --- start and end dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("start_date", ["0001-01-01", "1999-12-31", "3000-01-01", "9999-12-31"])
@pytest.mark.parametrize(
    "trigger",
    [
        {"trigger": "rrule", "rrule": "FREQ=HOURLY"},  # from year 1 this took two minutes to enumerate
        {"trigger": "interval", "interval_count": 1, "interval_unit": "months"},
        {"trigger": "cron", "cron_expression": "0 6 * * *"},
    ],
)
def test_a_start_date_beyond_the_range_is_a_400_on_start_date(planner, pump, start_date, trigger):
    base = {"name": "x", "coverage": "asset", "asset": pump.pk, "start_date": start_date, **trigger}
    message = refused(planner.post(URL, base, format="json"), "start_date")
    assert f"from {EARLIEST_DATE} to {LATEST_DATE}" in message
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("end_date", ["3000-01-01", "9999-12-31"])
def test_an_end_date_beyond_the_range_is_a_400_on_end_date(planner, pump, end_date):
    response = planner.post(URL, {**body(pump), "start_date": "2027-01-01", "end_date": end_date}, format="json")
    refused(response, "end_date")


@pytest.mark.parametrize("value", ["abc", "2027-02-30", 5, "27-01-01T00:00"])
def test_a_malformed_date_is_a_400_naming_it(planner, pump, value):
    refused(planner.post(URL, {**body(pump), "start_date": value}, format="json"), "start_date")


def test_the_ends_of_the_range_are_accepted_and_computable(planner, pump):
    response = planner.post(
        URL, {**body(pump), "start_date": str(EARLIEST_DATE), "end_date": str(LATEST_DATE)}, format="json"
    )
    assert response.status_code == 201, response.json()
    detail = planner.get(f"{URL}{response.json()['id']}/").json()
    assert len(detail["next_due_dates"]) == 5
    late = planner.post(URL, {**body(pump), "name": "Late", "start_date": str(LATEST_DATE)}, format="json")
    assert late.status_code == 201, late.json()
    assert planner.get(f"{URL}{late.json()['id']}/").status_code == 200
    assert planner.post(f"{URL}{late.json()['id']}/generate/", {"days_ahead": 366}, format="json").status_code == 200


@pytest.mark.parametrize(
    "change", [{"start_date": "9999-12-31"}, {"start_date": "0001-01-01"}, {"end_date": "9999-12-31"}]
)
def test_changing_a_date_beyond_the_range_is_a_400(planner, schedule, change):
    refused(planner.patch(f"{URL}{schedule.pk}/", change, format="json"), next(iter(change)))
    schedule.refresh_from_db()
    assert schedule.start_date == date(2026, 1, 1) and schedule.end_date is None


@pytest.mark.parametrize(
    "rule", ["FREQ=DAILY;UNTIL=99991231", "FREQ=YEARLY;UNTIL=99991231T235959", "FREQ=DAILY;COUNT=999999999999"]
)
def test_an_rrule_ending_far_away_works(planner, pump, rule):
    response = planner.post(URL, {**body(pump), "rrule": rule, "start_date": "2027-01-01"}, format="json")
    assert response.status_code == 201, response.json()
    assert len(planner.get(f"{URL}{response.json()['id']}/").json()["next_due_dates"]) == 5
    forecast = planner.get(f"{URL}{response.json()['id']}/forecast/?days=366")
    assert forecast.status_code == 200 and forecast.json()["count"] >= 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval_count", 2**63),
        ("lead_days", 2**63),
        ("lead_days", 366),
        ("misfire_cap", 2**31),
        ("estimated_minutes", 2**63),
        ("cooldown_minutes", 2**63),
        ("time_of_day", "25:00"),
        ("name", "x" * 201),
        ("title", "x" * 10_000),
    ],
)
def test_numbers_and_texts_beyond_their_columns_are_a_400(planner, pump, field, value):
    refused(planner.post(URL, {**body(pump), field: value}, format="json"), field)


# --- the reports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["0", "-1", "367", str(2**63), "9" * 40, "abc", "1e3"])
def test_forecast_days_out_of_range_is_a_400(planner, schedule, days):
    refused(planner.get(f"{FORECAST}?days={days}"), "days")
    refused(planner.get(f"{URL}{schedule.pk}/forecast/?days={days}"), "days")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("end=0001-01-02T00:00:00Z", "end"),  # the default start (90 days before) overflowed
        ("start=9999-12-31T23:59:59-05:00", "start"),  # not a moment once in UTC
        ("end=9999-12-31T23:59:59-05:00", "end"),
        ("start=0001-01-01T00:00:00+05:00", "start"),
        ("start=abc", "start"),
        ("end=2030-13-01T00:00:00Z", "end"),
        ("start=2030-01-01T00:00:00Z&end=2029-01-01T00:00:00Z", "start"),
        ("schedule=abc", "schedule"),
        ("schedule=" + "9" * 30, "schedule"),
    ],
)
def test_statistics_refuse_moments_outside_the_calendar(planner, schedule, query, field):
    refused(planner.get(f"{STATISTICS}?{query}"), field)


@pytest.mark.parametrize(
    "query",
    [
        "start=0001-01-01T00:00:00Z",
        "start=0001-01-01T00:00:00Z&end=9999-12-31T23:59:59Z&period=week",
        "start=9999-01-01T00:00:00Z&end=9999-12-31T23:59:59Z&period=month",
        "start=2027-01-01T00:00:00+16:00&end=2027-06-01T00:00:00-15:00",  # offsets PostgreSQL refuses as such
        "end=0001-04-02T00:00:00Z",
    ],
)
def test_statistics_over_the_ends_of_the_calendar_answer(planner, schedule, query):
    response = planner.get(f"{STATISTICS}?{query}")
    assert response.status_code == 200, response.content[:500]
    assert response.json()["totals"]["generated"] == 0


# --- the back office -------------------------------------------------------------------------------------


ADMIN = "/admin/scheduling/preventiveschedule/"


def admin_form(pump, **extra) -> dict:
    data = {
        "name": "Far",
        "coverage": "asset",
        "asset": pump.pk,
        "trigger": "rrule",
        "rrule": "FREQ=HOURLY",
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
    return {**data, **extra}


@pytest.mark.parametrize(
    "extra", [{"start_date": "0001-01-01"}, {"start_date": "9999-12-31"}, {"end_date": "9999-12-31"}]
)
def test_the_back_office_form_refuses_dates_beyond_the_range_next_to_the_field(client, org_a, planner_a, pump, extra):
    client.force_login(planner_a)
    session = client.session
    session[SESSION_KEY] = org_a.pk
    session.save()
    client.raise_request_exception = False
    response = client.post(f"{ADMIN}add/", admin_form(pump, **extra))
    assert response.status_code == 200 and f"Give a date from {EARLIEST_DATE}" in response.content.decode()
    assert not Schedule.objects.exists()
    assert client.get(f"{ADMIN}?next_due_at__year=0").status_code == 302
    assert (
        client.get(
            "/admin/scheduling/preventiveoccurrence/?due_at__year=9999&due_at__month=12&due_at__day=31"
        ).status_code
        == 302
    )
