"""Planning (issue 24): the planned start through the services (refusals, audit, events), preventive generation
planning its orders, the calendar's items and the dispatch board (kinds, filters, tenant isolation, query counts),
their API and the admin pages with their move endpoint."""

import json
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from maintenance_site.errors import Conflict, PermissionDeniedError
from maintenance_site.events.models import Event
from maintenance_site.tenancy import SYSTEM
from scheduling.planning.board import board
from scheduling.planning.calendar import Filters, calendar_items
from scheduling.preventive.generation import generate_due_work_orders
from scheduling.preventive.services import create_schedule
from scheduling.windows import services as window_services
from workorders import services as wo_services
from workorders.capacity import services as capacity_services
from workorders.models import WorkOrder

pytestmark = pytest.mark.django_db


def order(org, actor, **fields):
    fields.setdefault("title", "Replace the seal")
    return wo_services.create_work_order(org, actor=actor, **fields)


# --- the planned start ------------------------------------------------------------------------------------


def test_a_planner_plans_an_order_audited_and_published(org_a, planner_a, plant, at):
    work = order(org_a, planner_a, asset=plant["pump"], estimated_minutes=90)
    work = wo_services.schedule(work, actor=planner_a, scheduled_start=at(1, 9))
    assert work.scheduled_start == at(1, 9)
    assert wo_services.planned_end(work) == at(1, 10, 30)
    latest = work.history.first()
    assert (latest.history_user, latest.history_change_reason, latest.scheduled_start) == (
        planner_a,
        "planned",
        at(1, 9),
    )
    event = Event.objects.filter(organization=org_a, type="work-order:updated").latest("id")
    assert event.payload["change"] == "scheduled"


def test_a_closed_order_cannot_be_planned(org_a, planner_a, technician_a, at):
    work = order(org_a, planner_a, assignee=technician_a)
    wo_services.cancel(work, reason="Duplicate", actor=planner_a)
    with pytest.raises(Conflict, match="closed order cannot be planned"):
        wo_services.schedule(work, actor=planner_a, scheduled_start=at(1, 9))


def test_a_window_that_takes_the_asset_out_of_service_refuses_the_period(org_a, planner_a, manager_a, plant, at):
    window_services.create_window(
        org_a,
        title="Hall power cut",
        starts_at=at(2, 8),
        ends_at=at(2, 12),
        scope="location",
        location=plant["hall"],
        actor=manager_a,
    )
    work = order(org_a, planner_a, asset=plant["pump"], estimated_minutes=60)
    with pytest.raises(Conflict, match="out of service in the maintenance window “Hall power cut”") as refused:
        wo_services.schedule(work, actor=planner_a, scheduled_start=at(2, 11, 30))
    assert refused.value.code == "window_blocks_asset"
    work.refresh_from_db()
    assert work.scheduled_start is None
    wo_services.schedule(work, actor=planner_a, scheduled_start=at(2, 12))  # just after it: fine
    elsewhere = order(org_a, planner_a, asset=plant["fan"], estimated_minutes=60)
    wo_services.schedule(elsewhere, actor=planner_a, scheduled_start=at(2, 9))  # another location
    downtime = order(org_a, planner_a, asset=plant["pump"], needs_downtime=True, estimated_minutes=60)
    wo_services.schedule(downtime, actor=planner_a, scheduled_start=at(2, 9))  # work that needs the window


def test_who_may_plan(org_a, planner_a, technician_a, technician2_a, viewer_a, at):
    mine = order(org_a, planner_a, assignee=technician_a)
    wo_services.schedule(mine, actor=technician_a, scheduled_start=at(1, 7))  # a technician, their own order
    theirs = order(org_a, planner_a, assignee=technician2_a)
    with pytest.raises(PermissionDeniedError):
        wo_services.schedule(theirs, actor=technician_a, scheduled_start=at(1, 7))
    with pytest.raises(PermissionDeniedError):
        wo_services.schedule(theirs, actor=viewer_a, scheduled_start=at(1, 7))
    with pytest.raises(TypeError):
        wo_services.schedule(theirs, actor=None, scheduled_start=at(1, 7))


def test_dispatch_assigns_and_plans_all_or_nothing(org_a, planner_a, technician_a, technician2_a, crew, at):
    work = order(org_a, planner_a, team=crew, estimated_minutes=60)
    with pytest.raises(Conflict, match="not in Mechanical crew"):
        wo_services.dispatch(work, actor=planner_a, assignee=technician2_a, scheduled_start=at(1, 8))
    work.refresh_from_db()
    assert (work.assignee, work.scheduled_start) == (None, None)
    work = wo_services.dispatch(work, actor=planner_a, assignee=technician_a, scheduled_start=at(1, 8))
    assert (work.assignee, work.status, work.scheduled_start) == (technician_a, "assigned", at(1, 8))
    with pytest.raises(PermissionDeniedError, match="may not assign"):
        wo_services.dispatch(work, actor=technician_a, assignee=technician_a)
    work = wo_services.dispatch(work, actor=planner_a, assignee=None)
    assert (work.assignee, work.status) == (None, "open")


