"""A technician's day without signal, in Debian's Chromium with the network switched off (Playwright's offline
mode), against the live server of the technician browser tests (`test_browser.py`: its fixtures and world).

Proved here: an assigned order never opened while online opens offline after "Save for offline"; offline,
start → tick → part from the van → complete; back online the server's order, stock ledger and history match,
attributed to the technician with the device's times; a step refused on replay (the order reassigned meanwhile)
is shown beside the order and kept as a note; a replay whose answers are lost half-way and resumed applies
nothing twice; errors after a submit land beside the form; the scanner's typed fallback opens a saved asset
offline; the service worker shows a pushed notification.
"""

import re
import time
from datetime import timedelta

from tests.technician import test_browser as browser_tests
from tests.technician.test_browser import PASSWORD, make_world, sign_in, wait_until

# The live server, Chromium and the phone-sized page of the technician browser tests, and their marks (browser,
# skipped outside CI without Chromium).
_async_unsafe_allowed = browser_tests._async_unsafe_allowed
live = browser_tests.live
browser = browser_tests.browser
page = browser_tests.page
pytestmark = browser_tests.pytestmark

SAVED = "body[data-offline-saved]"


# --- the world, seen from the server --------------------------------------------------------------------


def add_technician(username: str) -> None:
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.models import Organization
    from maintenance_site.tenancy.roles import Role

    tenancy.add_member(
        Organization.objects.get(slug="org-a"), tenancy.create_user(username, password=PASSWORD), Role.TECHNICIAN
    )


def backdate(order_id: int, hours: int = 2) -> None:
    """The order was assigned two hours ago (so steps of the last minutes are after that, whatever the clocks)."""
    from django.db.models import F

    from workorders.models import WorkOrder

    WorkOrder.objects.filter(pk=order_id).update(created_at=F("created_at") - timedelta(hours=hours))
    WorkOrder.history.filter(id=order_id).update(history_date=F("history_date") - timedelta(hours=hours))


def reassign(order_id: int, username: str) -> None:
    from django.contrib.auth import get_user_model

    from workorders import services
    from workorders.models import WorkOrder

    users = get_user_model().objects
    services.assign(
        WorkOrder.objects.get(pk=order_id), users.get(username=username), actor=users.get(username="planner")
    )


def server_state(order_id: int, item_id: int) -> dict:
    from inventory.models import StockLevel, StockMovement
    from workorders.models import ChecklistItem, Comment, OfflineAction, WorkOrder

    order = WorkOrder.objects.get(pk=order_id)
    item = ChecklistItem.objects.get(pk=item_id)
    history = list(order.history.order_by("history_date").values("status", "history_date", "history_user__username"))
    return {
        "status": order.status,
        "started_at": order.started_at,
        "completed_at": order.completed_at,
        "item_done": item.done,
        "item_changes": item.history.filter(history_type="~").count(),
        "movements": list(
            StockMovement.objects.filter(work_order_id=order_id).values_list("quantity", "user__username", "client_id")
        ),
        "van": str(StockLevel.objects.get(location__name="Van 3").on_hand.normalize()),
        "steps": list(
            OfflineAction.objects.filter(work_order_id=order_id).values_list("action", "occurred_at", "created_at")
        ),
        "history": history,
        "comments": list(Comment.objects.filter(work_order_id=order_id).values_list("author__username", "body")),
    }


def save_for_offline(page, url: str) -> None:
    """My work saves the assigned orders by itself once the service worker is ready."""
    from playwright.sync_api import expect

    sign_in(page, url)
    page.wait_for_selector(SAVED)
    expect(page.locator("[data-offline-status]")).to_contain_text("saved on this phone")
    page.wait_for_function("navigator.serviceWorker.controller !== null")


# --- the scenarios --------------------------------------------------------------------------------------


