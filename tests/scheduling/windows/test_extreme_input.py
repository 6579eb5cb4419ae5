"""Every date and length a person can type into a maintenance window or the mode switch: far-future years (9999),
year 1, huge and negative durations, far RRULE ends, naive and malformed times. Each is a 400 naming the field
(or a window that works), never a 500 — in the API, the back office and the Python API (`schedule_maintenance`).
Issue 16, finding 5: "a maintenance window in year 9999" answered 500 (the end overflowed the calendar)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy import SYSTEM
from scheduling.windows.mode import enter_maintenance_mode
from scheduling.windows.models import MaintenanceMode, MaintenanceWindow
from scheduling.windows.services import MAX_DURATION_MINUTES, create_window, schedule_maintenance, update_window
from tests.scheduling.windows.support import T0, H

pytestmark = pytest.mark.urls("tests.scheduling.windows.urls")

URL = "/api/v1/maintenance/windows/"
MODE = "/api/v1/maintenance/mode/"


def soon(hours: float = 2) -> str:
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def refused(response, field: str) -> str:
    """The response is a 400 naming `field`; returns its message."""
    assert response.status_code == 400, (response.status_code, response.content[:500])
    error = response.json()["error"]
    assert field in error["fields"], error
    return error["message"]


@pytest.fixture
def manager(api, manager_a):
    client = api(manager_a)
    client.raise_request_exception = False  # a 500 is an answer here, not an exception
    return client


@pytest.fixture
def scheduled(org_a):
    now = timezone.now()
    return create_window(
        org_a,
        title="Scheduled",
        starts_at=now + timedelta(days=2),
        ends_at=now + timedelta(days=2, hours=1),
        actor=SYSTEM,
    )


# --- the start and the end -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "starts_at",
    [
        "9999-12-31T23:00:00Z",  # the finding: its end (start + 60 minutes) overflowed
        "9999-12-31T23:59:59.999999Z",
        "9000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:00:00Z",
    ],
)
def test_a_start_beyond_the_range_is_a_400_on_starts_at(manager, starts_at):
    response = manager.post(URL, {"title": "x", "starts_at": starts_at, "duration_minutes": 60}, format="json")
    message = refused(response, "starts_at")
    assert "ten years" in message or "a year in the past" in message
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_moment_outside_the_calendar_once_in_utc_is_a_400(manager, moment):
    """Year 9999 west of UTC, or year 1 east of it, does not exist in UTC."""
    refused(manager.post(URL, {"title": "x", "starts_at": moment, "duration_minutes": 60}, format="json"), "starts_at")
    refused(manager.post(URL, {"title": "x", "starts_at": soon(), "ends_at": moment}, format="json"), "ends_at")


@pytest.mark.parametrize("ends_at", ["9999-12-31T23:00:00Z", "2200-01-01T00:00:00Z"])
def test_an_end_more_than_a_year_after_the_start_is_a_400_on_ends_at(manager, ends_at):
    message = refused(
        manager.post(URL, {"title": "x", "starts_at": soon(), "ends_at": ends_at}, format="json"), "ends_at"
    )
    assert "at most 366 days" in message


@pytest.mark.parametrize("minutes", [2**31, 2**63, 10**30, MAX_DURATION_MINUTES + 1, 0, -1, -(2**63)])
def test_a_duration_out_of_range_is_a_400_on_duration_minutes(manager, minutes):
    response = manager.post(URL, {"title": "x", "starts_at": soon(), "duration_minutes": minutes}, format="json")
    refused(response, "duration_minutes")


@pytest.mark.parametrize("minutes", [1.5, "abc", "", [], {"a": 1}, True])
def test_a_duration_that_is_not_a_whole_number_is_a_400(manager, minutes):
    response = manager.post(URL, {"title": "x", "starts_at": soon(), "duration_minutes": minutes}, format="json")
    refused(response, "duration_minutes")


def test_the_longest_window_is_accepted(manager):
    response = manager.post(
        URL, {"title": "Refit", "starts_at": soon(), "duration_minutes": MAX_DURATION_MINUTES}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["duration_minutes"] == MAX_DURATION_MINUTES


@pytest.mark.parametrize("value", ["garbage", "2030-02-30T10:00:00Z", "2030-01-01T25:00:00Z", 12345, [], ""])
def test_a_malformed_time_is_a_400_naming_the_field(manager, value):
    refused(manager.post(URL, {"title": "x", "starts_at": value, "duration_minutes": 60}, format="json"), "starts_at")
    refused(manager.post(URL, {"title": "x", "starts_at": soon(), "ends_at": value}, format="json"), "ends_at")


def test_a_naive_time_is_read_as_utc(manager):
    start = (timezone.now() + timedelta(days=3)).replace(microsecond=0, tzinfo=None)
    response = manager.post(URL, {"title": "x", "starts_at": start.isoformat(), "duration_minutes": 30}, format="json")
    assert response.status_code == 201, response.json()
    assert MaintenanceWindow.objects.get().starts_at == start.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"starts_at": "9999-12-31T23:00:00Z"},
        {"starts_at": "0001-01-01T00:00:00Z"},
        {"ends_at": "9999-12-31T23:00:00Z"},
        {"duration_minutes": 2**63},
        {"duration_minutes": 10**30},
        {"duration_minutes": -5},
    ],
)
def test_changing_a_window_to_extreme_values_is_a_400(manager, scheduled, change):
    response = manager.patch(f"{URL}{scheduled.pk}/", change, format="json")
    refused(response, next(iter(change)))
    before = scheduled.ends_at
    scheduled.refresh_from_db()
    assert scheduled.ends_at == before  # nothing half-written


def test_a_running_window_cannot_be_stretched_beyond_a_year(manager, org_a):
    now = timezone.now()
    running = create_window(org_a, title="Running", starts_at=now - timedelta(minutes=5), ends_at=now + H, actor=SYSTEM)
    refused(manager.patch(f"{URL}{running.pk}/", {"duration_minutes": 10**12}, format="json"), "duration_minutes")
    refused(manager.patch(f"{URL}{running.pk}/", {"ends_at": "9999-01-01T00:00:00Z"}, format="json"), "ends_at")


# --- recurring windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["FREQ=DAILY", "FREQ=YEARLY;UNTIL=99991231", "FREQ=HOURLY;INTERVAL=5"])
def test_a_series_in_year_9999_is_a_400_on_starts_at(manager, rule):
    body = {"title": "x", "starts_at": "9999-12-01T00:00:00Z", "duration_minutes": 30, "recurrence": rule}
    refused(manager.post(URL, body, format="json"), "starts_at")


@pytest.mark.parametrize("rule", ["FREQ=WEEKLY;BYDAY=SU;UNTIL=99991231", "FREQ=MONTHLY;COUNT=999999999999"])
def test_a_series_ending_far_away_works_and_creates_only_the_coming_weeks(manager, rule):
    body = {"title": "Patch Sunday", "starts_at": soon(24), "duration_minutes": 60, "recurrence": rule}
    response = manager.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    head = MaintenanceWindow.objects.get(pk=response.json()["id"])
    horizon = timezone.now() + timedelta(days=61)
    assert 1 <= head.occurrences.count() <= 10 and all(o.starts_at < horizon for o in head.occurrences.all())


def test_a_series_may_not_start_more_than_a_year_back(manager):
    start = (timezone.now() - timedelta(days=400)).isoformat()
    body = {"title": "x", "starts_at": start, "duration_minutes": 30, "recurrence": "FREQ=DAILY"}
    refused(manager.post(URL, body, format="json"), "starts_at")


# --- the mode switch -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "until", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00Z", "2400-01-01T00:00:00Z", "x"]
)
def test_an_expected_end_out_of_range_is_a_400_on_until(manager, org_a, until):
    response = manager.post(MODE, {"action": "enter", "reason": "Disk swap", "until": until}, format="json")
    refused(response, "until")
    assert not MaintenanceMode.objects.filter(organization=org_a, active=True).exists()


def test_the_mode_with_a_far_but_allowed_end_gives_a_retry_after(manager):
    until = (timezone.now() + timedelta(days=365 * 9)).replace(microsecond=0).isoformat()
    response = manager.post(MODE, {"action": "enter", "reason": "Long refit", "until": until}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["retry_after"] > 365 * 8 * 86400


# --- the Python API and the services -------------------------------------------------------------------


def test_schedule_maintenance_refuses_year_9999_and_huge_durations(org_a):
    with pytest.raises(InvalidInput) as caught:
        schedule_maintenance(org_a, "system_update", datetime(9999, 12, 31, 23, 0), 60, actor=SYSTEM)
    assert "starts_at" in caught.value.fields
    with pytest.raises(InvalidInput) as caught:
        schedule_maintenance(org_a, "system_update", timezone.now() + H, 10**30, actor=SYSTEM)
    assert "duration_minutes" in caught.value.fields
    with pytest.raises(InvalidInput) as caught:
        schedule_maintenance(org_a, "system_update", timezone.now() + H, float("nan"), actor=SYSTEM)
    assert "duration_minutes" in caught.value.fields


def test_a_series_head_started_long_ago_can_still_be_edited(org_a):
    """The start bounds apply to a start people type, not to a series' first occurrence that lies in the past."""
    head = create_window(
        org_a,
        title="Weekly",
        starts_at=T0,
        ends_at=T0 + H,
        recurrence="FREQ=WEEKLY",
        now=T0 - timedelta(days=1),
        actor=SYSTEM,
    )
    edited = update_window(head, duration_minutes=90, now=T0 + timedelta(days=500), actor=SYSTEM)
    assert edited.ends_at - edited.starts_at == timedelta(minutes=90)


