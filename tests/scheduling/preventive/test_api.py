"""The preventive-maintenance API: schedules CRUD and actions, bad expressions → 400 naming what is wrong,
statistics, forecast, the .ics feed, and the same permission cases for every endpoint (anonymous, wrong role,
another organisation → 404, permitted)."""

from datetime import date

import pytest

from maintenance_site.events.models import Event
from maintenance_site.tenancy import SYSTEM
from scheduling.preventive.models import CalendarFeed
from scheduling.preventive.services import update_schedule
from tests.scheduling.preventive.support import Schedule, make_schedule, tick, utc

URL = "/api/v1/preventive-maintenance/schedules/"


def error(response):
    return response.json()["error"]


@pytest.fixture
def schedule(org_a, pump):
    return make_schedule(
        org_a, asset=pump, cron_expression="0 6 * * 1", name="Weekly pump check", start_date=date(2026, 1, 1)
    )


def body(pump, **extra):
    return {
        "name": "Monthly pump service",
        "coverage": "asset",
        "asset": pump.pk,
        "trigger": "rrule",
        "rrule": "FREQ=MONTHLY;BYDAY=1MO",
        "time_of_day": "07:00",
        "start_date": "2027-01-01",
        "title": "Service {asset_code}",
        "priority": "high",
        **extra,
    }


# --- CRUD ---------------------------------------------------------------------------------------------


def test_a_planner_creates_reads_updates_and_deletes_a_schedule(api, org_a, planner_a, pump, stores, procedure):
    client = api(planner_a, org_a)
    parts = [{"part": stores["seal"].pk, "stock_location": stores["warehouse"].pk, "quantity": "2"}]
    response = client.post(URL, body(pump, parts=parts, procedure=procedure.pk), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["trigger_summary"].startswith("RRULE FREQ=MONTHLY;BYDAY=1MO")
    assert created["parts"] == [
        {"part": stores["seal"].pk, "sku": "SEAL-1", "stock_location": stores["warehouse"].pk, "quantity": "2.000"}
    ]
    detail = client.get(f"{URL}{created['id']}/").json()
    assert len(detail["next_due_dates"]) == 5
    assert all(moment.endswith(("Z", "+00:00")) or "T" in moment for moment in detail["next_due_dates"])

    response = client.patch(f"{URL}{created['id']}/", {"priority": "critical", "parts": []}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["priority"] == "critical" and response.json()["parts"] == []
    schedule = Schedule.objects.get(pk=created["id"])
    assert schedule.history.first().history_user == planner_a

    assert client.get(URL).json()["count"] == 1
    assert client.delete(f"{URL}{created['id']}/").status_code == 204
    assert not Schedule.objects.filter(pk=created["id"]).exists()


def test_a_schedule_with_history_cannot_be_deleted(api, org_a, planner_a, schedule):
    tick(utc(2027, 1, 4, 5, 0))
    response = api(planner_a, org_a).delete(f"{URL}{schedule.pk}/")
    assert response.status_code == 409
    assert "pause it or give it an end date" in error(response)["message"]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"trigger": "cron", "cron_expression": "61 * * * *"}, "cron_expression", "not a valid cron expression"),
        (
            {"trigger": "cron", "cron_expression": "0 6 * *"},
            "cron_expression",
            "has 4 fields; a cron expression has five",
        ),
        ({"trigger": "cron", "cron_expression": "*/5 * * * *"}, "cron_expression", "at most once an hour"),
        ({"trigger": "cron", "cron_expression": ""}, "cron_expression", "Give a cron expression"),
        ({"rrule": "FREQ=SOMETIMES"}, "rrule", "not a valid RRULE"),
        ({"rrule": "FREQ=MINUTELY"}, "rrule", "more often than hourly"),
        ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule", "never fires"),
        ({"rrule": "DTSTART:20270101T000000\nRRULE:FREQ=DAILY"}, "rrule", "without DTSTART"),
        ({"trigger": "interval", "interval_count": 0, "interval_unit": "days"}, "interval_count", "not an interval"),
        ({"trigger": "interval", "interval_count": 2, "interval_unit": ""}, "interval_unit", "days, weeks or months"),
        ({"mode": "floating"}, "mode", "needs an interval"),
        ({"trigger": "meter", "meter_name": "Run hours", "meter_mode": "every"}, "meter_interval", "units"),
        ({"coverage": "assets", "asset": None}, "asset_type", "Choose an asset type, a location, or both"),
        ({"end_date": "2026-01-01"}, "end_date", "before the start date"),
    ],
)
def test_a_bad_expression_is_a_400_saying_what_is_wrong(api, org_a, planner_a, pump, changes, field, words):
    response = api(planner_a, org_a).post(URL, body(pump, **changes), format="json")
    assert response.status_code == 400, response.json()
    problem = error(response)
    assert words in " ".join(problem["fields"][field]), problem
    assert words in problem["message"]
    assert not Schedule.objects.exists()


