"""The work-order API: CRUD, every lifecycle action allowed and refused, checklists and follow-ups, time and
costs, comments, attachments and their download, work requests, procedures, teams, filters, tenant isolation,
idempotency, history, events after commit, and the list query count."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assets import services as asset_services
from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.events import services as event_services
from maintenance_site.events.models import Event
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.models import Membership
from maintenance_site.tenancy.roles import Role
from tests.conftest import make_user
from tests.events.support import per_event
from workorders import services
from workorders.admin import LIFECYCLE
from workorders.api import WorkOrderViewSet
from workorders.models import TRANSITIONS, ItemKind, Procedure, Team, TimeEntry, WorkOrder, WorkRequest

S = WorkOrder.Status
URL = "/api/v1/work-orders/"
# A valid 1×1 PNG (uploads are recognised by their content).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005"
    "0001ff89993d1d0000000049454e44ae426082"
)


def url(order, tail=""):
    return f"{URL}{order.pk}/{tail}"


def error(response):
    return response.json()["error"]


@pytest.fixture
def technician_b(org_b):
    user = make_user("technician-b")
    tenancy.add_member(org_b, user, Role.TECHNICIAN)
    return user


def set_org(org, **flags):
    for name, value in flags.items():
        setattr(org, name, value)
    org.save()


BODIES = {
    "hold": {"reason": "waiting for parts"},
    "reject": {"reason": "still leaking"},
    "reopen": {"reason": "leaks again"},
    "cancel": {"reason": "duplicate"},
    "complete": {"notes": "seal replaced"},
}


def walk(order, status, actor, technician):
    """Bring an order to `status` through the services."""
    steps = {
        S.OPEN: [],
        S.ASSIGNED: ["assign"],
        S.IN_PROGRESS: ["assign", "start"],
        S.ON_HOLD: ["assign", "start", "hold"],
        S.COMPLETED: ["assign", "start", "complete"],
        S.VERIFIED: ["assign", "start", "complete", "verify"],
        S.CANCELLED: ["cancel"],
    }[status]
    for step in steps:
        kwargs = {"assignee": technician} if step == "assign" else dict(BODIES.get(step, {}))
        order = services.transition(order, step, actor=actor, **kwargs)
    return order


def body_for(action, technician):
    return {"assignee": technician.pk} if action == "assign" else BODIES.get(action, {})


# --- create, read, update, delete -----------------------------------------------------------------------


def test_create_applies_procedure_and_assignee(api, org_a, planner_a, technician_a, pump, site):
    procedure = services.create_procedure(
        org_a, name="Seal change", actor=planner_a, items=[{"text": "Isolate pump"}, {"text": "Fit seal"}]
    )
    response = api(planner_a).post(
        URL,
        {
            "title": "Replace seal",
            "asset": pump.pk,
            "priority": "high",
            "procedure": procedure.pk,
            "assignee": technician_a.pk,
            "due_at": "2030-01-31T12:00:00Z",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["ETag"]
    assert body["number"] == "WO-000001"
    assert body["status"] == "assigned"
    assert body["assignee"] == technician_a.pk and body["assignee_name"] == "technician-a"
    assert body["location"] == site["room"].pk and body["location_name"] == "Pump room"
    assert body["asset_code"] == "PMP-1"
    assert body["requested_by"] == planner_a.pk
    assert body["costs"] == {"labour": "0.00", "parts": "0.00", "other": "0.00", "total": "0.00"}
    assert body["allowed_actions"] == ["assign", "unassign", "start", "cancel"]
    assert body["is_overdue"] is False
    assert "procedure" not in body
    checklist = api(planner_a).get(f"{URL}{body['id']}/checklist/").json()
    assert [item["text"] for item in checklist] == ["Isolate pump", "Fit seal"]


def test_list_and_detail_are_for_every_member(api, order, viewer_a, technician_a, storekeeper_a, integrator_a):
    for user in (viewer_a, technician_a, storekeeper_a, integrator_a):
        listed = api(user).get(URL)
        assert listed.status_code == 200
        [row] = listed.json()["results"]
        assert row["number"] == order.number
        assert "costs" not in row  # on the detail only
        detail = api(user).get(url(order))
        assert detail.status_code == 200
        assert detail.json()["costs"]["total"] == "0.00"
        assert detail["ETag"]


def test_viewer_is_read_only(api, order, viewer_a):
    client = api(viewer_a)
    attempts = [
        client.post(URL, {"title": "x"}),
        client.patch(url(order), {"title": "x"}),
        client.delete(url(order)),
        client.post(url(order, "start/")),
        client.post(url(order, "cancel/"), {"reason": "x"}),
        client.post(url(order, "comments/"), {"body": "hello"}),
        client.post(url(order, "time-entries/"), {"minutes": 10}),
        client.post(url(order, "checklist/"), {"text": "x"}),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert all(error(r)["code"] == "role_forbids" for r in attempts)
    order.refresh_from_db()
    assert order.title == "Replace seal" and order.status == S.OPEN


def test_anonymous_is_401(api, order):
    client = api()
    for path in (URL, url(order), url(order, "checklist/"), "/api/v1/requests/", "/api/v1/attachments/x/download"):
        assert client.get(path).status_code == 401
    assert client.post(url(order, "start/")).status_code == 401


def test_technician_cannot_create_or_edit(api, order, technician_a):
    assert api(technician_a).post(URL, {"title": "x"}).status_code == 403
    assert api(technician_a).patch(url(order), {"title": "x"}).status_code == 403


def test_update_goes_through_the_service(api, order, planner_a, technician_a):
    client = api(planner_a)
    etag = client.get(url(order))["ETag"]
    response = client.patch(url(order), {"title": "Replace both seals", "priority": "critical"}, HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["title"] == "Replace both seals"
    assert response["ETag"] != etag
    # a stale ETag is refused
    assert client.patch(url(order), {"title": "late"}, HTTP_IF_MATCH=etag).status_code == 412
    # status is read-only: ignored
    client.patch(url(order), {"status": "completed"})
    order.refresh_from_db()
    assert order.status == S.OPEN
    # assignment goes through the lifecycle action
    response = client.patch(url(order), {"assignee": technician_a.pk})
    assert response.status_code == 400
    assert "use the lifecycle actions" in error(response)["message"]
    # a PUT repeating unchanged non-editable fields is fine
    current = client.get(url(order)).json()
    response = client.put(url(order), {**{k: v for k, v in current.items() if v is not None}, "title": "Put"})
    assert response.status_code == 200, response.json()
    assert response.json()["title"] == "Put"


def test_closed_order_cannot_be_edited(api, order, planner_a, technician_a):
    walk(order, S.CANCELLED, planner_a, technician_a)
    response = api(planner_a).patch(url(order), {"title": "x"})
    assert response.status_code == 409
    assert "cancelled" in error(response)["message"]


def test_follow_up_and_request_sources_are_not_created_directly(api, planner_a):
    for source in ("follow_up", "request"):
        response = api(planner_a).post(URL, {"title": "x", "source": source})
        assert response.status_code == 400
        assert "source" in error(response)["fields"]
    assert api(planner_a).post(URL, {"title": "x", "source": "predictive"}).status_code == 201


def test_another_organisations_asset_team_technician_or_procedure_is_refused(
    api, org_b, planner_a, manager_b, technician_b, order
):
    asset_b = asset_services.create_asset(org_b, code="B-1", name="b")
    team_b = services.create_team(org_b, name="B crew", actor=manager_b)
    procedure_b = services.create_procedure(org_b, name="B proc", actor=manager_b)
    client = api(planner_a)
    for field, value in (
        ("asset", asset_b.pk),
        ("team", team_b.pk),
        ("assignee", technician_b.pk),
        ("procedure", procedure_b.pk),
        ("parent", services.create_work_order(org_b, title="b", actor=manager_b).pk),
    ):
        response = client.post(URL, {"title": "x", field: value})
        assert response.status_code == 400, field
        assert field in error(response)["fields"]
    response = client.post(url(order, "assign/"), {"assignee": technician_b.pk})
    assert response.status_code == 400
    assert "assignee" in error(response)["fields"]
    assert client.patch(url(order), {"asset": asset_b.pk}).status_code == 400
    assert WorkOrder.objects.filter(organization__slug="org-a").count() == 1


def test_assigning_someone_who_cannot_work_is_refused(api, order, planner_a, viewer_a):
    response = api(planner_a).post(url(order, "assign/"), {"assignee": viewer_a.pk})
    assert response.status_code == 400
    assert "cannot carry out work" in error(response)["message"]


def test_delete_fresh_order_but_not_one_with_activity(api, org_a, planner_a, order):
    fresh = services.create_work_order(org_a, title="Mistake", actor=planner_a)
    assert api(planner_a).delete(url(fresh)).status_code == 204
    assert not WorkOrder.objects.filter(pk=fresh.pk).exists()
    services.add_comment(order, actor=planner_a, body="Ordered the seal")
    response = api(planner_a).delete(url(order))
    assert response.status_code == 409
    assert error(response)["code"] == "has_activity"
    assert "comments" in error(response)["message"]
    assert WorkOrder.objects.filter(pk=order.pk).exists()


def test_idempotency_key_on_create(api, planner_a):
    client = api(planner_a)
    first = client.post(URL, {"title": "Once"}, HTTP_IDEMPOTENCY_KEY="wo-1")
    second = client.post(URL, {"title": "Once"}, HTTP_IDEMPOTENCY_KEY="wo-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert WorkOrder.objects.filter(title="Once").count() == 1


# --- the lifecycle --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", S.values)
def test_every_action_allowed_and_refused_from_each_status(api, org_a, pump, manager_a, technician_a, status):
    set_org(org_a, require_verification=True)
    client = api(manager_a)
    for action, (sources, target) in TRANSITIONS.items():
        order = walk(
            services.create_work_order(org_a, title=action, asset=pump, actor=manager_a),
            status,
            manager_a,
            technician_a,
        )
        response = client.post(url(order, f"{action}/"), body_for(action, technician_a))
        if status in sources:
            assert response.status_code == 200, (action, response.json())
            assert response.json()["status"] == target
            assert response["ETag"] == client.get(url(order))["ETag"]
        else:
            assert response.status_code == 409, (action, response.json())
            err = error(response)
            assert err["code"] == "invalid_transition"
            assert err["current_status"] == status
            assert err["allowed_actions"] == services.allowed_actions(order)
            assert order.get_status_display().lower() in err["message"]
            order.refresh_from_db()
            assert order.status == status


def test_full_lifecycle_with_verification(api, org_a, order, planner_a, technician_a):
    set_org(org_a, require_verification=True)
    planner, tech = api(planner_a), api(technician_a)
    assert planner.post(url(order, "assign/"), {"assignee": technician_a.pk}).json()["status"] == "assigned"
    assert tech.post(url(order, "start/")).json()["status"] == "in_progress"
    held = tech.post(url(order, "hold/"), {"reason": "waiting for parts"}).json()
    assert (held["status"], held["hold_reason"], held["allowed_actions"]) == (
        "on_hold",
        "waiting for parts",
        ["resume", "cancel"],
    )
    assert tech.post(url(order, "resume/")).json()["hold_reason"] == ""
    done = tech.post(url(order, "complete/"), {"notes": "seal replaced"}).json()
    assert (done["status"], done["completion_notes"]) == ("completed", "seal replaced")
    assert done["allowed_actions"] == ["verify", "reject", "reopen"]
    assert tech.post(url(order, "verify/")).status_code == 403  # technicians do not verify
    rejected = planner.post(url(order, "reject/"), {"reason": "still drips"}).json()
    assert (rejected["status"], rejected["completed_at"]) == ("in_progress", None)
    tech.post(url(order, "complete/"))
    verified = planner.post(url(order, "verify/")).json()
    assert verified["status"] == "verified" and verified["verified_at"]
    assert planner.post(url(order, "reopen/"), {"reason": "leaks again"}).json()["status"] == "in_progress"


def test_without_verification_completed_work_is_final(api, org_a, order, planner_a, technician_a):
    walk(order, S.IN_PROGRESS, planner_a, technician_a)
    done = api(technician_a).post(url(order, "complete/")).json()
    assert done["status"] == "completed"
    assert done["allowed_actions"] == ["reopen"]
    response = api(planner_a).post(url(order, "verify/"))
    assert response.status_code == 409
    assert error(response)["code"] == "verification_not_required"


def test_reasons_are_required(api, order, planner_a, technician_a):
    walk(order, S.IN_PROGRESS, planner_a, technician_a)
    response = api(technician_a).post(url(order, "hold/"), {"reason": "  "})
    assert response.status_code == 400
    assert error(response)["fields"] == {"reason": ["Required."]}
    assert api(planner_a).post(url(order, "cancel/")).status_code == 400


def test_reopen_period(api, org_a, order, planner_a, technician_a):
    walk(order, S.COMPLETED, planner_a, technician_a)
    WorkOrder.objects.filter(pk=order.pk).update(completed_at=timezone.now() - timedelta(days=15))
    response = api(planner_a).post(url(order, "reopen/"), {"reason": "again"})
    assert response.status_code == 409
    assert error(response)["code"] == "reopen_period_over"


def test_cancel_records_reason(api, order, planner_a):
    response = api(planner_a).post(url(order, "cancel/"), {"reason": "duplicate", "parts_disposition": "return"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_reason"]) == ("cancelled", "duplicate")


class TestTechnicians:
    def test_act_on_their_own_orders_only(self, api, order, planner_a, technician_a, technician2_a):
        walk(order, S.ASSIGNED, planner_a, technician2_a)
        response = api(technician_a).post(url(order, "start/"))
        assert response.status_code == 403
        assert error(response)["code"] == "not_your_work"
        assert api(technician2_a).post(url(order, "start/")).status_code == 200
        for action in ("hold", "complete"):
            response = api(technician_a).post(url(order, f"{action}/"), BODIES[action])
            assert response.status_code == 403, action
        assert api(technician2_a).post(url(order, "hold/"), BODIES["hold"]).status_code == 200

    def test_team_members_act_on_their_teams_orders(self, api, org_a, order, planner_a, technician_a, technician2_a):
        team = services.create_team(org_a, name="Mechanics", actor=planner_a, members=[technician_a])
        services.update_work_order(order, actor=planner_a, team=team)
        walk(order, S.ASSIGNED, planner_a, technician2_a)
        assert api(technician_a).post(url(order, "start/")).status_code == 200

    def test_claim_unassigned_work_when_allowed(self, api, order, technician_a):
        response = api(technician_a).post(url(order, "start/"))
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["assignee"]) == ("in_progress", technician_a.pk)

    def test_no_claiming_when_the_organisation_forbids_it(self, api, org_a, order, technician_a):
        set_org(org_a, technicians_can_claim=False)
        response = api(technician_a).post(url(order, "start/"))
        assert response.status_code == 409
        assert error(response)["code"] == "claiming_disabled"
        order.refresh_from_db()
        assert (order.status, order.assignee) == (S.OPEN, None)

    def test_anyone_on_the_crew_starts_an_emergency(self, api, org_a, planner_a, technician_a):
        set_org(org_a, technicians_can_claim=False)
        emergency = services.create_work_order(org_a, title="Flood", type="emergency", actor=planner_a)
        response = api(technician_a).post(url(emergency, "start/"))
        assert response.status_code == 200
        assert response.json()["assignee"] == technician_a.pk

    @pytest.mark.parametrize("action", ["assign", "unassign", "verify", "reject", "reopen", "cancel"])
    def test_role_table_refuses_the_rest(self, api, order, technician_a, action):
        response = api(technician_a).post(url(order, f"{action}/"), body_for(action, technician_a))
        assert response.status_code == 403
        assert error(response)["code"] == "role_forbids"


# --- checklist ------------------------------------------------------------------------------------------


@pytest.fixture
def checked_order(org_a, order, planner_a, technician_a):
    for text, kind, required in (
        ("Isolate", ItemKind.TICK, True),
        ("Leak test", ItemKind.PASS_FAIL, True),
        ("Pressure", ItemKind.NUMBER, True),
        ("Remarks", ItemKind.TEXT, False),
    ):
        services.add_checklist_item(order, text=text, kind=kind, required=required, actor=planner_a)
    return walk(order, S.IN_PROGRESS, planner_a, technician_a)


def items_by_text(order):
    return {item.text: item for item in order.checklist.all()}


class TestChecklist:
    def test_complete_is_refused_with_the_missing_items_named(self, api, checked_order, technician_a):
        response = api(technician_a).post(url(checked_order, "complete/"))
        assert response.status_code == 409
        err = error(response)
        assert err["code"] == "checklist_incomplete"
        assert err["missing_items"] == ["Isolate", "Leak test", "Pressure"]
        assert "“Leak test”" in err["message"]

    def test_results_then_complete(self, api, checked_order, technician_a):
        client, items = api(technician_a), items_by_text(checked_order)
        tick = client.patch(url(checked_order, f"checklist/{items['Isolate'].pk}/"), {})
        assert tick.status_code == 200 and tick.json()["done"] is True
        assert tick.json()["done_by"] == technician_a.pk
        leak = url(checked_order, f"checklist/{items['Leak test'].pk}/")
        assert client.patch(leak, {}).status_code == 400  # needs a verdict
        assert client.post(leak, {"passed": True}).json()["passed"] is True
        pressure = url(checked_order, f"checklist/{items['Pressure'].pk}")
        assert client.patch(pressure, {"number_value": "abc"}).status_code == 400
        assert client.patch(pressure, {"number_value": "1e20"}).status_code == 400
        assert client.patch(pressure, {"number_value": "4.5"}).json()["number_value"] == "4.5000"
        assert client.post(url(checked_order, "complete/")).json()["status"] == "completed"
        # closed: the checklist no longer changes
        response = client.patch(url(checked_order, f"checklist/{items['Remarks'].pk}/"), {"text_value": "ok"})
        assert response.status_code == 409

    def test_replay_with_the_same_client_id_applies_once(self, api, checked_order, technician_a):
        item = items_by_text(checked_order)["Isolate"]
        client = api(technician_a)
        client.patch(url(checked_order, f"checklist/{item.pk}/"), {"done": True, "client_id": "c-1"})
        client.patch(url(checked_order, f"checklist/{item.pk}/"), {"done": False, "client_id": "c-2"})
        replay = client.patch(url(checked_order, f"checklist/{item.pk}/"), {"done": True, "client_id": "c-2"})
        assert replay.json()["done"] is False

    def test_add_item_needs_create_work(self, api, checked_order, planner_a, technician_a):
        body = {"text": "Grease bearings", "kind": "tick"}
        assert api(technician_a).post(url(checked_order, "checklist/"), body).status_code == 403
        added = api(planner_a).post(url(checked_order, "checklist/"), body)
        assert added.status_code == 201
        assert added.json()["position"] == 5
        assert api(planner_a).post(url(checked_order, "checklist/"), {"text": "x", "kind": "dance"}).status_code == 400

    def test_only_the_assignee_records_results(self, api, checked_order, technician2_a):
        item = items_by_text(checked_order)["Isolate"]
        response = api(technician2_a).patch(url(checked_order, f"checklist/{item.pk}/"), {})
        assert response.status_code == 403

    def test_item_of_another_order_is_404(self, api, org_a, checked_order, planner_a, technician_a):
        other = services.create_work_order(org_a, title="other", actor=planner_a)
        item = items_by_text(checked_order)["Isolate"]
        assert api(technician_a).patch(url(other, f"checklist/{item.pk}/"), {}).status_code == 404

    def test_failed_item_raises_a_follow_up_once(self, api, checked_order, technician_a):
        client, item = api(technician_a), items_by_text(checked_order)["Leak test"]
        path = url(checked_order, f"checklist/{item.pk}/follow-up")
        assert client.post(path).status_code == 409  # not failed (yet)
        client.patch(url(checked_order, f"checklist/{item.pk}/"), {"passed": False})
        first = client.post(path, {"priority": "high"})
        assert first.status_code == 201
        follow_up = first.json()
        assert (follow_up["source"], follow_up["parent"], follow_up["priority"]) == (
            "follow_up",
            checked_order.pk,
            "high",
        )
        assert follow_up["asset"] == checked_order.asset_id
        again = client.post(path)
        assert again.status_code == 200 and again.json()["id"] == follow_up["id"]
        assert api(technician_a).get(URL, {"parent": checked_order.pk}).json()["count"] == 1


# --- time and costs -------------------------------------------------------------------------------------


class TestTimeAndCosts:
    def test_cost_totals_use_the_rate_copied_when_time_was_logged(self, api, org_a, order, planner_a, technician_a):
        Membership.objects.filter(organization=org_a, user=technician_a).update(hourly_rate=Decimal("60.00"))
        walk(order, S.IN_PROGRESS, planner_a, technician_a)
        tech = api(technician_a)
        entry = tech.post(url(order, "time-entries/"), {"minutes": 90, "note": "seal"})
        assert entry.status_code == 201
        assert (entry.json()["hourly_rate"], entry.json()["cost"]) == ("60.00", "90.00")
        Membership.objects.filter(organization=org_a, user=technician_a).update(hourly_rate=Decimal("120.00"))
        tech.post(url(order, "time-entries/"), {"minutes": 30})
        planner = api(planner_a)
        assert planner.post(url(order, "cost-lines/"), {"description": "Crane", "amount": "25.50"}).status_code == 201
        planner.post(url(order, "cost-lines/"), {"description": "Permit", "amount": "10"})
        costs = planner.get(url(order)).json()["costs"]
        assert costs == {"labour": "150.00", "parts": "0.00", "other": "35.50", "total": "185.50"}
        assert [e["cost"] for e in planner.get(url(order, "time-entries/")).json()] == ["90.00", "60.00"]
        assert [c["description"] for c in planner.get(url(order, "cost-lines/")).json()] == ["Crane", "Permit"]

    def test_planner_logs_time_for_a_technician_at_their_rate(self, api, org_a, order, planner_a, technician_a):
        tenancy.add_member(org_a, technician_a, Role.TECHNICIAN, hourly_rate=Decimal("40"))
        walk(order, S.IN_PROGRESS, planner_a, technician_a)
        response = api(planner_a).post(url(order, "time-entries/"), {"minutes": 60, "technician": technician_a.pk})
        assert response.status_code == 201
        assert (response.json()["technician"], response.json()["cost"]) == (technician_a.pk, "40.00")

    def test_technicians_log_only_their_own_time(self, api, order, planner_a, technician_a, technician2_a):
        walk(order, S.IN_PROGRESS, planner_a, technician_a)
        body = {"minutes": 10, "technician": technician2_a.pk}
        assert api(technician_a).post(url(order, "time-entries/"), body).status_code == 403
        assert api(technician2_a).post(url(order, "time-entries/"), {"minutes": 10}).status_code == 403  # not theirs

    def test_minutes_are_checked_and_client_ids_apply_once(self, api, order, planner_a, technician_a):
        walk(order, S.IN_PROGRESS, planner_a, technician_a)
        client = api(technician_a)
        assert client.post(url(order, "time-entries/"), {"minutes": 0}).status_code == 400
        assert client.post(url(order, "time-entries/"), {"minutes": 5000}).status_code == 400
        first = client.post(url(order, "time-entries/"), {"minutes": 15, "client_id": "t-1"})
        replay = client.post(url(order, "time-entries/"), {"minutes": 15, "client_id": "t-1"})
        assert (first.status_code, replay.status_code) == (201, 200)  # the replay gets the stored entry back
        assert replay.json()["id"] == first.json()["id"]
        assert TimeEntry.objects.filter(work_order=order).count() == 1

    def test_timer(self, api, order, planner_a, technician_a):
        walk(order, S.IN_PROGRESS, planner_a, technician_a)
        client = api(technician_a)
        started = client.post(url(order, "time-entries/start"))
        assert started.status_code == 201 and started.json()["minutes"] is None
        assert error(client.post(url(order, "time-entries/start")))["code"] == "timer_running"
        TimeEntry.objects.filter(pk=started.json()["id"]).update(started_at=timezone.now() - timedelta(minutes=42))
        stopped = client.post(url(order, "time-entries/stop"))
        assert stopped.status_code == 200 and stopped.json()["minutes"] == 42
        assert error(client.post(url(order, "time-entries/stop")))["code"] == "no_timer"

    def test_cost_lines_need_create_work_and_a_sensible_amount(self, api, order, planner_a, technician_a):
        assert api(technician_a).post(url(order, "cost-lines/"), {"description": "x", "amount": "1"}).status_code == 403
        response = api(planner_a).post(url(order, "cost-lines/"), {"description": "x", "amount": "-1"})
        assert response.status_code == 400
        assert "amount" in error(response)["fields"]
        assert api(planner_a).post(url(order, "cost-lines/"), {"description": "x", "amount": "NaN"}).status_code == 400


# --- comments -------------------------------------------------------------------------------------------


def test_comments(api, order, technician_a, viewer_a):
    client = api(technician_a)
    response = client.post(url(order, "comments/"), {"body": "Seal ordered", "client_id": "m-1"})
    assert response.status_code == 201
    assert (response.json()["author"], response.json()["author_name"]) == (technician_a.pk, "technician-a")
    client.post(url(order, "comments/"), {"body": "Seal ordered", "client_id": "m-1"})  # offline replay
    assert client.post(url(order, "comments/"), {"body": ""}).status_code == 400
    assert api(viewer_a).post(url(order, "comments/"), {"body": "hi"}).status_code == 403
    assert [c["body"] for c in api(viewer_a).get(url(order, "comments/")).json()] == ["Seal ordered"]


# Issue 16, the permission matrix: storekeepers commented on and attached to any order, which the role table does
# not grant them (comments and files are for who carries out work or creates and edits it).


@pytest.mark.parametrize("persona", ["storekeeper_a", "viewer_a"])
def test_who_neither_works_on_nor_edits_orders_may_not_comment_or_attach(api, order, persona, request):
    client = api(request.getfixturevalue(persona))
    refusals = [
        client.post(url(order, "comments/"), {"body": "Seal is on the shelf"}),
        client.post(url(order, "comments/"), {}),  # refused for the role, before the body is read
        client.post(url(order, "attachments/"), {"file": upload()}, format="multipart"),
        client.post(url(order, "attachments/"), {}, format="multipart"),
    ]
    assert [r.status_code for r in refusals] == [403] * 4
    message = error(refusals[0])["message"]
    role = "Storekeeper" if persona == "storekeeper_a" else "Viewer"
    assert error(refusals[0])["code"] == "role_forbids"
    assert message.startswith(f"Your role ({role}) may not comment on work orders or attach files to them")
    assert not order.comments.exists() and not order.attachments.exists()
    assert client.get(url(order, "comments/")).status_code == 200  # reading stays open to every member


def test_the_storekeeper_is_refused_by_the_service_too(order, storekeeper_a):
    with pytest.raises(PermissionDeniedError, match="may not comment on work orders"):
        services.add_comment(order, actor=storekeeper_a, body="Seal is on the shelf")
    with pytest.raises(PermissionDeniedError, match="attach files"):
        services.add_attachment(uploaded=upload(), actor=storekeeper_a, work_order=order)


@pytest.mark.parametrize("persona", ["technician_a", "planner_a", "manager_a", "integrator_a"])
def test_who_works_on_or_edits_orders_comments_on_any_order(api, order, persona, request):
    # the order is nobody's: a technician may still add a note or a photo (the phone view says so)
    client = api(request.getfixturevalue(persona))
    assert client.post(url(order, "comments/"), {"body": "Noted"}).status_code == 201
    assert client.post(url(order, "attachments/"), {"file": upload()}, format="multipart").status_code == 201


def test_another_organisations_order_is_a_404_before_the_role_is_looked_at(api, order, org_b):
    storekeeper_b = make_user("storekeeper-b")
    tenancy.add_member(org_b, storekeeper_b, Role.STOREKEEPER)
    response = api(storekeeper_b).post(url(order, "comments/"), {"body": "x"})
    assert response.status_code == 404
    missing = api(storekeeper_b).post(f"{URL}999999/comments/", {"body": "x"})
    assert (missing.status_code, error(missing)) == (404, error(response))


# --- attachments ----------------------------------------------------------------------------------------


def upload(name="photo.png", content=PNG, content_type="image/png"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def download(client, path):
    response = client.get(path)
    # consuming the stream closes the file (the test client closes the response without touching the DB)
    content = b"".join(response.streaming_content) if response.status_code == 200 else None
    return response, content


class TestAttachments:
    def test_upload_list_and_download_by_members_only(self, api, order, technician_a, viewer_a, manager_b):
        response = api(technician_a).post(url(order, "attachments/"), {"file": upload()}, format="multipart")
        assert response.status_code == 201, response.json()
        attachment = response.json()
        assert (attachment["original_name"], attachment["content_type"], attachment["size"]) == (
            "photo.png",
            "image/png",
            len(PNG),
        )
        assert attachment["download_url"].endswith(f"/api/v1/attachments/{attachment['token']}/download")
        assert "file" not in attachment and "/media/" not in str(attachment)
        [listed] = api(viewer_a).get(url(order, "attachments/")).json()
        assert listed["token"] == attachment["token"]

        path = f"/api/v1/attachments/{attachment['token']}/download"
        response, content = download(api(viewer_a), path)
        assert response.status_code == 200
        assert content == PNG
        assert response["Content-Type"] == "image/png"
        assert 'filename="photo.png"' in response["Content-Disposition"]
        assert download(api(manager_b), path)[0].status_code == 404
        assert download(api(), path)[0].status_code == 401
        assert api(manager_b).get(f"/api/v1/attachments/{attachment['token']}/").status_code == 404

    def test_type_size_and_empty_files_are_refused(self, api, order, technician_a, monkeypatch):
        client = api(technician_a)
        for file in (upload("page.html", b"<script>", "text/html"), upload("empty.png", b"")):
            response = client.post(url(order, "attachments/"), {"file": file}, format="multipart")
            assert response.status_code == 400, file.name
            assert "file" in error(response)["fields"]
        monkeypatch.setattr(services, "ATTACHMENT_MAX_BYTES", 10)
        response = client.post(url(order, "attachments/"), {"file": upload()}, format="multipart")
        assert response.status_code == 400
        assert error(response)["fields"] == {"file": ["Too large."]}
        assert client.post(url(order, "attachments/"), {}, format="multipart").status_code == 400
        assert not order.attachments.exists()

    def test_viewers_cannot_upload(self, api, order, viewer_a):
        response = api(viewer_a).post(url(order, "attachments/"), {"file": upload()}, format="multipart")
        assert response.status_code == 403

    def test_missing_file_is_a_404(self, api, order, technician_a):
        attachment = services.add_attachment(uploaded=upload(), actor=technician_a, work_order=order)
        attachment.file.storage.delete(attachment.file.name)
        response, _ = download(api(technician_a), f"/api/v1/attachments/{attachment.token}/download")
        assert response.status_code == 404


# --- work requests --------------------------------------------------------------------------------------


@pytest.fixture
def work_request(org_a, pump):
    return services.submit_request(
        org_a,
        description="Pump P-1 leaks\nunder the flange",
        asset=pump,
        contact_name="Ann",
        files=[upload("leak.png")],
    )


class TestRequests:
    def test_listed_for_members(self, api, work_request, viewer_a):
        [row] = api(viewer_a).get("/api/v1/requests/").json()["results"]
        assert (row["status"], row["asset_code"], row["contact_name"]) == ("pending", "PMP-1", "Ann")
        assert row["attachments"][0]["original_name"] == "leak.png"
        assert api(viewer_a).get("/api/v1/requests/", {"status": "rejected"}).json()["count"] == 0

    def test_approve_carries_attachments_over(self, api, work_request, planner_a, technician_a):
        response = api(planner_a).post(
            f"/api/v1/requests/{work_request.pk}/approve",
            {"priority": "high", "assignee": technician_a.pk, "due_at": "2030-01-01T08:00:00Z"},
        )
        assert response.status_code == 201, response.json()
        order = response.json()
        assert (order["title"], order["source"], order["priority"], order["status"]) == (
            "Pump P-1 leaks",
            "request",
            "high",
            "assigned",
        )
        assert "Reported by: Ann" in order["description"]
        [attachment] = api(technician_a).get(f"{URL}{order['id']}/attachments/").json()
        assert attachment["original_name"] == "leak.png"
        _, content = download(api(technician_a), f"/api/v1/attachments/{attachment['token']}/download")
        assert content == PNG
        decided = api(planner_a).get(f"/api/v1/requests/{work_request.pk}/").json()
        assert (decided["status"], decided["work_order"], decided["decided_by"]) == (
            "approved",
            order["id"],
            planner_a.pk,
        )
        again = api(planner_a).post(f"/api/v1/requests/{work_request.pk}/approve", {})
        assert again.status_code == 409 and error(again)["code"] == "already_decided"

    def test_title_override(self, api, work_request, planner_a):
        response = api(planner_a).post(f"/api/v1/requests/{work_request.pk}/approve", {"title": "Fix flange"})
        assert response.json()["title"] == "Fix flange"

    def test_reject_shows_the_reason(self, api, work_request, planner_a, viewer_a):
        assert api(planner_a).post(f"/api/v1/requests/{work_request.pk}/reject", {}).status_code == 400
        response = api(planner_a).post(f"/api/v1/requests/{work_request.pk}/reject", {"reason": "Known issue"})
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["rejection_reason"]) == ("rejected", "Known issue")
        shown = api(viewer_a).get(f"/api/v1/requests/{work_request.pk}/").json()
        assert shown["rejection_reason"] == "Known issue"
        assert WorkRequest.objects.get(pk=work_request.pk).work_order is None

    def test_only_approvers_decide(self, api, work_request, technician_a, integrator_a):
        for user in (technician_a, integrator_a):
            assert api(user).post(f"/api/v1/requests/{work_request.pk}/approve", {}).status_code == 403
            assert api(user).post(f"/api/v1/requests/{work_request.pk}/reject", {"reason": "x"}).status_code == 403


# --- procedures and teams -------------------------------------------------------------------------------


class TestProcedures:
    def test_crud_with_inline_items(self, api, planner_a, technician_a):
        client = api(planner_a)
        response = client.post(
            "/api/v1/procedures/",
            {
                "name": "Pump PM",
                "description": "Quarterly",
                "items": [
                    {"text": "Check seal", "kind": "pass_fail"},
                    {"text": "Bearing temperature", "kind": "number", "unit": "°C", "required": False},
                ],
            },
        )
        assert response.status_code == 201, response.json()
        procedure = response.json()
        assert [(i["position"], i["text"], i["kind"]) for i in procedure["items"]] == [
            (1, "Check seal", "pass_fail"),
            (2, "Bearing temperature", "number"),
        ]
        path = f"/api/v1/procedures/{procedure['id']}/"
        renamed = client.patch(path, {"name": "Pump PM (quarterly)"}).json()
        assert renamed["name"] == "Pump PM (quarterly)" and len(renamed["items"]) == 2  # items kept
        replaced = client.patch(path, {"items": [{"text": "Only step", "position": 3}]}).json()
        assert [(i["position"], i["text"], i["kind"], i["required"]) for i in replaced["items"]] == [
            (3, "Only step", "tick", True)
        ]
        assert api(technician_a).get(path).status_code == 200
        assert api(technician_a).patch(path, {"name": "x"}).status_code == 403
        assert client.delete(path).status_code == 204
        assert not Procedure.objects.exists()

    def test_invalid_items_and_duplicate_names(self, api, org_a, planner_a):
        services.create_procedure(org_a, name="Pump PM", actor=planner_a)
        client = api(planner_a)
        duplicate = client.post("/api/v1/procedures/", {"name": "Pump PM"})
        assert duplicate.status_code == 400 and "name" in error(duplicate)["fields"]
        bad = client.post("/api/v1/procedures/", {"name": "New", "items": [{"text": "ok"}, {"text": "", "kind": "x"}]})
        assert bad.status_code == 400
        assert {"items.1.text", "items.1.kind"} <= set(error(bad)["fields"])
        assert not Procedure.objects.filter(name="New").exists()


class TestTeams:
    def test_crud(self, api, planner_a, technician_a, technician2_a, viewer_a):
        client = api(planner_a)
        response = client.post("/api/v1/teams/", {"name": "Mechanics", "members": [technician_a.pk]})
        assert response.status_code == 201, response.json()
        path = f"/api/v1/teams/{response.json()['id']}/"
        changed = client.patch(path, {"members": [technician_a.pk, technician2_a.pk]}).json()
        assert sorted(changed["members"]) == sorted([technician_a.pk, technician2_a.pk])
        assert api(viewer_a).get("/api/v1/teams/").json()["results"][0]["name"] == "Mechanics"
        assert api(technician_a).post("/api/v1/teams/", {"name": "Mine"}).status_code == 403
        assert client.delete(path).status_code == 204

    def test_members_from_another_organisation_are_refused(self, api, planner_a, technician_b):
        response = api(planner_a).post("/api/v1/teams/", {"name": "Mixed", "members": [technician_b.pk]})
        assert response.status_code == 400
        assert "members" in error(response)["fields"]

    def test_team_in_use_is_not_deleted(self, api, org_a, order, planner_a):
        team = services.create_team(org_a, name="Night shift", actor=planner_a)
        services.update_work_order(order, actor=planner_a, team=team)
        response = api(planner_a).delete(f"/api/v1/teams/{team.pk}/")
        assert response.status_code == 409
        assert "Night shift" in error(response)["message"]
        assert Team.objects.filter(pk=team.pk).exists()


# --- filters, search and ordering -----------------------------------------------------------------------


@pytest.fixture
def many(org_a, site, planner_a, technician_a, technician2_a):
    team = services.create_team(org_a, name="Crew", actor=planner_a, members=[technician_a])
    other = asset_services.create_asset(org_a, code="FAN-9", name="Fan", location=site["plant"])
    now = timezone.now()

    def make(title, **fields):
        return services.create_work_order(org_a, title=title, actor=planner_a, **fields)

    orders = {
        "mine": make("Mine", asset=site["pump"], assignee=technician_a, priority="low", due_at=now - timedelta(days=1)),
        "team": make("Team's", team=team, priority="critical", due_at=now + timedelta(days=2)),
        "theirs": make("Theirs", asset=other, assignee=technician2_a, priority="high", type="inspection"),
        "hall": make("Hall lights", location=site["hall"], priority="medium", source="predictive"),
    }
    walk(orders["theirs"], S.IN_PROGRESS, planner_a, technician2_a)
    return orders


def titles(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.json()
    return [row["title"] for row in response.json()["results"]]


class TestFilters:
    def test_status_priority_type_source(self, api, many, viewer_a):
        client = api(viewer_a)
        assert sorted(titles(client, status="open,assigned")) == ["Hall lights", "Mine", "Team's"]
        assert sorted(
            client.get(f"{URL}?status=in_progress&status=open").json()["results"][i]["title"] for i in range(3)
        ) == ["Hall lights", "Team's", "Theirs"]
        assert titles(client, priority="critical") == ["Team's"]
        assert titles(client, type="inspection") == ["Theirs"]
        assert titles(client, source="predictive") == ["Hall lights"]
        response = client.get(URL, {"status": "open,closed"})
        assert response.status_code == 400
        assert "status" in error(response)["fields"]

    def test_people_assets_locations(self, api, many, site, technician_a, viewer_a):
        client = api(viewer_a)
        assert titles(client, assignee=technician_a.pk) == ["Mine"]
        assert titles(client, team=many["team"].team_id) == ["Team's"]
        assert titles(client, asset=site["pump"].pk) == ["Mine"]
        assert sorted(titles(client, location=site["hall"].pk)) == ["Hall lights", "Mine"]  # the room is inside
        assert sorted(titles(client, location=site["plant"].pk)) == ["Hall lights", "Mine", "Theirs"]
        assert titles(client, location=site["room"].pk) == ["Mine"]

    def test_mine_is_mine_or_my_teams(self, api, many, technician_a):
        assert sorted(titles(api(technician_a), mine="true")) == ["Mine", "Team's"]

    def test_due_and_overdue(self, api, many, viewer_a):
        client = api(viewer_a)
        tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
        assert titles(client, overdue="true") == ["Mine"]
        assert "Mine" not in titles(client, overdue="false")
        assert titles(client, due_before=tomorrow) == ["Mine"]
        assert titles(client, due_after=tomorrow) == ["Team's"]
        response = client.get(URL, {"due_before": "soon"})
        assert response.status_code == 400 and "due_before" in error(response)["fields"]
        assert client.get(url(many["mine"])).json()["is_overdue"] is True

    def test_search_and_ordering(self, api, many, viewer_a):
        client = api(viewer_a)
        assert titles(client, search="FAN-9") == ["Theirs"]
        assert titles(client, search=many["hall"].number) == ["Hall lights"]
        assert titles(client, search="lights") == ["Hall lights"]
        assert titles(client, ordering="priority") == ["Team's", "Theirs", "Hall lights", "Mine"]  # urgency
        assert titles(client, ordering="-priority") == ["Mine", "Hall lights", "Theirs", "Team's"]
        assert titles(client, ordering="number") == ["Mine", "Team's", "Theirs", "Hall lights"]
        long_ago = (timezone.now() - timedelta(days=30)).isoformat()
        assert titles(client, ordering="-due_at", due_after=long_ago) == ["Team's", "Mine"]


# --- tenant isolation -----------------------------------------------------------------------------------


def test_another_organisations_work_is_404_everywhere(
    api, org_a, planner_a, technician_a, manager_b, member_of_both, org_b, work_request
):
    order = services.create_work_order(org_a, title="Secret", actor=planner_a)
    item = services.add_checklist_item(order, text="Step", actor=planner_a)
    attachment = services.add_attachment(uploaded=upload(), actor=planner_a, work_order=order)
    procedure = services.create_procedure(org_a, name="Secret proc", actor=planner_a)
    team = services.create_team(org_a, name="Secret team", actor=planner_a)
    base = url(order)
    endpoints = [
        ("get", base),
        ("patch", base),
        ("put", base),
        ("delete", base),
        *[("post", f"{base}{action}/") for action in TRANSITIONS],
        ("get", f"{base}checklist/"),
        ("post", f"{base}checklist/"),
        ("patch", f"{base}checklist/{item.pk}/"),
        ("post", f"{base}checklist/{item.pk}/"),
        ("post", f"{base}checklist/{item.pk}/follow-up"),
        ("get", f"{base}comments/"),
        ("post", f"{base}comments/"),
        ("get", f"{base}time-entries/"),
        ("post", f"{base}time-entries/"),
        ("post", f"{base}time-entries/start"),
        ("post", f"{base}time-entries/stop"),
        ("get", f"{base}cost-lines/"),
        ("post", f"{base}cost-lines/"),
        ("get", f"{base}attachments/"),
        ("post", f"{base}attachments/"),
        ("get", f"/api/v1/attachments/{attachment.token}/"),
        ("get", f"/api/v1/attachments/{attachment.token}/download"),
        ("get", f"/api/v1/requests/{work_request.pk}/"),
        ("post", f"/api/v1/requests/{work_request.pk}/approve"),
        ("post", f"/api/v1/requests/{work_request.pk}/reject"),
        ("get", f"/api/v1/procedures/{procedure.pk}/"),
        ("patch", f"/api/v1/procedures/{procedure.pk}/"),
        ("delete", f"/api/v1/procedures/{procedure.pk}/"),
        ("get", f"/api/v1/teams/{team.pk}/"),
        ("patch", f"/api/v1/teams/{team.pk}/"),
        ("delete", f"/api/v1/teams/{team.pk}/"),
    ]
    stranger = api(manager_b)
    for method, path in endpoints:
        response = getattr(stranger, method)(path, {"title": "x", "reason": "x", "body": "x", "minutes": 5})
        assert response.status_code == 404, (method, path, response.status_code)
    assert stranger.get(URL).json()["count"] == 0
    assert stranger.get("/api/v1/requests/").json()["count"] == 0
    # a member of both, acting in B, does not see A's either
    assert api(member_of_both, org_b).get(base).status_code == 404
    assert api(member_of_both, org_a).get(base).status_code == 200
    order.refresh_from_db()
    assert (order.title, order.status) == ("Secret", S.OPEN)
    assert not order.comments.exists() and not TimeEntry.objects.exists()
    assert WorkRequest.objects.get(pk=work_request.pk).status == "pending"


# --- audit and events -----------------------------------------------------------------------------------


def test_history_names_the_acting_user(api, order, planner_a, technician_a):
    api(planner_a).post(url(order, "assign/"), {"assignee": technician_a.pk})
    api(technician_a).post(url(order, "start/"))
    api(technician_a).post(url(order, "hold/"), {"reason": "parts"})
    rows = list(WorkOrder.history.filter(id=order.pk).order_by("history_date", "history_id"))
    assert [(r.status, r.history_user) for r in rows] == [
        ("open", planner_a),
        ("assigned", planner_a),
        ("in_progress", technician_a),
        ("on_hold", technician_a),
    ]
    assert rows[-1].history_change_reason == "hold: parts"


def test_events_are_published_on_commit_only(
    api, org_a, planner_a, technician_a, monkeypatch, django_capture_on_commit_callbacks
):
    delivered = []
    monkeypatch.setattr(event_services, "deliver_many", per_event(lambda event: delivered.append(event.type)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = api(planner_a).post(URL, {"title": "Leak", "assignee": technician_a.pk}).json()
        order = WorkOrder.objects.get(pk=created["id"])
        api(technician_a).post(url(order, "start/"))
        api(technician_a).post(url(order, "complete/"))
    events = Event.objects.filter(organization=org_a, type__startswith="work-order:").order_by("id")
    types = list(events.values_list("type", flat=True))
    assert types == ["work-order:created", "work-order:updated", "work-order:completed"]
    # written with the change, but neither numbered nor delivered before the commit
    assert not Event.objects.filter(sequence__isnull=False).exists()
    assert delivered == []
    assert callbacks  # the dispatch, asked for once per transaction
    for callback in callbacks:  # the commit
        callback()
    assert [t for t in delivered if t.startswith("work-order:")] == types
    assert all(sequence is not None for sequence in events.values_list("sequence", flat=True))
    completed = Event.objects.get(type="work-order:completed")
    assert (completed.payload["number"], completed.payload["status"], completed.user) == (
        created["number"],
        "completed",
        technician_a,
    )


def test_a_refused_action_publishes_nothing(api, order, technician_a, django_capture_on_commit_callbacks):
    before = Event.objects.count()
    with django_capture_on_commit_callbacks(execute=False):
        assert api(technician_a).post(url(order, "complete/")).status_code == 409
    assert Event.objects.count() == before


# --- query count ----------------------------------------------------------------------------------------


def test_list_query_count_does_not_grow(api, org_a, site, planner_a, technician_a, settings):
    settings.API_MAX_PAGE_SIZE = 500
    client = api(planner_a)
    team = services.create_team(org_a, name="Crew", actor=planner_a, members=[technician_a])

    def count_queries(**params):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(URL, {"page_size": 500, **params})
            assert response.status_code == 200
        return len(ctx.captured_queries), len(response.json()["results"])

    for i in range(5):
        services.create_work_order(
            org_a, title=f"S{i}", asset=site["pump"], team=team, assignee=technician_a, actor=planner_a
        )
    small, small_rows = count_queries()
    small_sorted, _ = count_queries(ordering="-priority", mine="true", location=site["plant"].pk)
    WorkOrder.objects.bulk_create(
        WorkOrder(
            organization=org_a,
            number=f"WO-9{i:05d}",
            title=f"L{i}",
            asset=site["pump"],
            location=site["room"],
            team=team,
            assignee=technician_a,
            status=S.IN_PROGRESS if i % 2 else S.ASSIGNED,
            priority=WorkOrder.Priority.values[i % 4],
            due_at=timezone.now() + timedelta(days=i - 250),
        )
        for i in range(495)
    )
    large, large_rows = count_queries()
    assert (small_rows, large_rows) == (5, 500)
    assert large == small, (small, large)
    assert small <= 6  # user, membership + organisation, count, page (+ savepoints on some back ends)
    assert count_queries(ordering="-priority", mine="true", location=site["plant"].pk)[0] == small_sorted


# --- service bugs found while building the API (documented, expected to fail until fixed) ---------------


def test_service_refuses_a_checklist_number_too_large_for_the_column(org_a, planner_a, technician_a, order):
    item = services.add_checklist_item(order, text="Pressure", kind=ItemKind.NUMBER, actor=planner_a)
    walk(order, S.IN_PROGRESS, planner_a, technician_a)
    with pytest.raises(InvalidInput):
        services.record_checklist_result(item, actor=technician_a, number_value="1e20")


def test_service_refuses_logging_time_for_a_stranger(org_a, planner_a, technician_a, technician_b, order):
    walk(order, S.IN_PROGRESS, planner_a, technician_a)
    with pytest.raises(InvalidInput):
        services.log_time(order, actor=planner_a, technician=technician_b, minutes=30)


def test_service_refuses_technicians_creating_work_as_a_follow_up(org_a, technician_a):
    with pytest.raises(PermissionDeniedError):
        services.create_work_order(org_a, title="Anything", source=WorkOrder.Source.FOLLOW_UP, actor=technician_a)


def test_delete_or_conflict_explains_what_still_uses_a_row(org_a, site):
    from maintenance_site.errors import Conflict

    with pytest.raises(Conflict):
        asset_services.delete_location(site["room"])  # the pump is there


def test_who_may_move_an_order_is_the_services_table_in_the_api_and_the_admin():
    """One table (`services.ACTION_PERMISSION`): the API's permission check and the admin's buttons and actions
    read it, so a change there changes every edge."""
    for action, needed in services.ACTION_PERMISSION.items():
        assert WorkOrderViewSet.action_permissions[action] is needed
    assert all(lifecycle.permission is services.ACTION_PERMISSION[name] for name, lifecycle in LIFECYCLE.items())
