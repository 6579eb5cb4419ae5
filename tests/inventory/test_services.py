"""Stock that is never wrong: the ledger, usage, reservations, low stock, purchasing, at the service level."""

from decimal import Decimal

import pytest

from inventory import services
from inventory.models import MovementKind, Part, PurchaseOrder, Reservation, StockLevel, StockMovement
from maintenance_site.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.events.models import Event
from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from workorders import services as wo_services

D = Decimal


def level(part, location):
    return StockLevel.objects.get(part=part, location=location)


def ledger_unchanged(before):
    return StockMovement.objects.count() == before


def test_receipts_set_stock_and_moving_average_cost(bearing, warehouse, storekeeper_a):
    services.receive_stock(bearing, warehouse, 10, "4.00", actor=storekeeper_a)
    services.receive_stock(bearing, warehouse, 30, "6.00", actor=storekeeper_a)
    bearing.refresh_from_db()
    assert level(bearing, warehouse).on_hand == 40
    assert bearing.average_cost == D("5.5000")  # (10×4 + 30×6) / 40


def test_issue_takes_stock_and_costs_the_work_order(bearing, warehouse, van, job, storekeeper_a, technician_a):
    services.receive_stock(bearing, van, 3, "5.00", actor=storekeeper_a)
    movement = services.issue_to_work_order(job, bearing, van, 2, actor=technician_a)
    assert (movement.kind, movement.quantity, movement.unit_cost) == (MovementKind.ISSUE, -2, D("5.0000"))
    assert level(bearing, van).on_hand == 1
    assert wo_services.cost_totals(job)["parts"] == D("10.00")


def test_asking_for_more_than_there_is_says_how_many_and_where(
    bearing, warehouse, van, job, storekeeper_a, technician_a
):
    services.receive_stock(bearing, van, 2, "5", actor=storekeeper_a)
    services.receive_stock(bearing, warehouse, 12, "5", actor=storekeeper_a)
    before = StockMovement.objects.count()
    with pytest.raises(Conflict) as refused:
        services.issue_to_work_order(job, bearing, van, 3, actor=technician_a)
    assert refused.value.message.startswith("Only 2 left in Van 3")
    assert "Also available: Warehouse (12)" in refused.value.message
    assert ledger_unchanged(before) and level(bearing, van).on_hand == 2


@pytest.mark.parametrize(
    ("quantity", "error"),
    [(0, InvalidInput), (-1, InvalidInput), ("1.5", InvalidInput), ("lots", InvalidInput), ("NaN", InvalidInput)],
)
def test_bad_quantities_change_nothing(bearing, warehouse, job, storekeeper_a, technician_a, quantity, error):
    services.receive_stock(bearing, warehouse, 5, "1", actor=storekeeper_a)
    before = StockMovement.objects.count()
    with pytest.raises(error):
        services.issue_to_work_order(job, bearing, warehouse, quantity, actor=technician_a)
    assert ledger_unchanged(before) and level(bearing, warehouse).on_hand == 5


def test_decimal_units_take_fractions(oil, warehouse, job, storekeeper_a, technician_a):
    services.receive_stock(oil, warehouse, "20.5", "3", actor=storekeeper_a)
    services.issue_to_work_order(job, oil, warehouse, "2.25", actor=technician_a)
    assert level(oil, warehouse).on_hand == D("18.250")


def test_closed_or_foreign_work_orders_are_refused(
    org_b, bearing, warehouse, job, storekeeper_a, technician_a, manager_b
):
    services.receive_stock(bearing, warehouse, 5, "1", actor=storekeeper_a)
    before = StockMovement.objects.count()
    foreign = wo_services.create_work_order(org_b, title="theirs", actor=manager_b)
    with pytest.raises(NotFound):
        services.issue_to_work_order(foreign, bearing, warehouse, 1, actor=manager_b)
    wo_services.complete(job, actor=technician_a)
    with pytest.raises(Conflict, match="completed: parts can no longer be issued"):
        services.issue_to_work_order(job, bearing, warehouse, 1, actor=technician_a)
    assert ledger_unchanged(before)