def test_the_admin_form_the_api_and_the_technician_page_carry_the_planned_start(
    org_a, planner_a, technician_a, api, client, at
):
    response = api(planner_a).post(
        "/api/v1/work-orders/",
        {"title": "Grease", "scheduled_start": at(1, 10).isoformat(), "estimated_minutes": 30},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["scheduled_start"] is not None
    work = WorkOrder.objects.get(pk=response.json()["id"])
    assert work.scheduled_start == at(1, 10)
    moved = api(planner_a).post(
        f"/api/v1/work-orders/{work.pk}/schedule/", {"scheduled_start": at(2, 10).isoformat()}, format="json"
    )
    assert moved.status_code == 200, moved.content
    wo_services.assign(work, technician_a, actor=planner_a)
    client.force_login(technician_a)
    page = client.get(f"/t/orders/{work.pk}/")
    assert "Planned start" in page.content.decode()
    local = at(3, 7).astimezone(org_a.zone).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/t/orders/{work.pk}/plan/", {"scheduled_start": local})
    work.refresh_from_db()
    assert work.scheduled_start == at(3, 7)


def test_preventive_generation_plans_the_start_where_the_schedule_says_so(org_a, plant, at):
    planned = create_schedule(
        org_a,
        actor=SYSTEM,
        name="Planned",
        coverage="asset",
        asset=plant["pump"],
        trigger="interval",
        interval_count=1,
        interval_unit="days",
        time_of_day="09:00",
        plan_start=True,
        estimated_minutes=45,
    )
    create_schedule(
        org_a,
        actor=SYSTEM,
        name="Unplanned",
        coverage="asset",
        asset=plant["fan"],
        trigger="interval",
        interval_count=1,
        interval_unit="days",
        time_of_day="09:00",
    )
    generate_due_work_orders(organization=org_a, days_ahead=2, actor=SYSTEM)
    orders = WorkOrder.objects.for_tenant(org_a).filter(source="preventive")
    assert orders.filter(asset=plant["pump"]).exists() and orders.filter(asset=plant["fan"]).exists()
    for work in orders:
        expected = work.due_at if work.asset_id == plant["pump"].pk else None
        assert work.scheduled_start == expected
    assert planned.plan_start


# --- the calendar and the board ---------------------------------------------------------------------------


@pytest.fixture
def planned_week(org_a, planner_a, manager_a, technician_a, plant, crew, at):
    """A forecast occurrence (a daily schedule not generated), a window and a planned order, next week."""
    create_schedule(
        org_a,
        actor=SYSTEM,
        name="Daily round",
        coverage="routine",
        location=plant["hall"],
        trigger="interval",
        interval_count=1,
        interval_unit="days",
        time_of_day="06:00",
        estimated_minutes=30,
    )
    window = window_services.create_window(
        org_a,
        title="Network upgrade",
        starts_at=at(2, 13),
        ends_at=at(2, 15),
        scope="assets",
        assets=[plant["fan"]],
        actor=manager_a,
    )
    work = order(org_a, planner_a, asset=plant["pump"], team=crew, assignee=technician_a, estimated_minutes=120)
    wo_services.schedule(work, actor=planner_a, scheduled_start=at(1, 9))
    return {"window": window, "order": work}


def test_the_calendar_has_the_three_kinds_and_filters_them(org_a, planned_week, technician_a, crew, plant, at):
    found = calendar_items(org_a, at(0, 0), at(7, 0))
    kinds = {item["kind"] for item in found["items"]}
    assert kinds == {"occurrence", "window", "work_order"}
    occurrences = [item for item in found["items"] if item["kind"] == "occurrence"]
    assert len(occurrences) == 7 and all(item["generated"] is False for item in occurrences)
    [work] = [item for item in found["items"] if item["kind"] == "work_order"]
    assert (work["start"], work["end"], work["draggable"]) == (at(1, 9), at(1, 11), True)
    in_annex = calendar_items(org_a, at(0, 0), at(7, 0), Filters(location=plant["annex"].pk))
    assert {item["kind"] for item in in_annex["items"]} == {"window"}  # the fan's window only
    mine = calendar_items(org_a, at(0, 0), at(7, 0), Filters(assignee=technician_a.pk))
    assert {item["kind"] for item in mine["items"]} == {"window", "work_order"}
    theirs = calendar_items(org_a, at(0, 0), at(7, 0), Filters(team=crew.pk + 1000))
    assert {item["kind"] for item in theirs["items"]} == {"window"}


def test_the_calendar_reads_in_a_constant_number_of_queries(org_a, planned_week, planner_a, technician_a, at):
    def count():
        with CaptureQueriesContext(connection) as queries:
            calendar_items(org_a, at(0, 0), at(7, 0))
        return len(queries)

    few = count()
    for day in range(7):
        for hour in (8, 10, 14):
            work = order(org_a, planner_a, assignee=technician_a, estimated_minutes=30)
            wo_services.schedule(work, actor=planner_a, scheduled_start=at(day, hour))
    assert count() == few


def test_the_board_marks_over_capacity_overdue_and_counts_constant_queries(
    org_a, planned_week, planner_a, technician_a, technician2_a, at, next_monday
):
    capacity_services.save_working_pattern(org_a, actor=planner_a, user=technician_a, tuesday="08:00-09:00")

    def read():
        with CaptureQueriesContext(connection) as queries:
            found = board(org_a, next_monday, next_monday + timedelta(days=6))
        return found, len(queries)

    found, few = read()
    lanes = {lane.user_id: lane for lane in found["lanes"]}
    assert set(lanes) == {None, technician_a.pk, technician2_a.pk}
    tuesday = lanes[technician_a.pk].cells[1]
    assert (tuesday.planned, tuesday.available, tuesday.over_capacity) == (2.0, 1.0, True)
    assert [card.number for card in tuesday.cards] == [planned_week["order"].number]
    late = order(org_a, planner_a, due_at=at(-10, 9))
    for day in range(7):
        work = order(org_a, planner_a, assignee=technician2_a, estimated_minutes=30)
        wo_services.schedule(work, actor=planner_a, scheduled_start=at(day, 10))
    found, many = read()
    assert many == few
    unassigned = {lane.user_id: lane for lane in found["lanes"]}[None]
    assert [card.overdue for card in unassigned.unplanned if card.id == late.pk] == [True]


# --- the API ----------------------------------------------------------------------------------------------


def test_the_api_answers_for_the_callers_organisation_only(org_a, planned_week, planner_a, manager_b, api, next_monday):
    week = f"from={next_monday}&to={next_monday + timedelta(days=6)}"
    mine = api(planner_a).get(f"/api/v1/planning/calendar/?{week}")
    assert mine.status_code == 200
    assert {item["kind"] for item in mine.json()["items"]} == {"occurrence", "window", "work_order"}
    theirs = api(manager_b).get(f"/api/v1/planning/calendar/?{week}")
    assert theirs.status_code == 200 and theirs.json()["items"] == []
    board_b = api(manager_b).get(f"/api/v1/planning/board/?{week}").json()
    assert [lane["user"] for lane in board_b["lanes"]] == [None]
    assert all(not day["orders"] for day in board_b["lanes"][0]["days"])
    capacity = api(planner_a).get(f"/api/v1/capacity/?{week}").json()
    assert capacity["count"] == 7 and capacity["results"][1]["planned_hours"] == 2.0
    work = planned_week["order"]
    for path, body in (("schedule", {"scheduled_start": None}), ("dispatch", {"assignee": None})):
        refused = api(manager_b).post(f"/api/v1/work-orders/{work.pk}/{path}/", body, format="json")
        assert refused.status_code == 404, refused.content


@pytest.mark.parametrize(
    "query", ["from=2026-02-30", "from=2026-01-10&to=2026-01-01", "from=2026-01-01&to=2026-06-01", "team=x"]
)
def test_bad_ranges_are_a_400_naming_the_parameter(planner_a, api, query):
    for path in ("planning/calendar", "planning/board", "capacity"):
        response = api(planner_a).get(f"/api/v1/{path}/?{query}")
        assert response.status_code == 400, (path, response.content)
        assert response.json()["error"]["fields"]


def test_the_api_capacity_reads_in_a_constant_number_of_queries(org_a, planner_a, technician_a, api, at):
    client = api(planner_a)

    def count(days: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/capacity/?from=2026-03-02&to={date(2026, 3, 1) + timedelta(days=days)}")
        assert response.status_code == 200
        return len(queries)

    few = count(1)
    for hour in range(8, 12):
        work = order(org_a, planner_a, assignee=technician_a, estimated_minutes=30)
        wo_services.schedule(work, actor=planner_a, scheduled_start=at(0, hour))
    assert count(30) == few


# --- the admin pages --------------------------------------------------------------------------------------


def test_the_admin_pages_render_and_a_drop_moves_or_shows_the_refusal(
    org_a, planned_week, planner_a, technician2_a, client, next_monday, plant
):
    client.force_login(planner_a)
    for view in ("month", "week", "day"):
        page = client.get(reverse("planning-calendar"), {"view": view, "date": next_monday + timedelta(days=1)})
        assert page.status_code == 200
        assert planned_week["order"].number in page.content.decode()
    board_page = client.get(reverse("planning-board"), {"date": next_monday})
    assert board_page.status_code == 200 and "over capacity" not in board_page.content.decode()
    work = planned_week["order"]
    moved = client.post(
        reverse("planning-move"),
        json.dumps({"order": work.pk, "day": str(next_monday + timedelta(days=3)), "time": "14:00"}),
        content_type="application/json",
    )
    assert moved.status_code == 200, moved.content
    work.refresh_from_db()
    assert work.scheduled_start.astimezone(org_a.zone).strftime("%a %H:%M") == "Thu 14:00"
    refused = client.post(
        reverse("planning-move"),
        json.dumps({"order": work.pk, "day": str(next_monday), "assignee": technician2_a.pk}),
        content_type="application/json",
    )
    assert refused.status_code == 409
    assert "not in Mechanical crew" in refused.json()["error"]["message"]
