"""The technician's view in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) at a phone's
size, against a live ASGI server (daphne, started here in a subprocess) that serves the pages and the event
websocket.

The server and this process share a database of these tests' own, copied from the migrated test database (a
SQLite file made with SQLite's backup, or a PostgreSQL database created from the test database as a template),
so nothing here touches what the other tests see. Playwright's sync API keeps an event loop marked as running
in the main thread, where Django's ORM (and asgiref's async_to_sync, which delivers events) refuse to work: every
database call of this process goes through `world(...)`, one worker thread bound to that database.

Skipped, with the reason, only outside CI when Chromium or Playwright is missing; in CI (CI set) they must run.
Screenshots of the main pages go to tests/artifacts/ (ignored by git).
"""

import importlib.util
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maintenance_site.tenancy import SYSTEM
from tests.web_process import DAPHNE, web_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "pw-browser"


def _missing() -> str:
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright is not installed (pip install playwright)")
    return "; ".join(missing)


MISSING = _missing()
# django_db: so that the test database exists (it is what the browser database is copied from) even when this
# module runs alone; the tests themselves use the browser database only.


def browser_marks(module: str) -> list:
    """A browser test module's pytestmark. Without Chromium or Playwright its tests are skipped, with the reason
    printed, outside CI only: in CI the `live` and `browser` fixtures fail instead."""
    marks = [pytest.mark.browser, pytest.mark.django_db, pytest.mark.timeout(600)]
    if MISSING and not IN_CI:
        print(f"\n{module} skipped: {MISSING}", file=sys.stderr)
        marks.append(pytest.mark.skip(reason=f"browser tests need Chromium and Playwright: {MISSING}"))
    return marks


pytestmark = browser_marks("tests/technician/test_browser.py")


# --- the database of the browser tests --------------------------------------------------------------------


class BrowserDatabase:
    """A copy of the migrated test database for the live server and this process."""

    def __init__(self, settings_dict: dict, folder: Path):
        self.source = settings_dict
        self.vendor = "sqlite" if settings_dict["ENGINE"].endswith("sqlite3") else "postgresql"
        self.name = str(folder / "browser.sqlite3") if self.vendor == "sqlite" else f"{settings_dict['NAME']}_browser"

    def create(self, connection) -> None:
        if self.vendor == "sqlite":
            connection.ensure_connection()
            target = sqlite3.connect(self.name)
            connection.connection.backup(target)
            target.close()
            return
        connection.close()  # a template database must have no other connection
        with connection._nodb_cursor() as cursor:
            # ...nor one left open by an earlier test's thread (asgiref's executor, a websocket consumer's)
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.source["NAME"]],
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.source["NAME"]}"')

    def drop(self, connection) -> None:
        if self.vendor == "postgresql":
            with connection._nodb_cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def settings(self) -> dict:
        return {**self.source, "NAME": self.name}


class World:
    """Runs this process's database work in one thread bound to the browser database."""

    def __init__(self, database: BrowserDatabase):
        self.executor = ThreadPoolExecutor(1, initializer=self._bind, initargs=(database.settings(),))

    @staticmethod
    def _bind(settings_dict):
        from django.db import connections
        from django.db.utils import load_backend

        backend = load_backend(settings_dict["ENGINE"])
        connections["default"] = backend.DatabaseWrapper(settings_dict, "default")

    def __call__(self, function, *args, **kwargs):
        return self.executor.submit(function, *args, **kwargs).result(timeout=180)

    def close(self):
        from django.db import connections

        self(lambda: connections["default"].close())
        self.executor.shutdown()