def test_technician_uses_parts_only_on_own_work(org_a, bearing, warehouse, planner_a, storekeeper_a, technician_a):
    services.receive_stock(bearing, warehouse, 5, "1", actor=storekeeper_a)
    other = wo_services.create_work_order(org_a, title="someone else's", actor=planner_a)
    with pytest.raises(PermissionDeniedError):
        services.issue_to_work_order(other, bearing, warehouse, 1, actor=technician_a)
    with pytest.raises(PermissionDeniedError):
        services.adjust_stock(bearing, warehouse, change=5, reason="found some", actor=technician_a)


def test_returns_reverse_issues_but_never_more(bearing, warehouse, job, storekeeper_a, technician_a):
    services.receive_stock(bearing, warehouse, 5, "2", actor=storekeeper_a)
    services.issue_to_work_order(job, bearing, warehouse, 3, actor=technician_a)
    services.return_from_work_order(job, bearing, warehouse, 1, actor=technician_a)
    assert level(bearing, warehouse).on_hand == 3
    assert wo_services.cost_totals(job)["parts"] == D("4.00")
    with pytest.raises(Conflict, match="holds 2"):
        services.return_from_work_order(job, bearing, warehouse, 3, actor=technician_a)


def test_adjustments_need_a_reason_and_follow_a_count(bearing, warehouse, storekeeper_a):
    services.receive_stock(bearing, warehouse, 10, "1", actor=storekeeper_a)
    with pytest.raises(InvalidInput, match="Say why"):
        services.adjust_stock(bearing, warehouse, counted=8, reason="", actor=storekeeper_a)
    movement = services.adjust_stock(bearing, warehouse, counted=8, reason="cycle count", actor=storekeeper_a)
    assert movement.quantity == -2 and level(bearing, warehouse).on_hand == 8
    assert services.adjust_stock(bearing, warehouse, counted=8, reason="recount", actor=storekeeper_a) is None
    assert services.adjust_stock(bearing, warehouse, counted=0, reason="all gone", actor=storekeeper_a).quantity == -8


def test_transfers_move_stock_with_two_ledger_rows(bearing, warehouse, van, storekeeper_a):
    services.receive_stock(bearing, warehouse, 10, "1", actor=storekeeper_a)
    out, into = services.transfer_stock(bearing, warehouse, van, 4, actor=storekeeper_a)
    assert out.transfer_id == into.transfer_id and (out.quantity, into.quantity) == (-4, 4)
    assert (level(bearing, warehouse).on_hand, level(bearing, van).on_hand) == (6, 4)
    with pytest.raises(Conflict, match="Only 6 left in Warehouse"):
        services.transfer_stock(bearing, warehouse, van, 7, actor=storekeeper_a)
    with pytest.raises(InvalidInput):
        services.transfer_stock(bearing, van, van, 1, actor=storekeeper_a)


def test_a_technician_refills_only_their_own_van_and_only_from_a_store(
    org_a, bearing, warehouse, van, storekeeper_a, technician_a, technician2_a
):
    """Issue 16: only the destination was checked, so stock could be taken from anywhere into one's van."""
    colleagues = services.create_stock_location(
        org_a, name="Van 7", kind="van", holder=technician2_a, actor=storekeeper_a
    )
    services.receive_stock(bearing, warehouse, 10, "1", actor=storekeeper_a)
    services.receive_stock(bearing, colleagues, 4, "1", actor=storekeeper_a)
    services.transfer_stock(bearing, warehouse, van, 2, actor=technician_a)  # the one thing use_parts allows
    with pytest.raises(PermissionDeniedError, match="Van 7 is technician2-a’s van"):
        services.transfer_stock(bearing, colleagues, van, 1, actor=technician_a)
    with pytest.raises(PermissionDeniedError, match="only transfer stock into your own van"):
        services.transfer_stock(bearing, van, colleagues, 1, actor=technician_a)
    with pytest.raises(PermissionDeniedError, match="Warehouse is not it"):
        services.transfer_stock(bearing, van, warehouse, 1, actor=technician_a)
    assert (level(bearing, warehouse).on_hand, level(bearing, van).on_hand, level(bearing, colleagues).on_hand) == (
        8,
        2,
        4,
    )


