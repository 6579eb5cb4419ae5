"""The maintenance API: windows CRUD with the same permission cases as every endpoint (anonymous, wrong
role, other tenant, permitted), the overlap 409, bad input 400s, `end` / `cancel` / `fail`, `fit`,
history, metrics, the mode, and the calendar feed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from icalendar import Calendar

from maintenance_site.tenancy import SYSTEM
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.services import cancel_window, create_window, end_window

pytestmark = pytest.mark.urls("tests.scheduling.windows.urls")

URL = "/api/v1/maintenance/windows/"
W = MaintenanceWindow


def at(hours: float) -> str:
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def error(response):
    return response.json()["error"]


def window_body(**overrides):
    body = {"title": "Firmware update", "maintenance_type": "system_update", "starts_at": at(2), "ends_at": at(3)}
    return {**body, **overrides}


@pytest.fixture
def scheduled(org_a):
    now = timezone.now()
    return create_window(
        org_a, title="Scheduled", starts_at=now + timedelta(hours=5), ends_at=now + timedelta(hours=6), actor=SYSTEM
    )


@pytest.fixture
def running(org_a):
    now = timezone.now()
    return create_window(
        org_a, title="Running", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=55), actor=SYSTEM
    )


# --- permission cases --------------------------------------------------------------------------------


def test_anonymous_gets_401(api, scheduled):
    assert api().get(URL).status_code == 401
    assert api().post(URL, window_body(), format="json").status_code == 401


def test_every_member_reads_only_managers_write(api, org_a, viewer_a, planner_a, scheduled):
    listing = api(viewer_a).get(URL)
    assert listing.status_code == 200 and [row["id"] for row in listing.json()["results"]] == [scheduled.pk]
    assert api(viewer_a).get(f"{URL}{scheduled.pk}/").status_code == 200
    for user in (viewer_a, planner_a):
        response = api(user).post(URL, window_body(), format="json")
        assert response.status_code == 403 and "schedule maintenance windows" in error(response)["message"]
        assert api(user).post(f"{URL}{scheduled.pk}/cancel", {"reason": "x"}).status_code == 403


def test_another_organisations_window_is_a_404(api, manager_b, scheduled):
    assert api(manager_b).get(f"{URL}{scheduled.pk}/").status_code == 404
    assert api(manager_b).patch(f"{URL}{scheduled.pk}/", {"title": "mine"}, format="json").status_code == 404
    assert api(manager_b).post(f"{URL}{scheduled.pk}/cancel", {"reason": "x"}).status_code == 404
    assert api(manager_b).get(URL).json()["results"] == []


# --- CRUD ----------------------------------------------------------------------------------------------------


def test_create_with_a_duration_and_read_it_back(api, org_a, manager_a, site):
    response = api(manager_a).post(
        URL,
        window_body(ends_at=None, duration_minutes=90, scope="assets", assets=[site["pump"].pk, site["fan"].pk]),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (
        body["duration_minutes"] == 90
        and body["status"] == "scheduled"
        and sorted(body["assets"]) == sorted([site["pump"].pk, site["fan"].pk])
    )
    assert body["created_by"] == manager_a.pk and response.has_header("ETag")
    window = MaintenanceWindow.objects.get(pk=body["id"])
    assert window.ends_at - window.starts_at == timedelta(minutes=90)


def test_overlap_is_a_409_naming_the_window(api, org_a, manager_a, scheduled):
    response = api(manager_a).post(URL, window_body(starts_at=at(5.5), ends_at=at(7)), format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "window_overlap"
    assert "Scheduled" in error(response)["message"] and error(response)["conflicting_window"]["id"] == scheduled.pk
    emergency = window_body(starts_at=at(5.5), ends_at=at(7), emergency=True, emergency_reason="Zero-day patch")
    response = api(manager_a).post(URL, emergency, format="json")
    assert response.status_code == 201 and response.json()["overridden_conflicts"] == [scheduled.pk]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": at(1)}, "ends_at"),  # before the start
        ({"ends_at": None, "duration_minutes": 0}, "duration_minutes"),
        ({"ends_at": None, "duration_minutes": -15}, "duration_minutes"),
        ({"duration_minutes": 30}, "duration_minutes"),  # both the end and a duration
        ({"scope": "location"}, "location"),
        ({"scope": "assets"}, "assets"),
        ({"recurrence": "FREQ=NEVER"}, "recurrence"),
        ({"emergency": True}, "emergency_reason"),
        ({"maintenance_type": "coffee"}, "maintenance_type"),
    ],
)
def test_bad_input_is_a_400_keyed_by_field(api, org_a, manager_a, changes, field):
    response = api(manager_a).post(URL, window_body(**changes), format="json")
    assert response.status_code == 400, response.json()
    assert field in error(response)["fields"], error(response)
    assert not MaintenanceWindow.objects.exists()


def test_a_scope_holding_another_organisations_asset_is_a_400(api, org_a, manager_a, site, foreign_asset):
    body = window_body(scope="assets", assets=[site["pump"].pk, foreign_asset.pk])
    response = api(manager_a).post(URL, body, format="json")
    assert response.status_code == 400 and "assets" in error(response)["fields"]
    from assets import services as asset_services

    their_site = asset_services.create_location(foreign_asset.organization, name="Their site")
    response = api(manager_a).post(URL, window_body(scope="location", location=their_site.pk), format="json")
    assert response.status_code == 400 and "location" in error(response)["fields"]


def test_update_a_scheduled_window(api, org_a, manager_a, scheduled):
    client = api(manager_a)
    response = client.patch(f"{URL}{scheduled.pk}/", {"title": "Renamed", "duration_minutes": 30}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["title"] == "Renamed" and response.json()["duration_minutes"] == 30
    later = timedelta(hours=2)
    other = create_window(
        org_a, title="Later", starts_at=scheduled.starts_at + later, ends_at=scheduled.ends_at + later, actor=SYSTEM
    )
    response = client.patch(f"{URL}{other.pk}/", {"starts_at": scheduled.starts_at.isoformat()}, format="json")
    assert response.status_code == 409 and error(response)["conflicting_window"]["id"] == scheduled.pk


def test_a_running_window_changes_only_its_end_and_words(api, org_a, manager_a, running):
    client = api(manager_a)
    assert client.patch(f"{URL}{running.pk}/", {"description": "Going well"}, format="json").status_code == 200
    new_end = (running.ends_at + timedelta(minutes=30)).isoformat()
    assert client.patch(f"{URL}{running.pk}/", {"ends_at": new_end}, format="json").status_code == 200
    response = client.patch(f"{URL}{running.pk}/", {"scope": "assets"}, format="json")
    assert response.status_code == 409 and error(response)["code"] == "window_active"


def test_delete_a_scheduled_window_but_not_a_started_one(api, org_a, manager_a, scheduled, running):
    client = api(manager_a)
    assert client.delete(f"{URL}{scheduled.pk}/").status_code == 204
    response = client.delete(f"{URL}{running.pk}/")
    assert response.status_code == 409 and "end it early or mark it failed" in error(response)["message"]
    assert MaintenanceWindow.objects.filter(pk=running.pk).exists()


def test_end_cancel_and_fail(api, org_a, manager_a, scheduled, running):
    client = api(manager_a)
    assert client.post(f"{URL}{scheduled.pk}/end").status_code == 409
    response = client.post(f"{URL}{running.pk}/end", {"reason": "Finished early"})
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert response.json()["actual_end"] is not None
    assert client.post(f"{URL}{scheduled.pk}/cancel", {}).status_code == 400  # a reason is required
    response = client.post(f"{URL}{scheduled.pk}/cancel", {"reason": "Vendor late"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"{URL}{running.pk}/fail", {}).status_code == 400
    response = client.post(f"{URL}{running.pk}/fail", {"reason": "Rolled back"})
    assert response.status_code == 200 and response.json()["status_reason"] == "Rolled back"


def test_list_filters_and_query_count(api, org_a, manager_a, site):
    now = timezone.now()
    for day in range(3):
        start = now + timedelta(days=day + 1)
        create_window(
            org_a,
            title=f"W{day}",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            scope="assets",
            assets=[site["pump"], site["fan"]],
            maintenance_type="network" if day else "database",
            actor=SYSTEM,
        )
    client = api(manager_a)
    assert [row["title"] for row in client.get(URL, {"maintenance_type": "network"}).json()["results"]] == ["W1", "W2"]
    response = client.get(URL, {"starts_before": (now + timedelta(days=1, hours=12)).isoformat()})
    assert [row["title"] for row in response.json()["results"]] == ["W0"]
    assert client.get(URL, {"starts_before": "tomorrow"}).status_code == 400
    with CaptureQueriesContext(connection) as small:
        client.get(URL)
    for day in range(3, 10):
        start = now + timedelta(days=day + 1)
        create_window(
            org_a,
            title=f"W{day}",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            scope="assets",
            assets=[site["pump"]],
            actor=SYSTEM,
        )
    with CaptureQueriesContext(connection) as large:
        assert len(client.get(URL).json()["results"]) == 10
    assert len(large) == len(small)  # no query per row


def test_windows_that_fit_a_work_order(api, org_a, manager_a, planner_a, manager_b, site):
    from workorders import services as work_services

    order = work_services.create_work_order(
        org_a, title="Seal", asset=site["pump"], estimated_minutes=45, needs_downtime=True, actor=planner_a
    )
    now = timezone.now()
    fits = create_window(
        org_a,
        title="Pump",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        scope="assets",
        assets=[site["pump"]],
        actor=SYSTEM,
    )
    create_window(
        org_a,
        title="Too short",
        starts_at=now + timedelta(hours=3),
        ends_at=now + timedelta(hours=3, minutes=30),
        actor=SYSTEM,
    )
    response = api(planner_a).get(f"{URL}fit", {"work_order": order.pk})
    assert response.status_code == 200 and [row["id"] for row in response.json()] == [fits.pk]
    assert api(planner_a).get(f"{URL}fit", {"work_order": "x"}).status_code == 400
    assert api(manager_b).get(f"{URL}fit", {"work_order": order.pk}).status_code == 404


# --- history, metrics, mode, calendar ------------------------------------------------------------------


def test_history_and_metrics(api, org_a, viewer_a, running):
    end_window(running, actor=SYSTEM)
    history = api(viewer_a).get("/api/v1/maintenance/history")
    assert history.status_code == 200 and [row["id"] for row in history.json()["results"]] == [running.pk]
    metrics = api(viewer_a).get("/api/v1/maintenance/metrics").json()
    assert metrics["by_status"]["completed"] == 1 and metrics["by_type"]["other"] == 1
    assert metrics["duration_minutes"]["scheduled"]["average"] == 60
    assert api().get("/api/v1/maintenance/metrics").status_code == 401


def test_mode_reads_for_every_member(api, org_a, viewer_a, running):
    body = api(viewer_a).get("/api/v1/maintenance/mode").json()
    assert body["active"] is True and body["platform"] is False and body["windows"][0]["title"] == "Running"
    assert 3200 <= body["retry_after"] <= 3300


def test_calendar_feed(api, client, org_a, manager_a, viewer_a, scheduled, running):
    start = timezone.now() + timedelta(days=2)
    cancelled = create_window(
        org_a, title="Cancelled", starts_at=start, ends_at=start + timedelta(hours=1), actor=SYSTEM
    )
    cancel_window(cancelled, reason="no", actor=SYSTEM)
    url = api(manager_a).post("/api/v1/maintenance/calendar").json()["url"]
    assert api(viewer_a).get("/api/v1/maintenance/calendar").json()["url"] == url  # every member reads it
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = {str(event["summary"]): event for event in calendar.walk("VEVENT")}
    assert set(events) == {"Maintenance: Scheduled", "Maintenance: Running"}
    assert events["Maintenance: Scheduled"].decoded("dtstart") == scheduled.starts_at.replace(microsecond=0)
    assert str(events["Maintenance: Scheduled"]["uid"]) == f"maintenance-window-{scheduled.pk}@testserver"
    assert api(viewer_a).post("/api/v1/maintenance/calendar").status_code == 403
    new_url = api(manager_a).post("/api/v1/maintenance/calendar").json()["url"]
    assert new_url != url and client.get(url).status_code == 404 and client.get(new_url).status_code == 200
