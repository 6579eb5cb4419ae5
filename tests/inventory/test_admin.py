"""The inventory back office: parts with their stock, the stock actions (form → confirmation → services),
purchase orders, the read-only ledger, tenancy, and the CSV resource."""

from decimal import Decimal

import pytest
import tablib
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.admin import PartAdmin
from inventory.models import (
    MovementKind,
    Part,
    PurchaseOrder,
    Reservation,
    StockLevel,
    StockLocation,
    StockMovement,
    Vendor,
)
from inventory.resources import PartResource
from maintenance_site.tenancy import SYSTEM
from tests.admin_forms import form_data, page_text
from tests.conftest import make_user
from tests.inventory.conftest import ledger_state, on_hand
from workorders import services as wo_services

D = Decimal
PARTS = "/admin/inventory/part/"
ORDERS = "/admin/inventory/purchaseorder/"


# --- fixtures and helpers -----------------------------------------------------------------------------------------


@pytest.fixture
def store_client(client, storekeeper_a):
    client.force_login(storekeeper_a)
    return client


def run_action(client, action, selected, fields, url=PARTS):
    """The three steps of an intermediate action: the form, the confirmation, the confirmed POST."""
    base = {"action": action, "_selected_action": [str(pk) for pk in selected]}
    first = client.post(url, {**base, "index": "0"})
    assert first.status_code == 200, first.content[:500]
    review = client.post(url, {**base, **fields, "step": "review"})
    assert review.status_code == 200
    return first, review, client.post(url, {**base, **fields, "step": "confirm"})


# --- parts ------------------------------------------------------------------------------------------------------


def test_changelist_shows_stock_and_its_query_count_does_not_grow(client, storekeeper_a, org_a, warehouse, van):
    vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
    client.force_login(storekeeper_a)

    def add(start, count):
        for i in range(start, start + count):
            part = Part.objects.create(
                organization=org_a,
                sku=f"P{i:03d}",
                name=f"part {i}",
                category=f"C{i % 3}",
                preferred_vendor=vendor,
                reorder_point=3,
            )
            services.receive_stock(part, warehouse, 2 + i % 3, "1", actor=SYSTEM)
            services.receive_stock(part, van, 1, "1", actor=SYSTEM)

    def count_queries(query=""):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(PARTS + query)
            assert response.status_code == 200
        return len(ctx.captured_queries), response

    add(0, 5)
    small, response = count_queries()
    assert "P000" in response.content.decode()
    add(5, 45)
    large, response = count_queries()
    assert large == small
    assert response.content.decode().count('class="field-available_display') == 50
    # the low-stock filter: 2 + 1 = 3 available ≤ 3 for every third part
    low_small, low = count_queries("?stock=low")
    assert low.content.decode().count('class="field-available_display') == 17
    assert low_small == small


def test_add_part_goes_through_the_service(store_client, storekeeper_a, org_a):
    data = form_data(
        store_client.get(PARTS + "add/"),
        sku="SEAL-35",
        name="Mechanical seal 35",
        unit="each",
        reorder_point="2",
        reorder_quantity="4",
        lead_time_days="14",
    )
    response = store_client.post(PARTS + "add/", data)
    assert response.status_code == 302, page_text(response)[-3000:]
    part = Part.objects.get(sku="SEAL-35")
    assert part.organization == org_a
    assert part.history.first().history_user == storekeeper_a


def test_fraction_for_a_countable_part_is_a_form_error(store_client):
    data = form_data(
        store_client.get(PARTS + "add/"),
        sku="X-1",
        name="x",
        unit="each",
        reorder_point="2.5",
        reorder_quantity="1",
        lead_time_days="7",
    )
    response = store_client.post(PARTS + "add/", data)
    assert response.status_code == 200
    assert "counted in whole numbers" in page_text(response)
    assert not Part.objects.filter(sku="X-1").exists()


