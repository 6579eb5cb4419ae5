"""On PostgreSQL, with enough rows that the planner's choice means something (bench/dataset.py's builder, lists only:
30,000 work orders, 9,000 of them in one organisation, and 6,000 assets, ANALYZEd), the lists' queries read an
index range in the
page's order: no Sort of the organisation's rows, no Seq Scan of the listed table, for the default list, its common
filters and orderings, a cursor deep in the list, the search, and the ledger and asset lists.

The queries checked are the ones the API sends (captured from real requests), EXPLAINed as they are."""

import io
import json
import os

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from maintenance_site import progress
from maintenance_site.api.pagination import cursor_for
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.models import Organization

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

ORDERS = int(os.environ.get("PLAN_TEST_ORDERS", "30000"))


@pytest.fixture(scope="module")
def big(django_db_setup, django_db_blocker):
    """The lists-only dataset, once for the module, in a transaction rolled back at the end; an API key of the big
    organisation."""
    from bench import dataset

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with progress.bars(stream=io.StringIO()) as bars:
                dataset.build(ORDERS, bars=bars, lists_only=True, orders_per_asset=5)
            organization = Organization.objects.get(slug=dataset.BIG_SLUG)
            _, key = tenancy_services.create_api_key(organization, name="plans")
            yield organization, key
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def client(big, db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {big[1]}")
    return client


def list_query(client, path: str, table: str) -> str:
    """The SQL of the page query a GET of `path` sends (the one reading `table` with a LIMIT)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    pages = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"] and "LIMIT" in q["sql"]]
    assert pages, [q["sql"][:120] for q in queries.captured_queries]
    return pages[0]


def plan_nodes(sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def assert_index_range(sql: str, table: str, *, index: str | None = None, sorts_at_most: int = 0) -> list[dict]:
    """No Sort (of more than `sorts_at_most` rows: an asset's few orders may be read whole and sorted), no Seq Scan
    of the list's table (a small joined one, the test's few hundred assets, may be hashed whole), and the list's
    table read through `index`. An Incremental Sort after a unique prefix
    (?ordering=number: the unique number, then the id) reads only the page: allowed."""
    nodes = plan_nodes(sql)
    described = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name"), n["Plan Rows"]) for n in nodes]
    assert not any(n["Node Type"] == "Sort" and n["Plan Rows"] > sorts_at_most for n in nodes), described
    assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table for n in nodes), described
    scans = [n for n in nodes if n.get("Relation Name") == table and "Index" in n["Node Type"]]
    assert scans, described
    if index:
        assert index in {n.get("Index Name") for n in scans}, described
    return nodes


WORK_ORDER_LISTS = {
    "": "wo_org_created_idx",
    "?status=open": "wo_org_status_created_idx",
    "?status=open&priority=high": "wo_org_status_created_idx",
    "?status=open,assigned,in_progress": "wo_org_open_created_idx",
    "?priority=critical": "wo_org_priority_created_idx",
    "?ordering=due_at": "wo_org_due_idx",
    "?ordering=-updated_at": "wo_org_updated_idx",
    "?ordering=priority": "wo_org_priority_rank_idx",
    "?ordering=number": None,  # the unique (organization, number) index
    "?updated_after=2020-01-01T00:00:00Z": "wo_org_updated_idx",
}


@pytest.mark.parametrize("query", list(WORK_ORDER_LISTS))
def test_work_order_lists_read_an_index_range_in_the_pages_order(client, query):
    sql = list_query(client, f"/api/v1/work-orders/{query}", "workorders_workorder")
    assert_index_range(sql, "workorders_workorder", index=WORK_ORDER_LISTS[query])


def test_an_assets_and_an_assignees_orders_use_their_own_index(client, big):
    organization = big[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT asset_id, assignee_id FROM workorders_workorder WHERE organization_id = %s AND assignee_id "
            "IS NOT NULL LIMIT 1",
            [organization.pk],
        )
        asset, assignee = cursor.fetchone()
    # an asset has ~50 orders here: the planner may read them all through the index and sort them (not the org's)
    sql = list_query(client, f"/api/v1/work-orders/?asset={asset}", "workorders_workorder")
    assert_index_range(sql, "workorders_workorder", index="wo_asset_created_idx", sorts_at_most=500)
    sql = list_query(client, f"/api/v1/work-orders/?assignee={assignee}", "workorders_workorder")
    assert_index_range(sql, "workorders_workorder", sorts_at_most=500)  # (assignee, created) or (assignee, status)


def test_a_cursor_deep_in_the_list_seeks_instead_of_skipping(client, big):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT created_at, id FROM workorders_workorder WHERE organization_id = %s "
            "ORDER BY created_at DESC, id DESC OFFSET 5000 LIMIT 1",
            [big[0].pk],
        )
        position = cursor.fetchone()
    sql = list_query(client, f"/api/v1/work-orders/?cursor={cursor_for(position)}", "workorders_workorder")
    assert "OFFSET" not in sql
    nodes = assert_index_range(sql, "workorders_workorder", index="wo_org_created_idx")
    scan = next(n for n in nodes if n.get("Index Name") == "wo_org_created_idx")
    assert "created_at" in scan["Index Cond"]  # the cursor is where the index range starts


def test_a_search_is_index_lookups_the_planner_can_or(client, big):
    """The search's condition: `UPPER(column) LIKE` per column (what each trigram index holds) and the asset's code as
    `asset_id = ANY(ARRAY(…))` (the foreign key's index). Which plan wins is the planner's call by the numbers (at
    300,000 orders a rare code ORs the bitmaps: bench/list_api.py); here each arm alone must be an index lookup."""
    from assets.models import Asset
    from workorders.models import WorkOrder

    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM assets_asset WHERE organization_id = %s LIMIT 1", [big[0].pk])
        (code,) = cursor.fetchone()
    sql = list_query(client, f"/api/v1/work-orders/?search={code}", "workorders_workorder")
    assert 'UPPER("workorders_workorder"."title"::text) LIKE UPPER(' in sql and "= ANY(ARRAY(" in sql
    arms = {
        "wo_title_trgm": WorkOrder.objects.filter(title__icontains=code),
        "wo_number_trgm": WorkOrder.objects.filter(number__icontains=code),
        "assets_asset_code_trgm": Asset.objects.filter(code__icontains=code),
    }
    for index, arm in arms.items():
        arm_sql, params = arm.order_by().values("pk").query.sql_with_params()
        with transaction.atomic(), connection.cursor() as cursor:
            arm_sql = cursor.mogrify(arm_sql, params)
            # A small table may be cheaper to scan; without scans, only an index holding the expression can serve it.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = off")
            nodes = plan_nodes(arm_sql)
        assert index in {n.get("Index Name") for n in nodes}, (index, nodes)


@pytest.mark.parametrize(
    ("path", "table", "index"),
    [
        ("/api/v1/inventory/movements/", "inventory_stockmovement", "inv_move_org_created_idx"),
        ("/api/v1/inventory/movements/?kind=receipt", "inventory_stockmovement", "inv_move_org_kind_created_idx"),
        ("/api/v1/assets/", "assets_asset", "assets_asset_unique_code"),
        ("/api/v1/assets/?ordering=name", "assets_asset", "assets_asset_org_name_idx"),
    ],
)
def test_the_ledger_and_asset_lists_read_an_index_range(client, path, table, index):
    assert_index_range(list_query(client, path, table), table, index=index)
