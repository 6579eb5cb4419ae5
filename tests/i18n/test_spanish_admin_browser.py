"""The back office in Spanish in a real Chromium (Debian's, driven by Playwright) against the live server (issue
30): a manager who chose Spanish, in a browser that asks for English, signs in to the admin, reads the dashboard's
tiles and notes in Spanish, asks for a status report and reads it — headings, sections, columns, notes — in
Spanish; none of the platform's English texts is left in the dashboard or the report, only the user data.

The live server, the browser database and Chromium are those of tests/technician/test_browser.py."""

import re

from tests.i18n.test_spanish_browser import ENGLISH
from tests.technician.test_browser import (  # noqa: F401  (fixtures used by name)
    IN_CI,
    MISSING,
    PASSWORD,
    _async_unsafe_allowed,
    browser,
    browser_marks,
    live,
    make_world,
)

pytestmark = browser_marks("tests/i18n/test_spanish_admin_browser.py")

USER_DATA = ["Org A", "Replace the seal", "Cooling pump", "PMP-1", "Plant room", "boss", "tech", "planner"]


def english_in(text: str) -> list[str]:
    for data in USER_DATA:
        text = text.replace(data, "")
    return [english for english in ENGLISH if re.search(rf"(?<![\w]){re.escape(english)}(?![\w])", text)]


def spanish_manager() -> None:
    from maintenance_site.tenancy import SYSTEM
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.models import Organization
    from maintenance_site.tenancy.roles import Role

    manager = tenancy.create_user("boss", password=PASSWORD)
    manager.is_staff = True
    manager.save(update_fields=["is_staff"])
    tenancy.add_member(Organization.objects.get(slug="org-a"), manager, Role.MANAGER)
    tenancy.set_language(manager, actor=SYSTEM, language="es")


def test_a_spanish_manager_reads_the_dashboard_and_a_report_in_spanish(live, browser):  # noqa: F811
    from playwright.sync_api import expect

    url, world = live
    world(make_world)
    world(spanish_manager)
    expect.set_options(timeout=30_000)
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{url}/admin/login/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{url}/admin/")

        dashboard = page.locator("#dashboard")
        expect(dashboard).to_contain_text("Los últimos 7 días comparados con los 7 anteriores.")
        expect(page.locator("#tile-open")).to_contain_text("Órdenes de trabajo abiertas")
        expect(page.locator("#tile-overdue")).to_contain_text("Vencida")
        expect(dashboard).to_contain_text("Antigüedad del trabajo pendiente (órdenes abiertas)")
        assert english_in(dashboard.inner_text()) == [], dashboard.inner_text()

        page.goto(f"{url}/admin/reports/generatedreport/new/")
        expect(page.locator("#report-request")).to_contain_text("Desde")
        page.select_option("#id_kind", "status")
        page.select_option("#id_format", "html")
        page.locator("#report-request input[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/reports/generatedreport/\d+/report/$"))
        expect(page.locator("#report-done")).to_contain_text("Descargar (")
        report = page.locator(".report")
        expect(report).to_contain_text("Informe de estado")
        expect(report).to_contain_text("Trabajo abierto por estado")
        expect(report).to_contain_text("toda la organización")
        expect(report).to_contain_text("Trabajo pendiente por antigüedad")
        expect(report).to_contain_text("Activos parados")
        assert english_in(report.inner_text()) == [], report.inner_text()
    finally:
        context.close()