def test_a_whole_order_done_offline_reaches_the_server_as_it_happened(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(backdate, ids["order"])
    save_for_offline(page, url)

    page.context.set_offline(True)
    clicked = time.time()
    response = page.goto(f"{url}/t/orders/{ids['order']}/")  # never opened while online: saved by the sync
    assert response.from_service_worker and response.status == 200
    expect(page.locator("h1")).to_have_text("Replace the seal")
    expect(page.locator("#connection-banner")).to_be_visible()

    page.click("[data-action=start]")
    expect(page.locator("[data-status]")).to_have_text("In progress · waiting to send")
    page.click("[data-action=complete]")  # the required item is not done: refused here, beside the form
    complete_form = page.locator("[data-form-name=complete]")
    expect(complete_form.locator(".inline-error")).to_contain_text("“Isolate the pump”")
    expect(complete_form).to_have_class(re.compile(r"\bis-error-target\b"))
    assert page.evaluate(
        "(() => { const b = document.querySelector('[data-form-name=complete]').getBoundingClientRect();"
        " return b.top >= 0 && b.bottom <= innerHeight; })()"
    )

    item = page.locator(f"#item-{ids['item']}")
    item.get_by_role("button", name="Mark done").click()
    expect(item).to_contain_text("waiting to send")

    page.fill("#part_part_query", "seal")  # the search cannot reach the server: the van's saved parts answer
    page.locator(".part-result", has_text="SEAL-40").click()
    page.fill("#part_quantity", "1")
    page.get_by_role("button", name="Record part used").click()
    expect(page.locator("[data-parts-used]")).to_contain_text(
        "1 × SEAL-40 Mechanical seal 40 mm · Van 3 (my van) · waiting to send"
    )

    page.fill("#complete_notes", "Seal replaced offline")
    page.click("[data-action=complete]")
    expect(page.locator("[data-status]")).to_have_text("Completed · waiting to send")
    expect(page.locator("[data-sync-waiting-list] li")).to_have_count(4)
    assert world(server_state, ids["order"], ids["item"])["status"] == "assigned"  # nothing reached the server
    finished = time.time()

    page.context.set_offline(False)
    expect(page.locator("[data-status]")).to_have_text("Completed")
    expect(page.locator("#sync-panel")).to_be_hidden()
    state = world(server_state, ids["order"], ids["item"])
    assert state["status"] == "completed" and state["item_done"] is True
    assert [(str(q), user) for q, user, _ in state["movements"]] == [("-1.000", "tech")]
    assert state["van"] == "1"
    # The device's times, not the sync's: the steps happened while offline, the sync came after.
    assert [action for action, *_ in state["steps"]] == ["start", "complete"]
    for _, occurred_at, synced_at in state["steps"]:
        assert clicked - 5 <= occurred_at.timestamp() <= finished + 1 and synced_at.timestamp() >= finished
    assert state["started_at"] == state["steps"][0][1] and state["completed_at"] == state["steps"][1][1]
    done_rows = [row for row in state["history"] if row["status"] in ("in_progress", "completed")]
    assert [(row["status"], row["history_user__username"]) for row in done_rows] == [
        ("in_progress", "tech"),
        ("completed", "tech"),
    ]
    assert [row["history_date"] for row in done_rows] == [step[1] for step in state["steps"]]

    page.evaluate("window.dispatchEvent(new Event('online'))")  # a second replay finds nothing to send
    page.wait_for_timeout(500)
    again = world(server_state, ids["order"], ids["item"])
    assert (len(again["movements"]), again["item_changes"], len(again["steps"])) == (1, 1, 2)


def test_a_step_refused_on_replay_is_shown_and_kept_as_a_note(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(add_technician, "tech2")
    world(backdate, ids["order"])
    save_for_offline(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.context.set_offline(True)
    page.click("[data-action=start]")
    expect(page.locator("[data-status]")).to_have_text("In progress · waiting to send")
    world(reassign, ids["order"], "tech2")  # meanwhile the planner gave the order to somebody else

    page.context.set_offline(False)
    refused = page.locator("[data-sync-refused]")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("WO-000001: start — start")
    expect(refused).to_contain_text("WO-000001 is not assigned to you.")
    # the page reloaded with the server's order, the refusal beside what it concerns
    expect(page.locator("[data-actions] .inline-error")).to_contain_text(
        "Not applied — start: WO-000001 is not assigned to you."
    )
    assert world(server_state, ids["order"], ids["item"])["status"] == "assigned"

    refused.get_by_role("button", name="Keep as a note").click()
    expect(page.locator("#sync-panel")).to_be_hidden()
    comments = wait_until(lambda: world(server_state, ids["order"], ids["item"])["comments"])
    ((author, body),) = comments
    assert author == "tech"
    assert "not applied: start. Refused: WO-000001 is not assigned to you." in body


def hold_by_planner(order_id: int) -> None:
    from django.contrib.auth import get_user_model

    from workorders import services
    from workorders.models import WorkOrder

    planner = get_user_model().objects.get(username="planner")
    services.hold(WorkOrder.objects.get(pk=order_id), reason="Waiting for the crane", actor=planner)


def ledger(order_id: int) -> list:
    from inventory.models import StockMovement

    return list(
        StockMovement.objects.filter(work_order_id=order_id).values_list(
            "quantity", "user__username", "occurred_at", "created_at"
        )
    )


def test_a_part_used_on_an_order_changed_meanwhile_is_refused_then_applied_anyway(page, live):
    """The part carries the order's version: somebody else put the order on hold meanwhile, so the phone lists the
    conflict in their words; the technician applies it anyway and the ledger has it once, at the device's time."""
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(backdate, ids["order"])
    save_for_offline(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.click("[data-action=start]")  # online: my own step, never a conflict
    expect(page.locator("[data-status]")).to_have_text("In progress")

    page.context.set_offline(True)
    used = time.time()
    page.fill("#part_part_query", "SEAL-40")
    page.fill("#part_quantity", "1")
    page.get_by_role("button", name="Record part used").click()
    expect(page.locator("[data-parts-used]")).to_contain_text("waiting to send")
    queued = time.time()
    world(hold_by_planner, ids["order"])  # meanwhile

    page.context.set_offline(False)
    refused = page.locator("[data-sync-refused]")
    expect(refused).to_contain_text("planner changed WO-000001 to “on hold”")
    expect(page.locator("[data-form-name=part] .inline-error")).to_contain_text("Not applied — 1 × SEAL-40")
    expect(refused.get_by_role("button", name="Try again")).to_have_count(0)
    assert world(ledger, ids["order"]) == []

    refused.get_by_role("button", name="Apply anyway").click()
    expect(page.locator("#sync-panel")).to_be_hidden()
    ((quantity, user, occurred_at, created_at),) = wait_until(lambda: world(ledger, ids["order"]))
    assert (str(quantity), user) == ("-1.000", "tech")
    assert used - 5 <= occurred_at.timestamp() <= queued + 1 < created_at.timestamp() + 1
    assert world(server_state, ids["order"], ids["item"])["van"] == "1"


def test_a_replay_cut_half_way_and_resumed_applies_nothing_twice(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(backdate, ids["order"])
    save_for_offline(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.context.set_offline(True)
    page.click("[data-action=start]")
    page.locator(f"#item-{ids['item']}").get_by_role("button", name="Mark done").click()
    page.fill("#part_part_query", "SEAL-40")
    page.fill("#part_quantity", "1")
    page.get_by_role("button", name="Record part used").click()
    page.click("[data-action=complete]")
    expect(page.locator("[data-sync-waiting-list] li")).to_have_count(4)

    # The connection drops after the server applied the part but before its answer arrives: the phone sees
    # a failure, keeps the part and the completion queued. It stays bad until the technician sends again: the
    # phone's own retry (every 20 s) must not resume the replay while the half-way state is being read.
    cut = {"done": False, "resumed": False}

    def lose_the_answer(route):
        if cut["resumed"]:
            route.continue_()
        elif cut["done"]:
            route.abort("internetdisconnected")
        else:
            route.fetch()  # the server applies it...
            cut["done"] = True
            route.abort("internetdisconnected")  # ...and the answer is lost

    page.route(re.compile(r"/t/api/orders/\d+/parts/$"), lose_the_answer)
    page.context.set_offline(False)
    wait_until(lambda: cut["done"])
    page.wait_for_timeout(300)
    half = world(server_state, ids["order"], ids["item"])
    assert half["status"] == "in_progress" and len(half["movements"]) == 1  # cut after the part
    assert page.evaluate("JSON.parse(localStorage.getItem('technician.queue.v1')).map(e => e.kind)") == ["part", "step"]

    cut["resumed"] = True
    page.get_by_role("button", name="Send now").click()  # resumed
    expect(page.locator("#sync-panel")).to_be_hidden()
    state = world(server_state, ids["order"], ids["item"])
    assert state["status"] == "completed"
    assert len(state["movements"]) == 1 and state["van"] == "1"  # the part's replay was recognised
    assert state["item_changes"] == 1 and [a for a, *_ in state["steps"]] == ["start", "complete"]


def test_a_refused_submit_lands_beside_its_field_scrolled_into_view(page, live):
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    sign_in(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.click("[data-action=start]")
    page.fill("#part_part_query", "SEAL-40")
    page.fill("#part_quantity", "5")
    page.get_by_role("button", name="Record part used").click()
    part_form = page.locator("[data-form-name=part]")
    expect(part_form.locator(".inline-error")).to_contain_text("Only 2 left in Van 3")
    expect(part_form).to_have_class(re.compile(r"\bis-error-target\b"))
    box = part_form.bounding_box()
    viewport = page.viewport_size
    assert box["y"] < viewport["height"] and box["y"] + min(box["height"], 200) > 0, box  # in view, not at the top
    assert page.evaluate("document.activeElement.closest('[data-form-name=part]') !== null")


def test_scanning_falls_back_to_a_typed_code_and_opens_a_saved_asset_offline(page, live):
    from playwright.sync_api import expect

    url, world = live
    world(make_world)
    save_for_offline(page, url)
    page.context.set_offline(True)
    page.get_by_role("button", name="Scan").click()
    # no camera in this Chromium (the fallback decoder stands in for BarcodeDetector: test_offline_media_browser.py)
    expect(page.locator("[data-scan-hint]")).to_contain_text("type the code printed on the label")
    page.fill("#scan-code", "nope-1")
    page.get_by_role("button", name="Open the asset").click()
    expect(page.locator("[data-scan-form] .inline-error")).to_contain_text("No asset “nope-1” is saved on this phone")
    page.fill("#scan-code", "pmp-1")
    page.get_by_role("button", name="Open the asset").click()
    page.wait_for_url(re.compile(r"/t/assets/[\w-]+/$"))
    expect(page.locator("h1")).to_have_text("Cooling pump")


def test_the_service_worker_shows_a_pushed_notification_and_the_app_installs(page, live):
    from playwright.sync_api import expect

    url, world = live
    world(make_world)
    page.context.grant_permissions(["notifications"], origin=url)
    save_for_offline(page, url)
    expect(page.locator("#push")).to_be_visible()
    manifest = page.evaluate("fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/t/"
    # The worker controlling the page (an earlier one may still be listed while it is replaced).
    worker = next(w for w in reversed(page.context.service_workers) if w.url.endswith("/t/sw.js"))
    result = worker.evaluate(
        """async () => {
            // Record what the push handler asks to show, and how the request ends. Headless Chromium now and then
            // never settles a persistent notification (seen once in ~10 runs, idle machine): that case is
            // reported as 'pending', while a refusal or a wrong notification fails the test.
            const calls = [], registration = self.registration;
            const show = registration.showNotification.bind(registration);
            let outcome = 'pending';
            registration.showNotification = (title, options) => {
              calls.push([title, options.body, options.data.url, options.tag, options.requireInteraction]);
              return show(title, options).then(
                () => { outcome = 'shown'; },
                (e) => { outcome = 'refused: ' + e; throw e; });
            };
            const data = JSON.stringify({title: 'Critical: WO-000009 Burst pipe', body: 'Plant room',
                                         url: '/t/orders/9/', kind: 'work-order:assigned',
                                         tag: 'work-order:assigned:9'});
            self.dispatchEvent(new PushEvent('push', {data}));
            for (let i = 0; i < 150 && outcome === 'pending'; i++) await new Promise(r => setTimeout(r, 100));
            const listed = (await registration.getNotifications()).map(n => [n.title, n.body, n.data.url]);
            return {calls, outcome, listed};
        }"""
    )
    assert result["calls"] == [
        ["Critical: WO-000009 Burst pipe", "Plant room", "/t/orders/9/", "work-order:assigned:9", True]
    ]
    assert result["outcome"] in ("shown", "pending"), result
    if result["outcome"] == "shown":
        assert result["listed"] == [["Critical: WO-000009 Burst pipe", "Plant room", "/t/orders/9/"]]


def require_failure_codes(organization_id: int) -> dict:
    from django.contrib.auth import get_user_model

    from maintenance_site.tenancy.models import Organization
    from workorders import services

    organization = Organization.objects.get(pk=organization_id)
    organization.require_failure_codes = True
    organization.save()
    planner = get_user_model().objects.get(username="planner")
    return {
        f"{kind}_code": services.create_failure_code(
            organization, kind=kind, code=code, name=code.title(), actor=planner
        ).pk
        for kind, code in (("problem", "LEAK"), ("cause", "SEAL-WEAR"), ("remedy", "REPLACED"))
    }


def codes_of(order_id: int) -> tuple:
    from workorders.models import WorkOrder

    order = WorkOrder.objects.get(pk=order_id)
    return order.status, order.problem_code_id, order.cause_code_id, order.remedy_code_id


def test_failure_codes_are_asked_for_offline_and_reach_the_order(page, live):
    """An organisation that requires failure codes: offline the phone asks for them before queueing the completion
    (the server cannot say it yet), and the codes picked travel with it."""
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(backdate, ids["order"])
    codes = world(require_failure_codes, ids["organization"])
    save_for_offline(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.click("[data-action=start]")
    expect(page.locator("[data-status]")).to_have_text("In progress")
    # the status text changes before the page shows the in-progress actions: wait for them while still online
    expect(page.locator("[data-action=complete]")).to_be_visible()

    page.context.set_offline(True)
    page.locator(f"#item-{ids['item']}").get_by_role("button", name="Mark done").click()
    page.click("[data-action=complete]")  # no codes picked: the phone asks, nothing is queued
    assert page.evaluate("document.querySelector('#complete_problem_code').validity.valueMissing")
    assert page.evaluate("JSON.parse(localStorage.getItem('technician.queue.v1')).map(e => e.kind)") == ["checklist"]
    for name, pk in codes.items():
        page.select_option(f"#complete_{name}", str(pk))
    page.click("[data-action=complete]")
    expect(page.locator("[data-status]")).to_have_text("Completed · waiting to send")

    page.context.set_offline(False)
    expect(page.locator("[data-status]")).to_have_text("Completed")
    expect(page.locator("#sync-panel")).to_be_hidden()
    assert world(codes_of, ids["order"]) == (
        "completed",
        codes["problem_code"],
        codes["cause_code"],
        codes["remedy_code"],
    )