def test_enter_maintenance_mode_refuses_an_end_beyond_ten_years(org_a):
    with pytest.raises(InvalidInput) as caught:
        enter_maintenance_mode(org_a, reason="x", until=timezone.now() + timedelta(days=3700), actor=SYSTEM)
    assert "until" in caught.value.fields


# --- the back office -----------------------------------------------------------------------------------


ADMIN_ADD = "/admin/scheduling/maintenancewindow/add/"


def admin_form(start_date: str, start_time: str = "23:59:00", **extra) -> dict:
    data = {"title": "Far", "maintenance_type": "other", "description": "", "scope": "system", "recurrence": ""}
    data.update({"starts_at_0": start_date, "starts_at_1": start_time, "notify_users": "on"})
    return {**data, **extra}


@pytest.mark.parametrize(
    "data",
    [
        admin_form("9999-12-31", duration_minutes="60"),
        admin_form("9999-12-31", duration_minutes=str(10**30)),
        admin_form("2030-01-01", duration_minutes=str(2**63)),
        admin_form("0001-01-01", "00:00:00", duration_minutes="60"),
        admin_form("2030-01-01", ends_at_0="9999-12-31", ends_at_1="23:59:59"),
        admin_form("2030-01-01", duration_minutes="-5"),
    ],
)
def test_the_back_office_form_shows_extreme_values_as_form_errors(client, manager_a, data):
    client.force_login(manager_a)
    client.raise_request_exception = False
    response = client.post(ADMIN_ADD, data)
    assert response.status_code == 200, response.status_code
    assert "errornote" in response.content.decode() or "errorlist" in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_the_back_office_mode_switch_refuses_year_9999(client, manager_a, org_a):
    client.force_login(manager_a)
    client.raise_request_exception = False
    data = {"action": "enter", "reason": "x", "until": "9999-12-31 23:59", "scope": "organization", "confirm": "1"}
    response = client.post("/admin/scheduling/maintenancewindow/mode/", data)
    assert response.status_code == 200 and "ten years" in response.content.decode()
    assert not MaintenanceMode.objects.filter(organization=org_a, active=True).exists()


