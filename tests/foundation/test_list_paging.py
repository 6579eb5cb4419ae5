"""Lists that cost the same at any size (maintenance_site.api.pagination, .search, .renderers, .serializers): cursor
pages that show every row once whatever happens between them, `?page=` still there with a count that is never an
exact COUNT(*) of a large set, search through the trigram path, and the fast list/JSON writers giving DRF's bytes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from assets import services as asset_services
from assets.meters_api import MeterReadingSerializer
from assets.models import Asset, Meter, MeterReading
from inventory import services as inventory_services
from inventory.api import StockMovementSerializer
from inventory.models import StockMovement
from maintenance_site.api.pagination import cursor_for
from maintenance_site.api.renderers import JSONRenderer
from maintenance_site.tenancy import services as tenancy_services
from workorders import services as workorder_services
from workorders.api import WorkOrderListSerializer
from workorders.models import WorkOrder

URL = "/api/v1/work-orders/"


def make_orders(org, count, start=0, **fields):
    """`count` orders of `org` created a minute apart (the newest last), straight into the table (test data)."""
    created = WorkOrder.objects.bulk_create(
        WorkOrder(organization=org, number=f"WO-{start + i:06d}", title=f"Order {start + i}", **fields)
        for i in range(count)
    )
    now = timezone.now()
    for i, order in enumerate(created):
        WorkOrder.objects.filter(pk=order.pk).update(created_at=now - timedelta(minutes=10_000 - start - i))


def walk(client, url, params=None):
    """Every page of a list by following `next`: the ids in the order served, and the pages' bodies."""
    ids, pages = [], []
    response = client.get(url, params or {})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        ids += [row["id"] for row in body["results"]]
        if not body["next"]:
            return ids, pages
        response = client.get(body["next"])


