"""An asset's history (`GET /api/v1/assets/{id}/history`): work orders, downtime and changes merged newest first,
within the organisation, in a fixed number of queries."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assets import services as asset_services
from assets.models import Asset, Downtime
from maintenance_site import audit
from workorders import services as wo_services
from workorders.asset_history import asset_history
from workorders.models import WorkOrder

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def rooms(org_a):
    return (
        asset_services.create_location(org_a, name="Plant room"),
        asset_services.create_location(org_a, name="Boiler house"),
    )


@pytest.fixture
def pump(org_a, rooms):
    return asset_services.create_asset(org_a, code="PMP-1", name="Pump", location=rooms[0])


def url(asset):
    return f"/api/v1/assets/{asset.pk}/history"


def set_history_dates(asset, *minutes):
    """Give the asset's history records, oldest first, the given times."""
    records = list(Asset.history.filter(id=asset.pk).order_by("history_id"))
    assert len(records) == len(minutes)
    for record, minute in zip(records, minutes, strict=True):
        Asset.history.filter(history_id=record.history_id).update(history_date=at(minute))


@pytest.fixture
def story(org_a, planner_a, rooms, pump):
    """Registered (0), renamed and moved by the planner (10), a work order opened (20) that takes the pump down
    (30), completed (40), the pump back up by it (41)."""
    with audit.acting_as(planner_a):
        asset_services.update_asset(pump, name="Feed pump", location=rooms[1])
    order = wo_services.create_work_order(org_a, title="Replace seal", asset=pump, actor=planner_a)
    downtime = asset_services.mark_asset_down(pump, reason="Seal leaking", at=at(30))
    wo_services.link_downtime(downtime, caused_by=order)
    asset_services.mark_asset_up(pump, at=at(41))
    wo_services.link_downtime(downtime, ended_by=order)
    WorkOrder.objects.filter(pk=order.pk).update(
        created_at=at(20), completed_at=at(40), status=WorkOrder.Status.COMPLETED, completion_notes="New seal"
    )
    set_history_dates(pump, 0, 10, 30.5, 41.5)
    order.refresh_from_db()
    return order


def test_entries_are_merged_newest_first(story, pump):
    entries = asset_history(pump)
    assert [(e["kind"], e["details"]["event"]) for e in entries] == [
        ("change", "changed"),  # 41.5 status down → operational
        ("downtime", "ended"),  # 41
        ("work_order", "completed"),  # 40
        ("change", "changed"),  # 30.5 status → down
        ("downtime", "started"),  # 30
        ("work_order", "created"),  # 20
        ("change", "changed"),  # 10 renamed and moved
        ("change", "created"),  # 0
    ]
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)


def test_entries_say_what_happened(story, pump, planner_a):
    entries = {(e["kind"], e["details"]["event"], e["at"]): e for e in asset_history(pump)}
    ended = entries[("downtime", "ended", at(41))]
    assert ended["details"]["duration_seconds"] == 11 * 60
    assert ended["details"]["ended_by_work_order"] == story.number
    assert ended["details"]["reason"] == "Seal leaking"
    assert ended["summary"] == f"Back up after 11 min ({story.number})"
    assert entries[("downtime", "started", at(30))]["details"]["caused_by_work_order"] == story.number
    completed = entries[("work_order", "completed", at(40))]
    assert completed["summary"] == f"{story.number} completed: Replace seal"
    assert completed["details"]["completion_notes"] == "New seal"
    assert entries[("work_order", "created", at(20))]["details"]["requested_by"] == planner_a.username

    renamed = entries[("change", "changed", at(10))]
    assert renamed["details"]["by"] == planner_a.username
    assert {(c["field"], c["old"], c["new"]) for c in renamed["details"]["changes"]} == {
        ("name", "Pump", "Feed pump"),
        ("location", "Plant room", "Boiler house"),  # related rows by name, not id
    }
    assert renamed["summary"].endswith(f"by {planner_a.username}")
    down = entries[("change", "changed", at(30.5))]
    assert down["details"]["changes"] == [{"field": "status", "label": "status", "old": "Operational", "new": "Down"}]
    assert entries[("change", "created", at(0))]["summary"].startswith("Asset registered")


