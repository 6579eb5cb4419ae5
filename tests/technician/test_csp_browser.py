"""The Content-Security-Policy in a real Chromium: no violation while the technician's view is used, a public
problem report is sent, the API docs render and the admin's work-order pages are opened.

Runs against the same kind of live daphne as test_browser.py (its fixtures are reused). Every page listens for
`securitypolicyviolation` events from its first script on, and Chromium's own console reports ("Refused to …")
are collected too: either kind fails the test, naming what was blocked.
"""

import re

import pytest

from tests.technician.test_browser import (  # noqa: F401  (fixtures)
    PASSWORD,
    _async_unsafe_allowed,
    asset_token,
    browser,
    live,
    make_world,
    sign_in,
    start_order,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db, pytest.mark.timeout(180)]

LISTEN = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || 'inline'} `
    + `in ${event.sourceFile || document.location.pathname}:${event.lineNumber}`);
});
"""


@pytest.fixture
def page(live, browser):  # noqa: F811 (the imported fixtures)
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(viewport={"width": 1200, "height": 900}, service_workers="allow")
    context.set_default_timeout(10_000)
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.csp_reports = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and page.csp_reports.append(message.text),
    )
    yield page
    context.close()


def assert_no_violation(page, where: str) -> None:
    page.wait_for_load_state("load")
    events = page.evaluate("window.__cspViolations || []")
    assert not events and not page.csp_reports, f"{where}: {events} {page.csp_reports}"


def add_staff_manager() -> None:
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.models import Organization
    from maintenance_site.tenancy.roles import Role

    manager = tenancy.create_user("boss", password=PASSWORD)
    manager.is_staff = True
    manager.save(update_fields=["is_staff"])
    tenancy.add_member(Organization.objects.get(slug="org-a"), manager, Role.MANAGER)


def response_policy(response) -> str:
    return response.headers.get("content-security-policy", "")


def test_the_technicians_view_in_normal_use(page, live):  # noqa: F811 (the imported fixtures)
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    response = page.goto(f"{url}/t/login/")
    policy = response_policy(response)
    # 'wasm-unsafe-eval' lets the fallback QR decoder compile its WebAssembly; scripts themselves stay 'self' only
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "'unsafe-eval'" not in policy
    sign_in(page, url)
    page.wait_for_selector("body[data-live=on]")  # the event socket is connected (connect-src)
    assert_no_violation(page, "my work")

    page.locator(f"[data-order-id='{ids['order']}'] a").click()
    page.wait_for_url(f"{url}/t/orders/{ids['order']}/")
    page.click("[data-action=start]")
    expect(page.locator(".flash")).to_contain_text("started")
    item = page.locator(f"#item-{ids['item']}")
    item.get_by_role("button", name="Mark done").click()
    expect(item).to_have_class(re.compile(r"\bis-done\b"))
    page.fill("#part_part_query", "seal")
    # The search shares the test server with the service worker's first install (every static file, the QR
    # decoder's 1 MB WebAssembly included), which on a loaded CI machine took longer than the default 10 s.
    result = page.locator(".part-result", has_text="SEAL-40")
    expect(result).to_be_visible(timeout=30_000)
    result.click()
    page.fill("#part_quantity", "1")
    page.get_by_role("button", name="Record part used").click()
    expect(page.locator("[data-parts-used]")).to_contain_text("SEAL-40")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # the offline worker installs (worker-src)
    assert_no_violation(page, "order")

    page.goto(f"{url}/t/assets/{world(asset_token, 'PMP-1')}/")
    expect(page.locator("h1")).to_have_text("Cooling pump")
    assert_no_violation(page, "asset")
    page.click("text=Sign out")  # the sign-out page's script clears the phone's copies, then signs out
    page.wait_for_url(f"{url}/t/login/")
    assert_no_violation(page, "sign out")  # Chromium's console reports of the page in between are kept


def test_a_public_problem_report(page, live):  # noqa: F811 (the imported fixtures)
    from playwright.sync_api import expect

    url, world = live
    world(make_world)
    response = page.goto(f"{url}/report/a/{world(asset_token, 'PMP-1')}/")
    assert "unsafe-inline" not in response_policy(response)
    assert_no_violation(page, "report form")
    page.fill("textarea[name=description]", "Water on the floor under the pump")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/report/status/"))
    expect(page.locator("h1")).to_be_visible()
    assert_no_violation(page, "report status")


def test_the_api_docs(page, live):  # noqa: F811 (the imported fixtures)
    from playwright.sync_api import expect

    url, _ = live
    response = page.goto(f"{url}/api/docs/")
    policy = response_policy(response)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    expect(page.locator(".opblock-tag").first).to_be_visible(timeout=20_000)  # the schema loaded and rendered
    page.locator(".opblock-tag").first.click()
    expect(page.locator(".opblock").first).to_be_visible()
    assert_no_violation(page, "api docs")


def test_the_admin_work_order_pages(page, live):  # noqa: F811 (the imported fixtures)
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(add_staff_manager)
    world(start_order, ids["order"])
    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{url}/admin/")
    assert_no_violation(page, "admin index")

    response = page.goto(f"{url}/admin/workorders/workorder/")
    # the theme's Alpine.js needs 'unsafe-eval' on /admin/ (README "Security headers"); still no inline script
    assert "'unsafe-inline'" not in response_policy(response).split("script-src", 1)[1].split(";", 1)[0]
    expect(page.locator("#result_list")).to_be_visible()
    assert_no_violation(page, "work-order list")

    response = page.goto(f"{url}/admin/workorders/workorder/{ids['order']}/change/")
    assert "'unsafe-inline'" not in response_policy(response).split("script-src", 1)[1].split(";", 1)[0]
    expect(page.locator("#workorder_form")).to_be_visible()
    page.locator("a.add-row").first.dispatch_event("click")  # an inline's "add another" (admin's own script)
    assert_no_violation(page, "work-order change page")

    page.goto(f"{url}/admin/workorders/workorder/{ids['order']}/history/")  # simple-history writes style="…"
    expect(page.locator("#change-history")).to_be_visible()
    assert_no_violation(page, "work-order history")
