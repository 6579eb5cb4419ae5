"""The technician's main flow in Spanish in a real Chromium (Debian's, driven by Playwright) against a live server:
a technician who chose Spanish, on a phone whose browser asks for English, signs in, reads My work, starts the
order, is refused completion (the checklist), ticks it, records a part (the script's search, its numbers in the
Spanish locale) and completes it; no English text of the platform's is left on the pages, only the user data.

The live server, the browser database and Chromium are those of tests/technician/test_browser.py."""

import re

from maintenance_site.translations import LOCALE_DIR, read
from tests.technician.test_browser import (  # noqa: F401  (fixtures used by name)
    CHROMIUM_ARGS,
    IN_CI,
    MISSING,
    PHONE,
    _async_unsafe_allowed,
    browser,
    browser_marks,
    live,
    make_world,
    sign_in,
)

pytestmark = browser_marks("tests/i18n/test_spanish_browser.py")

# What the world holds that a person typed (user data): it stays as it was written.
USER_DATA = [
    "Replace the seal",
    "Leaks at the shaft.",
    "Isolate the pump",
    "Check the coupling",
    "Cooling pump",
    "Van 3",  # a stock location's name (its kind, "Van", is a platform text now translated)
]


def english_texts() -> list[str]:
    """The platform's English texts whose Spanish differs (placeholders cut out), to look for on the pages."""
    texts = set()
    for domain in ("django", "djangojs"):
        for message in read(LOCALE_DIR / "es" / "LC_MESSAGES" / f"{domain}.po"):
            if not message.id:
                continue
            english = message.id if isinstance(message.id, str) else message.id[0]
            spanish = message.string if isinstance(message.string, str) else message.string[0]
            for piece in re.split(r"%\(\w+\)s|\{\w+\}", english):
                piece = piece.strip(" .:;,()—·“”…")
                if len(piece) >= 3 and re.search(r"[A-Za-z]{3}", piece) and piece not in spanish:
                    texts.add(piece)
    return sorted(texts)


def english_on(page) -> list[str]:
    text = page.inner_text("body")
    for data in USER_DATA:
        text = text.replace(data, "")
    return [english for english in ENGLISH if re.search(rf"(?<![\w]){re.escape(english)}(?![\w])", text)]


ENGLISH = english_texts()


def spanish_technician_with_oil(ids: dict) -> None:
    """The technician chose Spanish; the order is due on Sat 5 Dec 2026 19:04 Berlin time; 2.5 litres of oil in
    the van (a number with decimals for the script to write)."""
    import datetime

    from django.contrib.auth import get_user_model

    from inventory import services as inventory_services
    from inventory.models import Part, StockLocation
    from maintenance_site.tenancy import SYSTEM
    from maintenance_site.tenancy import services as tenancy
    from workorders import services
    from workorders.models import WorkOrder

    users = get_user_model().objects
    tenancy.set_language(users.get(username="tech"), actor=SYSTEM, language="es")
    order = WorkOrder.objects.get(pk=ids["order"])
    due = datetime.datetime(2026, 12, 5, 18, 4, tzinfo=datetime.UTC)
    services.update_work_order(order, actor=users.get(username="planner"), due_at=due)
    van = StockLocation.objects.get(name="Van 3")
    oil = Part.objects.create(organization=van.organization, sku="OIL-46", name="Hydraulic oil", unit="litre")
    inventory_services.receive_stock(oil, van, "2.5", "4.00", actor=SYSTEM)


def test_a_spanish_technician_does_the_main_flow_in_spanish(live, browser):  # noqa: F811 (the imported fixtures)
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    world(spanish_technician_with_oil, ids)
    expect.set_options(timeout=30_000)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-US")
    context.set_default_timeout(30_000)
    page = context.new_page()
    problems = []
    # script errors (a missing catalogue would be one); refused requests (the 409 of the checklist) are expected
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(f"{url}/t/login/")
        expect(page.locator("h1")).to_have_text("Sign in")  # nobody known yet: the browser's English
        sign_in(page, url)

        # My work: the person's Spanish wins over the browser's English
        assert page.evaluate("document.documentElement.lang") == "es"
        expect(page.locator("h1")).to_have_text("Mi trabajo")
        card = page.locator(f"[data-order-id='{ids['order']}']")
        expect(card).to_contain_text("Alta")  # the priority
        expect(card).to_contain_text("Asignada")  # the status
        # the one date rule, in Spanish and Berlin time (the order is overdue by now)
        expect(card).to_contain_text("Vencida: vencía el sáb 5 Dic 2026, 19:04")
        assert english_on(page) == []

        card.locator("a").click()
        page.wait_for_url(f"{url}/t/orders/{ids['order']}/")
        page.click("[data-action=start]")
        expect(page.locator(".flash")).to_contain_text("iniciada")
        expect(page.locator("[data-status]")).to_have_text("En curso")

        page.click("[data-action=complete]")  # refused by the service, in Spanish
        expect(page.locator("#error")).to_contain_text(
            "1 punto obligatorio de la lista no está hecho: “Isolate the pump”"
        )

        item = page.locator(f"#item-{ids['item']}")
        item.get_by_role("button", name="Marcar como hecho").click()  # through the script's JSON endpoint
        expect(item).to_have_class(re.compile(r"\bis-done\b"))
        expect(item).to_contain_text("Hecho · tech")

        page.fill("#part_part_query", "oil")  # the script's search: its words and numbers in Spanish
        result = page.locator(".part-result", has_text="OIL-46")
        expect(result).to_have_text("OIL-46 · Hydraulic oil (2,5 en Van 3)")
        result.click()
        page.fill("#part_quantity", "1")
        page.get_by_role("button", name="Registrar repuesto usado").click()
        expect(page.locator("[data-parts-used]")).to_contain_text("1 × OIL-46 Hydraulic oil")

        page.click("[data-action=complete]")
        expect(page.locator(".flash")).to_contain_text("finalizada")
        expect(page.locator("[data-status]")).to_have_text("Finalizada")
        expect(page.locator("#history")).to_contain_text("Finalización")
        assert english_on(page) == [], page.inner_text("body")
        assert problems == []
    finally:
        context.close()