def test_the_api_returns_the_history(api, viewer_a, org_a, story, pump):
    response = api(viewer_a, org_a).get(url(pump))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["asset"] == pump.pk and body["limit"] == 100
    assert [(e["kind"], e["details"]["event"]) for e in body["results"]][:3] == [
        ("change", "changed"),
        ("downtime", "ended"),
        ("work_order", "completed"),
    ]
    assert body["results"][1]["at"] == "2026-03-02T08:41:00Z"


def test_limit_keeps_the_newest(api, viewer_a, org_a, story, pump):
    response = api(viewer_a, org_a).get(url(pump), {"limit": 2})
    assert [(e["kind"], e["details"]["event"]) for e in response.json()["results"]] == [
        ("change", "changed"),
        ("downtime", "ended"),
    ]
    assert api(viewer_a, org_a).get(url(pump), {"limit": 0}).status_code == 400
    assert api(viewer_a, org_a).get(url(pump), {"limit": "many"}).status_code == 400


def test_limit_applies_to_each_source_without_losing_newer_events(org_a, planner_a, pump):
    """An old work order completed last is still among the newest events."""
    old = wo_services.create_work_order(org_a, title="Old one", asset=pump, actor=planner_a)
    for n in range(3):
        wo_services.create_work_order(org_a, title=f"Newer {n}", asset=pump, actor=planner_a)
    WorkOrder.objects.exclude(pk=old.pk).update(created_at=at(50))
    WorkOrder.objects.filter(pk=old.pk).update(created_at=at(1), completed_at=at(60), status="completed")
    set_history_dates(pump, 0)
    first = asset_history(pump, limit=1)
    assert [(e["details"]["number"], e["details"]["event"]) for e in first] == [(old.number, "completed")]


def test_another_organisations_asset_is_not_found(api, manager_b, org_b, member_of_both, org_a, pump):
    response = api(manager_b, org_b).get(url(pump))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # a member of both sees it only when acting in its organisation
    assert api(member_of_both, org_b).get(url(pump)).status_code == 404
    assert api(member_of_both, org_a).get(url(pump)).status_code == 200


def test_anonymous_is_refused(api, pump):
    assert api().get(url(pump)).status_code == 401


def test_only_reading_is_allowed(api, manager_a, org_a, pump):
    assert api(manager_a, org_a).post(url(pump), {}).status_code == 405


def test_query_count_does_not_grow_with_the_history(api, org_a, planner_a, viewer_a, pump, rooms):
    client = api(viewer_a, org_a)

    def add_history(n):
        order = wo_services.create_work_order(org_a, title=f"Job {n}", asset=pump, actor=planner_a)
        WorkOrder.objects.filter(pk=order.pk).update(completed_at=at(n), status="completed")
        downtime = Downtime.objects.create(
            organization=org_a,
            asset=pump,
            started_at=at(n),
            ended_at=at(n) + timedelta(minutes=5),
            reason=f"Trip {n}",
        )
        wo_services.link_downtime(downtime, caused_by=order, ended_by=order)
        with audit.acting_as(planner_a):
            asset_services.update_asset(pump, name=f"Pump {n}", location=rooms[(n + 1) % 2])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url(pump))
        assert response.status_code == 200
        return len(captured), len(response.json()["results"])

    add_history(0)  # one of each kind, a moved location among the changes
    few_queries, few_entries = queries()
    for n in range(1, 15):
        add_history(n)
    many_queries, many_entries = queries()
    assert many_entries >= few_entries + 14 * 5
    assert many_queries == few_queries
    assert many_queries <= 10, many_queries
