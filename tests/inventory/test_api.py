"""The inventory API: parts with their stock, usage and returns, the ledger, stock operations, reservations,
suggestions, vendors, purchase orders and reconciliation; tenancy, roles, bad input and query counts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assets import services as asset_services
from inventory import services
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
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy import SYSTEM
from tests.conftest import _member
from tests.inventory.conftest import ledger_state, on_hand
from workorders import services as wo_services

D = Decimal
BASE = "/api/v1/inventory"


def error_of(response) -> dict:
    return response.json()["error"]


# --- parts: CRUD, stock, filters, search --------------------------------------------------------------------------


class TestParts:
    def test_create_read_update_delete(self, api, storekeeper_a, org_a):
        client = api(storekeeper_a)
        kind = asset_services.create_asset_type(org_a, name="Pump")
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        body = {
            "sku": "SEAL-35",
            "name": "Mechanical seal 35 mm",
            "unit": "each",
            "category": "Seals",
            "preferred_vendor": vendor.pk,
            "compatible_asset_types": [kind.pk],
            "reorder_point": "2",
            "reorder_quantity": "6",
            "manufacturer_part_number": "MG1-35",
        }
        created = client.post(f"{BASE}/parts/", body)
        assert created.status_code == 201, created.json()
        data = created.json()
        assert data["sku"] == "SEAL-35" and data["preferred_vendor_name"] == "Bearings Ltd"
        assert data["compatible_asset_types"] == [kind.pk]
        assert D(data["available"]) == 0 and data["stock"] == [] and data["is_low"] is True
        part = Part.objects.get(pk=data["id"])
        assert part.organization == org_a
        assert part.history.first().history_user == storekeeper_a

        detail = client.get(f"{BASE}/parts/{part.pk}/")
        assert detail.status_code == 200 and detail["ETag"]
        updated = client.patch(f"{BASE}/parts/{part.pk}/", {"name": "Seal 35", "reorder_point": "1"})
        assert updated.status_code == 200, updated.json()
        assert updated.json()["name"] == "Seal 35" and updated["ETag"] != detail["ETag"]

        assert client.delete(f"{BASE}/parts/{part.pk}/").status_code == 204
        assert not Part.objects.filter(pk=part.pk).exists()

    def test_detail_has_stock_per_location_and_the_vendors(self, api, viewer_a, stocked, warehouse, van, org_a):
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        services.create_vendor_part(
            org_a, vendor=vendor, part=stocked, vendor_sku="6205-2RS", price="3.90", actor=SYSTEM
        )
        data = api(viewer_a).get(f"{BASE}/parts/{stocked.pk}/").json()
        assert (D(data["on_hand"]), D(data["reserved"]), D(data["available"])) == (14, 0, 14)
        assert D(data["average_cost"]) == D("4")
        stock = {row["location_name"]: D(row["on_hand"]) for row in data["stock"]}
        assert stock == {"Van 3": 2, "Warehouse": 12}
        assert data["vendors"][0]["vendor_sku"] == "6205-2RS" and data["vendors"][0]["price"] == "3.9000"

    def test_list_shows_available_after_reservations(self, api, viewer_a, stocked, warehouse, job, planner_a):
        services.reserve(job, stocked, warehouse, 3, actor=planner_a)
        rows = api(viewer_a).get(f"{BASE}/parts/").json()["results"]
        row = next(r for r in rows if r["sku"] == "BRG-6205")
        assert (D(row["on_hand"]), D(row["reserved"]), D(row["available"])) == (14, 3, 11)
        assert "stock" not in row  # per location only in the detail

    def test_a_fraction_for_a_countable_unit_is_refused(self, api, storekeeper_a):
        response = api(storekeeper_a).post(
            f"{BASE}/parts/", {"sku": "X", "name": "x", "unit": "each", "reorder_point": "2.5"}
        )
        assert response.status_code == 400
        assert "whole numbers" in error_of(response)["fields"]["reorder_point"][0]

    def test_duplicate_sku_is_a_400(self, api, storekeeper_a, bearing):
        response = api(storekeeper_a).post(f"{BASE}/parts/", {"sku": "BRG-6205", "name": "again"})
        assert response.status_code == 400
        assert "already exists" in error_of(response)["fields"]["sku"][0]

    def test_another_organisations_vendor_does_not_exist(self, api, storekeeper_a, org_b):
        vendor_b = services.create_vendor(org_b, name="B's vendor", actor=SYSTEM)
        response = api(storekeeper_a).post(f"{BASE}/parts/", {"sku": "X", "name": "x", "preferred_vendor": vendor_b.pk})
        assert response.status_code == 400
        assert "does not exist" in error_of(response)["fields"]["preferred_vendor"][0]

    def test_a_part_with_movements_cannot_be_deleted(self, api, storekeeper_a, stocked):
        response = api(storekeeper_a).delete(f"{BASE}/parts/{stocked.pk}/")
        assert response.status_code == 409
        assert "mark it inactive" in error_of(response)["message"]

    def test_unit_is_locked_once_there_are_movements(self, api, storekeeper_a, stocked):
        response = api(storekeeper_a).patch(f"{BASE}/parts/{stocked.pk}/", {"unit": "box"})
        assert response.status_code == 409 and error_of(response)["code"] == "unit_locked"

    def test_filters_and_search(self, api, viewer_a, org_a, stocked, oil, warehouse, storekeeper_a):
        kind = asset_services.create_asset_type(org_a, name="Conveyor")
        vendor = services.create_vendor(org_a, name="Lubes Inc", actor=SYSTEM)
        other_vendor = services.create_vendor(org_a, name="Seals Co", actor=SYSTEM)
        services.update_part(oil, compatible_asset_types=[kind], preferred_vendor=other_vendor, actor=SYSTEM)
        services.create_vendor_part(org_a, vendor=vendor, part=oil, price="3.10", actor=SYSTEM)
        Part.objects.create(
            organization=org_a,
            sku="OLD-1",
            name="Retired gasket",
            unit="each",
            is_active=False,
            manufacturer_part_number="GK-77",
        )
        services.receive_stock(oil, warehouse, 40, "3.00", actor=storekeeper_a)
        client = api(viewer_a)

        def skus(query):
            response = client.get(f"{BASE}/parts/", query)
            assert response.status_code == 200, response.json()
            return sorted(row["sku"] for row in response.json()["results"])

        assert skus({"category": "bearings"}) == ["BRG-6205"]
        assert skus({"unit": "litre"}) == ["OIL-46"]
        assert skus({"is_active": "false"}) == ["OLD-1"]
        assert skus({"vendor": vendor.pk}) == ["OIL-46"]  # sells it
        assert skus({"vendor": other_vendor.pk}) == ["OIL-46"]  # preferred
        assert skus({"compatible_asset_type": kind.pk}) == ["OIL-46"]
        assert skus({"search": "gk-77"}) == ["OLD-1"]
        assert skus({"search": "6205"}) == ["BRG-6205"]
        assert skus({"search": "hydraulic"}) == ["OIL-46"]
        # 14 bearings > 5; 40 l oil > 10; the retired gasket has 0 ≤ 0
        assert skus({"low_stock": "true"}) == ["OLD-1"]
        services.issue_to_work_order(
            wo_services.create_work_order(org_a, title="Oil change", actor=SYSTEM),
            oil,
            warehouse,
            35,
            actor=storekeeper_a,
        )
        assert skus({"low_stock": "true"}) == ["OIL-46", "OLD-1"]
        assert skus({"low_stock": "false"}) == ["BRG-6205"]
        assert [r["sku"] for r in client.get(f"{BASE}/parts/?ordering=-available").json()["results"]][0] == "BRG-6205"

    def test_another_organisations_filter_value_is_a_400(self, api, viewer_a, org_b, bearing):
        vendor_b = services.create_vendor(org_b, name="B's vendor", actor=SYSTEM)
        response = api(viewer_a).get(f"{BASE}/parts/", {"vendor": vendor_b.pk})
        assert response.status_code == 400

    def test_list_query_count_is_the_same_for_5_and_100_parts(self, api, viewer_a, org_a, warehouse, van):
        client = api(viewer_a)
        kind = asset_services.create_asset_type(org_a, name="Pump")
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)

        def add(count, start):
            for i in range(start, start + count):
                part = Part.objects.create(
                    organization=org_a, sku=f"P{i:04d}", name=f"part {i}", preferred_vendor=vendor
                )
                part.compatible_asset_types.add(kind)
                services.receive_stock(part, warehouse, 3, "1", actor=SYSTEM)
                services.receive_stock(part, van, 1, "1", actor=SYSTEM)

        def count_queries():
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(f"{BASE}/parts/?page_size=200")
                assert response.status_code == 200
            return len(ctx.captured_queries), response.json()

        add(5, 0)
        small, body = count_queries()
        assert body["count"] == 5 and D(body["results"][0]["available"]) == 4
        add(95, 5)
        large, body = count_queries()
        assert body["count"] == 100
        assert large == small

    def test_detail_query_count_does_not_grow_with_locations(self, api, viewer_a, org_a, bearing):
        client = api(viewer_a)

        def count_queries():
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(f"{BASE}/parts/{bearing.pk}/").status_code == 200
            return len(ctx.captured_queries)

        for i in range(2):
            services.receive_stock(
                bearing, StockLocation.objects.create(organization=org_a, name=f"L{i}"), 1, "1", actor=SYSTEM
            )
        small = count_queries()
        for i in range(2, 12):
            services.receive_stock(
                bearing, StockLocation.objects.create(organization=org_a, name=f"L{i}"), 1, "1", actor=SYSTEM
            )
        assert count_queries() == small


class TestLowStock:
    def test_lists_parts_at_or_below_reorder_point_with_reserved_and_on_order(
        self, api, viewer_a, org_a, stocked, oil, warehouse, job, planner_a, storekeeper_a
    ):
        vendor = services.create_vendor(org_a, name="Lubes Inc", actor=SYSTEM)
        services.receive_stock(oil, warehouse, 8, "3.00", actor=storekeeper_a)  # 8 ≤ 10
        services.reserve(job, oil, warehouse, 2, actor=planner_a)
        order = services.create_purchase_order(
            org_a, vendor=vendor, lines=[{"part": oil, "quantity": 60}], actor=SYSTEM
        )
        services.place_purchase_order(order, actor=SYSTEM)
        Part.objects.create(organization=org_a, sku="RET-1", name="retired", is_active=False)
        response = api(viewer_a).get(f"{BASE}/parts/low-stock/")
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [row["sku"] for row in rows] == ["OIL-46"]
        row = rows[0]
        assert (D(row["on_hand"]), D(row["reserved"]), D(row["available"]), D(row["on_order"])) == (8, 2, 6, 60)
        assert D(row["reorder_point"]) == 10


# --- usage (issue to a work order), returns, history -------------------------------------------------------------


class TestUsage:
    def test_technician_records_usage_on_own_work(self, api, technician_a, stocked, van, job):
        response = api(technician_a).post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 2}
        )
        assert response.status_code == 201, response.json()
        movement = response.json()
        assert movement["kind"] == "issue" and D(movement["quantity"]) == -2
        assert movement["work_order_number"] == job.number and movement["user"] == technician_a.pk
        assert on_hand(stocked, van) == 0
        assert wo_services.cost_totals(job)["parts"] == D("8.00")

    def test_more_than_there_is_is_a_409_that_says_how_many_and_where(self, api, technician_a, stocked, van, job):
        before = ledger_state()
        response = api(technician_a).post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 3}
        )
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "insufficient_stock"
        assert error["message"].startswith("Only 2 left in Van 3")
        assert "Also available: Warehouse (12)" in error["message"]
        assert D(error["available"]) == 2
        assert {row["location"] for row in error["locations"]} == {"Van 3", "Warehouse"}
        assert ledger_state() == before

    @pytest.mark.parametrize(
        ("quantity", "words"),
        [
            (0, "more than zero"),
            (-1, "more than zero"),
            ("1.5", "whole units"),
            ("lots", "not a quantity"),
            ("", "may not be blank"),
            ("1e30", "too large"),
            ("999999999999", "too large"),  # 12 integer digits: the ledger holds 11
        ],
    )
    def test_bad_quantities_are_400_and_change_nothing(self, api, technician_a, stocked, van, job, quantity, words):
        before = ledger_state()
        response = api(technician_a).post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": quantity}
        )
        assert response.status_code == 400, response.json()
        assert words in error_of(response)["message"]
        assert "quantity" in error_of(response)["fields"]
        assert ledger_state() == before

    def test_unknown_location_and_work_order_do_not_exist(self, api, technician_a, stocked, van, job):
        before = ledger_state()
        response = api(technician_a).post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": 999999, "location": 999999, "quantity": 1}
        )
        assert response.status_code == 400
        fields = error_of(response)["fields"]
        assert "does not exist" in fields["work_order"][0] and "does not exist" in fields["location"][0]
        assert ledger_state() == before

    def test_unknown_part_is_a_404(self, api, technician_a, stocked, van, job):
        before = ledger_state()
        response = api(technician_a).post(
            f"{BASE}/parts/999999/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 404
        assert ledger_state() == before

    def test_another_organisations_part_location_or_work_order(self, api, technician_a, stocked, van, job, other):
        client = api(technician_a)
        before = ledger_state()
        response = client.post(
            f"{BASE}/parts/{other['part'].pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 404
        response = client.post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": other["location"].pk, "quantity": 1}
        )
        assert response.status_code == 400
        assert "does not exist" in error_of(response)["fields"]["location"][0]
        response = client.post(
            f"{BASE}/parts/{stocked.pk}/usage/",
            {"work_order": other["work_order"].pk, "location": van.pk, "quantity": 1},
        )
        assert response.status_code == 400
        assert "does not exist" in error_of(response)["fields"]["work_order"][0]
        assert ledger_state() == before

    @pytest.mark.parametrize("closing", ["complete", "cancel"])
    def test_closed_work_order_is_a_409(self, api, storekeeper_a, technician_a, planner_a, stocked, van, job, closing):
        if closing == "complete":
            wo_services.complete(job, actor=technician_a)
        else:
            wo_services.cancel(job, reason="Not needed", actor=planner_a)
        before = ledger_state()
        response = api(storekeeper_a).post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 409
        assert error_of(response)["code"] == "work_order_closed"
        assert "parts can no longer be issued" in error_of(response)["message"]
        assert ledger_state() == before

    def test_technician_may_not_use_parts_on_someone_elses_work(self, api, org_a, planner_a, stocked, van):
        colleague = _member(org_a, "tech-2", "technician")
        order = wo_services.create_work_order(org_a, title="Not yours", actor=planner_a, assignee=colleague)
        before = ledger_state()
        tech = _member(org_a, "tech-3", "technician")
        response = api(tech).post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": order.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 403
        assert ledger_state() == before

    def test_a_replayed_client_id_applies_once(self, api, technician_a, stocked, warehouse, job):
        client = api(technician_a)
        body = {"work_order": job.pk, "location": warehouse.pk, "quantity": 1, "client_id": "phone-1:42"}
        first = client.post(f"{BASE}/parts/{stocked.pk}/usage/", body)
        second = client.post(f"{BASE}/parts/{stocked.pk}/usage/", body)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        assert on_hand(stocked, warehouse) == 11

    def test_usage_lists_issues_and_returns_per_work_order(
        self, api, viewer_a, org_a, storekeeper_a, stocked, warehouse, van, job
    ):
        second = wo_services.create_work_order(org_a, title="Second job", actor=SYSTEM)
        services.issue_to_work_order(job, stocked, warehouse, 3, actor=storekeeper_a)
        services.issue_to_work_order(job, stocked, van, 1, actor=storekeeper_a)
        services.return_from_work_order(job, stocked, warehouse, 1, actor=storekeeper_a)
        services.issue_to_work_order(second, stocked, warehouse, 2, actor=storekeeper_a)
        response = api(viewer_a).get(f"{BASE}/parts/{stocked.pk}/usage/")
        assert response.status_code == 200
        rows = {row["work_order_number"]: row for row in response.json()["results"]}
        assert set(rows) == {job.number, second.number}
        mine = rows[job.number]
        assert (D(mine["issued"]), D(mine["returned"]), D(mine["net"])) == (4, 1, 3)
        assert D(mine["cost"]) == D("12.00")
        assert sorted(m["kind"] for m in mine["movements"]) == ["issue", "issue", "return"]
        assert D(rows[second.number]["net"]) == 2

    def test_return_puts_parts_back_but_never_more_than_taken(self, api, technician_a, stocked, van, warehouse, job):
        client = api(technician_a)
        client.post(f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 2})
        response = client.post(
            f"{BASE}/parts/{stocked.pk}/return/", {"work_order": job.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 201, response.json()
        assert response.json()["kind"] == "return" and D(response.json()["quantity"]) == 1
        assert on_hand(stocked, van) == 1
        before = ledger_state()
        response = client.post(
            f"{BASE}/parts/{stocked.pk}/return/", {"work_order": job.pk, "location": van.pk, "quantity": 2}
        )
        assert response.status_code == 409 and error_of(response)["code"] == "return_exceeds_issued"
        assert ledger_state() == before

    def test_history_is_the_ledger_newest_first_paginated(self, api, viewer_a, stocked, warehouse, storekeeper_a):
        services.write_off(stocked, warehouse, 1, reason="Dropped", actor=storekeeper_a)
        response = api(viewer_a).get(f"{BASE}/parts/{stocked.pk}/history/?page_size=2")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] is None and "cursor=" in body["next"]  # by cursor: nothing counted
        assert [row["kind"] for row in body["results"]] == ["write_off", "receipt"]
        rest = api(viewer_a).get(body["next"]).json()
        assert len(rest["results"]) == 1 and rest["next"] is None
        assert body["results"][0]["reason"] == "Dropped" and body["results"][0]["user_name"] == "storekeeper-a"


# --- roles and tenancy ----------------------------------------------------------------------------------------------


class TestPermissions:
    def test_technician_may_not_adjust_receive_or_edit_parts(self, api, technician_a, stocked, warehouse):
        client = api(technician_a)
        before = ledger_state()
        body = {"part": stocked.pk, "location": warehouse.pk, "change": "1", "reason": "found"}
        assert client.post(f"{BASE}/adjustments/", body).status_code == 403
        body = {"part": stocked.pk, "location": warehouse.pk, "quantity": 1, "unit_cost": "1"}
        assert client.post(f"{BASE}/receipts/", body).status_code == 403
        assert client.patch(f"{BASE}/parts/{stocked.pk}/", {"name": "x"}).status_code == 403
        assert client.post(f"{BASE}/locations/", {"name": "My shelf"}).status_code == 403
        assert ledger_state() == before

    def test_storekeeper_adjusts(self, api, storekeeper_a, stocked, warehouse):
        response = api(storekeeper_a).post(
            f"{BASE}/adjustments/", {"part": stocked.pk, "location": warehouse.pk, "counted": 10, "reason": "Count"}
        )
        assert response.status_code == 201, response.json()
        assert D(response.json()["quantity"]) == -2 and on_hand(stocked, warehouse) == 10

    def test_viewer_only_reads(self, api, viewer_a, stocked, van, job, warehouse):
        client = api(viewer_a)
        assert client.get(f"{BASE}/parts/").status_code == 200
        assert client.get(f"{BASE}/movements/").status_code == 200
        assert client.get(f"{BASE}/reconciliation/").status_code == 200
        before = ledger_state()
        response = client.post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 403 and error_of(response)["code"] == "role_forbids"
        assert client.post(f"{BASE}/parts/", {"sku": "V", "name": "v"}).status_code == 403
        body = {"part": stocked.pk, "source": warehouse.pk, "destination": van.pk, "quantity": 1}
        assert client.post(f"{BASE}/transfers/", body).status_code == 403
        assert ledger_state() == before

    @pytest.mark.parametrize(
        "path",
        [
            "parts/",
            "locations/",
            "levels/",
            "movements/",
            "reservations/",
            "reorder-suggestions/",
            "transfer-suggestions/",
            "vendors/",
            "vendor-parts/",
            "purchase-orders/",
            "reconciliation/",
        ],
    )
    def test_anonymous_is_401(self, api, path, db):
        assert api().get(f"{BASE}/{path}").status_code == 401

    def test_anonymous_cannot_write(self, api, stocked, van, job):
        response = api().post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 1}
        )
        assert response.status_code == 401

    def test_another_organisation_sees_nothing(self, api, manager_b, stocked, warehouse, van, job, storekeeper_a):
        services.reserve(job, stocked, warehouse, 1, actor=SYSTEM)
        vendor = services.create_vendor(stocked.organization, name="A's vendor", actor=SYSTEM)
        order = services.create_purchase_order(
            stocked.organization, vendor=vendor, lines=[{"part": stocked, "quantity": 1}], actor=SYSTEM
        )
        level = StockLevel.objects.get(part=stocked, location=warehouse)
        movement = StockMovement.objects.filter(part=stocked).first()
        client = api(manager_b)
        for path in (
            f"parts/{stocked.pk}/",
            f"parts/{stocked.pk}/history/",
            f"parts/{stocked.pk}/usage/",
            f"locations/{van.pk}/",
            f"levels/{level.pk}/",
            f"movements/{movement.pk}/",
            f"vendors/{vendor.pk}/",
            f"purchase-orders/{order.pk}/",
        ):
            assert client.get(f"{BASE}/{path}").status_code == 404, path
        for path in ("parts/", "locations/", "levels/", "movements/", "reservations/", "vendors/", "purchase-orders/"):
            assert client.get(f"{BASE}/{path}").json()["count"] == 0, path
        assert client.get(f"{BASE}/reorder-suggestions/").json() == []
        before = ledger_state()
        assert client.patch(f"{BASE}/parts/{stocked.pk}/", {"name": "mine"}).status_code == 404
        assert client.delete(f"{BASE}/locations/{van.pk}/").status_code == 404
        assert client.patch(f"{BASE}/levels/{level.pk}/", {"min_quantity": "1"}).status_code == 404
        assert client.post(f"{BASE}/purchase-orders/{order.pk}/place/").status_code == 404
        assert ledger_state() == before


# --- locations and levels -----------------------------------------------------------------------------------------


class TestLocations:
    def test_crud(self, api, storekeeper_a, technician_a, org_a):
        client = api(storekeeper_a)
        site = asset_services.create_location(org_a, name="Plant 1")
        created = client.post(
            f"{BASE}/locations/", {"name": "Van 7", "kind": "van", "holder": technician_a.pk, "site": site.pk}
        )
        assert created.status_code == 201, created.json()
        data = created.json()
        assert data["holder_name"] == "technician-a" and data["site_name"] == "Plant 1"
        location = StockLocation.objects.get(pk=data["id"])
        assert location.organization == org_a
        assert client.get(f"{BASE}/locations/?kind=van").json()["count"] == 1
        assert client.get(f"{BASE}/locations/?holder={technician_a.pk}").json()["count"] == 1
        assert client.patch(f"{BASE}/locations/{location.pk}/", {"name": "Van 8"}).json()["name"] == "Van 8"
        assert client.delete(f"{BASE}/locations/{location.pk}/").status_code == 204

    def test_holder_and_site_of_another_organisation_do_not_exist(self, api, storekeeper_a, manager_b, org_b):
        site_b = asset_services.create_location(org_b, name="B plant")
        response = api(storekeeper_a).post(
            f"{BASE}/locations/", {"name": "Van", "kind": "van", "holder": manager_b.pk, "site": site_b.pk}
        )
        assert response.status_code == 400
        fields = error_of(response)["fields"]
        assert "does not exist" in fields["holder"][0] and "does not exist" in fields["site"][0]

    def test_duplicate_name_is_a_400(self, api, storekeeper_a, warehouse):
        response = api(storekeeper_a).post(f"{BASE}/locations/", {"name": "Warehouse"})
        assert response.status_code == 400

    def test_location_with_stock_cannot_be_retired_or_deleted(self, api, storekeeper_a, stocked, van):
        client = api(storekeeper_a)
        response = client.patch(f"{BASE}/locations/{van.pk}/", {"is_active": False})
        assert response.status_code == 409 and "still holds 2 × BRG-6205" in error_of(response)["message"]
        response = client.delete(f"{BASE}/locations/{van.pk}/")
        assert response.status_code == 409 and "mark it inactive" in error_of(response)["message"]
        assert StockLocation.objects.filter(pk=van.pk, is_active=True).exists()


class TestLevels:
    def test_list_filters_and_limits(self, api, storekeeper_a, viewer_a, stocked, oil, warehouse, van):
        client = api(storekeeper_a)
        level = StockLevel.objects.get(part=stocked, location=van)
        response = client.get(f"{BASE}/levels/", {"part": stocked.pk})
        assert response.json()["count"] == 2
        assert client.get(f"{BASE}/levels/", {"location": van.pk}).json()["count"] == 1
        assert client.get(f"{BASE}/levels/", {"below_min": "true"}).json()["count"] == 0

        response = client.patch(f"{BASE}/levels/{level.pk}/", {"min_quantity": "4", "max_quantity": "6"})
        assert response.status_code == 200, response.json()
        assert (D(response.json()["min_quantity"]), D(response.json()["max_quantity"])) == (4, 6)
        assert response.json()["below_min"] is True
        below = client.get(f"{BASE}/levels/", {"below_min": "true"}).json()["results"]
        assert [row["id"] for row in below] == [level.pk]

        # only the maximum: the minimum stays
        response = client.patch(f"{BASE}/levels/{level.pk}/", {"max_quantity": "8"})
        assert (D(response.json()["min_quantity"]), D(response.json()["max_quantity"])) == (4, 8)
        # None clears
        response = client.patch(f"{BASE}/levels/{level.pk}/", {"min_quantity": None, "max_quantity": None})
        assert response.json()["min_quantity"] is None and response.json()["max_quantity"] is None
        assert api(viewer_a).patch(f"{BASE}/levels/{level.pk}/", {"min_quantity": "1"}).status_code == 403

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"min_quantity": "5", "max_quantity": "2"}, "max_quantity"),
            ({"min_quantity": "1.5"}, "min_quantity"),
            ({"min_quantity": "-1"}, "min_quantity"),
            ({"max_quantity": "many"}, "max_quantity"),
        ],
    )
    def test_bad_limits_are_400(self, api, storekeeper_a, stocked, van, body, field):
        level = StockLevel.objects.get(part=stocked, location=van)
        response = api(storekeeper_a).patch(f"{BASE}/levels/{level.pk}/", body)
        assert response.status_code == 400
        assert field in error_of(response)["fields"]
        level.refresh_from_db()
        assert level.min_quantity is None and level.max_quantity is None

    def test_levels_are_read_only_otherwise(self, api, storekeeper_a, stocked, van):
        level = StockLevel.objects.get(part=stocked, location=van)
        client = api(storekeeper_a)
        assert client.put(f"{BASE}/levels/{level.pk}/", {"on_hand": "99"}).status_code == 405
        assert client.delete(f"{BASE}/levels/{level.pk}/").status_code == 405
        assert client.post(f"{BASE}/levels/", {}).status_code == 405
        response = client.patch(f"{BASE}/levels/{level.pk}/", {"on_hand": "99"})
        level.refresh_from_db()
        assert response.status_code == 200 and level.on_hand == 2

    def test_transfer_suggestions(self, api, viewer_a, storekeeper_a, stocked, van, warehouse):
        services.set_stock_limits(stocked, van, min_quantity=4, max_quantity=6, actor=storekeeper_a)
        response = api(viewer_a).get(f"{BASE}/transfer-suggestions/")
        assert response.status_code == 200
        assert response.json() == [
            {
                "part": stocked.pk,
                "sku": "BRG-6205",
                "source": warehouse.pk,
                "source_name": "Warehouse",
                "destination": van.pk,
                "destination_name": "Van 3",
                "quantity": "4.000",
            }
        ]


# --- the ledger and stock operations ------------------------------------------------------------------------------


class TestMovements:
    def test_filters(self, api, viewer_a, storekeeper_a, stocked, oil, warehouse, van, job):
        services.issue_to_work_order(job, stocked, warehouse, 1, actor=storekeeper_a)
        services.receive_stock(oil, warehouse, 5, "2", actor=storekeeper_a)
        StockMovement.objects.filter(part=oil).update(created_at=timezone.now() - timedelta(days=3))
        client = api(viewer_a)

        def kinds(query):
            response = client.get(f"{BASE}/movements/", query)
            assert response.status_code == 200, response.json()
            return sorted((row["kind"], row["part_sku"]) for row in response.json()["results"])

        assert kinds({"kind": "issue"}) == [("issue", "BRG-6205")]
        assert kinds({"part": oil.pk}) == [("receipt", "OIL-46")]
        assert kinds({"location": van.pk}) == [("receipt", "BRG-6205")]
        assert kinds({"work_order": job.pk}) == [("issue", "BRG-6205")]
        two_days_ago = (timezone.now() - timedelta(days=2)).isoformat()
        assert kinds({"created_before": two_days_ago}) == [("receipt", "OIL-46")]
        assert len(kinds({"created_after": two_days_ago})) == 3
        response = client.get(f"{BASE}/movements/", {"created_after": "last week"})
        assert response.status_code == 400 and "ISO 8601" in response.json()["error"]["message"]

    def test_another_organisations_part_as_filter_is_a_400(self, api, viewer_a, stocked, other):
        assert api(viewer_a).get(f"{BASE}/movements/", {"part": other["part"].pk}).status_code == 400

    def test_the_ledger_cannot_be_written(self, api, manager_a, stocked):
        movement = StockMovement.objects.filter(part=stocked).first()
        client = api(manager_a)
        assert client.post(f"{BASE}/movements/", {}).status_code == 405
        assert client.patch(f"{BASE}/movements/{movement.pk}/", {"quantity": "5"}).status_code == 405
        assert client.delete(f"{BASE}/movements/{movement.pk}/").status_code == 405


class TestStockOperations:
    def test_receipt_updates_stock_and_average_cost(self, api, storekeeper_a, stocked, warehouse):
        response = api(storekeeper_a).post(
            f"{BASE}/receipts/", {"part": stocked.pk, "location": warehouse.pk, "quantity": 14, "unit_cost": "6.00"}
        )
        assert response.status_code == 201, response.json()
        assert response.json()["kind"] == "receipt"
        stocked.refresh_from_db()
        assert on_hand(stocked, warehouse) == 26 and stocked.average_cost == D("5.0000")  # (14×4 + 14×6) / 28

    def test_receipt_with_negative_cost_or_other_organisations_part(
        self, api, storekeeper_a, stocked, warehouse, other
    ):
        client = api(storekeeper_a)
        before = ledger_state()
        response = client.post(
            f"{BASE}/receipts/", {"part": stocked.pk, "location": warehouse.pk, "quantity": 1, "unit_cost": "-1"}
        )
        assert response.status_code == 400 and "unit_cost" in error_of(response)["fields"]
        response = client.post(
            f"{BASE}/receipts/", {"part": other["part"].pk, "location": warehouse.pk, "quantity": 1, "unit_cost": "1"}
        )
        assert response.status_code == 400 and "does not exist" in error_of(response)["fields"]["part"][0]
        assert ledger_state() == before

    def test_adjustments_by_count_and_by_change(self, api, storekeeper_a, stocked, warehouse):
        client = api(storekeeper_a)
        url = f"{BASE}/adjustments/"
        response = client.post(url, {"part": stocked.pk, "location": warehouse.pk, "change": "-3", "reason": "Lost"})
        assert response.status_code == 201 and D(response.json()["quantity"]) == -3
        response = client.post(url, {"part": stocked.pk, "location": warehouse.pk, "counted": "9", "reason": "Count"})
        assert response.status_code == 200 and response.json()["movement"] is None  # matches the books
        response = client.post(url, {"part": stocked.pk, "location": warehouse.pk, "counted": "0", "reason": "Empty"})
        assert response.status_code == 201 and on_hand(stocked, warehouse) == 0

    @pytest.mark.parametrize(
        ("body", "words"),
        [
            ({"counted": "5", "reason": ""}, "Say why"),
            ({"reason": "x"}, "either the counted quantity or the change"),
            ({"counted": "5", "change": "1", "reason": "x"}, "either the counted quantity or the change"),
            ({"counted": "abc", "reason": "x"}, "not a quantity"),
            ({"counted": "2.5", "reason": "x"}, "whole units"),
            ({"change": "-50", "reason": "x"}, "Only 12 left in Warehouse"),
        ],
    )
    def test_bad_adjustments_change_nothing(self, api, storekeeper_a, stocked, warehouse, body, words):
        before = ledger_state()
        response = api(storekeeper_a).post(
            f"{BASE}/adjustments/", {"part": stocked.pk, "location": warehouse.pk, **body}
        )
        assert response.status_code in (400, 409)
        assert words in error_of(response)["message"]
        assert ledger_state() == before

    def test_transfer_moves_stock_with_two_ledger_rows(self, api, technician_a, stocked, warehouse, van):
        response = api(technician_a).post(
            f"{BASE}/transfers/", {"part": stocked.pk, "source": warehouse.pk, "destination": van.pk, "quantity": 5}
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["out"]["kind"] == "transfer_out" and body["in"]["kind"] == "transfer_in"
        assert body["out"]["transfer_id"] == body["in"]["transfer_id"] == body["transfer_id"]
        assert (on_hand(stocked, warehouse), on_hand(stocked, van)) == (7, 7)

    def test_technician_may_only_transfer_into_own_van(self, api, technician_a, stocked, warehouse, van):
        before = ledger_state()
        response = api(technician_a).post(
            f"{BASE}/transfers/", {"part": stocked.pk, "source": van.pk, "destination": warehouse.pk, "quantity": 1}
        )
        assert response.status_code == 403
        assert ledger_state() == before

    # Issue 16, the permission matrix: only the destination was checked, so a technician could empty a colleague's
    # van into their own. `use_parts` allows refilling one's own van from a warehouse or shelf, nothing else.
    def test_technician_may_not_take_stock_from_a_colleagues_van(
        self, api, org_a, technician_a, technician2_a, storekeeper_a, stocked, van
    ):
        colleagues = services.create_stock_location(
            org_a, name="Van 7", kind="van", holder=technician2_a, actor=storekeeper_a
        )
        services.receive_stock(stocked, colleagues, 3, "4.00", actor=storekeeper_a)
        before = ledger_state()
        response = api(technician_a).post(
            f"{BASE}/transfers/", {"part": stocked.pk, "source": colleagues.pk, "destination": van.pk, "quantity": 2}
        )
        assert response.status_code == 403
        assert error_of(response)["code"] == "role_forbids"
        assert error_of(response)["message"] == (
            "Van 7 is technician2-a’s van: refill your van from a warehouse or shelf, or ask a storekeeper to move "
            "stock between vans."
        )
        assert ledger_state() == before and on_hand(stocked, colleagues) == 3
        # the storekeeper may
        response = api(storekeeper_a).post(
            f"{BASE}/transfers/", {"part": stocked.pk, "source": colleagues.pk, "destination": van.pk, "quantity": 2}
        )
        assert response.status_code == 201 and on_hand(stocked, colleagues) == 1

    def test_technician_refills_their_van_from_a_shelf(self, api, org_a, technician_a, storekeeper_a, stocked, van):
        shelf = services.create_stock_location(org_a, name="Shelf B2", kind="shelf", actor=storekeeper_a)
        services.receive_stock(stocked, shelf, 3, "4.00", actor=storekeeper_a)
        response = api(technician_a).post(
            f"{BASE}/transfers/", {"part": stocked.pk, "source": shelf.pk, "destination": van.pk, "quantity": 3}
        )
        assert response.status_code == 201, response.json()
        assert (on_hand(stocked, shelf), on_hand(stocked, van)) == (0, 5)

    def test_transfer_to_the_same_location_is_a_400(self, api, storekeeper_a, stocked, warehouse):
        response = api(storekeeper_a).post(
            f"{BASE}/transfers/",
            {"part": stocked.pk, "source": warehouse.pk, "destination": warehouse.pk, "quantity": 1},
        )
        assert response.status_code == 400

    def test_write_off(self, api, storekeeper_a, stocked, warehouse):
        client = api(storekeeper_a)
        response = client.post(
            f"{BASE}/write-offs/", {"part": stocked.pk, "location": warehouse.pk, "quantity": 2, "reason": "Rusty"}
        )
        assert response.status_code == 201 and response.json()["kind"] == "write_off"
        assert on_hand(stocked, warehouse) == 10
        before = ledger_state()
        response = client.post(
            f"{BASE}/write-offs/", {"part": stocked.pk, "location": warehouse.pk, "quantity": 2, "reason": ""}
        )
        assert response.status_code == 400 and "Say why" in error_of(response)["message"]
        response = client.post(
            f"{BASE}/write-offs/", {"part": stocked.pk, "location": warehouse.pk, "quantity": 20, "reason": "x"}
        )
        assert response.status_code == 409
        assert ledger_state() == before


class TestReservations:
    def test_reserve_and_list(self, api, planner_a, viewer_a, stocked, warehouse, job):
        response = api(planner_a).post(
            f"{BASE}/reservations/", {"work_order": job.pk, "part": stocked.pk, "location": warehouse.pk, "quantity": 3}
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "active" and D(response.json()["quantity"]) == 3
        assert StockLevel.objects.get(part=stocked, location=warehouse).reserved == 3
        rows = api(viewer_a).get(f"{BASE}/reservations/", {"work_order": job.pk}).json()["results"]
        assert [(row["part_sku"], row["work_order_number"]) for row in rows] == [("BRG-6205", job.number)]
        assert api(viewer_a).get(f"{BASE}/reservations/", {"status": "released"}).json()["count"] == 0

    def test_reserve_needs_create_work_and_an_open_order(self, api, technician_a, planner_a, stocked, warehouse, job):
        body = {"work_order": job.pk, "part": stocked.pk, "location": warehouse.pk, "quantity": 1}
        assert api(technician_a).post(f"{BASE}/reservations/", body).status_code == 403
        wo_services.complete(job, actor=technician_a)
        before = ledger_state()
        assert api(planner_a).post(f"{BASE}/reservations/", body).status_code == 409
        assert ledger_state() == before


# --- vendors, suggestions, purchase orders ------------------------------------------------------------------------


class TestVendors:
    def test_vendor_crud_with_its_parts(self, api, storekeeper_a, stocked, oil):
        client = api(storekeeper_a)
        created = client.post(f"{BASE}/vendors/", {"name": "Bearings Ltd", "email": "sales@bearings.example"})
        assert created.status_code == 201, created.json()
        vendor_id = created.json()["id"]
        offer = client.post(
            f"{BASE}/vendor-parts/",
            {"vendor": vendor_id, "part": stocked.pk, "vendor_sku": "6205", "price": "3.95", "lead_time_days": 3},
        )
        assert offer.status_code == 201, offer.json()
        duplicate = client.post(f"{BASE}/vendor-parts/", {"vendor": vendor_id, "part": stocked.pk, "price": "1"})
        assert duplicate.status_code == 400
        negative = client.post(f"{BASE}/vendor-parts/", {"vendor": vendor_id, "part": oil.pk, "price": "-1"})
        assert negative.status_code == 400
        detail = client.get(f"{BASE}/vendors/{vendor_id}/").json()
        assert [(p["part_sku"], p["price"]) for p in detail["parts"]] == [("BRG-6205", "3.9500")]
        assert client.get(f"{BASE}/vendor-parts/", {"vendor": vendor_id}).json()["count"] == 1
        patched = client.patch(f"{BASE}/vendor-parts/{offer.json()['id']}/", {"price": "4.10"})
        assert patched.status_code == 200 and patched.json()["price"] == "4.1000"
        assert client.patch(f"{BASE}/vendors/{vendor_id}/", {"phone": "+49 30 1234"}).json()["phone"] == "+49 30 1234"
        assert client.delete(f"{BASE}/vendor-parts/{offer.json()['id']}/").status_code == 204
        assert client.delete(f"{BASE}/vendors/{vendor_id}/").status_code == 204
        assert not Vendor.objects.filter(pk=vendor_id).exists()

    def test_vendor_with_purchase_orders_cannot_be_deleted(self, api, storekeeper_a, org_a, stocked):
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        services.create_purchase_order(org_a, vendor=vendor, lines=[{"part": stocked, "quantity": 2}], actor=SYSTEM)
        response = api(storekeeper_a).delete(f"{BASE}/vendors/{vendor.pk}/")
        assert response.status_code == 409 and "purchase orders" in error_of(response)["message"]

    def test_technician_may_not_manage_vendors(self, api, technician_a):
        assert api(technician_a).post(f"{BASE}/vendors/", {"name": "V"}).status_code == 403


class TestPurchasing:
    def test_reorder_suggestions_become_purchase_orders_per_vendor(
        self, api, storekeeper_a, viewer_a, org_a, stocked, oil, warehouse
    ):
        lubes = services.create_vendor(org_a, name="Lubes Inc", actor=SYSTEM)
        services.update_part(oil, preferred_vendor=lubes, actor=SYSTEM)
        services.create_vendor_part(org_a, vendor=lubes, part=oil, price="2.75", actor=SYSTEM)
        loose = Part.objects.create(
            organization=org_a, sku="FUSE-10", name="Fuse 10 A", reorder_point=10, reorder_quantity=50
        )
        suggestions = api(viewer_a).get(f"{BASE}/reorder-suggestions/")
        assert suggestions.status_code == 200
        by_sku = {row["sku"]: row for row in suggestions.json()}
        assert set(by_sku) == {"OIL-46", "FUSE-10"}  # 14 bearings > 5
        assert D(by_sku["OIL-46"]["quantity"]) == 60 and by_sku["OIL-46"]["vendor_name"] == "Lubes Inc"
        assert by_sku["FUSE-10"]["vendor"] is None

        assert api(viewer_a).post(f"{BASE}/reorder-suggestions/purchase-orders/").status_code == 403
        response = api(storekeeper_a).post(f"{BASE}/reorder-suggestions/purchase-orders/")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert [o["vendor_name"] for o in body["purchase_orders"]] == ["Lubes Inc"]
        order = body["purchase_orders"][0]
        assert order["status"] == "draft" and order["number"].startswith("PO-")
        assert [(line["part_sku"], D(line["quantity"]), line["unit_price"]) for line in order["lines"]] == [
            ("OIL-46", 60, "2.7500")
        ]
        assert body["without_vendor"] == [{"part": loose.pk, "sku": "FUSE-10", "name": "Fuse 10 A"}]
        # on order now: no longer suggested
        skus = [row["sku"] for row in api(viewer_a).get(f"{BASE}/reorder-suggestions/").json()]
        assert skus == ["FUSE-10"]

    def test_purchase_order_crud_and_lifecycle(self, api, storekeeper_a, org_a, stocked, oil, warehouse):
        client = api(storekeeper_a)
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        services.create_vendor_part(org_a, vendor=vendor, part=stocked, price="3.50", actor=SYSTEM)
        created = client.post(
            f"{BASE}/purchase-orders/",
            {
                "vendor": vendor.pk,
                "notes": "Urgent",
                "lines": [
                    {"part": stocked.pk, "quantity": "10"},
                    {"part": oil.pk, "quantity": "20.5", "unit_price": "2"},
                ],
            },
        )
        assert created.status_code == 201, created.json()
        order = created.json()
        assert order["status"] == "draft" and order["created_by"] == storekeeper_a.pk
        assert [line["unit_price"] for line in order["lines"]] == ["3.5000", "2.0000"]  # the vendor's price
        assert order["total"] == "76.00"
        url = f"{BASE}/purchase-orders/{order['id']}/"

        replaced = client.patch(url, {"lines": [{"part": stocked.pk, "quantity": 4, "unit_price": "3"}]})
        assert replaced.status_code == 200, replaced.json()
        assert [(line["part_sku"], D(line["quantity"])) for line in replaced.json()["lines"]] == [("BRG-6205", 4)]
        placed = client.post(f"{url}place/")
        assert placed.status_code == 200 and placed.json()["status"] == "ordered" and placed.json()["ordered_at"]
        assert client.post(f"{url}place/").status_code == 409

        response = client.patch(url, {"lines": [{"part": oil.pk, "quantity": 1}]})
        assert response.status_code == 409 and error_of(response)["code"] == "order_not_draft"
        response = client.patch(url, {"notes": "Call before delivery", "expected_at": "2030-01-31"})
        assert response.status_code == 200 and response.json()["expected_at"] == "2030-01-31"
        assert client.delete(url).status_code == 409

        response = client.post(f"{url}cancel/", {"reason": ""})
        assert response.status_code == 400
        response = client.post(f"{url}cancel/", {"reason": "Supplier out of stock"})
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert PurchaseOrder.objects.get(pk=order["id"]).history.first().history_change_reason == (
            "Supplier out of stock"
        )

    def test_invalid_purchase_orders(self, api, storekeeper_a, org_a, stocked, other):
        client = api(storekeeper_a)
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        response = client.post(f"{BASE}/purchase-orders/", {"vendor": vendor.pk, "lines": []})
        assert response.status_code == 400
        response = client.post(f"{BASE}/purchase-orders/", {"vendor": vendor.pk})
        assert response.status_code == 400 and "lines" in error_of(response)["fields"]
        response = client.post(
            f"{BASE}/purchase-orders/", {"vendor": vendor.pk, "lines": [{"part": stocked.pk, "quantity": "1.5"}]}
        )
        assert response.status_code == 400 and "lines[0].quantity" in error_of(response)["fields"]
        foreign_line = {"part": other["part"].pk, "quantity": "1"}
        response = client.post(f"{BASE}/purchase-orders/", {"vendor": vendor.pk, "lines": [foreign_line]})
        assert response.status_code == 400 and "does not exist" in error_of(response)["fields"]["lines.0.part"][0]
        assert PurchaseOrder.objects.count() == 0

    def test_draft_can_be_deleted(self, api, storekeeper_a, org_a, stocked):
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        order = services.create_purchase_order(
            org_a, vendor=vendor, lines=[{"part": stocked, "quantity": 2}], actor=SYSTEM
        )
        assert api(storekeeper_a).delete(f"{BASE}/purchase-orders/{order.pk}/").status_code == 204
        assert not PurchaseOrder.objects.filter(pk=order.pk).exists()

    def test_received_in_two_parts_updates_the_moving_average_cost(
        self, api, storekeeper_a, org_a, stocked, warehouse, van
    ):
        client = api(storekeeper_a)
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        lines = [{"part": stocked, "quantity": 20, "unit_price": "5.50"}]
        order = services.create_purchase_order(org_a, vendor=vendor, lines=lines, actor=SYSTEM)
        line = order.lines.get()
        url = f"{BASE}/purchase-orders/{order.pk}/"
        # not placed yet: cannot be received
        assert client.post(f"{url}receive/", {"location": warehouse.pk, "lines": {line.pk: "5"}}).status_code == 409
        client.post(f"{url}place/")

        first = client.post(f"{url}receive/", {"location": warehouse.pk, "lines": {line.pk: "6"}})
        assert first.status_code == 200, first.json()
        assert first.json()["status"] == "partly_received"
        received_line = first.json()["lines"][0]
        assert (D(received_line["received_quantity"]), D(received_line["outstanding"])) == (6, 14)
        stocked.refresh_from_db()
        assert stocked.average_cost == D("4.4500")  # (14 × 4 + 6 × 5.5) / 20

        before = ledger_state()
        too_many = client.post(f"{url}receive/", {"location": warehouse.pk, "lines": {line.pk: "15"}})
        assert too_many.status_code == 409 and error_of(too_many)["code"] == "over_receipt"
        assert ledger_state() == before

        second = client.post(f"{url}receive/", {"location": van.pk, "lines": {str(line.pk): "14"}})
        assert second.status_code == 200 and second.json()["status"] == "received" and second.json()["received_at"]
        stocked.refresh_from_db()
        assert stocked.average_cost == D("4.8824")  # (20 × 4.45 + 14 × 5.5) / 34 = 4.88235…
        receipts = StockMovement.objects.filter(purchase_order=order, kind=MovementKind.RECEIPT)
        assert sorted(receipts.values_list("quantity", flat=True)) == [6, 14]
        assert (on_hand(stocked, warehouse), on_hand(stocked, van)) == (18, 16)
        assert client.post(f"{url}cancel/", {"reason": "too late"}).status_code == 409

    def test_receiving_needs_adjust_stock_and_an_own_location(
        self, api, planner_a, storekeeper_a, org_a, stocked, other
    ):
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        order = services.create_purchase_order(
            org_a, vendor=vendor, lines=[{"part": stocked, "quantity": 2}], actor=SYSTEM
        )
        services.place_purchase_order(order, actor=SYSTEM)
        line = order.lines.get()
        url = f"{BASE}/purchase-orders/{order.pk}/receive/"
        assert api(planner_a).post(url, {"location": other["location"].pk, "lines": {line.pk: 1}}).status_code == 403
        response = api(storekeeper_a).post(url, {"location": other["location"].pk, "lines": {line.pk: 1}})
        assert response.status_code == 400 and "does not exist" in error_of(response)["fields"]["location"][0]
        response = api(storekeeper_a).post(
            url, {"location": StockLocation.objects.filter(organization=org_a).first().pk, "lines": {"999999": 1}}
        )
        assert response.status_code == 404

    def test_purchase_order_filters(self, api, viewer_a, org_a, stocked):
        vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
        other_vendor = services.create_vendor(org_a, name="Other", actor=SYSTEM)
        draft = services.create_purchase_order(
            org_a, vendor=vendor, lines=[{"part": stocked, "quantity": 2}], actor=SYSTEM
        )
        placed = services.place_purchase_order(
            services.create_purchase_order(
                org_a, vendor=other_vendor, lines=[{"part": stocked, "quantity": 2}], actor=SYSTEM
            ),
            actor=SYSTEM,
        )
        client = api(viewer_a)
        rows = client.get(f"{BASE}/purchase-orders/", {"status": "ordered"}).json()["results"]
        assert [row["id"] for row in rows] == [placed.pk]
        rows = client.get(f"{BASE}/purchase-orders/", {"vendor": vendor.pk}).json()["results"]
        assert [row["id"] for row in rows] == [draft.pk]


# --- reconciliation -------------------------------------------------------------------------------------------------


def test_reconciliation_is_empty_after_a_mixed_scenario(
    api, viewer_a, storekeeper_a, technician_a, planner_a, org_a, stocked, oil, warehouse, van, job
):
    """Every endpoint that moves stock, one after the other: the levels still equal the ledger."""
    store, tech = api(storekeeper_a), api(technician_a)
    assert (
        store.post(
            f"{BASE}/receipts/", {"part": oil.pk, "location": warehouse.pk, "quantity": "40.5", "unit_cost": "3.2"}
        ).status_code
        == 201
    )
    assert (
        tech.post(
            f"{BASE}/transfers/", {"part": oil.pk, "source": warehouse.pk, "destination": van.pk, "quantity": "5.25"}
        ).status_code
        == 201
    )
    assert (
        tech.post(
            f"{BASE}/parts/{oil.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": "2.5"}
        ).status_code
        == 201
    )
    assert (
        tech.post(
            f"{BASE}/parts/{oil.pk}/return/", {"work_order": job.pk, "location": van.pk, "quantity": "0.5"}
        ).status_code
        == 201
    )
    assert (
        tech.post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": van.pk, "quantity": 5}
        ).status_code
        == 409
    )
    reservation = {"work_order": job.pk, "part": stocked.pk, "location": warehouse.pk, "quantity": 4}
    assert api(planner_a).post(f"{BASE}/reservations/", reservation).status_code == 201
    assert (
        store.post(
            f"{BASE}/parts/{stocked.pk}/usage/", {"work_order": job.pk, "location": warehouse.pk, "quantity": 3}
        ).status_code
        == 201
    )
    assert (
        store.post(
            f"{BASE}/adjustments/",
            {"part": stocked.pk, "location": warehouse.pk, "counted": 8, "reason": "Cycle count"},
        ).status_code
        == 201
    )
    assert (
        store.post(
            f"{BASE}/write-offs/", {"part": oil.pk, "location": warehouse.pk, "quantity": "0.75", "reason": "Spilled"}
        ).status_code
        == 201
    )
    vendor = services.create_vendor(org_a, name="Lubes Inc", actor=SYSTEM)
    order = services.place_purchase_order(
        services.create_purchase_order(org_a, vendor=vendor, lines=[{"part": oil, "quantity": 10}], actor=SYSTEM),
        actor=SYSTEM,
    )
    line = order.lines.get()
    assert (
        store.post(
            f"{BASE}/purchase-orders/{order.pk}/receive/", {"location": warehouse.pk, "lines": {line.pk: "4"}}
        ).status_code
        == 200
    )
    wo_services.complete(job, actor=technician_a)  # releases what is still reserved

    response = api(viewer_a).get(f"{BASE}/reconciliation/")
    assert response.status_code == 200
    assert response.json() == {"balanced": True, "differences": []}
    assert StockLevel.objects.get(part=oil, location=warehouse).on_hand == D("38.5")  # 40.5 − 5.25 − 0.75 + 4
    assert StockLevel.objects.get(part=stocked, location=warehouse).reserved == 0

    StockLevel.objects.filter(part=oil, location=van).update(on_hand=D("99"))  # behind the services' back
    differences = api(viewer_a).get(f"{BASE}/reconciliation/").json()
    assert differences["balanced"] is False
    assert differences["differences"] == [
        {"part": "OIL-46", "location": "Van 3", "on_hand": "99.000", "ledger": "3.250", "difference": "95.750"}
    ]


# --- service defects found while building the API, fixed ---------------------------------------------------------


def test_deleting_a_part_on_a_draft_purchase_order_is_a_409(api, storekeeper_a, org_a, bearing):
    vendor = services.create_vendor(org_a, name="Bearings Ltd", actor=SYSTEM)
    services.create_purchase_order(org_a, vendor=vendor, lines=[{"part": bearing, "quantity": 2}], actor=SYSTEM)
    response = api(storekeeper_a).delete(f"{BASE}/parts/{bearing.pk}/")
    assert response.status_code == 409


@pytest.mark.parametrize("raw", ["1e30", "999999999999"])
def test_parse_quantity_refuses_numbers_too_large_for_the_ledger(bearing, raw):
    with pytest.raises(InvalidInput):
        services.parse_quantity(bearing, raw)


def test_adjust_stock_refuses_a_count_that_is_not_a_number(bearing, warehouse, storekeeper_a):
    with pytest.raises(InvalidInput):
        services.adjust_stock(bearing, warehouse, counted="abc", reason="count", actor=storekeeper_a)


# --- the OpenAPI schema and the demo data -------------------------------------------------------------------------


@pytest.mark.django_db
def test_openapi_schema_documents_the_inventory_api(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "parts/{id}/usage/",
        "parts/low-stock/",
        "purchase-orders/{id}/receive/",
        "reconciliation/",
        "reorder-suggestions/purchase-orders/",
        "transfers/",
        "levels/{id}/",
    ):
        assert f"{BASE}/{path}" in paths, path


def test_demo_seed_after_the_assets_and_work_orders_demo(
    org_a, manager_a, planner_a, storekeeper_a, technician_a, viewer_a
):
    import assets.demo
    import inventory.demo
    import workorders.demo
    from maintenance_site.tenancy.roles import Role

    users = {
        Role.MANAGER: manager_a,
        Role.PLANNER: planner_a,
        Role.STOREKEEPER: storekeeper_a,
        Role.TECHNICIAN: technician_a,
        Role.VIEWER: viewer_a,
    }
    assets.demo.seed(org_a, users)
    workorders.demo.seed(org_a, users)
    inventory.demo.seed(org_a, users)
    counts = (Part.objects.count(), StockMovement.objects.count(), PurchaseOrder.objects.count())
    inventory.demo.seed(org_a, users)  # idempotent
    assert (Part.objects.count(), StockMovement.objects.count(), PurchaseOrder.objects.count()) == counts

    parts = Part.objects.for_tenant(org_a)
    assert 8 <= parts.count() <= 10 and {"each", "litre", "metre"} <= set(parts.values_list("unit", flat=True))
    assert Vendor.objects.for_tenant(org_a).count() == 2
    assert StockLocation.objects.filter(organization=org_a, kind="van", holder=technician_a).exists()
    low = services.parts_with_stock(parts).filter(available__lte=F("reorder_point"))
    assert [part.sku for part in low] == ["SEAL-M7N-35"]
    issued = StockMovement.objects.filter(kind=MovementKind.ISSUE, work_order__status="in_progress")
    assert issued.count() == 2 and {m.user for m in issued} == {storekeeper_a}
    assert Reservation.objects.filter(status="active").count() == 1
    assert PurchaseOrder.objects.get().status == "ordered"
    assert services.reconcile(org_a) == []
