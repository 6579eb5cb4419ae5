"""Downtime bookkeeping: an asset marked down (API, admin, services) opens a downtime and brought back closes it;
work that needs downtime takes the asset down and brings it back, and the work orders tied to the downtime are
recorded by the work orders (`workorders.DowntimeLink`), not by the asset."""

import pytest

from assets import services as asset_services
from assets.models import Asset, Downtime
from workorders import services as wo_services
from workorders.models import DowntimeLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def pump(org_a):
    return asset_services.create_asset(org_a, code="P-1", name="Pump")


def test_an_asset_marked_down_through_the_api_opens_and_closes_downtime(api, planner_a, org_a, pump):
    client = api(planner_a, org_a)
    down = client.patch(f"/api/v1/assets/{pump.pk}/", {"status": "down"}, format="json")
    assert down.status_code == 200, down.content
    downtime = Downtime.objects.get(asset=pump)
    assert downtime.ended_at is None and downtime.reason == "Marked down"

    up = client.patch(f"/api/v1/assets/{pump.pk}/", {"status": "operational"}, format="json")
    assert up.status_code == 200, up.content
    downtime.refresh_from_db()
    assert downtime.ended_at is not None
    assert not DowntimeLink.objects.exists()  # no work order involved


def test_work_needing_downtime_takes_the_asset_down_and_records_the_order(org_a, planner_a, technician_a, pump):
    order = wo_services.create_work_order(
        org_a, title="Overhaul", asset=pump, needs_downtime=True, actor=planner_a, assignee=technician_a
    )
    wo_services.start(order, actor=technician_a)
    pump.refresh_from_db()
    downtime = Downtime.objects.get(asset=pump)
    assert pump.status == Asset.Status.DOWN and downtime.ended_at is None
    assert downtime.reason == f"{order.number}: Overhaul"
    assert (downtime.work_order_link.caused_by, downtime.work_order_link.ended_by) == (order, None)

    wo_services.complete(order, actor=technician_a)
    pump.refresh_from_db()
    downtime.refresh_from_db()
    assert pump.status == Asset.Status.OPERATIONAL and downtime.ended_at is not None
    assert (downtime.work_order_link.caused_by, downtime.work_order_link.ended_by) == (order, order)
    link_history = list(downtime.work_order_link.history.order_by("history_id"))
    assert [(h.history_type, h.history_user) for h in link_history] == [("+", technician_a), ("~", technician_a)]


def test_work_on_an_asset_already_down_keeps_the_downtime_it_found(org_a, planner_a, technician_a, pump):
    """The pump broke (marked down by hand); the repair starts and ends it: the downtime has no order as its
    cause, and the repair as what ended it."""
    asset_services.mark_asset_down(pump, reason="Seal burst")
    repair = wo_services.create_work_order(
        org_a, title="Replace seal", asset=pump, needs_downtime=True, actor=planner_a, assignee=technician_a
    )
    wo_services.start(repair, actor=technician_a)
    downtime = Downtime.objects.get(asset=pump)
    assert downtime.reason == "Seal burst"
    assert not DowntimeLink.objects.exists()

    wo_services.complete(repair, actor=technician_a)
    downtime.refresh_from_db()
    assert downtime.ended_at is not None
    assert (downtime.work_order_link.caused_by, downtime.work_order_link.ended_by) == (None, repair)


def test_cancelling_work_in_progress_brings_the_asset_back(org_a, planner_a, technician_a, pump):
    order = wo_services.create_work_order(
        org_a, title="Overhaul", asset=pump, needs_downtime=True, actor=planner_a, assignee=technician_a
    )
    wo_services.start(order, actor=technician_a)
    wo_services.cancel(order, reason="Wrong pump", actor=planner_a)
    pump.refresh_from_db()
    downtime = Downtime.objects.get(asset=pump)
    assert pump.status == Asset.Status.OPERATIONAL and downtime.ended_at is not None
    assert downtime.work_order_link.ended_by == order