def test_ledger_reconciles_after_every_kind_of_movement(
    org_a, bearing, oil, warehouse, van, job, storekeeper_a, technician_a
):
    services.receive_stock(bearing, warehouse, 20, "3", actor=storekeeper_a)
    services.receive_stock(oil, warehouse, "50", "2", actor=storekeeper_a)
    services.transfer_stock(bearing, warehouse, van, 5, actor=storekeeper_a)
    services.issue_to_work_order(job, bearing, van, 2, actor=technician_a)
    services.return_from_work_order(job, bearing, van, 1, actor=technician_a)
    services.adjust_stock(oil, warehouse, change="-1.5", reason="spill", actor=storekeeper_a)
    services.write_off(bearing, warehouse, 1, reason="rusted", actor=storekeeper_a)
    assert services.reconcile(org_a) == []
    StockLevel.objects.filter(part=bearing, location=warehouse).update(on_hand=99)  # tampering shows
    assert services.reconcile(org_a)[0]["difference"] == 99 - 14


def test_database_refuses_negative_stock(bearing, warehouse):
    from django.db import IntegrityError, transaction

    services.receive_stock(bearing, warehouse, 1, "1", actor=SYSTEM)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(part=bearing).update(on_hand=-1)


# --- reservations and low stock -----------------------------------------------------------------------


def test_reservations_change_availability_and_allow_shortage(
    bearing, warehouse, job, storekeeper_a, planner_a, technician_a
):
    services.receive_stock(bearing, warehouse, 10, "1", actor=storekeeper_a)
    services.reserve(job, bearing, warehouse, 4, actor=planner_a)
    assert services.available_quantity(bearing) == 6
    services.reserve(job, bearing, warehouse, 10, actor=planner_a)  # more than there is: a shortage
    assert level(bearing, warehouse).reserved == 14 and services.available_quantity(bearing) == -4
    suggestion = next(s for s in services.reorder_suggestions(job.organization) if s["part"] == bearing)
    assert suggestion["shortage"] == 4
    services.issue_to_work_order(job, bearing, warehouse, 3, actor=technician_a)
    assert level(bearing, warehouse).reserved == 11  # consumed as used
    wo_services.complete(job, actor=technician_a)
    assert level(bearing, warehouse).reserved == 0
    assert Reservation.objects.get().status == Reservation.Status.RELEASED


def test_low_stock_fires_once_per_crossing(org_a, bearing, warehouse, job, storekeeper_a, technician_a):
    services.receive_stock(bearing, warehouse, 8, "1", actor=storekeeper_a)  # reorder point 5

    def alerts():
        return Event.objects.filter(type="inventory:low-stock").count()

    services.issue_to_work_order(job, bearing, warehouse, 2, actor=technician_a)  # 6: above
    assert alerts() == 0
    services.issue_to_work_order(job, bearing, warehouse, 1, actor=technician_a)  # 5: crossed
    services.issue_to_work_order(job, bearing, warehouse, 1, actor=technician_a)  # 4: still low
    assert alerts() == 1
    assert Notification.objects.filter(recipient=storekeeper_a, kind="inventory:low-stock").count() == 1
    services.receive_stock(bearing, warehouse, 10, "1", actor=storekeeper_a)  # back up: re-armed
    services.issue_to_work_order(job, bearing, warehouse, 9, actor=technician_a)  # down again
    assert alerts() == 2


# --- purchasing ---------------------------------------------------------------------------------------


