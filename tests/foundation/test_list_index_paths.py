"""Every list that grows without bound, in the API (each list that pages by cursor) and the back office (each change
list of such a table), has an index that reads its page in the page's order: with sequential scans and sorts priced
out of the planner's reach (`enable_seqscan`, `enable_sort` off), the page query's plan has no Sort (an Incremental
Sort only of the ties after the order's first key) and no Seq Scan of the listed table. Were no index to serve the
list's filter and order, the planner would have to sort (or scan) anyway, whatever the price: a missing index fails
here on any amount of data.

tests/foundation/test_list_plans.py checks the planner's own choice, unforced, on a dataset large enough for it to
mean something; this test covers every such list, on the demo data. The queries are the ones the requests send."""

import io
import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.tenancy.models import Organization

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

# The back office's change lists of tables that grow with the work (one row per order, event, reading, movement…).
GROWING_ADMIN_LISTS = [
    "workorders.WorkOrder",
    "workorders.WorkRequest",
    "assets.Asset",
    "inventory.StockMovement",
    "sla.SLAClock",
    "sla.SLAViolation",
    "scheduling.PreventiveOccurrence",
    "scheduling.MaintenanceWindow",
    "scheduling.MaintenanceHistoryEntry",
    "notifications.Notification",
]


def _page_query(client, url: str, table: str) -> str:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    # the page: ordered, not a count nor the paginator's EXPLAIN (no LIMIT when the whole list fits on one page)
    pages = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"] and "ORDER BY" in q["sql"]]
    pages = [sql for sql in pages if "COUNT(" not in sql and not sql.startswith("EXPLAIN")]
    assert pages, "\n".join([url, *(q["sql"][:300] for q in queries.captured_queries)])
    return pages[0]


def _forced_plan(sql: str) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def _column(key: str) -> str:
    """A plan's sort key without its direction: "read_at DESC" → "read_at"."""
    return key.removesuffix(" NULLS FIRST").removesuffix(" NULLS LAST").removesuffix(" DESC").removesuffix(" ASC")


def _problems(sql: str, table: str) -> list:
    nodes = _forced_plan(sql)
    bad = [n for n in nodes if n["Node Type"] == "Sort"]
    # An Incremental Sort after the order's first key (a unique code, then the id) sorts only ties: a page's worth.
    bad += [
        n
        for n in nodes
        if n["Node Type"] == "Incremental Sort" and _column(n["Sort Key"][0]) not in map(_column, n["Presorted Key"])
    ]
    bad += [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table]
    return [(n["Node Type"], n.get("Relation Name"), n.get("Sort Key")) for n in bad]


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO(), verbosity=0)
    return Organization.objects.get(slug="acme")


def cursor_lists(organization) -> list[tuple[str, str]]:
    """(URL, table) of each API list that pages by cursor: a viewset's list, or a GET action of its own."""
    from tests.foundation.test_list_query_counts import _sample_pk

    reverse("api-status")  # the API's URL conf imports every app's viewsets onto the router
    found = []
    for _prefix, viewset, basename in router.registry:
        model = getattr(getattr(viewset, "queryset", None), "model", None)
        if model is None:
            continue
        if issubclass(viewset.pagination_class or object, CursorPagination) and hasattr(viewset, "list"):
            found.append((reverse(f"{basename}-list"), None))
        for action in viewset.get_extra_actions():
            paging = action.kwargs.get("pagination_class")
            if "get" in action.mapping and paging and issubclass(paging, CursorPagination):
                pk = _sample_pk(model, organization)
                if pk is not None:
                    found.append((reverse(f"{basename}-{action.url_name}", kwargs={"pk": pk}), None))
    return found


def test_every_api_list_that_pages_by_cursor_reads_an_index_in_its_order(demo):
    user = get_user_model().objects.get(username="acme-manager")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}", HTTP_X_ORGANIZATION="acme")
    urls = cursor_lists(demo)
    assert len(urls) >= 12, urls  # work orders, requests, assets, movements, a part's history, readings, …
    checked, failures = [], {}
    for url, _ in urls:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        pages = [q["sql"] for q in queries.captured_queries if "LIMIT" in q["sql"] and "ORDER BY" in q["sql"]]
        pages = [sql for sql in pages if "COUNT(" not in sql]
        if not pages:
            continue
        sql = pages[-1]  # the page (authentication and the organisation come first)
        table = sql.split(' FROM "', 1)[1].split('"', 1)[0]
        checked.append(url)
        if problems := _problems(sql, table):
            failures[url] = problems
    assert len(checked) >= 10, checked
    assert not failures, failures


def test_every_growing_change_list_of_the_back_office_reads_an_index_in_its_order(demo):
    from django.apps import apps

    client = Client()
    client.force_login(get_user_model().objects.get(username="acme-manager"))
    failures = {}
    for label in GROWING_ADMIN_LISTS:
        model = apps.get_model(label)
        assert model in admin.site._registry, label
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        sql = _page_query(client, url, model._meta.db_table)
        if problems := _problems(sql, model._meta.db_table):
            failures[url] = problems
    assert not failures, failures
