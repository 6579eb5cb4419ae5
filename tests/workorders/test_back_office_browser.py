# ruff: noqa: F811  (pytest fixtures imported from the technician browser tests, used as arguments)
"""The back office in a real headless Chromium (Debian's /usr/bin/chromium through Playwright) at a laptop's 1280 px,
against the live ASGI server of the technician's browser tests (same database copy and server start-up): the
dashboard draws its charts with data (not empty canvases), the work-order list fits 1280 px without scrolling
sideways, a technician who opens `/` lands on `/t/`, and a bulk assign works end to end. Screenshots of the
dashboard and the list go to var/screenshots/ (ignored by git)."""

from pathlib import Path

import pytest

from tests.technician.test_browser import (  # noqa: F401  (the fixtures: the live server and Chromium)
    MISSING,
    PASSWORD,
    _async_unsafe_allowed,
    browser,
    browser_marks,
    live,
    new_page,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}

pytestmark = browser_marks("tests/workorders/test_back_office_browser.py")


def make_back_office() -> dict:
    """A fresh organisation: a manager (staff), a planner, two technicians, two pumps and a dozen orders over the
    last weeks (some overdue, a few completed with an external cost), so every chart has bars."""
    from datetime import timedelta

    from django.core.management import call_command
    from django.test import override_settings
    from django.utils import timezone

    from assets import services as asset_services
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role
    from workorders import services
    from workorders.models import WorkOrder

    call_command("flush", interactive=False, verbosity=0)
    organization = tenancy.create_organization(name="Org A", slug="org-a", time_zone="Europe/Berlin")
    people = {}
    for username, role, staff in (
        ("manager", Role.MANAGER, True),
        ("planner", Role.PLANNER, True),
        ("tech", Role.TECHNICIAN, False),
        ("tech2", Role.TECHNICIAN, False),
    ):
        # hashed as the live server checks it (its settings list the MD5 hasher only)
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            people[username] = tenancy.create_user(username, password=PASSWORD, is_staff=staff)
        tenancy.add_member(organization, people[username], role)
    pumps = [
        asset_services.create_asset(organization, code=f"PMP-{index}", name=f"Cooling pump {index}")
        for index in range(2)
    ]
    now = timezone.now()
    orders = []
    for index in range(12):
        order = services.create_work_order(
            organization,
            title=f"Inspect the seal and the coupling of pump {index % 2}, record the vibration",
            asset=pumps[index % 2],
            actor=people["planner"],
            priority=["low", "medium", "high", "critical"][index % 4],
            due_at=now + timedelta(days=(index % 5) - 2),
            estimated_minutes=60,
            type=WorkOrder.Type.CORRECTIVE,
        )
        WorkOrder.objects.filter(pk=order.pk).update(created_at=now - timedelta(days=3 * index))
        orders.append(order)
    for order in orders[6:9]:
        services.transition(order, "assign", actor=people["planner"], assignee=people["tech"])
        services.transition(order, "start", actor=people["tech"])
        services.transition(order, "complete", actor=people["tech"])
        services.add_cost_line(order, description="Seal kit from the supplier", amount="85.00", actor=people["planner"])
    return {"organization": organization.pk, "orders": [order.pk for order in orders]}


def assignees(order_ids: list[int]) -> list[str | None]:
    from workorders.models import WorkOrder

    return [
        order.assignee.username if order.assignee else None
        for order in WorkOrder.objects.filter(pk__in=order_ids).select_related("assignee").order_by("pk")
    ]


@pytest.fixture(scope="module")
def world(live):
    _, run = live
    return run(make_back_office)


@pytest.fixture
def laptop(live, browser):
    page = new_page(browser, is_problem=lambda response: response.status >= 500, viewport=LAPTOP)
    yield page
    page.context.close()


def sign_in(page, live, username: str) -> None:
    """Through the one sign-in page, as `/` sends a signed-out visitor there."""
    url, _ = live
    page.goto(f"{url}/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, page.inner_text("body")[:1500]


def test_the_dashboard_draws_its_charts_with_data(live, world, laptop):
    url, _ = live
    sign_in(laptop, live, "manager")
    laptop.wait_for_url(f"{url}/admin/")
    laptop.wait_for_function("() => window.Chart && document.querySelectorAll('canvas.chart').length >= 3")
    drawn = laptop.evaluate(
        """() => [...document.querySelectorAll('canvas.chart')].map((canvas) => {
               const chart = window.Chart.getChart(canvas);
               if (!chart) return null;
               const total = chart.data.datasets.flatMap((d) => d.data).reduce((a, b) => a + Number(b || 0), 0);
               return {total, width: canvas.width, height: canvas.height};
           })"""
    )
    assert drawn and all(chart is not None for chart in drawn), drawn
    assert all(chart["total"] > 0 and chart["width"] > 0 and chart["height"] > 0 for chart in drawn), drawn
    assert laptop.locator("#tile-open .dashboard-tile__value").inner_text() == "9"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    laptop.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    assert not [problem for problem in laptop.problems if "Content Security Policy" in problem], laptop.problems


def test_the_work_order_list_fits_1280_px_without_scrolling_sideways(live, world, laptop):
    url, _ = live
    sign_in(laptop, live, "manager")
    laptop.wait_for_url(f"{url}/admin/")
    laptop.goto(f"{url}/admin/workorders/workorder/")
    laptop.wait_for_selector("#result_list")
    widths = laptop.evaluate(
        """() => {
               const table = document.querySelector('#result_list');
               const box = table.closest('[data-simplebar]') || table.parentElement;
               const wrapper = box.querySelector('.simplebar-content-wrapper') || box;
               return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                       table: table.scrollWidth, box: wrapper.clientWidth};
           }"""
    )
    assert widths["page"] <= widths["window"], widths
    assert widths["table"] <= widths["box"] + 1, widths
    headers = laptop.locator("#result_list thead th").all_inner_texts()
    for column in ("NUMBER", "TITLE", "ASSET", "STATUS", "PRIORITY", "ASSIGNEE", "DUE", "SLA"):
        assert any(column in text.upper() for text in headers), (column, headers)
    assert laptop.locator("#result_list .badge").count() >= 24  # status and priority on each row
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    laptop.screenshot(path=str(SCREENSHOTS / "work-order-list.png"), full_page=True)


def test_a_technician_opening_the_root_url_lands_on_the_technician_view(live, world, laptop):
    url, _ = live
    sign_in(laptop, live, "tech")
    laptop.wait_for_url(f"{url}/t/**")
    assert laptop.url.startswith(f"{url}/t/")


def test_a_bulk_assign_works(live, world, laptop):
    url, run = live
    first, second = world["orders"][0], world["orders"][1]
    sign_in(laptop, live, "manager")
    laptop.wait_for_url(f"{url}/admin/")
    laptop.goto(f"{url}/admin/workorders/workorder/")
    for order_id in (first, second):
        laptop.check(f"input[name=_selected_action][value='{order_id}']")
    laptop.select_option("select[name=action]", "assign_selected")
    laptop.locator("button[type=submit][name=index], button[title='Run the selected action']").first.click()
    laptop.wait_for_selector("select[name=assignee]")
    laptop.select_option(
        "select[name=assignee]",
        label=laptop.locator("select[name=assignee] option", has_text="tech2").first.inner_text(),
    )
    laptop.click("input[type=submit][value^='Yes']")
    laptop.wait_for_url(f"{url}/admin/workorders/workorder/**")
    assert "Assigned 2 work order(s)" in laptop.content()
    assert run(assignees, [first, second]) == ["tech2", "tech2"]