@pytest.mark.parametrize(
    "query",
    [
        "starts_at__year=9999&starts_at__month=12&starts_at__day=31",  # the drill-down's next day overflowed
        "starts_at__year=0",
        "starts_at__year=99999",
        "starts_at__year=abc",
        "ends_at__year=0",  # a hand-written filter on another date
        "starts_at__year=2030&starts_at__month=13",
    ],
)
@pytest.mark.parametrize("page", ["/admin/scheduling/maintenancewindow/", "/admin/scheduling/maintenancehistoryentry/"])
def test_back_office_lists_start_afresh_on_dates_outside_the_calendar(client, manager_a, org_a, page, query):
    client.force_login(manager_a)
    client.raise_request_exception = False
    response = client.get(f"{page}?{query}")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    assert client.get(f"{page}?starts_at__year=2030&starts_at__month=1&starts_at__day=7").status_code == 200


def test_a_back_office_action_on_ids_that_are_not_ids_leaves_them_out(client, manager_a, scheduled):
    client.force_login(manager_a)
    client.raise_request_exception = False
    data = {"action": "cancel_windows", "_selected_action": ["abc", str(2**70), str(scheduled.pk)]}
    response = client.post("/admin/scheduling/maintenancewindow/", data)
    assert response.status_code == 200 and "Scheduled" in response.content.decode()  # the confirmation page
    response = client.post("/admin/scheduling/maintenancewindow/", {**data, "_selected_action": ["abc"]})
    assert response.status_code in (200, 302)