class TestCursorPages:
    def test_following_next_shows_every_order_once_newest_first(self, api, planner_a, org_a):
        make_orders(org_a, 23)
        ids, pages = walk(api(planner_a), URL, {"page_size": 5})
        expected = list(WorkOrder.objects.filter(organization=org_a).order_by("-created_at", "-pk").values_list("pk"))
        assert ids == [pk for (pk,) in expected]
        assert len(pages) == 5 and "cursor=" in pages[0]["next"]
        assert pages[0]["count"] is None and pages[0]["count_estimated"] is False  # nothing counted
        assert pages[0]["previous"] is None

    def test_a_first_page_that_holds_everything_counts_it(self, api, planner_a, org_a):
        make_orders(org_a, 3)
        body = api(planner_a).get(URL).json()
        assert (body["count"], body["count_estimated"], body["next"]) == (3, False, None)

    def test_orders_created_while_paging_are_neither_shown_twice_nor_make_others_skipped(self, api, planner_a, org_a):
        make_orders(org_a, 10)
        client = api(planner_a)
        first = client.get(URL, {"page_size": 4}).json()
        make_orders(org_a, 5, start=100)  # newer than everything: the cursor does not move
        WorkOrder.objects.filter(organization=org_a, number__gte="WO-000100").update(created_at=timezone.now())
        rest, _ = walk(client, first["next"])
        seen = [row["id"] for row in first["results"]] + rest
        assert len(seen) == len(set(seen)) == 10

    def test_ties_on_the_order_are_broken_by_id(self, api, planner_a, org_a):
        make_orders(org_a, 12)
        WorkOrder.objects.filter(organization=org_a).update(created_at=timezone.now())  # all at the same moment
        ids, _ = walk(api(planner_a), URL, {"page_size": 5})
        assert ids == sorted(ids, reverse=True) and len(ids) == 12

    @pytest.mark.parametrize("ordering", ["due_at", "-due_at", "priority", "-priority", "number", "-updated_at"])
    def test_every_ordering_pages_through_every_order_in_its_order(self, api, planner_a, org_a, ordering):
        make_orders(org_a, 17)
        now = timezone.now()
        for index, order in enumerate(WorkOrder.objects.filter(organization=org_a).order_by("pk")):
            due = None if index % 3 == 0 else now + timedelta(days=index % 5)  # NULLs and ties
            priority = ["low", "medium", "high", "critical"][index % 4]
            WorkOrder.objects.filter(pk=order.pk).update(due_at=due, priority=priority)
        client = api(planner_a)
        paged, _ = walk(client, URL, {"ordering": ordering, "page_size": 4})
        whole = [row["id"] for row in client.get(URL, {"ordering": ordering, "page_size": 200}).json()["results"]]
        assert paged == whole and len(set(paged)) == 17

    def test_updated_after_pages_in_the_order_of_the_changes(self, api, planner_a, org_a):
        make_orders(org_a, 9)
        start = timezone.now() - timedelta(hours=1)
        for index, order in enumerate(WorkOrder.objects.filter(organization=org_a).order_by("-pk")):
            WorkOrder.objects.filter(pk=order.pk).update(updated_at=start + timedelta(minutes=index // 2))
        ids, _ = walk(
            api(planner_a), URL, {"updated_after": (start - timedelta(minutes=1)).isoformat(), "page_size": 2}
        )
        expected = (
            WorkOrder.objects.filter(organization=org_a).order_by("updated_at", "pk").values_list("pk", flat=True)
        )
        assert ids == list(expected)

    @pytest.mark.parametrize("cursor", ["garbage", "e30", cursor_for([1], ordering=["-updated_at", "-id"])])
    def test_a_cursor_the_list_did_not_give_is_a_400_naming_it(self, api, planner_a, org_a, cursor):
        make_orders(org_a, 2)
        response = api(planner_a).get(URL, {"cursor": cursor})
        assert response.status_code == 400
        assert "cursor" in response.json()["error"]["fields"]

    @pytest.mark.parametrize(
        "values",
        [["not a date", "x"], ["2026-01-01T00:00:00+00:00", 2**70], ["2026-01-01T00:00:00\x00", 1], [[1], {"a": 1}]],
    )
    def test_a_cursor_of_a_bad_value_is_a_400_not_a_500(self, api, planner_a, org_a, values):
        make_orders(org_a, 2)
        response = api(planner_a).get(URL, {"cursor": cursor_for(values)})
        assert response.status_code == 400

    def test_pages_by_number_still_work_and_say_their_count(self, api, planner_a, org_a):
        make_orders(org_a, 7)
        body = api(planner_a).get(URL, {"page": 2, "page_size": 3}).json()
        assert (body["count"], body["count_estimated"], len(body["results"])) == (7, False, 3)
        assert "page=3" in body["next"] and "page" in body["previous"]

    def test_the_schema_marks_page_numbers_deprecated_and_the_count_nullable(self, api, planner_a):
        schema = api(planner_a).get("/api/schema/?format=json").json()
        parameters = {p["name"]: p for p in schema["paths"]["/api/v1/work-orders/"]["get"]["parameters"]}
        assert parameters["page"].get("deprecated") is True and "cursor" in parameters
        page = schema["components"]["schemas"]["PaginatedWorkOrderListList"]["properties"]
        assert "null" in page["count"]["type"] and page["count_estimated"]["type"] == "boolean"  # OpenAPI 3.1


@pytest.mark.postgres
def test_no_list_counts_more_rows_than_the_exact_count_limit(api, planner_a, org_a, settings):
    """`?page=` counts exactly up to EXACT_COUNT_LIMIT; above it the planner's estimate, and it says so."""
    settings.EXACT_COUNT_LIMIT = 5
    make_orders(org_a, 30)
    with CaptureQueriesContext(connection) as queries:
        body = api(planner_a).get(URL, {"page": 1}).json()
    assert body["count_estimated"] is True and body["count"] > 5
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert all("LIMIT 6" in sql for sql in counts), counts  # at most limit + 1 rows, if counted at all


@pytest.mark.postgres
def test_a_count_the_planner_finds_costly_is_estimated_not_made(api, planner_a, org_a, settings):
    """A few matches spread over a large list (a filter no index serves) would be a scan to count: estimated."""
    settings.EXACT_COUNT_COST = 0
    make_orders(org_a, 8)
    with CaptureQueriesContext(connection) as queries:
        body = api(planner_a).get(URL, {"page": 1, "page_size": 3}).json()
    assert body["count_estimated"] is True and body["count"] >= 1
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


class TestSearch:
    def test_words_match_the_number_the_title_or_the_assets_code(self, api, planner_a, org_a):
        pump = asset_services.create_asset(org_a, code="PMP-7781", name="Feed pump")
        make_orders(org_a, 3)
        WorkOrder.objects.filter(number="WO-000001").update(title="Leaking gland", asset=pump)
        client = api(planner_a)

        def found(term):
            return sorted(row["number"] for row in client.get(URL, {"search": term}).json()["results"])

        assert found("pmp-778") == ["WO-000001"]  # the asset's code, any case
        assert found("gland") == ["WO-000001"]
        assert found("WO-000002") == ["WO-000002"]
        assert found("leaking 7781") == ["WO-000001"]  # every word must match somewhere
        assert found("leaking WO-000002") == []
        assert found("Or") == ["WO-000000", "WO-000002"]  # a word too short for the trigram indexes: a scan

    def test_a_search_never_sees_another_organisations_rows(self, api, planner_a, org_a, org_b):
        theirs = asset_services.create_asset(org_b, code="SECRET-1", name="Theirs")
        make_orders(org_a, 1)
        WorkOrder.objects.create(organization=org_b, number="WO-9", title="Theirs", asset=theirs)
        assert api(planner_a).get(URL, {"search": "SECRET"}).json()["results"] == []


class TestFastListsAreDRFsBytes:
    """FastListSerializer and the orjson renderer change the cost, not a byte of the answer."""

    def drf(self, serializer_class, rows):
        return serializers.ListSerializer(rows, child=serializer_class()).data

    def test_work_order_list_rows(self, org_a, technician_a):
        pump = asset_services.create_asset(org_a, code="P-1", name="Pump")
        make_orders(org_a, 2)
        WorkOrder.objects.filter(number="WO-000001").update(
            asset=pump, assignee=technician_a, due_at=timezone.now() - timedelta(days=1), status="assigned"
        )
        rows = list(WorkOrder.objects.filter(organization=org_a).select_related("asset", "assignee"))
        for row in rows:
            row.sla_state = row.response_due_at = row.resolution_due_at = None
        assert WorkOrderListSerializer(rows, many=True).data == self.drf(WorkOrderListSerializer, rows)

    def test_work_order_list_from_values_rows(self, org_a, technician_a):
        """The list's lean read path (values rows, no instances) writes what the serializer writes from the orders."""
        pump = asset_services.create_asset(org_a, code="P-1", name="Pump")
        make_orders(org_a, 3)
        WorkOrder.objects.filter(number="WO-000001").update(
            asset=pump, assignee=technician_a, due_at=timezone.now() - timedelta(days=1), status="assigned"
        )
        WorkOrder.objects.filter(number="WO-000002").update(due_at=timezone.now() + timedelta(days=1))
        technician_a.first_name, technician_a.last_name = "", ""
        technician_a.save()
        queryset = workorder_services.with_extensions(WorkOrder.objects.filter(organization=org_a)).order_by("pk")
        orders = list(queryset.select_related("asset", "assignee"))
        rows = list(queryset.values(*WorkOrderListSerializer.VALUES))
        rendered = JSONRenderer().render  # the bytes: the items leave UTC date-times for the renderer to write
        assert rendered(WorkOrderListSerializer.items(rows)) == rendered(self.drf(WorkOrderListSerializer, orders))
        assert rendered(WorkOrderListSerializer.items(rows)) == DRFJSONRenderer().render(
            self.drf(WorkOrderListSerializer, orders)
        )
        assert [item["is_overdue"] for item in WorkOrderListSerializer.items(rows)] == [False, True, False]

    def test_ledger_readings_and_assets(self, org_a, storekeeper_a):
        part = inventory_services.create_part(org_a, sku="S-1", name="Seal", actor=storekeeper_a)
        store = inventory_services.create_stock_location(org_a, name="Main", actor=storekeeper_a)
        inventory_services.receive_stock(part, store, Decimal("4"), Decimal("2.50"), actor=storekeeper_a)
        movements = list(StockMovement.objects.select_related("part", "location", "user", "work_order"))
        assert StockMovementSerializer(movements, many=True).data == self.drf(StockMovementSerializer, movements)
        asset = asset_services.create_asset(org_a, code="A-1", name="Fan", install_date=timezone.now().date())
        assets = list(Asset.objects.select_related("location", "asset_type"))
        from assets.api import AssetSerializer

        assert AssetSerializer(assets, many=True).data == self.drf(AssetSerializer, assets)
        meter = Meter.objects.create(organization=org_a, asset=asset, name="Run hours")
        MeterReading.objects.create(organization=org_a, meter=meter, value=Decimal("12.5"), read_at=timezone.now())
        readings = list(MeterReading.objects.all())
        assert MeterReadingSerializer(readings, many=True).data == self.drf(MeterReadingSerializer, readings)

    def test_an_api_key_is_stamped_without_an_update_per_request(self, org_a):
        """(The API key's membership comes with the key: one query authenticates and resolves the tenant.)"""
        key_object, key = tenancy_services.create_api_key(org_a, name="ERP")
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        client.get(URL)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        # the key with its membership (from Redis when it is the cache, test_api_key_cache.py); the page
        from django.core.cache import caches
        from django.core.cache.backends.redis import RedisCache

        expected = 1 if isinstance(caches["default"], RedisCache) else 2
        assert len(queries.captured_queries) == expected, [q["sql"][:80] for q in queries.captured_queries]
