"""Asset health (issue 20): the score's terms on hand-built histories, the debounce of the health job, predictive
work orders (exactly once per asset and cause, cooldown, cap per run, none for a healthy asset, event and
notification), diagnostics (sync, deep/async, external results, history, analyze), the health and insights
endpoints, tenant isolation and query counts."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from assets import services as asset_services
from assets.models import Downtime
from assets.telemetry.models import Anomaly, MetricDefinition, Series
from maintenance_site.events.models import Event
from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from workorders import services as work_orders
from workorders.health import reliability, scoring, services
from workorders.health.models import (
    AssetHealth,
    DiagnosticResult,
    DiagnosticRun,
    HealthSnapshot,
    PredictiveAlert,
    PredictiveSettings,
)
from workorders.models import DowntimeLink, WorkOrder


@pytest.fixture
def pump(org_a):
    return asset_services.create_asset(org_a, code="PMP-1", name="Pump", criticality="high")


@pytest.fixture
def foreign(org_b):
    return asset_services.create_asset(org_b, code="PMP-1", name="Their pump")


def order(asset, type_=WorkOrder.Type.CORRECTIVE, *, created_at=None, **fields):
    made = work_orders.create_work_order(
        asset.organization, title="Broke", type=type_, asset=asset, actor=SYSTEM, **fields
    )
    if created_at is not None:
        WorkOrder.objects.filter(pk=made.pk).update(created_at=created_at)
    return made


def anomaly(asset, severity="critical", status=Anomaly.Status.OPEN, metric="temp", detector="limit"):
    now = timezone.now()
    series, _ = Series.objects.get_or_create(
        organization=asset.organization, asset=asset, metric=metric, defaults={"last_ts": now, "last_value": 1.0}
    )
    return Anomaly.objects.create(
        organization=asset.organization,
        series=series,
        asset=asset,
        metric=metric,
        detector=detector,
        severity=severity,
        status=status,
        started_at=now - timedelta(hours=1),
        last_seen_at=now,
        ended_at=None if status != Anomaly.Status.RESOLVED else now,
        peak_value=99,
        peak_at=now,
        message="too hot",
    )


def results(asset, *pairs):
    return services.submit_results(
        asset, tool="megger", results=[{"check": c, "status": s} for c, s in pairs], actor=SYSTEM
    )


def make_critical(asset):
    """Score 100 − 35 (anomalies: 3 critical) − 30 (3 failures) − 5 (criticality high) = 30: critical."""
    for _ in range(3):
        anomaly(asset, metric=f"m{_}")
        order(asset)


# --- the score --------------------------------------------------------------------------------------------------


def test_each_term_of_a_hand_built_history(org_a, pump):
    now = timezone.now()
    order(pump, created_at=now - timedelta(days=10))
    order(pump, WorkOrder.Type.EMERGENCY, created_at=now - timedelta(days=20))
    order(pump, created_at=now - timedelta(days=200))  # outside the 90-day window
    order(pump, WorkOrder.Type.PREVENTIVE, due_at=now - timedelta(days=1))  # overdue
    order(pump, WorkOrder.Type.PREVENTIVE, due_at=now + timedelta(days=1))  # not yet due
    asset_services_downtime(pump, now - timedelta(hours=30), now - timedelta(hours=20))  # 10 h down
    anomaly(pump, "critical", metric="a")
    anomaly(pump, "warning", Anomaly.Status.ACKNOWLEDGED, metric="b")
    anomaly(pump, "critical", Anomaly.Status.RESOLVED, metric="c")  # resolved: not counted
    results(pump, ("insulation", "warn"), ("vibration", "fail"))
    results(pump, ("insulation", "pass"))  # the latest result of a check counts

    health = scoring.compute([pump], timezone.now())[pump.pk]

    penalties = {term["name"]: (term["value"], term["penalty"]) for term in health.terms}
    assert penalties == {
        "failures": (2, 20),
        "downtime": (10, 5),
        "anomalies": (4, 20),
        "diagnostics": (2.5, 10),
        "overdue_pm": (1, 5),
        "criticality": (1, 5),
    }
    assert (health.score, health.risk) == (35, "critical")
    assert health.heaviest in {"failures", "anomalies"}
    assert health.reasons[0].endswith("(−20)")


def asset_services_downtime(asset, started_at, ended_at):
    from assets.models import Downtime

    Downtime.objects.create(organization=asset.organization, asset=asset, started_at=started_at, ended_at=ended_at)


def test_a_term_is_capped(org_a, pump):
    for n in range(10):
        anomaly(pump, metric=f"m{n}")
    term = next(t for t in scoring.compute([pump], timezone.now())[pump.pk].terms if t["name"] == "anomalies")
    assert (term["value"], term["penalty"]) == (30, 35)


def test_a_healthy_asset_scores_100_less_its_criticality(org_a, pump):
    health = scoring.compute([pump], timezone.now())[pump.pk]
    assert (health.score, health.risk, health.heaviest) == (95, "low", None)


def test_risk_levels():
    assert [scoring.risk_of(s) for s in (100, 80, 79.9, 60, 59, 40, 39.9, 0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]


def test_next_failure_window_from_mtbf():
    now = timezone.now()
    times = [now - timedelta(days=30), now - timedelta(days=20), now - timedelta(days=10)]
    window = reliability.next_failure_window(times, now, mtbf_hours=240, trend_factor=1.0)
    assert window["mtbf_hours"] == 240
    assert window["expected_at"] == now  # 10 days after the last failure, i.e. now
    assert window["confidence"] == "medium"
    assert "240 h" in window["method"] and "analytics definition" in window["method"]
    assert reliability.next_failure_window(times[:1], now, mtbf_hours=240) is None
    assert reliability.next_failure_window(times, now, mtbf_hours=None) is None


# --- the health job: debounced and batched ---------------------------------------------------------------------


def test_health_is_recomputed_at_most_once_per_interval(org_a, pump, settings):
    settings.HEALTH_RECOMPUTE_INTERVAL = 300
    now = timezone.now()
    assert services.refresh_health(now) == 1
    assert services.refresh_health(now + timedelta(seconds=10)) == 0  # nothing changed
    for n in range(20):  # many points arriving: the series' last_ts moves on each time
        Series.objects.update_or_create(
            organization=org_a, asset=pump, metric="temp", defaults={"last_ts": now + timedelta(seconds=n)}
        )
        assert services.refresh_health(now + timedelta(seconds=30 + n)) == 0  # within the interval
    assert services.refresh_health(now + timedelta(seconds=301)) == 1  # once the interval passed
    assert services.refresh_health(now + timedelta(seconds=400)) == 0
    assert HealthSnapshot.objects.filter(asset=pump).count() == 2


def test_the_health_job_computes_many_assets_in_constant_queries(org_a, django_assert_max_num_queries):
    for n in range(3):
        asset_services.create_asset(org_a, code=f"S-{n}", name="Small")
    with django_assert_max_num_queries(20) as small:
        services.refresh_health(force=True)
    for n in range(30):
        asset_services.create_asset(org_a, code=f"L-{n}", name="Large")
    with django_assert_max_num_queries(20) as large:
        services.refresh_health(force=True)
    assert len(large.captured_queries) == len(small.captured_queries)


# --- predictive work orders ------------------------------------------------------------------------------------


def test_many_high_risk_runs_open_one_order_per_asset(org_a, pump, manager_a):
    make_critical(pump)
    services.refresh_health()
    for _ in range(5):
        services.run_predictive_checks()
    predictive = WorkOrder.objects.filter(asset=pump, type=WorkOrder.Type.PREDICTIVE)
    assert predictive.count() == 1
    made = predictive.get()
    assert (made.source, made.priority, made.requested_by.username) == ("predictive", "critical", "system")
    alert = PredictiveAlert.objects.get()
    assert alert.work_order == made and alert.anomalies.count() == 3
    assert Event.objects.filter(type="predictive:alert").count() == 1
    notes = Notification.objects.filter(kind="predictive:alert", recipient=manager_a)
    assert notes.count() == 1


def test_no_order_for_a_healthy_asset(org_a, pump):
    anomaly(pump, "warning")
    services.refresh_health()
    assert services.run_predictive_checks() == {"opened": 0, "candidates": 0}
    assert not WorkOrder.objects.filter(type=WorkOrder.Type.PREDICTIVE).exists()


def test_a_cooldown_after_the_order_closes(org_a, pump, manager_a):
    make_critical(pump)
    services.refresh_health()
    services.run_predictive_checks()
    made = WorkOrder.objects.get(type=WorkOrder.Type.PREDICTIVE)
    work_orders.cancel(made, reason="checked, fine", actor=manager_a)
    now = timezone.now()
    assert services.run_predictive_checks(now)["opened"] == 0  # closes the alert; the cooldown starts
    assert PredictiveAlert.objects.get().closed_at is not None
    assert services.run_predictive_checks(now + timedelta(hours=71))["opened"] == 0
    assert services.run_predictive_checks(now + timedelta(hours=73))["opened"] == 1
    assert WorkOrder.objects.filter(type=WorkOrder.Type.PREDICTIVE).count() == 2


def test_a_cap_per_run_and_the_riskiest_first(org_a):
    assets = [asset_services.create_asset(org_a, code=f"P-{n}", name="Pump") for n in range(4)]
    for asset in assets:
        make_critical(asset)
    anomaly(assets[3], metric="extra")  # no worse: the anomalies term is capped
    PredictiveSettings.objects.create(organization=org_a, max_orders_per_run=2)
    services.refresh_health()
    assert services.run_predictive_checks()["opened"] == 2
    assert services.run_predictive_checks()["opened"] == 2
    assert services.run_predictive_checks()["opened"] == 0
    assert WorkOrder.objects.filter(type=WorkOrder.Type.PREDICTIVE).count() == 4


def test_disabled_and_delayed(org_a, pump):
    make_critical(pump)
    services.refresh_health()
    options = PredictiveSettings.objects.create(organization=org_a, enabled=False)
    assert services.run_predictive_checks()["opened"] == 0
    options.enabled, options.delay_minutes = True, 30
    options.save()
    assert services.run_predictive_checks()["opened"] == 0  # the risk has not lasted 30 minutes yet
    assert services.run_predictive_checks(timezone.now() + timedelta(minutes=31))["opened"] == 1


# --- diagnostics -----------------------------------------------------------------------------------------------


def test_a_quick_run_answers_201_with_its_results(api, integrator_a, pump):
    now = timezone.now()
    MetricDefinition.objects.create(organization=pump.organization, metric="temp", warning_high=70, critical_high=90)
    Series.objects.create(organization=pump.organization, asset=pump, metric="temp", last_ts=now, last_value=80)
    Series.objects.create(
        organization=pump.organization, asset=pump, metric="flow", last_ts=now - timedelta(hours=2), last_value=1
    )
    response = api(integrator_a).post("/api/v1/diagnostics/run/", {"device_id": pump.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    by_check = {r["check"]: r["status"] for r in body["results"]}
    assert by_check == {
        "stale_data:flow": "warn",
        "out_of_range:flow": "pass",
        "drift:flow": "pass",
        "stale_data:temp": "pass",
        "out_of_range:temp": "warn",
        "drift:temp": "pass",
    }
    assert (body["status"], body["outcome"]) == ("done", "warn")


def test_a_deep_run_answers_202_and_is_polled(api, integrator_a, pump):
    response = api(integrator_a).post("/api/v1/diagnostics/run/", {"device_id": pump.pk, "deep": True}, format="json")
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    assert api(integrator_a).get(f"/api/v1/diagnostics/runs/{run_id}/").json()["status"] == "pending"
    services.complete_deep_run(run_id)
    services.complete_deep_run(run_id)  # twice: nothing more
    polled = api(integrator_a).get(f"/api/v1/diagnostics/runs/{run_id}/").json()
    assert (polled["status"], polled["outcome"]) == ("done", "pass")


def test_results_from_an_external_tool(api, integrator_a, pump):
    body = {
        "device_id": pump.pk,
        "tool": "megger",
        "results": [{"check": "insulation", "status": "fail", "measured": {"mohm": 0.4}, "message": "low"}],
    }
    response = api(integrator_a).post("/api/v1/diagnostics/run/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["results"] == [
        {"check": "insulation", "status": "fail", "measured": {"mohm": 0.4}, "message": "low"}
    ]
    bad = {"device_id": pump.pk, "results": [{"check": "ok", "status": "pass"}, {"check": "", "status": "meh"}]}
    refused = api(integrator_a).post("/api/v1/diagnostics/run/", bad, format="json")
    assert refused.status_code == 400
    assert DiagnosticRun.objects.count() == 1


def test_history_and_analyze(api, viewer_a, pump, django_assert_max_num_queries):
    results(pump, ("insulation", "pass"))
    results(pump, ("insulation", "fail"), ("vibration", "pass"))
    history = api(viewer_a).get(f"/api/v1/diagnostics/history/{pump.pk}/")
    assert history.status_code == 200
    assert [len(run["results"]) for run in history.json()] == [2, 1]
    analysis = api(viewer_a).post("/api/v1/diagnostics/analyze/", {"device_id": pump.pk}, format="json").json()
    insulation = next(row for row in analysis if row["check"] == "insulation")
    assert (insulation["runs"], insulation["fail"], insulation["fail_rate"]) == (2, 1, 0.5)
    for _ in range(20):
        results(pump, ("a", "pass"), ("b", "warn"))
    with django_assert_max_num_queries(12):
        assert len(api(viewer_a).get(f"/api/v1/diagnostics/history/{pump.pk}/").json()) == 22


# --- endpoints --------------------------------------------------------------------------------------------------


def test_the_health_endpoint_shows_why(api, viewer_a, pump):
    anomaly(pump, "critical")
    services.refresh_health(force=True)
    body = api(viewer_a).get(f"/api/v1/iot/devices/{pump.pk}/health/").json()
    assert (body["score"], body["risk"]) == (80, "low")
    anomalies = next(term for term in body["terms"] if term["name"] == "anomalies")
    assert (anomalies["value"], anomalies["weight"], anomalies["penalty"]) == (3, 5, 15)
    assert len(body["history"]) == 1 and body["reasons"]


def failure(asset, started_at, hours=1.0):
    """An unscheduled downtime (no planned work caused it): a failure as the analytics definitions count them."""
    return Downtime.objects.create(
        organization=asset.organization,
        asset=asset,
        started_at=started_at,
        ended_at=started_at + timedelta(hours=hours),
        reason="broke",
    )


def test_insights_rank_assets_by_risk_with_a_prediction(api, viewer_a, org_a, pump):
    calm = asset_services.create_asset(org_a, code="CALM", name="Calm")
    now = timezone.now()
    for days in (30, 20, 10):
        order(pump, created_at=now - timedelta(days=days))
        failure(pump, now - timedelta(days=days))
    services.refresh_health()
    rows = api(viewer_a).get("/api/v1/analytics/predictive-insights/").json()
    assert [row["asset"] for row in rows] == [pump.pk, calm.pk]
    prediction = rows[0]["prediction"]
    assert prediction["method"] and prediction["confidence"] == "medium"  # two equal intervals of 240 h
    assert rows[1]["prediction"] is None
    assert api(viewer_a).get("/api/v1/analytics/predictive-insights/?risk=bogus").status_code == 400


def test_health_and_analytics_agree_on_mtbf(api, viewer_a, org_a, pump):
    """One MTBF (maintenance_site.analytics.definitions): the prediction's MTBF is device performance's, per asset,
    over the same last 365 local days; and by hand: (window hours − 3 h down) ÷ 3 failures."""
    now = timezone.now()
    for days in (30, 20, 10):
        failure(pump, now - timedelta(days=days))
    planned = order(pump, WorkOrder.Type.PREVENTIVE)
    stop = failure(pump, now - timedelta(days=5), hours=4)  # scheduled: caused by planned work, not a failure
    DowntimeLink.objects.create(organization=org_a, downtime=stop, caused_by=planned)
    services.refresh_health(force=True)
    [row] = [r for r in api(viewer_a).get("/api/v1/analytics/predictive-insights/").json() if r["asset"] == pump.pk]
    scope = reliability.window(org_a, now)
    by_hand = ((min(scope.end, now) - scope.start) / timedelta(hours=1) - 3 - 4) / 3
    today = now.astimezone(org_a.zone).date()
    first = today - timedelta(days=reliability.WINDOW_DAYS - 1)
    body = (
        api(viewer_a)
        .get(f"/api/v1/analytics/device-performance/?group_by=asset&from={first}&to={today}&asset={pump.pk}")
        .json()
    )
    [analytics_row] = body["rows"]
    assert analytics_row["failures"] == 3
    assert analytics_row["mtbf"] == pytest.approx(by_hand, abs=0.01)
    assert row["prediction"]["mtbf_hours"] == pytest.approx(analytics_row["mtbf"], abs=0.05)


def test_insights_in_constant_queries(api, viewer_a, org_a, django_assert_max_num_queries):
    for n in range(2):
        asset_services.create_asset(org_a, code=f"S-{n}", name="Small")
    services.refresh_health()
    client = api(viewer_a)
    with django_assert_max_num_queries(15) as small:
        client.get("/api/v1/analytics/predictive-insights/")
    for n in range(20):
        asset_services.create_asset(org_a, code=f"L-{n}", name="Large")
    services.refresh_health()
    with django_assert_max_num_queries(15) as large:
        assert len(client.get("/api/v1/analytics/predictive-insights/").json()) == 22
    assert len(large.captured_queries) == len(small.captured_queries)


def test_another_organisations_device_is_not_found(api, manager_a, foreign):
    client = api(manager_a)
    results(foreign, ("x", "fail"))
    run = DiagnosticRun.objects.get()
    assert client.get(f"/api/v1/iot/devices/{foreign.pk}/health/").status_code == 404
    assert client.get(f"/api/v1/diagnostics/history/{foreign.pk}/").status_code == 404
    assert client.get(f"/api/v1/diagnostics/runs/{run.pk}/").status_code == 404
    assert client.post("/api/v1/diagnostics/run/", {"device_id": foreign.pk}, format="json").status_code == 404
    analyzed = client.post("/api/v1/diagnostics/analyze/", {"device_id": foreign.pk}, format="json")
    assert analyzed.status_code == 404
    services.refresh_health()
    assert AssetHealth.objects.filter(asset=foreign).exists()
    assert client.get("/api/v1/analytics/predictive-insights/").json() == []
    assert client.post("/api/v1/diagnostics/analyze/", {}, format="json").json() == []
    assert DiagnosticResult.objects.count() == 1


def test_the_technicians_asset_page_shows_health_anomalies_and_a_trend(client, technician_a, pump):
    from django.urls import reverse

    anomaly(pump, "critical")
    now = timezone.now()
    services.refresh_health(now - timedelta(days=2), force=True)
    services.refresh_health(now, force=True)
    client.force_login(technician_a)
    page = client.get(reverse("technician:asset", args=[pump.public_token])).content.decode()
    assert "80</strong> / 100" in page and "Low risk" in page
    assert "<polyline points=" in page and "<script" not in page.split("data-health")[1].split("</section>")[0]
    assert "bearing" not in page and "temp: Limit crossed" in page


def test_assets_with_open_orders_never_starve_the_next_one(org_a):
    assets = [asset_services.create_asset(org_a, code=f"Q-{n}", name="Pump") for n in range(7)]
    for asset in assets:
        make_critical(asset)
    PredictiveSettings.objects.create(organization=org_a, max_orders_per_run=1)
    services.refresh_health()
    assert [services.run_predictive_checks()["opened"] for _ in range(8)] == [1] * 7 + [0]
    assert set(PredictiveAlert.objects.values_list("asset_id", flat=True)) == {asset.pk for asset in assets}


def test_the_admin_health_charts_read_a_fixed_number_of_queries(org_a, pump):
    """The back office's asset-health page (workorders.health.charts.admin_charts): the score's history with the
    risk limits, anomalies per day, each metric with its limits; the same queries for a longer history."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from assets.telemetry.models import Grain, TelemetryRollup
    from workorders.health import charts

    now = timezone.now()

    def grow(n: int) -> None:
        made = HealthSnapshot.objects.filter(asset=pump).count()
        for i in range(made, made + n):
            HealthSnapshot.objects.create(
                organization=org_a, asset=pump, score=90 - i, risk="low", computed_at=now - timedelta(hours=i + 1)
            )
            anomaly(pump, "warning", metric=f"m{i}")
        series = Series.objects.filter(asset=pump).first()
        for i in range(made + n):
            TelemetryRollup.objects.get_or_create(
                series=series,
                grain=Grain.DAY,
                bucket=(now - timedelta(days=i)).replace(hour=0, minute=0, second=0, microsecond=0),
                defaults={"count": 2, "total": 10.0, "minimum": 4.0, "maximum": 6.0},
            )

    grow(1)
    with CaptureQueriesContext(connection) as small:
        charts.admin_charts(pump, 30)
    grow(8)
    with CaptureQueriesContext(connection) as large:
        drawn = charts.admin_charts(pump, 30)
    assert len(large) == len(small) == 7
    health = json.loads(drawn["health"]["data"])
    assert len(health["labels"]) == 9 and [d["label"] for d in health["datasets"]][1:] == [
        "Low ≥ 80",
        "Medium ≥ 60",
        "High ≥ 40",
    ]
    anomalies = json.loads(drawn["anomalies"]["data"])
    assert sum(sum(d["data"]) for d in anomalies["datasets"]) == 9
    assert len(drawn["metrics"]) == 9 and len(drawn["open_anomalies"]) == 9
