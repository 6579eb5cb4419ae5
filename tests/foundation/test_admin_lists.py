"""Admin change lists at any size (maintenance_site.admin_lists, the TenantAdmin base): a foreign-key filter is a
search box over the organisation's own rows (no SELECT DISTINCT over the list, no link per asset), the count is the
database's estimate above EXACT_COUNT_LIMIT and says "about", and the work-order list reads only its columns."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assets import services as asset_services
from workorders import services
from workorders.models import WorkOrder

CHANGELIST = "/admin/workorders/workorder/"


@pytest.fixture
def orders(org_a, org_b, planner_a, manager_b):
    pumps = [asset_services.create_asset(org_a, code=f"PMP-{i}", name=f"Pump {i}") for i in range(3)]
    theirs = asset_services.create_asset(org_b, code="THEIR-1", name="Their pump")
    for index in range(12):
        services.create_work_order(org_a, title=f"Job {index}", asset=pumps[index % 3], actor=planner_a)
    services.create_work_order(org_b, title="Their job", asset=theirs, actor=manager_b)
    return pumps, theirs


def test_foreign_key_filters_are_search_boxes_not_a_scan_for_every_value(client, manager_a, orders):
    client.force_login(manager_a)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(CHANGELIST).content.decode()
    assert not [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"]]
    assert not re.search(r'href="\?asset__id__exact=\d', page)  # no link per asset
    for field in ("asset", "assignee", "team"):
        assert f'name="filter-{field}"' in page and 'data-field-name="' + field + '"' in page
    assert "backoffice/autocomplete_filter.js" in page and "select2" in page


def test_a_chosen_value_filters_the_list_and_shows_in_its_box(client, manager_a, orders):
    pumps, theirs = orders
    client.force_login(manager_a)
    page = client.get(CHANGELIST, {"asset__id__exact": pumps[1].pk}).content.decode()
    assert page.count('name="_selected_action"') == 4  # its 4 orders
    assert re.search(rf'<option value="{pumps[1].pk}" selected>PMP-1', page)
    # another organisation's asset is nothing here: no row, no name in the box
    page = client.get(CHANGELIST, {"asset__id__exact": theirs.pk}).content.decode()
    assert 'name="_selected_action"' not in page and "THEIR-1" not in page


def test_the_search_box_offers_the_organisations_assets_only(client, manager_a, orders):
    client.force_login(manager_a)
    found = client.get(
        "/admin/autocomplete/",
        {"app_label": "workorders", "model_name": "workorder", "field_name": "asset", "term": "PMP"},
    ).json()["results"]
    assert sorted(row["text"] for row in found) == ["PMP-0 — Pump 0", "PMP-1 — Pump 1", "PMP-2 — Pump 2"]
    found = client.get(
        "/admin/autocomplete/",
        {"app_label": "workorders", "model_name": "workorder", "field_name": "asset", "term": "THEIR"},
    ).json()["results"]
    assert found == []


@pytest.mark.postgres
def test_a_large_list_says_about_and_counts_no_more_than_the_limit(client, manager_a, orders, settings):
    settings.EXACT_COUNT_LIMIT = 5
    client.force_login(manager_a)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(CHANGELIST).content.decode()
    assert re.search(r"about \d+ work orders", page)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert all("LIMIT 6" in sql for sql in counts), counts


def test_the_work_order_list_reads_only_the_columns_it_shows(client, manager_a, orders):
    client.force_login(manager_a)
    WorkOrder.objects.update(description="x" * 5000, completion_notes="y" * 5000)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST).status_code == 200
    page = [
        q["sql"] for q in queries.captured_queries if 'FROM "workorders_workorder"' in q["sql"] and "LIMIT" in q["sql"]
    ]
    assert page and all('"description"' not in sql and '"completion_notes"' not in sql for sql in page), page
