# ruff: noqa: F811  (pytest fixtures imported from the technician browser tests, used as arguments)
"""Asset health's back-office page in a real headless Chromium (Debian's /usr/bin/chromium through Playwright) on a
phone's 360 px: the health score chart (the theme's Chart.js component, the admin's one chart approach) is drawn
with the score's history and the risk limits, the anomaly and metric charts are drawn, and the page does not
scroll sideways. A screenshot goes to var/screenshots/ (ignored by git)."""

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
from tests.workorders.test_back_office_browser import sign_in

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
PHONE = {"width": 360, "height": 740}

pytestmark = browser_marks("tests/workorders/test_health_browser.py")


def make_health() -> dict:
    """A fresh organisation with a manager (staff) and a pump whose health fell over ten days (a snapshot a day),
    a critical anomaly, and a temperature series with daily rollups and its limits."""
    from datetime import timedelta

    from django.core.management import call_command
    from django.test import override_settings
    from django.utils import timezone

    from assets import services as asset_services
    from assets.telemetry.models import Anomaly, Grain, MetricDefinition, Series, TelemetryRollup
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role
    from workorders.health import services
    from workorders.health.models import AssetHealth, HealthSnapshot

    call_command("flush", interactive=False, verbosity=0)
    organization = tenancy.create_organization(name="Org A", slug="org-a", time_zone="Europe/Berlin")
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        manager = tenancy.create_user("manager", password=PASSWORD, is_staff=True)
    tenancy.add_member(organization, manager, Role.MANAGER)
    pump = asset_services.create_asset(organization, code="PMP-1", name="Cooling pump", criticality="high")
    now = timezone.now()
    series = Series.objects.create(
        organization=organization, asset=pump, metric="temperature", unit="°C", last_ts=now, last_value=81.0
    )
    MetricDefinition.objects.create(
        organization=organization, metric="temperature", unit="°C", warning_high=75, critical_high=90
    )
    for day in range(10):
        bucket = (now - timedelta(days=9 - day)).replace(hour=0, minute=0, second=0, microsecond=0)
        mean = 60 + 2.5 * day
        TelemetryRollup.objects.create(
            series=series, grain=Grain.DAY, bucket=bucket, count=24, total=24 * mean, minimum=mean - 3, maximum=mean + 4
        )
    Anomaly.objects.create(
        organization=organization,
        series=series,
        asset=pump,
        metric="temperature",
        detector="limit",
        severity="critical",
        started_at=now - timedelta(hours=5),
        last_seen_at=now,
        peak_value=92,
        peak_at=now - timedelta(hours=1),
        message="temperature above its critical limit",
    )
    services.refresh_health(force=True)
    for day in range(10):
        HealthSnapshot.objects.create(
            organization=organization,
            asset=pump,
            score=95 - 6 * day,
            risk="low" if day < 3 else "medium" if day < 6 else "high",
            computed_at=now - timedelta(days=10 - day),
        )
    return {"health": AssetHealth.objects.get(asset=pump).pk}


@pytest.fixture(scope="module")
def world(live):
    _, run = live
    return run(make_health)


@pytest.fixture
def phone(live, browser):
    page = new_page(
        browser,
        is_problem=lambda response: response.status >= 500,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    yield page
    page.context.close()


def test_the_health_chart_is_drawn_on_a_phone(live, world, phone):
    url, _ = live
    sign_in(phone, live, "manager")
    phone.goto(f"{url}/admin/workorders/assethealth/{world['health']}/change/?days=30")
    phone.wait_for_function(
        "() => window.Chart && document.querySelector('#chart-health canvas.chart')"
        " && window.Chart.getChart(document.querySelector('#chart-health canvas.chart'))"
    )
    drawn = phone.evaluate(
        """() => [...document.querySelectorAll('#asset-health canvas.chart')].map((canvas) => {
               const chart = window.Chart.getChart(canvas);
               if (!chart) return null;
               const box = canvas.getBoundingClientRect();
               return {id: canvas.closest('[id^=chart-]').id, labels: chart.data.labels.length,
                       datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data})),
                       width: box.width, height: box.height};
           })"""
    )
    assert drawn and all(chart is not None for chart in drawn), drawn
    by_id = {chart["id"]: chart for chart in drawn}
    health = by_id["chart-health"]
    assert health["labels"] >= 10  # the ten snapshots (and the current score's)
    score = next(d for d in health["datasets"] if d["label"] == "Health score")
    assert max(score["data"]) == 95 and min(score["data"]) <= 41
    assert {d["label"] for d in health["datasets"]} >= {"Low ≥ 80", "Medium ≥ 60", "High ≥ 40"}
    assert 0 < health["width"] <= 360 and health["height"] > 0
    anomalies = by_id["chart-anomalies"]
    assert sum(sum(d["data"]) for d in anomalies["datasets"]) == 1
    [metric] = [chart for key, chart in by_id.items() if key.startswith("chart-metric-")]
    assert metric["labels"] == 10 and any(d["label"] == "Critical high 90" for d in metric["datasets"])
    widths = phone.evaluate("() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})")
    assert widths["page"] <= widths["window"] + 1, widths
    assert "temperature above its critical limit" in phone.inner_text("#asset-health")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "asset-health-phone.png"), full_page=True)
    assert not [problem for problem in phone.problems if "Content Security Policy" in problem], phone.problems
    assert not [problem for problem in phone.problems if problem.startswith("5")], phone.problems
