"""The SLA API: policies (`sla/config`) and calendars CRUD for managers, read-only for other members, invalid
policies as 400s naming the field, violations filtered, performance grouped; another organisation's rows
are 404s, and lists do not issue more queries as they grow."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from maintenance_site.tenancy import SYSTEM
from sla import services
from sla.models import SLAPolicy
from tests.sla.conftest import WORKING_HOURS, berlin
from workorders import services as work_orders

CONFIG = "/api/v1/sla/config/"
CALENDARS = "/api/v1/sla/calendars/"
VIOLATIONS = "/api/v1/sla/violations/"
PERFORMANCE = "/api/v1/sla/performance/"


def error(response):
    return response.json()["error"]


def policy_body(calendar, **extra):
    return {
        "name": "Critical",
        "priority": "critical",
        "calendar": calendar.pk,
        "response_minutes": 60,
        "resolution_minutes": 240,
        **extra,
    }


# --- permissions, for every endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize("url", [CONFIG, CALENDARS, VIOLATIONS, PERFORMANCE])
def test_anonymous_is_refused(api, url):
    assert api().get(url).status_code == 401


@pytest.mark.parametrize("url", [CONFIG, CALENDARS, VIOLATIONS, PERFORMANCE])
def test_members_read(api, viewer_a, planner_a, medium_policy, url):
    assert api(viewer_a).get(url).status_code == 200
    assert api(planner_a).get(url).status_code == 200


def test_planner_may_not_change_slas(api, planner_a, business, medium_policy):
    client = api(planner_a)
    refused = client.post(CONFIG, policy_body(business), format="json")
    assert refused.status_code == 403
    assert "may not manage SLA policies" in error(refused)["message"]
    assert client.patch(f"{CONFIG}{medium_policy.pk}/", {"response_minutes": 5}, format="json").status_code == 403
    assert client.delete(f"{CALENDARS}{business.pk}/").status_code == 403
    assert client.post(CALENDARS, {"name": "x", "always_open": True}, format="json").status_code == 403


def test_another_organisations_rows_are_404(api, manager_b, business, medium_policy):
    client = api(manager_b)
    assert client.get(f"{CONFIG}{medium_policy.pk}/").status_code == 404
    assert client.patch(f"{CONFIG}{medium_policy.pk}/", {"name": "mine"}, format="json").status_code == 404
    assert client.get(f"{CALENDARS}{business.pk}/").status_code == 404
    assert client.delete(f"{CALENDARS}{business.pk}/").status_code == 404
    assert client.get(CONFIG).json()["results"] == []


def test_a_calendar_of_another_organisation_cannot_be_used(api, manager_b, business):
    response = api(manager_b).post(CONFIG, policy_body(business), format="json")
    assert response.status_code == 400
    assert "calendar" in error(response)["fields"]


# --- policies -------------------------------------------------------------------------------------------


def test_manager_creates_updates_and_deletes_a_policy(api, manager_a, technician_a, business):
    client = api(manager_a)
    steps = [
        {"level": "warning", "kind": "notify", "notify_roles": ["planner"], "notify_assignee": True},
        {"level": "breach", "target": "response", "kind": "reassign", "reassign_to": technician_a.pk},
    ]
    created = client.post(CONFIG, policy_body(business, escalation_steps=steps), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["pause_statuses"] == ["on_hold"] and body["warning_percent"] == 80
    assert [step["kind"] for step in body["escalation_steps"]] == ["notify", "reassign"]
    assert [step["position"] for step in body["escalation_steps"]] == [1, 2]
    policy = SLAPolicy.objects.get(pk=body["id"])
    assert policy.history.get().history_user == manager_a

    updated = client.patch(
        f"{CONFIG}{policy.pk}/", {"response_minutes": 30, "pause_statuses": ["on_hold", "assigned"]}, format="json"
    )
    assert updated.status_code == 200, updated.json()
    assert updated.json()["response_minutes"] == 30
    assert updated.json()["escalation_steps"][1]["reassign_to"] == technician_a.pk  # kept: not sent
    cleared = client.patch(f"{CONFIG}{policy.pk}/", {"escalation_steps": []}, format="json")
    assert cleared.json()["escalation_steps"] == []

    assert client.delete(f"{CONFIG}{policy.pk}/").status_code == 204
    assert not SLAPolicy.objects.filter(pk=policy.pk).exists()


def test_resolution_shorter_than_response_is_a_400(api, manager_a, business):
    response = api(manager_a).post(CONFIG, policy_body(business, resolution_minutes=30), format="json")
    assert response.status_code == 400
    fields = error(response)["fields"]
    assert "cannot be shorter than the response target" in fields["resolution_minutes"][0]


def test_an_equally_specific_overlapping_policy_is_a_400(api, manager_a, business, medium_policy):
    response = api(manager_a).post(CONFIG, policy_body(business, priority="medium"), format="json")
    assert response.status_code == 400
    assert "“Medium”" in error(response)["message"] and "just as specific" in error(response)["message"]


def test_a_calendar_without_working_time_is_a_400(api, manager_a, business):
    client = api(manager_a)
    response = client.post(CALENDARS, {"name": "Nothing", "hours": []}, format="json")
    assert response.status_code == 400
    assert "needs working time" in error(response)["message"]
    assert "hours" in error(response)["fields"]


def test_bad_escalation_steps_are_a_400(api, manager_a, business, viewer_a):
    client = api(manager_a)
    no_roles = client.post(CONFIG, policy_body(business, escalation_steps=[{"kind": "notify"}]), format="json")
    assert no_roles.status_code == 400 and "roles to notify" in error(no_roles)["message"]
    viewer = client.post(
        CONFIG,
        policy_body(business, escalation_steps=[{"kind": "reassign", "reassign_to": viewer_a.pk}]),
        format="json",
    )
    assert viewer.status_code == 400 and "cannot be given work" in error(viewer)["message"]
    status = client.post(CONFIG, policy_body(business, pause_statuses=["completed"]), format="json")
    assert status.status_code == 400 and "pause_statuses" in str(error(status)["fields"])


# --- calendars --------------------------------------------------------------------------------------------


def test_manager_creates_a_calendar_with_hours_and_holidays(api, manager_a):
    client = api(manager_a)
    hours = [
        {"weekday": row["weekday"], "start": row["start"].isoformat(), "end": row["end"].isoformat()}
        for row in WORKING_HOURS
    ]
    created = client.post(
        CALENDARS,
        {
            "name": "Office",
            "time_zone": "Europe/Berlin",
            "hours": hours,
            "holidays": [{"date": "2026-12-25", "name": "Christmas"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert len(created.json()["hours"]) == 10 and created.json()["holidays"][0]["date"] == "2026-12-25"
    calendar_id = created.json()["id"]
    overlap = client.patch(
        f"{CALENDARS}{calendar_id}/",
        {"hours": [{"weekday": 0, "start": "08:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "13:00"}]},
        format="json",
    )
    assert overlap.status_code == 400 and "overlap" in error(overlap)["message"]
    bad_zone = client.patch(f"{CALENDARS}{calendar_id}/", {"time_zone": "Mars/Olympus"}, format="json")
    assert bad_zone.status_code == 400 and "time_zone" in error(bad_zone)["fields"]


def test_a_calendar_in_use_cannot_be_deleted(api, manager_a, business, medium_policy):
    response = api(manager_a).delete(f"{CALENDARS}{business.pk}/")
    assert response.status_code == 409
    assert "still used by SLA policies" in error(response)["message"]


# --- violations ----------------------------------------------------------------------------------------


@pytest.fixture
def violations(clock, org_a, planner_a, medium_policy, high_policy):
    work_orders.create_work_order(org_a, title="Medium order", actor=planner_a)
    work_orders.create_work_order(org_a, title="High order", priority="high", actor=planner_a)
    clock.set(berlin(2026, 3, 2, 9, 25))  # high: response warning (09:24)
    services.monitor_clocks()
    clock.set(berlin(2026, 3, 3, 9, 0))  # everything past due
    services.monitor_clocks()


def test_violations_are_listed_and_filtered(api, viewer_a, violations, medium_policy, high_policy):
    client = api(viewer_a)
    every = client.get(VIOLATIONS).json()
    assert every["count"] == 8  # 2 orders × 2 targets × (warning + breach)
    first = every["results"][0]
    assert {"work_order_number", "policy_name", "kind", "level", "late_seconds", "escalations"} <= set(first)

    def count(**params):
        return client.get(VIOLATIONS, params).json()["count"]

    assert count(kind="response") == 4
    assert count(level="breach") == 4
    assert count(kind="resolution", level="warning", priority="high") == 1
    assert count(policy=medium_policy.pk) == 4
    assert count(detected_before="2026-03-02T09:30:00+01:00") == 1
    assert count(detected_after="2026-03-03T00:00:00Z") == 7
    assert client.get(VIOLATIONS, {"kind": "late"}).status_code == 400


def test_violations_are_read_only_and_tenant_scoped(api, manager_a, manager_b, violations):
    assert api(manager_a).post(VIOLATIONS, {}, format="json").status_code == 405
    assert api(manager_b).get(VIOLATIONS).json()["count"] == 0


def test_violation_list_query_count_does_not_grow(api, viewer_a, clock, org_a, planner_a, medium_policy):
    client = api(viewer_a)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(VIOLATIONS).status_code == 200
        return len(captured.captured_queries)

    work_orders.create_work_order(org_a, title="one", actor=planner_a)
    clock.set(berlin(2026, 3, 3, 9, 0))
    services.monitor_clocks()
    few = queries()
    for index in range(5):
        clock.set(berlin(2026, 3, 3, 9, index))
        work_orders.create_work_order(org_a, title=f"more {index}", actor=planner_a)
    clock.set(berlin(2026, 3, 5, 9, 0))
    services.monitor_clocks()
    assert queries() == few


def test_policy_list_query_count_does_not_grow(api, viewer_a, org_a, business):
    client = api(viewer_a)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(CONFIG).status_code == 200
        return len(captured.captured_queries)

    steps = [{"kind": "notify", "notify_roles": ["manager"]}, {"kind": "raise_priority"}]
    services.create_policy(
        org_a,
        name="P0",
        priority="low",
        calendar=business,
        response_minutes=1,
        resolution_minutes=2,
        escalation_steps=steps,
        actor=SYSTEM,
    )
    few = queries()
    for index, kind in enumerate(["corrective", "preventive", "inspection", "emergency"]):
        services.create_policy(
            org_a,
            name=f"P{index + 1}",
            priority="medium",
            work_order_type=kind,
            calendar=business,
            response_minutes=1,
            resolution_minutes=2,
            escalation_steps=steps,
            actor=SYSTEM,
        )
    assert queries() == few


# --- performance -----------------------------------------------------------------------------------------


def test_performance_by_priority_and_period(api, viewer_a, clock, org_a, planner_a, technician_a, medium_policy):
    order = work_orders.create_work_order(org_a, title="x", actor=planner_a, assignee=technician_a)
    clock.set(berlin(2026, 3, 2, 9, 30))
    work_orders.start(order, actor=technician_a)
    client = api(viewer_a)
    body = client.get(PERFORMANCE).json()
    assert body["group_by"] == "priority"
    [medium] = body["groups"]
    assert medium["key"] == "medium" and medium["response"]["compliance_percent"] == 100.0
    assert medium["response"]["mean_minutes"] == 30.0
    period = client.get(
        PERFORMANCE, {"group_by": "period", "interval": "day", "from": "2026-03-01", "to": "2026-03-02"}
    )
    assert [group["key"] for group in period.json()["groups"]] == ["2026-03-02"]
    assert client.get(PERFORMANCE, {"from": str(date(2026, 3, 3))}).json()["overall"]["clocks"] == 0
    bad = client.get(PERFORMANCE, {"group_by": "colour"})
    assert bad.status_code == 400 and "not a grouping" in error(bad)["message"]
    assert client.get(PERFORMANCE, {"from": "soon"}).status_code == 400


def test_the_schema_documents_the_sla_endpoints(api, manager_a):
    response = api(manager_a).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/v1/sla/config/",
        "/api/v1/sla/calendars/",
        "/api/v1/sla/violations/",
        "/api/v1/sla/performance/",
    } <= set(paths)
