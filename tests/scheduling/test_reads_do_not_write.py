"""A GET changes nothing (issue 16, finding 13: `GET /api/v1/maintenance/calendar/` created the feed's token).
The maintenance calendar's address is created and replaced by POST only; GET says whether there is one and how to
create it. Every read of the scheduling API, its calendar feeds and its back-office pages is checked for writes
(INSERT, UPDATE, DELETE); the preventive feed only stamps its last use, at most once an hour."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.middleware import SESSION_KEY
from scheduling.preventive.models import CalendarFeed
from scheduling.preventive.services import create_calendar_feed, generate_now
from scheduling.windows.models import WindowFeedToken
from scheduling.windows.services import create_window, end_window
from tests.scheduling.preventive.support import make_schedule

pytestmark = pytest.mark.urls("tests.scheduling.windows.urls")

CALENDAR = "/api/v1/maintenance/calendar/"
WRITES = ("INSERT", "UPDATE", "DELETE")


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


# --- the maintenance calendar's address -------------------------------------------------------------------


def test_get_says_there_is_no_feed_and_how_to_create_one_without_creating_it(api, org_a, viewer_a, manager_a):
    for user in (viewer_a, manager_a):
        response = api(user).get(CALENDAR)
        assert response.status_code == 200
        assert response.json()["exists"] is False and response.json()["url"] is None
        assert "POST" in response.json()["how"]
    assert not WindowFeedToken.objects.exists() and not WindowFeedToken.history.exists()


def test_post_creates_the_address_then_replaces_it(api, client, org_a, viewer_a, manager_a):
    assert api(viewer_a).post(CALENDAR).status_code == 403
    created = api(manager_a).post(CALENDAR)
    assert created.status_code == 201 and created.json()["exists"] is True
    url = created.json()["url"]
    assert client.get(url).status_code == 200
    assert api(viewer_a).get(CALENDAR).json()["url"] == url
    replaced = api(manager_a).post(CALENDAR)
    assert replaced.status_code == 200 and replaced.json()["url"] != url
    assert client.get(url).status_code == 404 and client.get(replaced.json()["url"]).status_code == 200
    token = WindowFeedToken.objects.get()
    assert [row.history_user for row in token.history.all()] == [manager_a, manager_a]  # created, replaced


def test_another_organisations_feed_is_not_shown(api, org_a, manager_a, manager_b):
    api(manager_a).post(CALENDAR)
    assert api(manager_b).get(CALENDAR).json()["exists"] is False


def test_the_schema_documents_the_get_and_the_post(api, manager_a):
    schema = api(manager_a).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/v1/maintenance/calendar/"]
    assert set(operations["post"]["responses"]) >= {"200", "201"}
    body = operations["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {
        "exists",
        "url",
        "created_at",
        "updated_at",
        "how",
    }


# --- every read of the scheduling API ----------------------------------------------------------------------


@pytest.fixture
def world(org_a, plant, manager_a):
    now = timezone.now()
    window = create_window(
        org_a, title="Soon", starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1), actor=SYSTEM
    )
    done = create_window(
        org_a, title="Done", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1), actor=SYSTEM
    )
    end_window(done, actor=SYSTEM)
    schedule = make_schedule(
        org_a, asset=plant["pump_1"], cron_expression="0 6 * * *", skip_if_open=False, start_date=date(2026, 1, 1)
    )
    generate_now(schedule, days_ahead=2, actor=SYSTEM)
    feed, token = create_calendar_feed(org_a, name="Planner", actor=manager_a)
    return {"window": window, "schedule": schedule, "feed": feed, "token": token}


def test_no_read_of_the_scheduling_api_writes(api, world, manager_a):
    client = api(manager_a)
    window, schedule = world["window"].pk, world["schedule"].pk
    first = world["schedule"].occurrences.order_by("due_at").first()
    occurrence, work_order = first.pk, first.work_order_id
    paths = [
        "/api/v1/maintenance/windows/",
        f"/api/v1/maintenance/windows/{window}/",
        f"/api/v1/maintenance/windows/fit/?work_order={work_order}",
        "/api/v1/maintenance/mode/",
        "/api/v1/maintenance/history/",
        "/api/v1/maintenance/metrics/",
        CALENDAR,
        "/api/v1/preventive-maintenance/schedules/",
        f"/api/v1/preventive-maintenance/schedules/{schedule}/",
        f"/api/v1/preventive-maintenance/schedules/{schedule}/occurrences/",
        f"/api/v1/preventive-maintenance/schedules/{schedule}/forecast/",
        "/api/v1/preventive-maintenance/occurrences/",
        f"/api/v1/preventive-maintenance/occurrences/{occurrence}/",
        "/api/v1/preventive-maintenance/statistics/",
        "/api/v1/preventive-maintenance/forecast/",
        "/api/v1/preventive-maintenance/calendar-feeds/",
        f"/api/v1/preventive-maintenance/calendar-feeds/{world['feed'].pk}/",
    ]
    for path in paths:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, (path, response.content[:300])
        assert writes(queries) == [], path


def test_no_back_office_page_of_scheduling_writes(client, world, manager_a, org_a):
    client.force_login(manager_a)
    session = client.session
    session[SESSION_KEY] = org_a.pk
    session.save()
    pages = [
        "/admin/scheduling/maintenancewindow/",
        f"/admin/scheduling/maintenancewindow/{world['window'].pk}/change/",
        "/admin/scheduling/maintenancewindow/mode/",
        "/admin/scheduling/maintenancehistoryentry/",
        "/admin/scheduling/preventiveschedule/",
        f"/admin/scheduling/preventiveschedule/{world['schedule'].pk}/change/",
        "/admin/scheduling/preventiveoccurrence/",
        "/admin/scheduling/calendarfeed/",
    ]
    for page in pages:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(page)
        assert response.status_code == 200, page
        assert [sql for sql in writes(queries) if "django_session" not in sql] == [], page


def test_the_calendar_feeds_change_nothing_but_a_use_stamp_once_an_hour(client, api, world, manager_a):
    window_url = api(manager_a).post(CALENDAR).json()["url"]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(window_url).status_code == 200
    assert writes(queries) == []

    preventive_url = f"/preventive/calendar/{world['token']}.ics"
    with CaptureQueriesContext(connection) as queries:
        assert client.get(preventive_url).status_code == 200
    assert len(writes(queries)) == 1  # last_used_at, so unused feeds can be found and revoked
    stamped = CalendarFeed.objects.get().last_used_at
    with CaptureQueriesContext(connection) as queries:
        assert client.get(preventive_url).status_code == 200
        assert client.head(preventive_url).status_code in (200, 405)
    assert writes(queries) == [] and CalendarFeed.objects.get().last_used_at == stamped
