"""The back office a manager meets (issue 23): the root URL sends each role to its place, the admin's sign-in tells a
technician where to go, the admin's home is the manager's dashboard (tiles with the previous period, charts with
data, one query per figure whatever the size), the sidebar groups pages by job and hides what a role may not open,
the work-order list shows badges and saved filters, and bulk reschedule goes through the service."""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assets import services as asset_services
from maintenance_site import dashboard, formats
from maintenance_site.analytics import registry
from maintenance_site.analytics.definitions import COST_CATEGORIES
from workorders import dashboard as workorders_dashboard
from workorders import services
from workorders.health.models import AssetHealth
from workorders.models import Team, WorkOrder

pytestmark = pytest.mark.django_db

LIST = "/admin/workorders/workorder/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- landing and signing in ----------------------------------------------------------------------------------


def test_the_root_url_sends_each_role_to_its_place(manager_a, planner_a, storekeeper_a, technician_a):
    assert Client().get("/")["Location"] == "/accounts/login/?next=/"
    for staff in (manager_a, planner_a, storekeeper_a):
        assert signed_in(staff).get("/")["Location"] == "/admin/"
    assert signed_in(technician_a).get("/")["Location"] == reverse("technician:my-work")


def test_the_one_sign_in_page_lands_a_technician_on_the_technician_view(technician_a):
    client = Client()
    response = client.post("/accounts/login/?next=/", {"username": "technician-a", "password": "pw-technician-a"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"] == reverse("technician:my-work")


def test_the_admin_sign_in_tells_a_technician_where_to_go_instead_of_a_wrong_password(technician_a):
    page = Client().post("/admin/login/", {"username": "technician-a", "password": "pw-technician-a"})
    text = page.content.decode()
    assert page.status_code == 200 and "/t/login/" in text
    assert "correct username and password" not in text


# --- the dashboard -------------------------------------------------------------------------------------------


def orders_for(org, planner, asset, count, *, start=0):
    now = timezone.now()
    made = []
    for index in range(start, start + count):
        made.append(
            services.create_work_order(
                org,
                title=f"Job {index}",
                asset=asset,
                actor=planner,
                estimated_minutes=90,
                due_at=now - timedelta(days=1) if index % 2 else now + timedelta(days=3),
                type=WorkOrder.Type.CORRECTIVE if index % 3 else WorkOrder.Type.PREVENTIVE,
            )
        )
    return made


def test_the_admin_home_is_the_dashboard_with_tiles_and_charts_with_data(manager_a, planner_a, org_a, pump):
    orders_for(org_a, planner_a, pump, 6)
    page = signed_in(manager_a).get("/admin/")
    assert page.status_code == 200
    tiles = {tile["key"]: tile for tile in page.context["dashboard_tiles"]}
    assert {"open", "overdue", "backlog_hours", "completed", "sla_compliance", "low_stock", "pm_due"} <= set(tiles)
    assert {"mttr", "availability", "total_cost"} <= set(tiles)  # the analytics KPIs, as /api/v1/analytics shows
    assert tiles["open"]["value"] == "6" and tiles["overdue"]["value"] == "3"
    assert tiles["backlog_hours"]["value"] == "9 h"
    assert tiles["open"]["link"].startswith(LIST) and "status__in=" in tiles["open"]["link"]
    assert "vs previous 7 days" in tiles["open"]["change"]  # none were open a week ago: +6
    charts = {chart["key"]: chart for chart in page.context["dashboard_charts"]}
    assert {"flow", "backlog_age", "failing_assets"} <= set(charts)
    flow = json.loads(charts["flow"]["data"])
    assert sum(flow["datasets"][0]["data"]) == 6 and not charts["flow"]["empty"]
    failing = json.loads(charts["failing_assets"]["data"])
    assert failing["labels"] == ["PMP-1"] and failing["datasets"][0]["data"] == [4]
    html = page.content.decode()
    assert html.count('class="chart"') == len(charts) and 'data-type="bar"' in html  # the theme's chart component
    assert 'id="tile-open"' in html and f'href="{tiles["overdue"]["link"]}"'.replace("&", "&amp;") in html


def test_every_tile_and_bar_link_opens_a_list_that_answers(manager_a, planner_a, org_a, pump):
    orders_for(org_a, planner_a, pump, 3)
    client = signed_in(manager_a)
    page = client.get("/admin/")
    links = [tile["link"] for tile in page.context["dashboard_tiles"] if tile["link"]]
    for chart in page.context["dashboard_charts"]:
        links += json.loads(chart["links"])
    assert links
    for link in links:
        response = client.get(link)
        assert response.status_code == 200, link
        assert "?e=1" not in response.get("Location", ""), link


def test_the_dashboard_costs_the_same_number_of_queries_as_the_data_grows(
    manager_a, planner_a, org_a, pump, django_assert_num_queries
):
    client = signed_in(manager_a)
    orders_for(org_a, planner_a, pump, 2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert client.get("/admin/").status_code == 200
    orders_for(org_a, planner_a, pump, 25, start=2)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/admin/").status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
    figures = len(dashboard.TILES) + len(dashboard.CHARTS)
    # the analytics tiles (MTTR, availability, cost) share one computation: one aggregate per analytics provider for
    # each of the two periods, in place of a query per tile
    computed = (*workorders_dashboard.ANALYTICS_TILES, "labour_cost", "parts_cost", "external_cost")  # total: their sum
    providers = {registry.PROVIDERS[key][0] for key in computed if key in registry.PROVIDERS}
    analytics_extra = 2 * len(providers) - len(workorders_dashboard.ANALYTICS_TILES)
    # and the cost chart: one aggregate per provider of the three categories
    analytics_extra += len({registry.PROVIDERS[key][0] for key in COST_CATEGORIES.values()}) - 1
    # and the daily rollups' state, read once per computation (the two periods, the cost chart): on PostgreSQL
    analytics_extra += 3 if connection.vendor == "postgresql" else 0
    # the figures plus the page's own (session, user, membership, maintenance mode...)
    assert len(large.captured_queries) <= figures + analytics_extra + 12, [
        q["sql"][:80] for q in large.captured_queries
    ]


def test_the_analytics_tiles_show_what_the_analytics_api_shows(manager_a, planner_a, technician_a, org_a, pump, api):
    order = services.create_work_order(org_a, title="Seal leak", asset=pump, assignee=technician_a, actor=planner_a)
    services.transition(order, "start", actor=technician_a)
    services.transition(order, "complete", actor=technician_a, notes="Seal replaced")
    services.add_cost_line(order, description="Callout", amount="120.00", actor=planner_a)
    today = timezone.localdate(timezone.now(), org_a.zone)
    week = {"from": str(today - timedelta(days=6)), "to": str(today)}
    overview = api(manager_a, org_a).get("/api/v1/analytics/overview", week).json()
    from_api = {kpi["kpi"]: kpi["value"] for kpi in overview["kpis"]}
    page = signed_in(manager_a).get("/admin/")
    tiles = {tile["key"]: tile for tile in page.context["dashboard_tiles"]}
    charts = {chart["key"]: chart for chart in page.context["dashboard_charts"]}
    by_category = json.loads(charts["cost_by_category"]["data"])
    assert by_category["labels"] == ["Labour", "Parts", "External"]
    assert by_category["datasets"][0]["data"][2] == 120.0
    assert from_api["total_cost"] is not None and str(from_api["total_cost"]).rstrip("0").rstrip(".") in (
        tiles["total_cost"]["value"].replace(",", "")
    )


def test_the_assets_at_risk_tile_counts_high_and_critical_and_opens_their_list(manager_a, org_a, site):
    now = timezone.now()
    assets = [site["pump"]] + [
        asset_services.create_asset(org_a, code=f"CMP-{n}", name=f"Compressor {n}", location=site["room"])
        for n in (1, 2)
    ]
    for asset, risk in zip(assets, ("critical", "high", "medium"), strict=True):
        AssetHealth.objects.create(
            organization=org_a, asset=asset, score=30, risk=risk, computed_at=now, risk_since=now
        )
    client = signed_in(manager_a)
    tiles = {tile["key"]: tile for tile in client.get("/admin/").context["dashboard_tiles"]}
    assert tiles["at_risk"]["value"] == "2"
    listed = client.get(tiles["at_risk"]["link"])
    assert listed.status_code == 200 and listed.context["cl"].result_count == 2


def test_a_failing_tile_is_shown_unavailable_and_the_page_still_answers(manager_a, monkeypatch):
    def broken(organization, period):
        raise RuntimeError("boom")

    monkeypatch.setitem(
        dashboard.TILES, "broken", dashboard.Tile("broken", "Broken", 1, "workorders.workorder", broken)
    )
    page = signed_in(manager_a).get("/admin/")
    tile = next(tile for tile in page.context["dashboard_tiles"] if tile["key"] == "broken")
    assert page.status_code == 200 and tile["footer"] == "unavailable"


def test_a_registered_tile_appears_without_touching_the_template(manager_a, monkeypatch):
    monkeypatch.setitem(
        dashboard.TILES,
        "mttr",
        dashboard.Tile(
            "mttr",
            "MTTR",
            45,
            "workorders.workorder",
            lambda org, period: dashboard.Figure(4.5, 6),
            unit="h",
            lower_is_better=True,
        ),
    )
    page = signed_in(manager_a).get("/admin/")
    tile = next(tile for tile in page.context["dashboard_tiles"] if tile["key"] == "mttr")
    assert tile["value"] == "4.5 h" and tile["tone"] == "good" and tile["change"].startswith("−1.5")


# --- navigation ------------------------------------------------------------------------------------------------


def sidebar_titles(page) -> dict[str, list[str]]:
    return {
        group["title"]: [item["title"] for item in group["items"] if item["has_permission"]]
        for group in page.context["sidebar_navigation"]
    }


def test_the_sidebar_groups_pages_by_job_work_orders_first_filtered_by_role(manager_a, django_user_model):
    groups = sidebar_titles(signed_in(manager_a).get("/admin/"))
    assert list(groups)[:8] == [
        "Work",
        "Assets",
        "Inventory",
        "Planning",
        "Reliability",
        "Reports",
        "Settings",
        "Operations",
    ]
    assert groups["Work"][:2] == ["Dashboard", "Work orders"]
    assert "My teams' overdue" in groups["Work"] and "Waiting for parts" in groups["Work"]
    assert "Scenarios" not in groups["Operations"] and "Periodic tasks" not in groups["Operations"]  # platform pages
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    groups = sidebar_titles(signed_in(root).get("/admin/"))
    assert "Scenarios" in groups["Operations"] and "Periodic tasks" in groups["Operations"]


# --- the work-order list -------------------------------------------------------------------------------------


def test_the_list_shows_badges_and_the_due_date_in_the_organisations_time_zone(manager_a, order):
    due = timezone.now() - timedelta(hours=2)
    services.update_work_order(order, actor=manager_a, due_at=due)
    html = signed_in(manager_a).get(LIST).content.decode()
    assert '<span class="badge badge-blue">Open</span>' in html
    assert '<span class="badge badge-blue">Medium</span>' in html
    assert '<span class="badge badge-red">Overdue</span>' in html
    assert formats.date_time(due, order.organization.zone) in html  # Europe/Berlin, "Sat 5 Dec 2026, 19:04"
    assert re.search(r"\w{3} \d{1,2} \w{3} \d{4}, \d{2}:\d{2}", formats.date_time(due))


def test_saved_filters_my_teams_overdue_and_waiting_for_parts(manager_a, planner_a, technician_a, org_a, pump):
    team = Team.objects.create(organization=org_a, name="Mechanics")
    team.members.add(manager_a)
    past = timezone.now() - timedelta(days=1)
    mine = services.create_work_order(org_a, title="Ours late", asset=pump, actor=planner_a, team=team, due_at=past)
    services.create_work_order(org_a, title="Not ours", asset=pump, actor=planner_a, due_at=past)
    held = services.create_work_order(org_a, title="Held", asset=pump, actor=planner_a, assignee=technician_a)
    services.transition(held, "start", actor=technician_a)
    services.transition(held, "hold", actor=technician_a, reason="Waiting for parts: seal kit")
    client = signed_in(manager_a)
    overdue = client.get(LIST, {"team_scope": "mine", "overdue": "yes"})
    assert [o.pk for o in overdue.context["cl"].result_list] == [mine.pk]
    waiting = client.get(LIST, {"waiting": "parts"})
    assert [o.pk for o in waiting.context["cl"].result_list] == [held.pk]


def test_bulk_reschedule_goes_through_the_service_and_is_in_the_history(manager_a, planner_a, org_a, pump):
    first, second = orders_for(org_a, planner_a, pump, 2)
    client = signed_in(manager_a)
    data = {"action": "reschedule_selected", "_selected_action": [first.pk, second.pk]}
    confirm = client.post(LIST, data)
    assert confirm.status_code == 200 and "New due date" in confirm.content.decode()
    response = client.post(LIST, {**data, "apply": "1", "due_at": "2031-05-04T08:30"}, follow=True)
    assert response.status_code == 200
    for work_order in (first, second):
        work_order.refresh_from_db()
        local = timezone.localtime(work_order.due_at, org_a.zone)
        assert (local.year, local.month, local.day, local.hour, local.minute) == (2031, 5, 4, 8, 30)
        assert work_order.history.first().history_user == manager_a


def test_a_closed_order_is_refused_by_the_reschedule_and_reported(manager_a, planner_a, technician_a, org_a, pump):
    (done,) = orders_for(org_a, planner_a, pump, 1)
    services.transition(done, "assign", actor=planner_a, assignee=technician_a)
    services.transition(done, "start", actor=technician_a)
    services.transition(done, "complete", actor=technician_a)
    data = {"action": "reschedule_selected", "_selected_action": [done.pk], "apply": "1", "due_at": "2031-05-04T08:30"}
    page = signed_in(manager_a).post(LIST, data, follow=True).content.decode()
    assert done.number in page and "reopen it" in page


def test_history_shows_an_empty_value_as_none(manager_a, planner_a, technician_a, order):
    services.transition(order, "assign", actor=planner_a, assignee=technician_a)
    page = signed_in(manager_a).get(reverse("admin:workorders_workorder_history", args=[order.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "(none)" in html
    assert "pk=None" not in html and "Deleted user" not in html


def test_the_printable_sheet_has_the_checklist_and_a_qr_code_to_the_phone_view(manager_a, order):
    from workorders.models import ChecklistItem

    ChecklistItem.objects.create(organization=order.organization, work_order=order, position=1, text="Drain the pump")
    client = signed_in(manager_a)
    change = client.get(reverse("admin:workorders_workorder_change", args=[order.pk])).content.decode()
    sheet_url = reverse("admin:workorders_workorder_sheet", args=[order.pk])
    assert sheet_url in change
    page = client.get(sheet_url).content.decode()
    assert order.number in page and "Drain the pump" in page and "<svg" in page
    assert f"http://testserver/t/orders/{order.pk}/" in page


def test_another_organisations_sheet_is_a_404(manager_b, order):
    assert signed_in(manager_b).get(reverse("admin:workorders_workorder_sheet", args=[order.pk])).status_code == 404


def test_readiness_says_starting_in_a_platform_starts_first_minute(client, monkeypatch):
    import time

    from maintenance_site.ops import health

    beat_down = [
        health.CheckResult("database", True, "ok", 1.0),
        health.CheckResult("beat", False, "no beat heartbeat recorded yet", 1.0),
    ]
    monkeypatch.setattr(health, "run_checks", lambda names=None: beat_down)
    monkeypatch.delenv("PLATFORM_STARTED_AT", raising=False)
    assert client.get("/health/ready").json()["status"] == "unavailable"
    monkeypatch.setenv("PLATFORM_STARTED_AT", str(time.time()))
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json()["status"] == "starting"
    monkeypatch.setenv("PLATFORM_STARTED_AT", str(time.time() - 120))
    assert client.get("/health/ready").json()["status"] == "unavailable"


def test_e_mails_carry_absolute_links_the_recipient_can_open(settings, manager_a, technician_a, org_a, order):
    from maintenance_site.notifications.models import Notification
    from maintenance_site.notifications.senders import plain_text

    settings.PUBLIC_BASE_URL = "https://maint.example"
    admin_url = f"/admin/workorders/workorder/{order.pk}/change/"

    def mail_to(user):
        return plain_text(
            Notification(organization=org_a, recipient=user, kind="x", title="Late", body="Order late", url=admin_url)
        )

    assert mail_to(manager_a).endswith(f"https://maint.example{admin_url}")
    assert mail_to(technician_a).endswith(f"https://maint.example/t/orders/{order.pk}/")
