# ruff: noqa: F811  (pytest fixtures imported from the technician browser tests, used as arguments)
"""The scenario board in a real headless Chromium (Debian's /usr/bin/chromium through Playwright), against the live
ASGI server of the technician's browser tests (same database copy and server start-up, module-scoped): a platform
administrator keeps the board open while scenarios are switched and run from another process (the services, as the
API or the command line would call them), and the board follows without a reload: state badges, the activity log,
the last run, and the resource chart gaining a point."""

from tests.technician.test_browser import (  # noqa: F401  (the fixtures: the live server and Chromium)
    ARTIFACTS,
    MISSING,
    PASSWORD,
    _async_unsafe_allowed,
    browser,
    browser_marks,
    live,
    new_page,
)

pytestmark = browser_marks("tests/scenarios/test_board_browser.py")

QUICK = "board-quick"


def make_platform() -> None:
    """A platform administrator (no organisation), the scenarios in the database, an hour of resource samples."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import override_settings
    from django.utils import timezone

    from scenarios import registry, resources
    from scenarios.models import Category, ResourceSample
    from scenarios.registry import RunResult
    from scenarios.sync import sync_registry

    call_command("flush", interactive=False, verbosity=0)
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    if registry.get(QUICK) is None:
        registry.scenario(key=QUICK, name="Quick check", category=Category.OTHER, default_interval=3600)(
            lambda context: RunResult("all good")
        )
    sync_registry()
    now = timezone.now()
    ResourceSample.objects.bulk_create(
        ResourceSample(
            host="board-host",
            slot=resources.slot_of(now - timedelta(minutes=minutes)),
            sampled_at=now - timedelta(minutes=minutes),
            cpu_percent=20.0 + minutes % 7,
            memory_percent=45.0,
            disk_percent=60.0,
            load_1=0.5,
        )
        for minutes in range(2, 30)
    )


def forget_quick() -> None:
    from scenarios import registry

    registry.unregister(QUICK)


def switch(key: str, active: bool) -> None:
    from maintenance_site.tenancy import SYSTEM
    from scenarios import services

    if active:
        services.activate_scenario(key, actor=SYSTEM, reason="from another session")
    else:
        services.deactivate_scenario(key, actor=SYSTEM)


def run_quick() -> str:
    from maintenance_site.tenancy import SYSTEM
    from scenarios import runner, services

    return runner.run_now(services.request_run(QUICK, actor=SYSTEM)).status


def sample_now() -> None:
    from django.utils import timezone

    from maintenance_site.events.platform import publish_platform
    from scenarios import resources
    from scenarios.models import ResourceSample

    now = timezone.now()
    ResourceSample.objects.filter(host="board-host", slot=resources.slot_of(now)).delete()
    created = ResourceSample.objects.create(
        host="board-host", slot=resources.slot_of(now), sampled_at=now, cpu_percent=77.0, memory_percent=46.0
    )
    publish_platform("platform:resources-sampled", resources.as_point(created))


def test_the_board_follows_changes_made_elsewhere_without_a_reload(live, browser):
    from playwright.sync_api import expect

    url, world = live
    world(make_platform)
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    context, problems = page.context, page.problems
    try:
        page.goto(f"{url}/admin/scenarios/scenario/")
        page.wait_for_url("**/login/**")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{url}/admin/scenarios/scenario/")
        board = page.locator("#scenario-board")
        expect(board).to_have_attribute("data-live", "on")
        page.evaluate("window.notReloaded = true")

        row = page.locator("#result_list tr.data-row", has_text="health-checker")
        expect(row.locator("strong.status-neutral")).to_have_text("inactive")
        world(switch, "health-checker", True)
        expect(row.locator("strong.status-good")).to_have_text("active")
        expect(page.locator("[data-board=active-count]")).to_have_text("1")
        expect(page.locator("[data-board=activity] li").first).to_contain_text("activated health-checker")

        quick = page.locator("#result_list tr.data-row", has_text=QUICK)
        assert world(run_quick) == "succeeded"
        expect(quick).to_contain_text("succeeded")

        world(switch, "health-checker", False)
        expect(row.locator("strong.status-neutral")).to_have_text("inactive")
        expect(page.locator("[data-board=active-count]")).to_have_text("0")

        chart = page.locator("#resource-chart")
        points = int(chart.get_attribute("data-points"))
        assert points == 28  # the hour's samples drawn: the chart has data, not an empty canvas
        assert (
            page.evaluate("Chart.getChart(document.querySelector('#resource-chart canvas')).data.labels.length") == 28
        )
        world(sample_now)
        expect(chart).to_have_attribute("data-points", str(points + 1))
        expect(page.locator("[data-usage=cpu_percent]")).to_have_text("77%")

        assert page.evaluate("window.notReloaded") is True
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "scenario-board.png"), full_page=True)
        assert [problem for problem in problems if "favicon.ico" not in problem] == []  # the admin has no icon
    finally:
        context.close()
        world(forget_quick)