def test_an_edit_to_a_bad_expression_is_refused_too(api, org_a, planner_a, schedule):
    response = api(planner_a, org_a).patch(f"{URL}{schedule.pk}/", {"cron_expression": "0 25 * * *"}, format="json")
    assert response.status_code == 400
    assert "cron_expression" in error(response)["fields"]
    schedule.refresh_from_db()
    assert schedule.cron_expression == "0 6 * * 1"


def test_another_organisations_asset_does_not_exist(api, org_a, org_b, planner_a):
    from assets import services as asset_services

    foreign = asset_services.create_asset(org_b, code="B-1", name="Their pump")
    response = api(planner_a, org_a).post(URL, body(foreign), format="json")
    assert response.status_code == 400
    assert "asset" in error(response)["fields"]


# --- actions -------------------------------------------------------------------------------------------


def test_generate_pause_and_resume(api, org_a, planner_a, schedule):
    client = api(planner_a, org_a)
    response = client.post(f"{URL}{schedule.pk}/generate/", {"days_ahead": 14}, format="json")
    assert response.status_code == 200, response.json()
    result = response.json()
    assert result["created"] == 1 and len(result["work_orders"]) == 1  # skip-if-open keeps the second for later
    assert Event.objects.filter(type="work-order:created").count() == 1
    occurrences = client.get(f"{URL}{schedule.pk}/occurrences/").json()
    assert occurrences["count"] == 1 and occurrences["results"][0]["work_order_number"].startswith("WO-")

    response = client.post(f"{URL}{schedule.pk}/pause/", {"reason": "Pump replaced"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "paused"
    assert response.json()["pause_reason"] == "Pump replaced"
    assert client.post(f"{URL}{schedule.pk}/pause/", {}, format="json").status_code == 409
    assert client.post(f"{URL}{schedule.pk}/generate/", {}, format="json").status_code == 409
    response = client.post(f"{URL}{schedule.pk}/resume/")
    assert response.status_code == 200 and response.json()["status"] == "active"


def test_statistics_and_forecast(api, org_a, viewer_a, schedule, stores):
    update_schedule(
        schedule, parts=[{"part": stores["seal"], "stock_location": stores["warehouse"], "quantity": 1}], actor=SYSTEM
    )
    client = api(viewer_a, org_a)
    response = client.get("/api/v1/preventive-maintenance/forecast/?days=28")
    assert response.status_code == 200, response.json()
    forecast = response.json()
    assert forecast["count"] == 4
    assert forecast["parts_needed"][0]["sku"] == "SEAL-1" and forecast["parts_needed"][0]["quantity"] == "4.000"
    assert client.get(f"{URL}{schedule.pk}/forecast/?days=7").json()["count"] == 1
    assert client.get("/api/v1/preventive-maintenance/forecast/?days=0").status_code == 400

    response = client.get("/api/v1/preventive-maintenance/statistics/?group_by=schedule")
    assert response.status_code == 200, response.json()
    assert response.json()["group_by"] == "schedule"
    bad = client.get("/api/v1/preventive-maintenance/statistics/?group_by=colour")
    assert bad.status_code == 400 and "group_by" in error(bad)["fields"]
    bad = client.get("/api/v1/preventive-maintenance/statistics/?start=yesterday")
    assert bad.status_code == 400 and "start" in error(bad)["fields"]


def test_the_calendar_feed_is_secret_and_revocable(api, org_a, planner_a, schedule, client):
    response = api(planner_a, org_a).post(
        "/api/v1/preventive-maintenance/calendar-feeds/", {"name": "Planner's calendar"}, format="json"
    )
    assert response.status_code == 201, response.json()
    url = response.json()["url"]
    token = url.rsplit("/", 1)[-1].removesuffix(".ics")
    assert CalendarFeed.objects.get().token_hash != token  # only a hash is stored
    feed = client.get(f"/preventive/calendar/{token}.ics")
    assert feed.status_code == 200
    assert feed["Content-Type"].startswith("text/calendar")
    text = feed.content.decode()
    assert text.startswith("BEGIN:VCALENDAR") and "BEGIN:VEVENT" in text and "SUMMARY:" in text
    assert client.get("/preventive/calendar/not-a-token.ics").status_code == 404

    feed_id = response.json()["id"]
    revoked = api(planner_a, org_a).post(f"/api/v1/preventive-maintenance/calendar-feeds/{feed_id}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get(f"/preventive/calendar/{token}.ics").status_code == 404


# --- permissions: the same cases for every endpoint -------------------------------------------------------


ENDPOINTS = [
    ("get", URL, None),
    ("get", URL + "{id}/", None),
    ("get", URL + "{id}/occurrences/", None),
    ("get", URL + "{id}/forecast/", None),
    ("get", "/api/v1/preventive-maintenance/statistics/", None),
    ("get", "/api/v1/preventive-maintenance/forecast/", None),
    ("get", "/api/v1/preventive-maintenance/occurrences/", None),
    ("post", URL, "create"),
    ("patch", URL + "{id}/", {"priority": "low"}),
    ("post", URL + "{id}/generate/", {}),
    ("post", URL + "{id}/pause/", {}),
    ("post", "/api/v1/preventive-maintenance/calendar-feeds/", {"name": "x"}),
]


def _call(client, method, path, data, schedule, pump):
    if data == "create":
        data = body(pump)
    return getattr(client, method)(path.format(id=schedule.pk), data, format="json")


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
def test_anonymous_is_refused(api, org_a, schedule, pump, method, path, data):
    assert _call(api(), method, path, data, schedule, pump).status_code == 401


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
def test_a_technician_reads_but_does_not_manage(api, org_a, technician_a, schedule, pump, method, path, data):
    response = _call(api(technician_a, org_a), method, path, data, schedule, pump)
    if method == "get":
        assert response.status_code == 200, response.json()
    else:
        assert response.status_code == 403
        assert "may not manage preventive schedules" in error(response)["message"]


@pytest.mark.parametrize(("method", "path", "data"), [e for e in ENDPOINTS if "{id}" in e[1]])
def test_another_organisation_gets_404(api, org_b, manager_b, schedule, pump, method, path, data):
    assert _call(api(manager_b, org_b), method, path, data, schedule, pump).status_code == 404


def test_other_organisations_lists_are_empty(api, org_b, manager_b, schedule):
    client = api(manager_b, org_b)
    assert client.get(URL).json()["count"] == 0
    tick(utc(2027, 1, 4, 5, 0))
    assert client.get("/api/v1/preventive-maintenance/occurrences/").json()["count"] == 0
    assert client.get("/api/v1/preventive-maintenance/forecast/").json()["count"] == 0


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
def test_a_planner_may(api, org_a, planner_a, schedule, pump, method, path, data):
    response = _call(api(planner_a, org_a), method, path, data, schedule, pump)
    assert response.status_code in (200, 201), response.json()