def _server_environment(database: BrowserDatabase, folder: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.technician.live_settings",
        TECHNICIAN_LIVE_DATABASE=json.dumps({"NAME": database.name}),
        VAR_DIR=str(folder / "var"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module", autouse=True)
def _async_unsafe_allowed():
    """pytest-django opens and rolls back its (unused) test transaction in the main thread, where Playwright's
    sync API marks an event loop as running: allow it (the documented way with Playwright)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker):
    """(base URL, World): the live server on the browser database, and this process's access to it."""
    if MISSING:
        pytest.fail(f"The browser tests must run in CI: {MISSING}")
    from django.db import connections

    folder = Path(tempfile.mkdtemp(prefix="technician-browser-"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with django_db_blocker.unblock():
        connection = connections["default"]
        database = BrowserDatabase(connection.settings_dict, folder)
        database.create(connection)
        world = World(database)
        try:
            # Django's start-up on a busy machine can take minutes; a hang is what the timeout guards
            with web_process(
                _server_environment(database, folder),
                folder / "daphne.log",
                command=DAPHNE,
                timeout=180,
                ready_path="/t/login/",
            ) as port:
                yield f"http://127.0.0.1:{port}", world
        finally:
            world.close()
            database.drop(connection)
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.fail(f"The browser tests must run in CI: {MISSING}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # pytest-django's (unused) test transactions ran while Playwright's loop was marked running, so Django
        # kept their connection in a context-local slot (asgiref) that outlives this module: close it while that
        # slot is still the current one, or it would keep the test database from being dropped.
        from django.db import connections

        connections.close_all()


def new_page(browser, *, is_problem=lambda response: response.status >= 400, console_ignores: str = "", **options):
    """A page in a browser context of its own (`options`: viewport, is_mobile…; close it with `page.context.close()`),
    waiting at most 30 s for anything, and listing in `page.problems` what went wrong on it: the console's errors
    with the address they came from (but those containing `console_ignores`) and the responses `is_problem` picks
    (by default 400 and above)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # waits for what must appear: only a failing test waits this long
    context = browser.new_context(**options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.problems = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not (console_ignores and console_ignores in m.text)
            and page.problems.append(f"console: {m.text} ({m.location.get('url')})")
        ),
    )
    page.on("response", lambda r: is_problem(r) and page.problems.append(f"{r.status} {r.url}"))
    return page


@pytest.fixture
def page(live, browser):
    page = new_page(
        browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, service_workers="allow"
    )
    page.on("requestfailed", lambda request: page.problems.append(f"failed {request.url}: {request.failure}"))
    yield page
    page.context.close()


# --- the world the technician works in ------------------------------------------------------------------


def make_world() -> dict:
    """A fresh organisation: a planner, a technician with a van holding two seals, a pump, and an order assigned
    to the technician with one required checklist item."""
    from django.core.management import call_command

    from assets import services as asset_services
    from inventory import services as inventory_services
    from inventory.models import Part, StockLocation
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role
    from workorders import services

    call_command("flush", interactive=False, verbosity=0)
    organization = tenancy.create_organization(name="Org A", slug="org-a", time_zone="Europe/Berlin")
    people = {}
    for username, role in (("planner", Role.PLANNER), ("tech", Role.TECHNICIAN)):
        people[username] = tenancy.create_user(username, password=PASSWORD)
        tenancy.add_member(organization, people[username], role)
    plant_room = asset_services.create_location(organization, name="Plant room")
    pump = asset_services.create_asset(organization, code="PMP-1", name="Cooling pump", location=plant_room)
    van = StockLocation.objects.create(organization=organization, name="Van 3", kind="van", holder=people["tech"])
    seal = Part.objects.create(organization=organization, sku="SEAL-40", name="Mechanical seal 40 mm", unit="each")
    inventory_services.receive_stock(seal, van, 2, "12.50", actor=SYSTEM)
    order = services.create_work_order(
        organization,
        title="Replace the seal",
        description="Leaks at the shaft.",
        asset=pump,
        actor=people["planner"],
        assignee=people["tech"],
        priority="high",
    )
    item = services.add_checklist_item(order, text="Isolate the pump", actor=people["planner"])
    extra = services.add_checklist_item(order, text="Check the coupling", required=False, actor=people["planner"])
    return {"organization": organization.pk, "order": order.pk, "item": item.pk, "extra": extra.pk}


def cancel_by_planner(order_id: int) -> None:
    from django.contrib.auth import get_user_model

    from workorders import services
    from workorders.models import WorkOrder

    planner = get_user_model().objects.get(username="planner")
    services.cancel(WorkOrder.objects.get(pk=order_id), reason="Pump replaced instead", actor=planner)


def assign_new_order(world_ids: dict) -> int:
    from django.contrib.auth import get_user_model

    from maintenance_site.tenancy.models import Organization
    from workorders import services

    users = get_user_model().objects
    order = services.create_work_order(
        Organization.objects.get(pk=world_ids["organization"]),
        title="Noisy bearing",
        priority="critical",
        actor=users.get(username="planner"),
        assignee=users.get(username="tech"),
    )
    return order.pk


def edit_by_planner(order_id: int) -> None:
    from django.contrib.auth import get_user_model

    from workorders import services
    from workorders.models import WorkOrder

    planner = get_user_model().objects.get(username="planner")
    services.update_work_order(WorkOrder.objects.get(pk=order_id), actor=planner, priority="critical")


def maintenance_mode(organization_id: int, active: bool) -> None:
    from django.db import transaction

    from maintenance_site.events.services import publish
    from maintenance_site.tenancy.models import Organization

    with transaction.atomic():
        payload = {"active": active, "expected_end": None, "reason": "Switchboard work" if active else ""}
        publish(Organization.objects.get(pk=organization_id), "maintenance:mode-changed", payload)


def start_order(order_id: int) -> None:
    from django.contrib.auth import get_user_model

    from workorders import services
    from workorders.models import WorkOrder

    services.start(WorkOrder.objects.get(pk=order_id), actor=get_user_model().objects.get(username="tech"))


def asset_token(code: str) -> str:
    from assets.models import Asset

    return Asset.objects.get(code=code).public_token


def order_state(order_id: int, item_id: int) -> dict:
    from inventory.models import StockMovement
    from workorders.models import ChecklistItem, WorkOrder

    item = ChecklistItem.objects.get(pk=item_id)
    return {
        "status": WorkOrder.objects.get(pk=order_id).status,
        "item_done": item.done,
        "item_changes": item.history.filter(history_type="~").count(),
        "item_client_id": item.client_id,
        "parts": list(StockMovement.objects.filter(work_order_id=order_id).values_list("quantity", flat=True)),
    }


# --- checks on every main page --------------------------------------------------------------------------

SMALL_TARGETS = """() => {
  const small = [];
  const selector = 'a[href], button, input:not([type=hidden]):not([type=radio]), select, textarea, summary, '
    + 'label.choice';
  for (const element of document.querySelectorAll(selector)) {
    const box = element.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(element).visibility === 'hidden') continue;  // not shown
    if (box.right <= 0 || box.left >= window.innerWidth) continue;  // the skip link, off screen until focused
    if (box.height < 44 || box.width < 44) {
      small.push(`${element.outerHTML.slice(0, 90)} is ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}"""


WIDE = """() => Array.from(document.querySelectorAll('body *'))
  .filter(element => element.getBoundingClientRect().right > window.innerWidth)
  .map(element => `${element.tagName}.${element.className} ${Math.round(element.getBoundingClientRect().right)}`)
  .slice(0, 8)"""


UNLABELLED = """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
  .filter(element => element.getBoundingClientRect().height && !element.labels.length)
  .map(element => element.outerHTML.slice(0, 90))"""


def check_phone_page(page, name: str) -> None:
    """No sideways scrolling at 360 px, every touch target at least 44 px, a label on every input, and a
    screenshot for the record."""
    page.wait_for_load_state("load")  # style sheets applied: measuring before would measure the bare HTML
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width} px wide and scrolls sideways: {page.evaluate(WIDE)}"
    assert page.evaluate(SMALL_TARGETS) == [], f"{name}: touch targets under 44 px ({page.problems})"
    assert page.evaluate(UNLABELLED) == [], f"{name}: inputs without a label"
    page.screenshot(path=str(ARTIFACTS / f"technician-{name}.png"), full_page=True)


def sign_in(page, url: str, username: str = "tech") -> None:
    page.goto(f"{url}/t/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/t/")


def wait_until(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# --- the scenarios --------------------------------------------------------------------------------------


def test_a_technician_does_an_assigned_order_from_start_to_finish(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    page.goto(f"{url}/t/login/")
    check_phone_page(page, "login")
    sign_in(page, url)

    card = page.locator(f"[data-order-id='{ids['order']}']")
    expect(card).to_contain_text("Replace the seal")
    expect(card).to_contain_text("PMP-1 · Cooling pump")
    check_phone_page(page, "my-work")

    card.locator("a").click()
    page.wait_for_url(f"{url}/t/orders/{ids['order']}/")
    expect(page.locator("h1")).to_have_text("Replace the seal")
    page.click("[data-action=start]")
    expect(page.locator(".flash")).to_contain_text("started")

    page.click("[data-action=complete]")  # the checklist is not done yet: refused, with the item named
    expect(page.locator("#error")).to_contain_text("1 required checklist item(s) are not done: “Isolate the pump”")
    check_phone_page(page, "order-refused-completion")

    item = page.locator(f"#item-{ids['item']}")
    item.get_by_role("button", name="Mark done").click()
    expect(item).to_have_class(re.compile(r"\bis-done\b"))
    expect(item).to_contain_text("Done · tech")

    page.fill("#part_part_query", "seal")
    page.locator(".part-result", has_text="SEAL-40").click()
    expect(page.locator("#part_part_query")).to_have_value("SEAL-40 Mechanical seal 40 mm")
    page.fill("#part_quantity", "1")
    page.get_by_role("button", name="Record part used").click()
    expect(page.locator("[data-parts-used]")).to_contain_text("1 × SEAL-40 Mechanical seal 40 mm")
    check_phone_page(page, "order")

    page.fill("#part_part_query", "SEAL-40")
    page.fill("#part_quantity", "5")
    page.get_by_role("button", name="Record part used").click()
    expect(page.locator("#error")).to_contain_text("Only 1 left in Van 3")

    page.click("[data-action=complete]")
    expect(page.locator(".flash")).to_contain_text("completed")
    expect(page.locator("[data-status]")).to_have_text("Completed")
    state = world(order_state, ids["order"], ids["item"])
    assert (state["status"], state["item_done"], [str(q) for q in state["parts"]]) == ("completed", True, ["-1.000"])


def test_the_part_search_says_when_nothing_matches_and_when_the_server_cannot_search(page, live):
    """A search that finds nothing says so; a server error or an ended session is named as such (not shown as "no
    results"), and the van's parts saved on this phone are offered instead; an answer to an older query that arrives
    late does not replace the newer one's."""
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    sign_in(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    status = page.locator("[data-part-status]")
    results = page.locator("[data-part-results]")

    page.fill("#part_part_query", "zzz")
    expect(status).to_have_text("No part matches “zzz”.")
    expect(results).to_be_hidden()

    page.route("**/t/parts/search/**", lambda route: route.fulfill(status=500, body="boom"))
    page.fill("#part_part_query", "seal")
    expect(status).to_contain_text("The search failed (HTTP 500).")
    expect(status).to_contain_text("Showing your van's parts saved on this phone.")
    page.locator(".part-result", has_text="SEAL-40").click()
    expect(page.locator("#part_part_query")).to_have_value("SEAL-40 Mechanical seal 40 mm")
    expect(status).to_be_hidden()
    page.fill("#part_part_query", "valve")
    expect(status).to_have_text(
        "The search failed (HTTP 500). None of your van's parts saved on this phone matches “valve”."
    )
    page.unroute("**/t/parts/search/**")

    # The session ended: the search is redirected to the login page (HTML), which is not taken for an empty answer.
    page.route(
        "**/t/parts/search/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<html>login</html>"),
    )
    page.fill("#part_part_query", "seal")
    expect(status).to_contain_text("Your session has ended: sign in again to search every part.")
    expect(page.locator(".part-result", has_text="SEAL-40")).to_be_visible()
    page.unroute("**/t/parts/search/**")

    # The answer to "se" comes after the answer to "seal-40": the list stays the newer query's.
    def slow_first(route):
        if route.request.url.endswith("q=se"):
            time.sleep(1.0)
            route.fulfill(status=200, content_type="application/json", body='{"results": [], "van": null}')
        else:
            route.continue_()

    page.route("**/t/parts/search/**", slow_first)
    page.fill("#part_part_query", "se")
    page.wait_for_timeout(400)  # past the debounce: "se" is asked
    page.fill("#part_part_query", "SEAL-40")
    expect(page.locator(".part-result", has_text="SEAL-40")).to_be_visible()
    page.wait_for_timeout(1500)  # the late answer to "se" (no results) has arrived by now
    expect(page.locator(".part-result", has_text="SEAL-40")).to_be_visible()
    expect(status).to_be_hidden()
    page.unroute("**/t/parts/search/**")
    routed_500 = "console: Failed to load resource: the server responded with a status of 500"
    page.problems = [p for p in page.problems if "/t/parts/search/" not in p and not p.startswith(routed_500)]
    assert page.problems == []
    check_phone_page(page, "part-search-failed")


def test_live_updates_new_work_order_changes_and_the_maintenance_banner(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    sign_in(page, url)
    page.wait_for_selector("body[data-live=on]")
    page.evaluate("window.notReloaded = true")

    new_order = world(assign_new_order, ids)  # a planner assigns it, in another process than the page's server
    expect(page.locator(f"[data-order-id='{new_order}']")).to_contain_text("Noisy bearing")
    assert page.evaluate("window.notReloaded") is True
    first = page.locator("[data-orders] > li").first
    expect(first).to_have_attribute("data-order-id", str(new_order))  # critical comes first

    banner = page.locator("#maintenance-banner")
    expect(banner).to_be_hidden()
    world(maintenance_mode, ids["organization"], True)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Switchboard work")
    check_phone_page(page, "my-work-live")
    world(maintenance_mode, ids["organization"], False)
    expect(banner).to_be_hidden()

    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.wait_for_selector("body[data-live=on]")
    page.click("[data-action=start]")  # my own change: no banner
    page.wait_for_selector("body[data-live=on]")
    changed = page.locator("#changed-banner")
    page.wait_for_timeout(600)
    expect(changed).to_be_hidden()
    world(edit_by_planner, ids["order"])
    expect(changed).to_be_visible()
    expect(changed).to_contain_text("This order changed")


def test_an_offline_checklist_tick_is_sent_once_when_the_connection_returns(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(start_order, ids["order"])
    sign_in(page, url)
    order_url = f"{url}/t/orders/{ids['order']}/"
    page.goto(order_url)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # installed and active
    page.reload()  # through the service worker now: the page is saved for offline use
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    assert page.evaluate("caches.match(location.href).then(r => !!r)")

    page.context.set_offline(True)
    reach = "fetch('/t/csrf/').then(() => 'reached', () => 'offline')"
    assert page.evaluate(reach) == "offline"
    assert page.context.service_workers[0].evaluate(reach) == "offline"  # the worker is offline too
    response = page.reload()  # readable offline: the saved copy, from the service worker
    assert response.from_service_worker and response.status == 200
    expect(page.locator("h1")).to_have_text("Replace the seal")
    expect(page.locator("#connection-banner")).to_be_visible()

    item = page.locator(f"#item-{ids['item']}")
    item.get_by_role("button", name="Mark done").click()
    expect(item).to_contain_text("waiting to send")
    expect(page.locator("[data-sync-waiting-list]")).to_contain_text("Isolate the pump — done")
    check_phone_page(page, "order-offline")
    assert world(order_state, ids["order"], ids["item"])["item_done"] is False

    page.context.set_offline(False)
    expect(item).to_have_class(re.compile(r"\bis-done\b"))
    expect(page.locator("#sync-panel")).to_be_hidden()
    page.evaluate("window.dispatchEvent(new Event('online'))")  # a second replay finds nothing to send
    page.wait_for_timeout(500)
    state = world(order_state, ids["order"], ids["item"])
    assert state["item_done"] is True
    assert state["item_changes"] == 1  # sent once
    assert state["item_client_id"]
    assert page.evaluate("localStorage.getItem('technician.queue.v1')") == "[]"

    # Offline again; meanwhile a planner cancels the order: the replay is refused, and the page says why.
    page.context.set_offline(True)
    extra = page.locator(f"#item-{ids['extra']}")
    extra.get_by_role("button", name="Mark done").click()
    expect(extra).to_contain_text("waiting to send")
    world(cancel_by_planner, ids["order"])
    page.context.set_offline(False)
    refused = page.locator("[data-sync-refused]")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("Check the coupling — done")
    expect(refused).to_contain_text("WO-000001 is cancelled: its checklist can no longer change.")
    check_phone_page(page, "order-replay-refused")
    assert world(order_state, ids["order"], ids["extra"])["item_done"] is False
    page.reload()  # the refusal stays listed until dismissed
    expect(page.locator("[data-sync-refused]")).to_contain_text("Check the coupling")
    page.get_by_role("button", name="Dismiss these").click()
    expect(page.locator("#sync-panel")).to_be_hidden()


def test_the_asset_page_from_the_qr_label_and_signing_out_clears_the_phone(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    token = world(asset_token, "PMP-1")
    page.goto(f"{url}/t/assets/{token}/")
    page.wait_for_url(re.compile(r"/t/login/\?next="))
    page.fill("#id_username", "tech")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/t/assets/{token}/")
    expect(page.locator("h1")).to_have_text("Cooling pump")
    expect(page.locator(f"[data-order-id='{ids['order']}']")).to_be_visible()
    expect(page.get_by_role("link", name="Report a problem")).to_have_attribute("href", f"/report/a/{token}/")
    check_phone_page(page, "asset")

    # Something still waiting to be sent: signing out warns first, then discards it with the saved pages.
    waiting = (
        "{id: 'x', user: Number(document.body.dataset.user), url: '/t/api/x/', body: {}, kind: 'note', label: 'n'}"
    )
    page.evaluate(f"localStorage.setItem('technician.queue.v1', JSON.stringify([{waiting}]))")
    page.click("text=Sign out")
    expect(page.locator("[data-logout-pending]")).to_contain_text("1 change(s) made offline have not reached")
    check_phone_page(page, "sign-out")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{url}/t/login/")
    assert page.evaluate("localStorage.getItem('technician.queue.v1')") is None
    # No saved page is left (the login page's own style sheet and script may be cached again: they hold no data).
    assert page.evaluate("caches.keys().then(keys => keys.filter(k => k.startsWith('technician-pages')))") == []
    assert page.evaluate("caches.match(location.origin + '/t/').then(r => r === undefined)")
    page.goto(f"{url}/t/")
    page.wait_for_url(re.compile(r"/t/login/"))
