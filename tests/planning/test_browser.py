# ruff: noqa: F811  (pytest fixtures imported from the technician browser tests, used as arguments)
"""The planner's calendar and the dispatch board in a real headless Chromium (Debian's /usr/bin/chromium through
Playwright), against the live ASGI server of the technician's browser tests (one server and one browser for this
module): the calendar shows a forecast preventive occurrence, a maintenance window and a planned order; dragging
the order moves it, and a drag a window refuses shows the reason; on the board a person's over-capacity day is
marked, a drag assigns and plans an order and another browser sees it move (the event socket), and a drag the team
rule refuses shows the reason. Screenshots go to var/screenshots/ (ignored by git)."""

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
LAPTOP = {"width": 1440, "height": 900}

pytestmark = browser_marks("tests/planning/test_browser.py")


def make_planning() -> dict:
    """Organisation A (Europe/Berlin) next week: a planner and a manager (staff), two technicians (the first in the
    crew, working one hour on Tuesdays and Thursdays), a daily preventive round not generated yet, a window on the
    fan on Wednesday 13:00-15:00, an order on the pump planned Tuesday 09:00 for two hours (the first technician:
    over capacity), an order on the fan planned Monday 10:00, and a crew order nobody has planned yet."""
    from datetime import datetime, time, timedelta

    from django.core.management import call_command
    from django.test import override_settings
    from django.utils import timezone

    from assets import services as asset_services
    from maintenance_site.recurrence import to_utc
    from maintenance_site.tenancy import SYSTEM
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role
    from scheduling.preventive.services import create_schedule
    from scheduling.windows import services as windows
    from workorders import services
    from workorders.capacity import services as capacity

    call_command("flush", interactive=False, verbosity=0)
    organization = tenancy.create_organization(name="Org A", slug="org-a", time_zone="Europe/Berlin")
    people = {}
    for username, role, staff in (
        ("manager", Role.MANAGER, True),
        ("planner", Role.PLANNER, True),
        ("tech", Role.TECHNICIAN, False),
        ("tech2", Role.TECHNICIAN, False),
    ):
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            people[username] = tenancy.create_user(username, password=PASSWORD, is_staff=staff)
        tenancy.add_member(organization, people[username], role)
    hall = asset_services.create_location(organization, name="Hall")
    pump = asset_services.create_asset(organization, code="PMP-1", name="Pump", location=hall)
    fan = asset_services.create_asset(organization, code="FAN-1", name="Fan", location=hall)
    crew = services.create_team(organization, name="Crew", actor=SYSTEM, members=[people["tech"]])
    capacity.save_working_pattern(
        organization, actor=SYSTEM, user=people["tech"], tuesday="08:00-09:00", thursday="08:00-09:00"
    )
    today = timezone.localtime(timezone.now(), organization.zone).date()
    monday = today + timedelta(days=7 - today.weekday())

    def at(days, hour):
        return to_utc(datetime.combine(monday + timedelta(days=days), time(hour)), organization.zone)

    create_schedule(
        organization, actor=SYSTEM, name="Daily round", coverage="routine", location=hall, trigger="interval",
        interval_count=1, interval_unit="days", time_of_day="06:00", estimated_minutes=30,
    )  # fmt: skip
    windows.create_window(
        organization, title="Fan rewiring", starts_at=at(2, 13), ends_at=at(2, 15), scope="assets", assets=[fan],
        actor=SYSTEM,
    )  # fmt: skip
    planner = people["planner"]
    pump_order = services.create_work_order(
        organization, title="Replace the pump seal", asset=pump, assignee=people["tech"], estimated_minutes=120,
        actor=planner,
    )  # fmt: skip
    services.schedule(pump_order, actor=planner, scheduled_start=at(1, 9))
    fan_order = services.create_work_order(
        organization, title="Clean the fan", asset=fan, estimated_minutes=60, actor=planner
    )
    services.schedule(fan_order, actor=planner, scheduled_start=at(0, 10))
    crew_order = services.create_work_order(
        organization, title="Grease the crew's hoist", team=crew, estimated_minutes=60, actor=planner
    )
    return {
        "monday": monday.isoformat(),
        "days": [(monday + timedelta(days=n)).isoformat() for n in range(7)],
        "pump_order": pump_order.pk,
        "fan_order": fan_order.pk,
        "crew_order": crew_order.pk,
        "pump_number": pump_order.number,
        "tech": people["tech"].pk,
        "tech2": people["tech2"].pk,
    }


def order_state(order_id: int) -> tuple:
    from workorders.models import WorkOrder

    order = WorkOrder.objects.select_related("organization", "assignee").get(pk=order_id)
    local = order.scheduled_start.astimezone(order.organization.zone) if order.scheduled_start else None
    return (order.assignee.username if order.assignee else None, local.strftime("%Y-%m-%d %H:%M") if local else None)


@pytest.fixture(scope="module")
def world(live):
    _, run = live
    return run(make_planning)


def open_page(browser, live, username: str):
    url, _ = live
    # Failed loads are judged by their responses: a refused move answers 409 (expected), the browser's own
    # /favicon.ico is no page's resource; anything else at 400 or more is a problem.
    page = new_page(
        browser,
        is_problem=lambda r: r.status >= 400 and r.status != 409 and not r.url.endswith("/favicon.ico"),
        console_ignores="Failed to load resource",
        viewport=LAPTOP,
    )
    context = page.context
    page.goto(f"{url}/accounts/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{url}/admin/**")
    return context, page


