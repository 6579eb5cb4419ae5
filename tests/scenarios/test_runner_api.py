"""The runner's REST endpoints: runs (list, detail, cancel), metrics, rollbacks (list, execute), priority
analysis; platform administrators only, like the rest of the scenario API."""

import pytest

from assets.models import Asset
from maintenance_site.tenancy import SYSTEM
from scenarios import runner, services
from scenarios.models import ScenarioRun
from scenarios.registry import RunResult

ENDPOINTS = [
    ("get", "/api/v1/scenario-runs/metrics"),
    ("get", "/api/v1/scenario-runs/rollbacks"),
    ("post", "/api/v1/scenario-runs/1/rollback"),
    ("get", "/api/v1/scenarios/health-checker/priority"),
    ("get", "/api/v1/scenarios/health-checker/metrics"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_only_platform_administrators(api, synced, manager_a, org_a, method, url):
    assert getattr(api(), method)(url).status_code == 401
    assert getattr(api(manager_a, org_a), method)(url).status_code == 403


def test_priority_metrics_and_a_rollback_through_the_api(api, operator, test_scenarios, org_a):
    pump = Asset.objects.create(organization=org_a, code="P-1", name="Pump")

    def rename(context):
        row = Asset.objects.get(pk=pump.pk)
        row.name = "Renamed"
        row.save()
        return RunResult("renamed", changed=1, data={"issues_fixed": 1})

    test_scenarios.add("test-rename", func=rename)
    test_scenarios.sync()
    run = runner.run_now(services.request_run("test-rename", actor=SYSTEM))
    assert run.issues_fixed == 1
    client = api(operator)

    analysis = client.get("/api/v1/scenarios/test-rename/priority").json()
    assert set(analysis["terms"]) == {"impact", "urgency", "effort", "success_rate"} and "score" in analysis
    found = client.get("/api/v1/scenario-runs/metrics?days=7").json()
    assert next(m for m in found if m["task"] == "test-rename")["success_rate"] == 100.0
    assert client.get("/api/v1/scenarios/test-rename/metrics").json()["runs"] == 1
    assert client.get("/api/v1/scenario-runs/metrics?days=0").status_code == 400

    points = client.get("/api/v1/scenario-runs/rollbacks").json()
    assert [p["id"] for p in points] == [run.pk]
    assert client.post(f"/api/v1/scenario-runs/{run.pk}/rollback", {}, format="json").status_code == 400
    response = client.post(f"/api/v1/scenario-runs/{run.pk}/rollback", {"reason": "oops"}, format="json")
    assert response.status_code == 200, response.json()
    pump.refresh_from_db()
    assert pump.name == "Pump"
    again = client.post(f"/api/v1/scenario-runs/{run.pk}/rollback", {"reason": "oops"}, format="json")
    assert again.status_code == 409 and "already rolled back" in again.json()["error"]["message"]
    detail = client.get(f"/api/v1/scenario-runs/{run.pk}").json()
    assert detail["rolled_back_at"] and detail["issues_fixed"] == 1


def test_cancel_a_pending_run(api, operator, test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = services.request_run("test-job", actor=SYSTEM)
    response = api(operator).post(f"/api/v1/scenario-runs/{run.pk}/cancel", {"reason": "not now"}, format="json")
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.status == ScenarioRun.Status.CANCELLED