def test_stock_inline_shows_levels_and_sets_limits_through_the_service(store_client, stocked, van):
    page = store_client.get(f"{PARTS}{stocked.pk}/change/")
    assert page.status_code == 200
    text = page_text(page)
    assert "Van 3" in text and "Warehouse" in text
    data = form_data(page)
    index = next(i for i in range(2) if data.get(f"levels-{i}-id") == str(StockLevel.objects.get(location=van).pk))
    before = ledger_state()

    refused = store_client.post(
        f"{PARTS}{stocked.pk}/change/",
        {**data, f"levels-{index}-min_quantity": "4", f"levels-{index}-max_quantity": "2"},
    )
    assert refused.status_code == 200 and "cannot be below the minimum" in page_text(refused)
    assert ledger_state() == before

    saved = store_client.post(
        f"{PARTS}{stocked.pk}/change/",
        {**data, f"levels-{index}-min_quantity": "2", f"levels-{index}-max_quantity": "6"},
    )
    assert saved.status_code == 302, page_text(saved)[-2000:]
    level = StockLevel.objects.get(part=stocked, location=van)
    assert (level.min_quantity, level.max_quantity, level.on_hand) == (2, 6, 2)


def test_unit_of_a_part_with_movements_cannot_change(store_client, stocked):
    data = form_data(store_client.get(f"{PARTS}{stocked.pk}/change/"), unit="box")
    response = store_client.post(f"{PARTS}{stocked.pk}/change/", data)
    assert response.status_code == 200 and "its unit can no longer change" in page_text(response)
    stocked.refresh_from_db()
    assert stocked.unit == "each"


def test_deleting_a_part_with_movements_is_refused(store_client, stocked):
    response = store_client.post(f"{PARTS}{stocked.pk}/delete/", {"post": "yes"})
    assert response.status_code in (200, 302)
    assert Part.objects.filter(pk=stocked.pk).exists()