def test_the_calendar_shows_the_three_kinds_and_a_drag_reschedules_or_says_why_not(live, world, browser):
    from playwright.sync_api import expect

    url, run = live
    context, page = open_page(browser, live, "planner")
    try:
        page.goto(f"{url}/admin/planning/calendar/?view=week&date={world['monday']}")
        grid = page.locator("#planning-grid")
        expect(grid.locator(".planning-chip--occurrence").first).to_contain_text("not generated")
        expect(grid.locator(".planning-chip--window", has_text="Fan rewiring")).to_be_visible()
        order = grid.locator(f".planning-chip--work_order[data-id='{world['pump_order']}']")
        expect(order).to_contain_text(world["pump_number"])
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "planning-calendar-week.png"), full_page=True)

        thursday = world["days"][3]
        order.drag_to(grid.locator(f"td.planning-slot[data-day='{thursday}'][data-time='14:00']"))
        expect(page.locator("#planning-message")).to_contain_text("Moved")
        assert run(order_state, world["pump_order"]) == ("tech", f"{thursday} 14:00")
        expect(
            grid.locator(f"td[data-day='{thursday}'][data-time='14:00'] [data-id='{world['pump_order']}']")
        ).to_be_visible()

        wednesday = world["days"][2]
        fan = grid.locator(f".planning-chip--work_order[data-id='{world['fan_order']}']")
        fan.drag_to(grid.locator(f"td.planning-slot[data-day='{wednesday}'][data-time='13:00']"))
        message = page.locator("#planning-message")
        expect(message).to_contain_text("Not moved")
        expect(message).to_contain_text("out of service in the maintenance window “Fan rewiring”")
        assert run(order_state, world["fan_order"]) == (None, f"{world['monday']} 10:00")
        page.screenshot(path=str(SCREENSHOTS / "planning-calendar-refused.png"), full_page=True)

        page.goto(f"{url}/admin/planning/calendar/?view=month&date={world['monday']}")
        expect(page.locator(".planning-month .planning-chip--window").first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "planning-calendar-month.png"), full_page=True)
        assert not page.problems, page.problems
    finally:
        context.close()


def test_the_board_marks_over_capacity_and_a_drag_assigns_live_for_another_browser(live, world, browser):
    from playwright.sync_api import expect

    url, run = live
    board = f"{url}/admin/planning/board/?span=week&date={world['monday']}"
    planner_context, planner = open_page(browser, live, "planner")
    manager_context, manager = open_page(browser, live, "manager")
    try:
        for page in (planner, manager):
            page.goto(board)
            expect(page.locator("#planning-live")).to_have_text("live updates: on")
        tech_lane = f"tr[data-lane='{world['tech']}']"
        # the pump order went to Thursday in the calendar test when both run; either way one day is over
        expect(manager.locator(f"{tech_lane} td.planning-slot--over").first).to_contain_text("over capacity")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        manager.screenshot(path=str(SCREENSHOTS / "planning-board.png"), full_page=True)

        card = planner.locator(f"tr[data-lane=''] [data-id='{world['crew_order']}']")
        tech2_wednesday = planner.locator(f"tr[data-lane='{world['tech2']}'] td[data-day='{world['days'][2]}']")
        redraws = "Number(document.getElementById('planning-grid').dataset.refreshed || 0)"
        redrawn_before = planner.evaluate(redraws)
        card.drag_to(tech2_wednesday)
        expect(planner.locator("#planning-message")).to_contain_text("not in Crew")
        assert run(order_state, world["crew_order"]) == (None, None)
        # A refusal redraws the grid (planning.js, refresh()): a drag started while the cards are replaced loses
        # its card and Chromium drops it, so the next drag waits for the redraw.
        planner.wait_for_function(f"{redraws} > {redrawn_before}")

        # Right after the refused drag the board may still be redrawing, and in one full run Chromium dropped the
        # next native drag: it is tried again only when the server never received a move.
        for attempt in range(2):
            card = planner.locator(f"tr[data-lane=''] [data-id='{world['crew_order']}']")
            card.drag_to(planner.locator(f"{tech_lane} td[data-day='{world['days'][2]}']"))
            try:
                expect(planner.locator("#planning-message")).to_contain_text("Moved", timeout=10_000)
                break
            except AssertionError:
                if attempt or run(order_state, world["crew_order"]) != (None, None):
                    raise
        assert run(order_state, world["crew_order"]) == ("tech", f"{world['days'][2]} 08:00")
        # the other browser, which did nothing, sees the card in the technician's Wednesday
        expect(
            manager.locator(f"{tech_lane} td[data-day='{world['days'][2]}'] [data-id='{world['crew_order']}']")
        ).to_be_visible()
        expect(manager.locator(f"tr[data-lane=''] [data-id='{world['crew_order']}']")).to_have_count(0)
        manager.screenshot(path=str(SCREENSHOTS / "planning-board-after-drag.png"), full_page=True)
        assert not planner.problems and not manager.problems, planner.problems + manager.problems
    finally:
        planner_context.close()
        manager_context.close()