def test_purchase_order_received_in_two_parts(bearing, warehouse, vendor, storekeeper_a):
    services.receive_stock(bearing, warehouse, 10, "4.00", actor=storekeeper_a)
    order = services.create_purchase_order(
        bearing.organization,
        vendor=vendor,
        lines=[{"part": bearing, "quantity": 30, "unit_price": "6.00"}],
        actor=storekeeper_a,
    )
    assert order.number == "PO-000001"
    with pytest.raises(Conflict, match="only an ordered purchase order"):
        services.receive_purchase_order(order, location=warehouse, quantities={order.lines.get().pk: 1}, actor=SYSTEM)
    services.place_purchase_order(order, actor=storekeeper_a)
    line = order.lines.get()
    order = services.receive_purchase_order(order, location=warehouse, quantities={line.pk: 10}, actor=storekeeper_a)
    assert order.status == PurchaseOrder.Status.PARTLY_RECEIVED
    with pytest.raises(Conflict, match="20 outstanding"):
        services.receive_purchase_order(order, location=warehouse, quantities={line.pk: 21}, actor=storekeeper_a)
    order = services.receive_purchase_order(order, location=warehouse, quantities={line.pk: 20}, actor=storekeeper_a)
    assert order.status == PurchaseOrder.Status.RECEIVED
    bearing.refresh_from_db()
    assert level(bearing, warehouse).on_hand == 40 and bearing.average_cost == D("5.5000")
    assert StockMovement.objects.filter(purchase_order=order).count() == 2


def test_reorder_suggestions_become_purchase_orders_by_vendor(org_a, bearing, oil, warehouse, vendor, storekeeper_a):
    bearing.preferred_vendor = vendor
    bearing.save()
    suggestions = {s["part"].sku: s for s in services.reorder_suggestions(org_a)}
    assert suggestions["BRG-6205"]["quantity"] == 20 and suggestions["OIL-46"]["vendor"] is None
    orders, without_vendor = services.purchase_orders_from_suggestions(org_a, actor=storekeeper_a)
    assert [o.vendor for o in orders] == [vendor] and without_vendor == [oil]
    # what is on order no longer needs ordering
    assert "BRG-6205" not in {s["part"].sku for s in services.reorder_suggestions(org_a)}


def test_transfer_suggestions_refill_vans(bearing, warehouse, van, storekeeper_a):
    services.receive_stock(bearing, warehouse, 30, "1", actor=storekeeper_a)
    services.receive_stock(bearing, van, 1, "1", actor=storekeeper_a)
    StockLevel.objects.filter(part=bearing, location=van).update(min_quantity=4, max_quantity=10)
    [suggestion] = services.transfer_suggestions(bearing.organization)
    assert (suggestion["source"], suggestion["destination"], suggestion["quantity"]) == (warehouse, van, 9)


# --- cancelling work that holds parts -------------------------------------------------------------------


def test_cancelling_with_parts_issued_needs_a_disposition(
    bearing, warehouse, job, storekeeper_a, technician_a, planner_a
):
    services.receive_stock(bearing, warehouse, 5, "2", actor=storekeeper_a)
    services.issue_to_work_order(job, bearing, warehouse, 2, actor=technician_a)
    with pytest.raises(Conflict, match="has parts issued"):
        wo_services.cancel(job, reason="not needed", actor=planner_a)
    wo_services.cancel(job, reason="not needed", actor=planner_a, parts_disposition="return")
    assert level(bearing, warehouse).on_hand == 5
    assert wo_services.cost_totals(job)["parts"] == D("0.00")


def test_cancelling_with_write_off_keeps_the_parts_consumed(
    bearing, warehouse, job, storekeeper_a, technician_a, planner_a
):
    services.receive_stock(bearing, warehouse, 5, "2", actor=storekeeper_a)
    services.issue_to_work_order(job, bearing, warehouse, 2, actor=technician_a)
    wo_services.cancel(job, reason="scrapped", actor=planner_a, parts_disposition="write_off")
    assert level(bearing, warehouse).on_hand == 3
    assert wo_services.cost_totals(job)["parts"] == D("4.00")


def test_countable_reorder_point_must_be_whole(org_a, storekeeper_a):
    with pytest.raises(InvalidInput, match="whole numbers"):
        services.create_part(org_a, sku="X", name="x", unit="each", reorder_point="2.5", actor=storekeeper_a)
    assert not Part.objects.filter(sku="X").exists()