def test_deleting_a_part_without_movements(store_client, bearing):
    response = store_client.post(f"{PARTS}{bearing.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Part.objects.filter(pk=bearing.pk).exists()


# --- stock actions ---------------------------------------------------------------------------------------------------


def test_receive_stock_through_the_admin_form(store_client, storekeeper_a, stocked, oil_in_stock, oil, warehouse):
    first, review, done = run_action(
        store_client,
        "receive_stock",
        [stocked.pk, oil.pk],
        {
            "location": warehouse.pk,
            "reason": "Delivery 4711",
            f"quantity-{stocked.pk}": "6",
            f"unit_cost-{stocked.pk}": "5.00",
            f"quantity-{oil.pk}": "",
        },
    )
    assert "Receive stock" in page_text(first) and f'name="quantity-{oil.pk}"' in first.content.decode()
    assert "Receive 6 each of BRG-6205 Ball bearing 6205 at Warehouse (unit cost 5)" in page_text(review)
    assert "Yes, receive" in page_text(review)
    assert done.status_code == 302
    assert on_hand(stocked, warehouse) == 18 and on_hand(oil, warehouse) == 30  # the empty row is left out
    movement = StockMovement.objects.filter(part=stocked).first()
    assert (movement.kind, movement.quantity, movement.user, movement.reason) == (
        MovementKind.RECEIPT,
        6,
        storekeeper_a,
        "Delivery 4711",
    )
    stocked.refresh_from_db()
    assert stocked.average_cost == D("4.3000")  # (14 × 4 + 6 × 5) / 20
    messages = page_text(store_client.get(PARTS))
    assert "Received 1 part(s) at Warehouse." in messages


def test_invalid_action_form_shows_errors_and_writes_nothing(store_client, stocked, warehouse):
    before = ledger_state()
    base = {"action": "receive_stock", "_selected_action": [str(stocked.pk)]}
    response = store_client.post(
        PARTS, {**base, "step": "review", "location": warehouse.pk, f"quantity-{stocked.pk}": "1.5"}
    )
    assert response.status_code == 200
    assert "counted in whole units" in page_text(response)
    # a tampered confirmation is checked again
    response = store_client.post(
        PARTS, {**base, "step": "confirm", "location": warehouse.pk, f"quantity-{stocked.pk}": "0"}
    )
    assert response.status_code == 200 and "more than zero" in page_text(response)
    response = store_client.post(PARTS, {**base, "step": "review", "location": warehouse.pk})
    assert "Enter a quantity for at least one row" in page_text(response)
    assert ledger_state() == before


def test_refused_write_off_shows_the_message_and_changes_nothing(
    store_client, stocked, oil_in_stock, oil, van, warehouse
):
    before = ledger_state()
    _, review, done = run_action(
        store_client,
        "write_off",
        [stocked.pk, oil.pk],
        {
            "location": van.pk,
            "reason": "Water damage",
            f"quantity-{stocked.pk}": "1",
            f"quantity-{oil.pk}": "5",
        },
    )
    assert "Write off 1 each of BRG-6205" in page_text(review)
    # the bearing alone would have worked: nothing of the batch is written
    assert done.status_code == 200
    text = page_text(done)
    assert "Nothing was changed: None left in Van 3 (OIL-46 Hydraulic oil ISO 46; you asked for 5 litre)." in text
    assert "Also available: Warehouse (30)." in text
    assert ledger_state() == before


def test_write_off(store_client, stocked, warehouse):
    *_, done = run_action(
        store_client,
        "write_off",
        [stocked.pk],
        {"location": warehouse.pk, "reason": "Rusty", f"quantity-{stocked.pk}": "2"},
    )
    assert done.status_code == 302
    assert on_hand(stocked, warehouse) == 10
    assert StockMovement.objects.filter(kind=MovementKind.WRITE_OFF, reason="Rusty").count() == 1


def test_adjust_by_count_and_by_change(store_client, stocked, oil_in_stock, oil, warehouse):
    _, review, done = run_action(
        store_client,
        "adjust_stock",
        [stocked.pk, oil.pk],
        {
            "location": warehouse.pk,
            "mode": "counted",
            "reason": "Cycle count",
            f"value-{stocked.pk}": "10",
            f"value-{oil.pk}": "30",
        },
    )
    assert "BRG-6205 Ball bearing 6205 at Warehouse: 12 on the books → 10 (-2)" in page_text(review)
    assert done.status_code == 302
    assert on_hand(stocked, warehouse) == 10 and on_hand(oil, warehouse) == 30
    assert StockMovement.objects.filter(kind=MovementKind.ADJUSTMENT).count() == 1  # oil matched the books
    *_, done = run_action(
        store_client,
        "adjust_stock",
        [oil.pk],
        {"location": warehouse.pk, "mode": "change", "reason": "Found a can", f"value-{oil.pk}": "-2.5"},
    )
    assert done.status_code == 302 and on_hand(oil, warehouse) == D("27.5")


def test_transfer(store_client, stocked, warehouse, van):
    *_, done = run_action(
        store_client,
        "transfer_stock",
        [stocked.pk],
        {"source": warehouse.pk, "destination": van.pk, f"quantity-{stocked.pk}": "4"},
    )
    assert done.status_code == 302
    assert (on_hand(stocked, warehouse), on_hand(stocked, van)) == (8, 6)
    base = {"action": "transfer_stock", "_selected_action": [str(stocked.pk)], "step": "review"}
    response = store_client.post(
        PARTS, {**base, "source": van.pk, "destination": van.pk, f"quantity-{stocked.pk}": "1"}
    )
    assert "Choose another location than the source" in page_text(response)


def test_actions_need_the_write_action(client, org_a, stocked, warehouse, planner_a):
    client.force_login(planner_a)  # back office, but no adjust_stock
    assert client.get(PARTS).status_code == 200
    assert client.get(PARTS + "add/").status_code == 403
    assert "Receive stock…" not in page_text(client.get(PARTS))
    before = ledger_state()
    fields = {"location": warehouse.pk, f"quantity-{stocked.pk}": "1", "step": "confirm"}
    response = client.post(PARTS, {"action": "receive_stock", "_selected_action": [str(stocked.pk)], **fields})
    assert response.status_code in (200, 302)
    assert ledger_state() == before


# --- tenancy ----------------------------------------------------------------------------------------------------------


def test_another_organisations_part_is_a_404(store_client, org_b, manager_b, warehouse):
    part_b = Part.objects.create(organization=org_b, sku="B-1", name="B's part")
    location_b = StockLocation.objects.create(organization=org_b, name="B store")
    services.receive_stock(part_b, location_b, 5, "1", actor=manager_b)
    assert store_client.get(f"{PARTS}{part_b.pk}/change/").status_code == 404
    assert store_client.get(f"{PARTS}{part_b.pk}/history/").status_code == 404
    assert store_client.get(f"/admin/inventory/stocklocation/{location_b.pk}/change/").status_code == 404
    movement = StockMovement.objects.get(part=part_b)
    assert store_client.get(f"/admin/inventory/stockmovement/{movement.pk}/change/").status_code == 404
    assert "B-1" not in page_text(store_client.get(PARTS))
    # selecting it in an action: it is not among the rows the action gets
    before = ledger_state()
    fields = {"location": warehouse.pk, "reason": "x", f"quantity-{part_b.pk}": "1", "step": "confirm"}
    response = store_client.post(PARTS, {"action": "write_off", "_selected_action": [str(part_b.pk)], **fields})
    assert response.status_code == 302
    assert ledger_state() == before


def test_location_choices_are_the_organisations_active_ones(store_client, stocked, org_b, warehouse, org_a):
    StockLocation.objects.create(organization=org_b, name="B store")
    StockLocation.objects.create(organization=org_a, name="Closed shelf", is_active=False)
    first = store_client.post(PARTS, {"action": "receive_stock", "_selected_action": [str(stocked.pk)], "index": "0"})
    text = page_text(first)
    assert "Warehouse" in text and "B store" not in text and "Closed shelf" not in text


# --- the ledger and reservations: read-only ------------------------------------------------------------------------


def test_ledger_admin_is_read_only_for_everyone(client, stocked, org_a):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    movement = StockMovement.objects.first()
    assert client.get("/admin/inventory/stockmovement/").status_code == 200
    assert client.get("/admin/inventory/stockmovement/?kind=receipt").status_code == 200
    assert client.get("/admin/inventory/stockmovement/add/").status_code == 403
    assert client.post(f"/admin/inventory/stockmovement/{movement.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get(f"/admin/inventory/stockmovement/{movement.pk}/change/")
    assert page.status_code == 200 and 'name="quantity"' not in page.content.decode()
    response = client.post(f"/admin/inventory/stockmovement/{movement.pk}/change/", {"quantity": "99"})
    assert response.status_code == 403
    assert StockMovement.objects.get(pk=movement.pk).quantity == movement.quantity


def test_ledger_changelist_query_count_does_not_grow(store_client, org_a, warehouse, bearing):
    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert store_client.get("/admin/inventory/stockmovement/").status_code == 200
        return len(ctx.captured_queries)

    for _ in range(3):
        services.receive_stock(bearing, warehouse, 1, "1", actor=SYSTEM)
    small = count_queries()
    for _ in range(30):
        services.receive_stock(bearing, warehouse, 1, "1", actor=SYSTEM)
    assert count_queries() == small


def test_reservations_are_read_only(store_client, planner_a, technician_a, org_a, stocked, warehouse):
    order = wo_services.create_work_order(org_a, title="Job", actor=planner_a, assignee=technician_a)
    reservation = services.reserve(order, stocked, warehouse, 2, actor=planner_a)
    assert store_client.get("/admin/inventory/reservation/").status_code == 200
    assert store_client.get("/admin/inventory/reservation/add/").status_code == 403
    store_client.post(f"/admin/inventory/reservation/{reservation.pk}/change/", {"quantity": "9"})
    assert Reservation.objects.get(pk=reservation.pk).quantity == 2


# --- locations and vendors ------------------------------------------------------------------------------------------


def test_location_with_stock_cannot_be_retired(store_client, stocked, van):
    data = form_data(store_client.get(f"/admin/inventory/stocklocation/{van.pk}/change/"), is_active=None)
    response = store_client.post(f"/admin/inventory/stocklocation/{van.pk}/change/", data, follow=True)
    assert "still holds 2 × BRG-6205" in page_text(response)
    assert StockLocation.objects.get(pk=van.pk).is_active


def test_vendor_with_its_parts_through_the_services(store_client, storekeeper_a, bearing, org_a):
    data = form_data(
        store_client.get("/admin/inventory/vendor/add/"),
        name="Bearings Ltd",
        **{
            "parts-TOTAL_FORMS": "1",
            "parts-0-part": str(bearing.pk),
            "parts-0-vendor_sku": "6205-2RS",
            "parts-0-price": "3.95",
            "parts-0-lead_time_days": "3",
        },
    )
    response = store_client.post("/admin/inventory/vendor/add/", data)
    assert response.status_code == 302, page_text(response)[-2000:]
    vendor = Vendor.objects.get(name="Bearings Ltd")
    assert vendor.organization == org_a and vendor.history.first().history_user == storekeeper_a
    offer = vendor.parts.get()
    assert (offer.part, offer.price, offer.vendor_sku) == (bearing, D("3.95"), "6205-2RS")


# --- purchase orders ------------------------------------------------------------------------------------------------


@pytest.fixture
def vendor(org_a, bearing):
    vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
    services.create_vendor_part(org_a, vendor=vendor, part=bearing, price="3.50", actor=SYSTEM)
    return vendor


def test_purchase_order_created_with_lines_placed_received_and_cancelled(
    store_client, storekeeper_a, org_a, vendor, bearing, oil, warehouse, van
):
    data = form_data(
        store_client.get(ORDERS + "add/"),
        vendor=str(vendor.pk),
        notes="Urgent",
        **{
            "lines-0-part": str(bearing.pk),
            "lines-0-quantity": "10",
            "lines-0-unit_price": "",
        },
    )
    response = store_client.post(ORDERS + "add/", data)
    assert response.status_code == 302, page_text(response)[-3000:]
    order = PurchaseOrder.objects.get()
    assert order.status == "draft" and order.created_by == storekeeper_a and order.number.startswith("PO-")
    line = order.lines.get()
    assert (line.part, line.quantity, line.unit_price) == (bearing, 10, D("3.5"))  # the vendor's price

    response = store_client.post(ORDERS, {"action": "place_orders", "_selected_action": [str(order.pk)], "index": "0"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == "ordered"
    # once ordered the lines are read-only
    page = store_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert 'name="lines-0-quantity"' not in page

    _, review, done = run_action(
        store_client, "receive_order", [order.pk], {"location": warehouse.pk, f"quantity-{line.pk}": "4"}, url=ORDERS
    )
    assert f"{order.number}: receive 4 × BRG-6205 at Warehouse" in page_text(review)
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == "partly_received" and on_hand(bearing, warehouse) == 4
    bearing.refresh_from_db()
    assert bearing.average_cost == D("3.5000")

    before = ledger_state()
    _, _, refused = run_action(
        store_client, "receive_order", [order.pk], {"location": van.pk, f"quantity-{line.pk}": "7"}, url=ORDERS
    )
    assert refused.status_code == 200 and "Nothing was changed: Line BRG-6205: 6 outstanding" in page_text(refused)
    assert ledger_state() == before

    _, _, done = run_action(store_client, "cancel_orders", [order.pk], {"reason": "Supplier closed"}, url=ORDERS)
    assert done.status_code == 200 and "partly received: it can no longer be cancelled" in page_text(done)
    other = services.place_purchase_order(
        services.create_purchase_order(org_a, vendor=vendor, lines=[{"part": oil, "quantity": 5}], actor=SYSTEM),
        actor=SYSTEM,
    )
    _, review, done = run_action(store_client, "cancel_orders", [other.pk], {"reason": "Supplier closed"}, url=ORDERS)
    assert f"Cancel {other.number}" in page_text(review)
    assert done.status_code == 302
    other.refresh_from_db()
    assert other.status == "cancelled" and other.history.first().history_change_reason == "Supplier closed"


def test_purchase_order_needs_a_line_and_whole_numbers_for_countable_parts(store_client, vendor, bearing):
    data = form_data(store_client.get(ORDERS + "add/"), vendor=str(vendor.pk))
    response = store_client.post(ORDERS + "add/", data)
    assert response.status_code == 200 and "A purchase order needs at least one line." in page_text(response)
    data.update({"lines-0-part": str(bearing.pk), "lines-0-quantity": "1.5"})
    response = store_client.post(ORDERS + "add/", data)
    assert response.status_code == 200 and "whole units" in page_text(response)
    assert PurchaseOrder.objects.count() == 0


def test_purchase_order_actions_are_offered_to_purchasers_only(client, org_a, planner_a, vendor, bearing):
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role

    buyer = make_user("buyer", is_staff=True)
    tenancy.add_member(org_a, buyer, Role.MANAGER)
    client.force_login(buyer)
    actions = page_text(client.get(ORDERS))
    assert "Receive…" in actions and "Place (send to the vendor)" in actions and "Cancel…" in actions
    client.force_login(planner_a)  # back office, but neither manage_purchasing nor adjust_stock
    page = client.get(ORDERS)
    assert page.status_code == 200 and "Receive…" not in page_text(page) and "Place (send" not in page_text(page)


# --- CSV import / export -------------------------------------------------------------------------------------------


def test_part_admin_offers_the_csv_resource():
    assert PartAdmin.resource_classes == [PartResource]


def test_csv_import_reports_row_errors_and_writes_nothing(org_a, storekeeper_a, vendor, org_b):
    services.create_vendor(org_b, name="B's vendor", actor=SYSTEM)
    dataset = tablib.Dataset(headers=["sku", "name", "unit", "preferred_vendor", "reorder_point", "reorder_quantity"])
    dataset.append(["NEW-1", "Bearing 6206", "each", "bearings ltd", "4", "10"])
    dataset.append(["NEW-2", "Unknown vendor", "each", "Nobody GmbH", "1", "1"])
    dataset.append(["NEW-3", "Half a seal", "Each", "", "2.5", "1"])
    dataset.append(["NEW-4", "Other org's vendor", "each", "B's vendor", "1", "1"])
    dataset.append(["NEW-5", "Oil", "Litre", "", "2.5", "abc"])
    result = PartResource(organization=org_a, actor=storekeeper_a).import_data(
        dataset, dry_run=False, raise_errors=False, rollback_on_validation_errors=True
    )
    assert result.has_validation_errors()
    errors = {row.number: row.error_dict for row in result.invalid_rows}
    assert set(errors) == {2, 3, 4, 5}
    assert "No vendor named “Nobody GmbH”" in str(errors[2]["preferred_vendor"])
    assert "whole numbers" in str(errors[3]["reorder_point"])
    assert "No vendor named “B's vendor”" in str(errors[4]["preferred_vendor"])
    assert "not a number" in str(errors[5]["reorder_quantity"])
    assert not Part.objects.filter(sku__startswith="NEW-").exists()  # all rows or none


def test_csv_import_creates_and_updates_through_the_services(org_a, storekeeper_a, vendor, bearing, org_b):
    Part.objects.create(organization=org_b, sku="NEW-1", name="B's part with the same SKU")
    dataset = tablib.Dataset(headers=["sku", "name", "unit", "preferred_vendor", "reorder_point"])
    dataset.append(["NEW-1", "Bearing 6206", "each", "Bearings Ltd", "4"])
    dataset.append(["BRG-6205", "Ball bearing 6205-2RS", "", "", "6"])
    dataset.append(["CBL-1", "Cable 3G1.5", "metre", "", "12.5"])
    result = PartResource(organization=org_a, actor=storekeeper_a).import_data(dataset, dry_run=False)
    assert not result.has_errors() and not result.has_validation_errors()
    created = Part.objects.get(organization=org_a, sku="NEW-1")
    assert created.preferred_vendor == vendor and created.history.first().history_user == storekeeper_a
    bearing.refresh_from_db()
    assert (bearing.name, bearing.reorder_point, bearing.unit) == ("Ball bearing 6205-2RS", 6, "each")
    assert Part.objects.get(organization=org_a, sku="CBL-1").reorder_point == D("12.5")
    assert Part.objects.get(organization=org_b, sku="NEW-1").name == "B's part with the same SKU"


def test_csv_export_has_the_stock_and_only_the_organisations_parts(
    org_a, org_b, stocked, oil_in_stock, warehouse, storekeeper_a
):
    Part.objects.create(organization=org_b, sku="B-1", name="B's part")
    order = wo_services.create_work_order(org_a, title="Job", actor=SYSTEM)
    services.reserve(order, stocked, warehouse, 3, actor=SYSTEM)
    exported = PartResource(organization=org_a).export()
    rows = {row["sku"]: row for row in exported.dict}
    assert set(rows) == {"BRG-6205", "OIL-46"}
    assert (rows["BRG-6205"]["on_hand"], rows["BRG-6205"]["reserved"], rows["BRG-6205"]["available"]) == (
        "14",
        "3",
        "11",
    )
    assert rows["OIL-46"]["unit"] == "litre"
