"""The work back office: work orders (form through the services, lifecycle actions, CSV export,
attachments), the work-request queue, procedures and teams — all scoped to the active organisation."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assets import services as asset_services
from tests.conftest import _member
from workorders import services
from workorders.models import Procedure, Team, WorkOrder, WorkRequest

CHANGELIST = "/admin/workorders/workorder/"
INLINE_PREFIXES = ["checklist", "time_entries", "comments", "attachments", "cost_lines"]


def change_url(work_order):
    return f"{CHANGELIST}{work_order.pk}/change/"


def management(prefixes=INLINE_PREFIXES, **totals):
    data = {}
    for prefix in prefixes:
        data[f"{prefix}-TOTAL_FORMS"] = str(totals.get(prefix, 0))
        data[f"{prefix}-INITIAL_FORMS"] = "0"
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "1000"
    return data


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def make_order(org, actor, title, **fields):
    return services.create_work_order(org, title=title, actor=actor, **fields)


@pytest.fixture
def asset_a(org_a):
    return asset_services.create_asset(org_a, code="PUMP-1", name="Pump of A")


@pytest.fixture
def asset_b(org_b):
    return asset_services.create_asset(org_b, code="PUMP-B", name="Pump of B")


@pytest.fixture
def order_b(org_b, manager_b, asset_b):
    return make_order(org_b, manager_b, "Secret work of B", asset=asset_b)


# --- the changelist ----------------------------------------------------------------------------------------


def _bulk_orders(org, start, count, assets, people, location):
    now = timezone.now()
    WorkOrder.objects.bulk_create(
        [
            WorkOrder(
                organization=org,
                number=f"WO-{number:06d}",
                title=f"Bulk order {number}",
                asset=assets[number % len(assets)],
                location=location,
                assignee=people[number % len(people)],
                status=WorkOrder.Status.ASSIGNED,
                due_at=now + timedelta(days=(number % 7) - 3),
            )
            for number in range(start, start + count)
        ]
    )


def test_changelist_query_count_does_not_grow_with_the_number_of_orders(
    client, org_a, manager_a, planner_a, technician_a
):
    location = asset_services.create_location(org_a, name="Hall")
    assets = [asset_services.create_asset(org_a, code=f"A-{i}", name=f"Asset {i}", location=location) for i in range(5)]
    people = [manager_a, planner_a, technician_a]
    _bulk_orders(org_a, 1, 5, assets, people, location)
    client.force_login(manager_a)
    assert client.get(CHANGELIST).status_code == 200  # warm caches (content types, session)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(CHANGELIST)
        assert response.status_code == 200
        return len(captured.captured_queries), response

    few, response = queries()
    assert "Bulk order 5" in response.content.decode()
    _bulk_orders(org_a, 6, 495, assets, people, location)
    many, response = queries()
    assert "Bulk order 500" in response.content.decode()
    assert many == few


def test_changelist_shows_only_the_active_organisation(client, manager_a, org_a, order_b):
    make_order(org_a, manager_a, "Work of A")
    client.force_login(manager_a)
    page = client.get(CHANGELIST).content.decode()
    assert "Work of A" in page and "Secret work of B" not in page


def test_overdue_and_status_filters(client, org_a, manager_a, technician_a):
    past, future = timezone.now() - timedelta(days=2), timezone.now() + timedelta(days=2)
    late = make_order(org_a, manager_a, "Late open order", due_at=past)
    make_order(org_a, manager_a, "Order due later", due_at=future)
    make_order(org_a, manager_a, "Order without due date")
    done_late = make_order(org_a, manager_a, "Finished late order", due_at=past, assignee=technician_a)
    services.transition(done_late, "start", actor=technician_a)
    services.transition(done_late, "complete", actor=technician_a)
    client.force_login(manager_a)

    overdue = client.get(CHANGELIST, {"overdue": "yes"}).content.decode()
    assert "Late open order" in overdue
    assert "Order due later" not in overdue and "Finished late order" not in overdue
    assert "Order without due date" not in overdue

    not_overdue = client.get(CHANGELIST, {"overdue": "no"}).content.decode()
    assert "Late open order" not in not_overdue
    assert all(t in not_overdue for t in ("Order due later", "Finished late order", "Order without due date"))

    completed = client.get(CHANGELIST, {"status__exact": "completed"}).content.decode()
    assert "Finished late order" in completed and "Late open order" not in completed
    assert late.number in client.get(CHANGELIST, {"q": late.number}).content.decode()


def test_location_filter_includes_sub_locations(client, org_a, manager_a):
    site = asset_services.create_location(org_a, name="Plant")
    hall = asset_services.create_location(org_a, name="Hall 2", kind="building", parent=site)
    other = asset_services.create_location(org_a, name="Other site")
    make_order(org_a, manager_a, "Work in the hall", location=hall)
    make_order(org_a, manager_a, "Work elsewhere", location=other)
    client.force_login(manager_a)
    page = client.get(CHANGELIST, {"location_tree": site.pk}).content.decode()
    assert "Work in the hall" in page and "Work elsewhere" not in page


def test_other_organisations_work_order_is_404_everywhere(client, manager_a, order_b):
    client.force_login(manager_a)
    history_id = order_b.history.first().history_id
    for url in (
        change_url(order_b),
        f"{CHANGELIST}{order_b.pk}/history/",
        f"{CHANGELIST}{order_b.pk}/history/{history_id}/",
        f"{CHANGELIST}{order_b.pk}/lifecycle/start/",
        f"{CHANGELIST}{order_b.pk}/delete/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{CHANGELIST}{order_b.pk}/lifecycle/start/").status_code == 404
    order_b.refresh_from_db()
    assert order_b.status == WorkOrder.Status.OPEN


def test_an_action_never_reaches_another_organisation(client, manager_a, org_a, order_b):
    mine = make_order(org_a, manager_a, "Mine")
    client.force_login(manager_a)
    client.post(
        CHANGELIST,
        {"action": "cancel_selected", "_selected_action": [mine.pk, order_b.pk], "apply": "1", "reason": "Duplicate"},
    )
    order_b.refresh_from_db()
    mine.refresh_from_db()
    assert order_b.status == WorkOrder.Status.OPEN
    assert mine.status == WorkOrder.Status.CANCELLED


# --- the form goes through the services ------------------------------------------------------------------


def test_adding_through_the_form_creates_history_with_the_staff_user(client, org_a, planner_a, technician_a, asset_a):
    procedure = services.create_procedure(
        org_a, name="Pump check", actor=planner_a, items=[{"text": "Check seal"}, {"text": "Check noise"}]
    )
    client.force_login(planner_a)
    response = client.post(
        f"{CHANGELIST}add/",
        {
            "title": "Pump leaks",
            "description": "Water on the floor",
            "type": "corrective",
            "priority": "high",
            "asset": asset_a.pk,
            "assignee": technician_a.pk,
            "procedure": procedure.pk,
            **management(),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    work_order = WorkOrder.objects.get(title="Pump leaks")
    assert work_order.organization == org_a
    assert work_order.number.startswith("WO-")
    assert work_order.status == WorkOrder.Status.ASSIGNED and work_order.assignee == technician_a
    assert work_order.requested_by == planner_a
    assert [item.text for item in work_order.checklist.order_by("position")] == ["Check seal", "Check noise"]
    first = work_order.history.earliest()
    assert first.history_type == "+" and first.history_user == planner_a

    response = client.post(
        change_url(work_order),
        {
            "title": "Pump leaks badly",
            "description": "Water on the floor",
            "type": "corrective",
            "priority": "critical",
            "asset": asset_a.pk,
            "location": "",
            "team": "",
            "completion_notes": "",
            "failure_cause": "",
            "remedy": "",
            **management(),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    work_order.refresh_from_db()
    assert work_order.title == "Pump leaks badly" and work_order.priority == "critical"
    latest = work_order.history.latest()
    assert latest.history_type == "~" and latest.history_user == planner_a
    assert client.get(f"{CHANGELIST}{work_order.pk}/history/").status_code == 200


def test_a_refused_save_shows_the_reason_and_writes_nothing(client, org_a, planner_a, technician_a):
    work_order = make_order(org_a, planner_a, "Original title")
    client.force_login(planner_a)
    response = client.post(
        change_url(work_order),
        {
            "title": "Changed title",
            "description": "",
            "type": "corrective",
            "priority": "medium",
            "asset": "",
            "location": "",
            "team": "",
            "completion_notes": "",
            "failure_cause": "",
            "remedy": "",
            **management(time_entries=1),
            "time_entries-0-technician": technician_a.pk,
            "time_entries-0-minutes": "2000",
            "time_entries-0-note": "too long",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Minutes must be between 1 and 1440." in page
    assert 'value="Changed title"' in page  # the person's input is kept
    work_order.refresh_from_db()
    assert work_order.title == "Original title"  # the edit before the refused row was rolled back
    assert not work_order.time_entries.exists()
    assert work_order.history.count() == 1


def test_inline_rows_are_added_through_the_services(client, org_a, planner_a, technician_a):
    work_order = make_order(org_a, planner_a, "With rows")
    client.force_login(planner_a)
    response = client.post(
        change_url(work_order),
        {
            "title": "With rows",
            "description": "",
            "type": "corrective",
            "priority": "medium",
            "asset": "",
            "location": "",
            "team": "",
            "completion_notes": "",
            "failure_cause": "",
            "remedy": "",
            **management(time_entries=1, comments=1, cost_lines=1, checklist=1),
            "time_entries-0-technician": technician_a.pk,
            "time_entries-0-minutes": "90",
            "time_entries-0-note": "",
            "comments-0-body": "Ordered a seal",
            "cost_lines-0-description": "Crane",
            "cost_lines-0-amount": "120.50",
            "checklist-0-text": "Test run",
            "checklist-0-kind": "tick",
            "checklist-0-unit": "",
            "checklist-0-required": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = work_order.time_entries.get()
    assert entry.minutes == 90 and entry.technician == technician_a
    assert work_order.comments.get().author == planner_a
    assert work_order.cost_lines.get().added_by == planner_a
    assert work_order.checklist.get().text == "Test run"
    page = client.get(change_url(work_order)).content.decode()
    assert "120.50" in page  # the costs panel (services.cost_totals)


def test_the_change_page_shows_the_status_panel_and_cost_totals(client, org_a, manager_a, technician_a):
    from maintenance_site.tenancy import services as tenancy_services

    tenancy_services.add_member(org_a, technician_a, "technician", hourly_rate=Decimal("60"))
    work_order = make_order(org_a, manager_a, "Costed", assignee=technician_a)
    services.transition(work_order, "start", actor=technician_a)
    services.log_time(work_order, actor=technician_a, minutes=30)
    services.add_cost_line(work_order, actor=manager_a, description="Permit", amount="10.00")
    client.force_login(manager_a)
    page = client.get(change_url(work_order)).content.decode()
    assert "In progress" in page
    assert "30.00" in page and "40.00" in page  # labour 30 min × 60, total with the permit
    assert "Start" not in [b["label"] for b in client.get(change_url(work_order)).context["lifecycle_buttons"]]


# --- lifecycle actions --------------------------------------------------------------------------------


def test_assign_asks_for_a_technician_of_the_organisation_then_assigns(
    client, org_a, manager_a, technician_a, storekeeper_a, viewer_a, manager_b
):
    work_order = make_order(org_a, manager_a, "To assign")
    client.force_login(manager_a)
    response = client.post(CHANGELIST, {"action": "assign_selected", "_selected_action": [work_order.pk]})
    assert response.status_code == 200
    page = response.content.decode()
    assert "To assign" in page and 'name="assignee"' in page
    choices = [str(user.pk) for user in response.context["form"].fields["assignee"].queryset]
    assert str(technician_a.pk) in choices and str(manager_a.pk) in choices
    assert str(storekeeper_a.pk) not in choices and str(viewer_a.pk) not in choices
    assert str(manager_b.pk) not in choices
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.OPEN  # nothing changes before the confirmation

    response = client.post(
        CHANGELIST,
        {"action": "assign_selected", "_selected_action": [work_order.pk], "apply": "1", "assignee": technician_a.pk},
    )
    assert response.status_code == 302
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.ASSIGNED and work_order.assignee == technician_a
    assert any("Assigned 1 work order(s)" in text for text in texts(response))
    assert work_order.history.latest().history_user == manager_a


def test_cancel_needs_a_reason(client, org_a, manager_a):
    work_order = make_order(org_a, manager_a, "To cancel")
    client.force_login(manager_a)
    data = {"action": "cancel_selected", "_selected_action": [work_order.pk]}
    assert 'name="reason"' in client.post(CHANGELIST, data).content.decode()
    response = client.post(CHANGELIST, {**data, "apply": "1", "reason": "  "})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.OPEN

    response = client.post(CHANGELIST, {**data, "apply": "1", "reason": "Reported twice"})
    assert response.status_code == 302
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.CANCELLED and work_order.cancel_reason == "Reported twice"


def test_a_refused_transition_shows_its_message_and_changes_nothing(client, org_a, manager_a, technician_a):
    open_order = make_order(org_a, manager_a, "Not started")
    started = make_order(org_a, manager_a, "Under way", assignee=technician_a)
    services.transition(started, "start", actor=technician_a)
    client.force_login(manager_a)
    response = client.post(
        CHANGELIST, {"action": "complete_selected", "_selected_action": [open_order.pk, started.pk]}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Cannot complete {open_order.number}: it is open." in page
    assert f"Completed 1 work order(s): {started.number}." in page
    open_order.refresh_from_db()
    started.refresh_from_db()
    assert open_order.status == WorkOrder.Status.OPEN
    assert started.status == WorkOrder.Status.COMPLETED


def test_verify_is_refused_when_the_organisation_does_not_require_it(client, org_a, manager_a, technician_a):
    work_order = make_order(org_a, manager_a, "Done", assignee=technician_a)
    services.transition(work_order, "start", actor=technician_a)
    services.transition(work_order, "complete", actor=technician_a)
    client.force_login(manager_a)
    response = client.post(CHANGELIST, {"action": "verify_selected", "_selected_action": [work_order.pk]})
    assert any("does not require verification" in text for text in texts(response))
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.COMPLETED


def test_per_order_buttons_confirm_then_transition(client, org_a, manager_a, technician_a):
    work_order = make_order(org_a, manager_a, "Button work", assignee=technician_a)
    client.force_login(manager_a)
    labels = [button["label"] for button in client.get(change_url(work_order)).context["lifecycle_buttons"]]
    assert "Start" in labels and "Cancel with reason…" in labels and "Complete" not in labels
    url = f"{CHANGELIST}{work_order.pk}/lifecycle/start/"
    assert client.get(url).status_code == 200
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.ASSIGNED  # a GET changes nothing
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == change_url(work_order)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.IN_PROGRESS


def test_roles_without_the_permission_get_no_lifecycle_actions(client, org_a, storekeeper_a, manager_a):
    work_order = make_order(org_a, manager_a, "Storekeeper looks")
    client.force_login(storekeeper_a)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "assign_selected" not in actions and "cancel_selected" not in actions
    assert "export_selected_csv" in actions
    assert client.post(f"{CHANGELIST}{work_order.pk}/lifecycle/cancel/", {"reason": "x"}).status_code == 403
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_history_cannot_revert_a_work_order(client, org_a, manager_a):
    work_order = make_order(org_a, manager_a, "Kept")
    client.force_login(manager_a)
    history_id = work_order.history.first().history_id
    url = f"{CHANGELIST}{work_order.pk}/history/{history_id}/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"title": "Reverted"}).status_code == 403


# --- the user autocomplete ------------------------------------------------------------------------------


def test_assignee_autocomplete_lists_only_workers_of_the_active_organisation(
    client, org_a, manager_a, technician_a, storekeeper_a, manager_b
):
    client.force_login(manager_a)
    response = client.get(
        "/admin/autocomplete/", {"app_label": "workorders", "model_name": "workorder", "field_name": "assignee"}
    )
    assert response.status_code == 200
    ids = {int(result["id"]) for result in response.json()["results"]}
    assert technician_a.pk in ids and manager_a.pk in ids
    assert storekeeper_a.pk not in ids and manager_b.pk not in ids
    # the user pages themselves stay closed to staff without Django's permissions
    assert client.get("/admin/auth/user/").status_code == 403


def test_team_autocomplete_is_scoped(client, org_a, org_b, manager_a, manager_b):
    services.create_team(org_a, name="Electricians", actor=manager_a)
    services.create_team(org_b, name="Night shift of B", actor=manager_b)
    client.force_login(manager_a)
    response = client.get(
        "/admin/autocomplete/", {"app_label": "workorders", "model_name": "workorder", "field_name": "team"}
    )
    assert [result["text"] for result in response.json()["results"]] == ["Electricians"]


# --- CSV export ------------------------------------------------------------------------------------------


def read_csv(response):
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_csv_export_has_the_filtered_rows_only(client, org_a, manager_a, technician_a, asset_a, order_b):
    kept = make_order(org_a, manager_a, "=HYPERLINK(evil)", asset=asset_a, assignee=technician_a)
    services.transition(kept, "start", actor=technician_a)
    services.log_time(kept, actor=technician_a, minutes=45)
    services.add_cost_line(kept, actor=manager_a, description="Crane", amount="99.90")
    make_order(org_a, manager_a, "Still open")
    client.force_login(manager_a)

    rows = read_csv(client.get(f"{CHANGELIST}export-csv/", {"status__exact": "in_progress"}))
    assert [row["number"] for row in rows] == [kept.number]
    row = rows[0]
    assert row["title"] == "'=HYPERLINK(evil)"  # a spreadsheet will not run it
    assert row["status"] == "In progress" and row["asset code"] == "PUMP-1"
    assert row["assignee"] == technician_a.username
    assert Decimal(row["cost total"]) == services.cost_totals(kept)["total"]

    everything = read_csv(client.get(f"{CHANGELIST}export-csv/"))
    assert {row["title"] for row in everything} == {"'=HYPERLINK(evil)", "Still open"}  # never B's order

    selected = client.post(CHANGELIST, {"action": "export_selected_csv", "_selected_action": [kept.pk]})
    assert [row["number"] for row in read_csv(selected)] == [kept.number]


def test_the_changelist_links_to_the_filtered_export(client, manager_a):
    client.force_login(manager_a)
    page = client.get(CHANGELIST, {"status__exact": "open"}).content.decode()
    assert f"{CHANGELIST}export-csv/?status__exact=open" in page


# --- attachments -----------------------------------------------------------------------------------------


def test_attachments_download_only_in_their_organisation(client, media, org_a, manager_a, manager_b, order_b):
    work_order = make_order(org_a, manager_a, "With a photo")
    attachment = services.add_attachment(
        uploaded=SimpleUploadedFile("report.txt", b"seal worn", content_type="text/plain"),
        actor=manager_a,
        work_order=work_order,
    )
    other = services.add_attachment(
        uploaded=SimpleUploadedFile("b.txt", b"of B", content_type="text/plain"), actor=manager_b, work_order=order_b
    )
    url = reverse("attachment-file", args=[attachment.token])
    client.force_login(manager_a)
    page = client.get(change_url(work_order)).content.decode()
    assert url in page and "report.txt" in page  # the read-only inline links to the download

    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"seal worn"
    assert "attachment" in response["Content-Disposition"]

    assert client.get(reverse("attachment-file", args=[other.token])).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


# --- work requests ------------------------------------------------------------------------------------------

REQUESTS = "/admin/workorders/workrequest/"


def test_the_queue_shows_pending_requests_and_approves_them(client, org_a, org_b, manager_a, asset_a):
    pending = services.submit_request(org_a, description="Door does not close\nRoom 4", asset=asset_a)
    decided = services.submit_request(org_a, description="Old request")
    services.reject_request(decided, actor=manager_a, reason="Fixed already")
    services.submit_request(org_b, description="Request of B")
    client.force_login(manager_a)
    page = client.get(REQUESTS).content.decode()
    assert "Door does not close" in page and "Old request" not in page and "Request of B" not in page
    assert "Old request" in client.get(REQUESTS, {"decision": "all"}).content.decode()

    response = client.post(REQUESTS, {"action": "approve_selected", "_selected_action": [pending.pk]})
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == WorkRequest.Status.APPROVED
    work_order = pending.work_order
    assert work_order.source == WorkOrder.Source.REQUEST and work_order.asset == asset_a
    assert work_order.title == "Door does not close"
    assert any(work_order.number in text for text in texts(response))

    response = client.post(REQUESTS, {"action": "approve_selected", "_selected_action": [pending.pk]})
    assert response.status_code == 302  # the approved request is no longer in the (pending) queue


def test_rejecting_asks_for_the_reason(client, org_a, manager_a):
    work_request = services.submit_request(org_a, description="Noise at night")
    client.force_login(manager_a)
    data = {"action": "reject_selected", "_selected_action": [work_request.pk]}
    page = client.post(REQUESTS, data).content.decode()
    assert "Noise at night" in page and 'name="reason"' in page
    response = client.post(REQUESTS, {**data, "apply": "1", "reason": "Not our building"})
    assert response.status_code == 302
    work_request.refresh_from_db()
    assert work_request.status == WorkRequest.Status.REJECTED
    assert work_request.rejection_reason == "Not our building" and work_request.decided_by == manager_a


def test_another_organisations_request_is_404(client, manager_a, org_b):
    work_request = services.submit_request(org_b, description="Request of B")
    client.force_login(manager_a)
    assert client.get(f"{REQUESTS}{work_request.pk}/change/").status_code == 404


# --- procedures and teams -------------------------------------------------------------------------------


def test_procedures_are_saved_with_their_steps_through_the_services(client, org_a, planner_a):
    client.force_login(planner_a)
    response = client.post(
        "/admin/workorders/procedure/add/",
        {
            "name": "Monthly pump check",
            "description": "",
            "items-TOTAL_FORMS": "2",
            "items-INITIAL_FORMS": "0",
            "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000",
            "items-0-position": "2",
            "items-0-text": "Listen",
            "items-0-kind": "tick",
            "items-0-unit": "",
            "items-0-required": "on",
            "items-1-position": "1",
            "items-1-text": "Pressure",
            "items-1-kind": "number",
            "items-1-unit": "bar",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    procedure = Procedure.objects.get(name="Monthly pump check")
    assert procedure.organization == org_a
    assert [(item.position, item.text) for item in procedure.items.order_by("position")] == [
        (1, "Pressure"),
        (2, "Listen"),
    ]
    duplicate = client.post(
        "/admin/workorders/procedure/add/",
        {"name": "Monthly pump check", "description": "", "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0"},
    )
    assert duplicate.status_code == 200 and "already exists" in duplicate.content.decode()


def test_team_members_are_members_of_the_organisation(client, org_a, manager_a, technician_a, manager_b):
    stranger = _member(org_a, "left-the-company", "technician")
    stranger.memberships.update(is_active=False)
    client.force_login(manager_a)
    page = client.get("/admin/workorders/team/add/")
    choices = {user.pk for user in page.context["adminform"].form.fields["members"].queryset}
    assert technician_a.pk in choices and manager_b.pk not in choices and stranger.pk not in choices
    response = client.post("/admin/workorders/team/add/", {"name": "Electricians", "members": [technician_a.pk]})
    assert response.status_code == 302
    team = Team.objects.get(name="Electricians")
    assert team.organization == org_a and list(team.members.all()) == [technician_a]
    refused = client.post("/admin/workorders/team/add/", {"name": "Strangers", "members": [manager_b.pk]})
    assert refused.status_code == 200 and not Team.objects.filter(name="Strangers").exists()


def test_deleting_goes_through_the_service(client, org_a, manager_a):
    fresh = make_order(org_a, manager_a, "Created by mistake")
    busy = make_order(org_a, manager_a, "Has a comment")
    services.add_comment(busy, actor=manager_a, body="Looked at it")
    client.force_login(manager_a)
    assert client.post(f"{CHANGELIST}{fresh.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not WorkOrder.objects.filter(pk=fresh.pk).exists()
    response = client.post(f"{CHANGELIST}{busy.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == change_url(busy)
    assert any("cannot be deleted because it has comments" in text for text in texts(response))
    assert WorkOrder.objects.filter(pk=busy.pk).exists()
    actions = client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert "delete_selected" not in [name for name, _ in actions]


@pytest.mark.parametrize(
    "url",
    [
        CHANGELIST,
        f"{CHANGELIST}add/",
        f"{CHANGELIST}?overdue=yes&status__exact=open&q=x",
        REQUESTS,
        "/admin/workorders/procedure/",
        "/admin/workorders/procedure/add/",
        "/admin/workorders/team/",
        "/admin/workorders/team/add/",
    ],
)
def test_pages_render(client, org_a, manager_a, url):
    make_order(org_a, manager_a, "Something")
    services.submit_request(org_a, description="Something broke")
    client.force_login(manager_a)
    assert client.get(url).status_code == 200


def test_superusers_see_every_organisation_without_errors(client, org_a, manager_a, order_b):
    from tests.conftest import make_user

    admin_user = make_user("root", is_staff=True, is_superuser=True)
    mine = make_order(org_a, manager_a, "Work of A")
    client.force_login(admin_user)
    page = client.get(CHANGELIST).content.decode()
    assert "Work of A" in page and "Secret work of B" in page
    for url in (f"{CHANGELIST}add/", change_url(order_b), change_url(mine), f"{CHANGELIST}export-csv/"):
        assert client.get(url).status_code == 200, url
    # a member of no organisation, yet the platform's operator: the service lets them act, history names them
    response = client.post(
        f"{CHANGELIST}add/",
        {"organization": org_a.pk, "title": "By root", "type": "corrective", "priority": "low", **management()},
    )
    assert response.status_code == 302
    created = WorkOrder.objects.get(organization=org_a, title="By root")
    assert created.history.earliest().history_user == admin_user
