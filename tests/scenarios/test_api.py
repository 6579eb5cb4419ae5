"""The REST API: platform administrators only (one tenant's manager must not switch the platform's jobs
for every tenant), the scenario, preset and run endpoints, refusals as JSON an operator can act on, and the
status endpoint agreeing with the command line."""

import io
import json

import pytest
from django.core.management import call_command

from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.services import create_api_key
from scenarios import services
from scenarios.models import Preset, PresetSchedule, ScenarioActivity, ScenarioRun
from tests.scenarios.conftest import fresh


@pytest.fixture
def admin_api(api, operator):
    return api(operator)


# --- who may ---------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "/api/v1/scenarios"),
    ("get", "/api/v1/scenarios/health-checker"),
    ("post", "/api/v1/scenarios/health-checker/activate"),
    ("post", "/api/v1/scenarios/health-checker/deactivate"),
    ("post", "/api/v1/scenarios/stop-all"),
    ("get", "/api/v1/presets"),
    ("post", "/api/v1/presets/minimal/apply"),
    ("get", "/api/v1/scenario-activity"),
    ("get", "/api/v1/scenario-runs"),
    ("get", "/api/v1/preset-schedules"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_anonymous_is_refused(api, synced, method, url):
    response = getattr(api(), method)(url)
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_tenant_manager_is_refused_even_with_activate_scenarios(api, synced, manager_a, org_a, method, url):
    from maintenance_site.tenancy.roles import Action, Role, role_allows

    assert role_allows(Role.MANAGER, Action.ACTIVATE_SCENARIOS)  # the role allows it in the tenant...
    response = getattr(api(manager_a, org_a), method)(url)
    assert response.status_code == 403  # ...but scenarios are the platform's
    assert "only platform administrators (superusers)" in response.json()["error"]["message"]
    assert not fresh("health-checker").is_active


def test_an_api_key_is_refused(client, synced, org_a):
    _, key = create_api_key(org_a, name="ERP", scope="read_write")
    response = client.get("/api/v1/scenarios", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 403


def test_a_superuser_without_any_organisation_may(admin_api, synced):
    assert admin_api.get("/api/v1/scenarios").status_code == 200


# --- scenarios ---------------------------------------------------------------------------------------------


def test_list_and_detail(admin_api, synced, django_assert_max_num_queries):
    # session-less JWT user, the count's EXPLAIN (PostgreSQL: maintenance_site.pagination), count, scenarios, their
    # conflicts, their dependencies, activator
    with django_assert_max_num_queries(8):
        response = admin_api.get("/api/v1/scenarios?page_size=100")
    body = response.json()
    assert body["count"] == 11
    keys = [row["key"] for row in body["results"]]
    assert keys == sorted(keys) and "health-checker" in keys
    detail = admin_api.get("/api/v1/scenarios/database-vacuum").json()
    assert detail["weight"] == "heavy" and detail["state"] == "inactive" and detail["kind"] == "internal"
    assert detail["schedule"] == {
        "interval_seconds": None,
        "cron": "30 3 * * *",
        "time_zone": "UTC",
        "description": "cron “30 3 * * *” (UTC)",
    }
    assert admin_api.get("/api/v1/scenarios?state=active").json()["count"] == 0
    assert admin_api.get("/api/v1/scenarios/nope").status_code == 404


def test_activate_and_deactivate(admin_api, synced, operator):
    response = admin_api.post(
        "/api/v1/scenarios/health-checker/activate", {"duration_minutes": 30, "reason": "incident review"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "active" and body["activated_by"] == "platform-admin"
    assert body["activation_reason"] == "incident review" and body["active_until"]
    entry = ScenarioActivity.objects.get(action="activate")
    assert (entry.via, entry.actor) == ("api", operator)
    response = admin_api.post("/api/v1/scenarios/health-checker/deactivate", {"reason": "done"})
    assert response.status_code == 200 and response.json()["state"] == "inactive"


def test_refusals_are_json_an_operator_can_act_on(admin_api, synced, settings, load):
    settings.SCENARIOS_MAX_HEAVY = 1
    admin_api.post("/api/v1/scenarios/backup-manager/activate")
    response = admin_api.post("/api/v1/scenarios/database-vacuum/activate")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "too_many_heavy" and "At most 1 heavy scenario may be active" in error["message"]
    assert error["heavy"] == ["backup-manager", "database-vacuum"]
    load.cpu = 99.0
    response = admin_api.post("/api/v1/scenarios/health-checker/activate")
    assert response.status_code == 409 and response.json()["error"]["code"] == "load_too_high"
    response = admin_api.post(
        "/api/v1/scenarios/log-cleanup/activate", {"duration_minutes": 10, "until": "2099-01-01T00:00Z"}
    )
    assert response.status_code == 400 and "either an end time or a duration" in response.json()["error"]["message"]


def test_run_now_and_the_runs_list(admin_api, synced):
    response = admin_api.post("/api/v1/scenarios/log-cleanup/run", {"reason": "test"})
    assert response.status_code == 202
    run_id = response.json()["id"]
    runs = admin_api.get("/api/v1/scenario-runs?scenario=log-cleanup").json()
    assert [row["id"] for row in runs["results"]] == [run_id] and runs["results"][0]["status"] == "pending"
    response = admin_api.post(f"/api/v1/scenario-runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert "output" in admin_api.get(f"/api/v1/scenario-runs/{run_id}").json()
    assert ScenarioRun.objects.get(pk=run_id).status == "cancelled"


def test_stop_all(admin_api, synced):
    services.activate_scenario("health-checker", actor=SYSTEM)
    services.activate_scenario("log-cleanup", actor=SYSTEM)
    response = admin_api.post("/api/v1/scenarios/stop-all", {"reason": "incident"})
    assert response.status_code == 200
    assert sorted(response.json()["deactivated"]) == ["health-checker", "log-cleanup"]


# --- presets ---------------------------------------------------------------------------------------------


def test_presets_list_apply_create_export_import_delete(admin_api, synced):
    listed = {row["key"]: row for row in admin_api.get("/api/v1/presets").json()["results"]}
    assert set(listed) == {"full", "security", "performance", "off-hours", "minimal"}
    assert listed["minimal"]["scenarios"] == ["health-checker", "log-cleanup"] and listed["minimal"]["builtin"]

    response = admin_api.post("/api/v1/presets/minimal/apply", {"reason": "quiet"})
    assert response.status_code == 200
    assert response.json()["activated"] == ["health-checker", "log-cleanup"]
    assert response.json()["status"]["active"] == ["health-checker", "log-cleanup"]

    response = admin_api.post("/api/v1/presets", {"key": "my-preset", "name": "Mine"})
    assert response.status_code == 201 and response.json()["scenarios"] == ["health-checker", "log-cleanup"]
    assert admin_api.post("/api/v1/presets", {"key": "my-preset"}).status_code == 409

    exported = admin_api.get("/api/v1/presets/my-preset/export").json()
    assert exported["format"] == "maintenance-preset/1" and exported["scenarios"] == ["health-checker", "log-cleanup"]
    assert admin_api.delete("/api/v1/presets/my-preset").status_code == 204
    response = admin_api.post("/api/v1/presets/import", exported, format="json")
    assert response.status_code == 201 and Preset.objects.filter(key="my-preset").exists()

    response = admin_api.post("/api/v1/presets/import", {"key": "bad", "scenarios": ["nope"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["scenarios"] == [
        "No such scenario here: nope (`manage.py maintenance list` shows them)."
    ]
    assert admin_api.delete("/api/v1/presets/full").status_code == 409


def test_a_refused_preset_changes_nothing(admin_api, synced, settings):
    settings.SCENARIOS_MAX_HEAVY = 1
    response = admin_api.post("/api/v1/presets/off-hours/apply")
    assert response.status_code == 409 and "At most 1 heavy" in response.json()["error"]["message"]
    assert admin_api.get("/api/v1/scenarios?state=active").json()["count"] == 0


def test_preset_windows(admin_api, synced):
    response = admin_api.post(
        "/api/v1/preset-schedules",
        {"preset": "security", "cron": "0 2 * * 0", "duration": "2h", "time_zone": "Europe/Berlin"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["preset"], body["duration_minutes"], body["time_zone"]) == ("security", 120, "Europe/Berlin")
    assert body["next_start"].endswith("Z")
    response = admin_api.post("/api/v1/preset-schedules", {"preset": "security", "cron": "nope", "duration": "2h"})
    assert response.status_code == 400 and "is not a cron expression" in response.json()["error"]["message"]
    assert admin_api.delete(f"/api/v1/preset-schedules/{body['id']}").status_code == 204
    assert not PresetSchedule.objects.exists()


def test_the_activity_log(admin_api, synced):
    services.activate_scenario("health-checker", reason="why not", actor=SYSTEM)
    admin_api.post("/api/v1/presets/minimal/apply")
    rows = admin_api.get("/api/v1/scenario-activity?action=activate").json()["results"]
    assert [(row["action"], row["scenario"], row["reason"], row["result"]) for row in rows] == [
        ("activate", "health-checker", "why not", "ok")
    ]
    assert admin_api.get("/api/v1/scenario-activity?q=minimal").json()["count"] == 1


# --- the status endpoint and the command line agree ------------------------------------------------------


def test_status_includes_the_scenarios_and_agrees_with_the_command_line(client, synced, operator):
    services.activate_scenario("health-checker", actor=operator, duration_minutes=60)
    services.activate_scenario("backup-manager", actor=operator)
    client.force_login(operator)  # the scenarios are for signed-in users; anyone gets health and maintenance mode
    response = client.get("/api/v1/status")
    assert response.status_code == 200
    from_api = response.json()["scenarios"]
    out = io.StringIO()
    call_command("maintenance", "status", "--json", stdout=out)
    assert json.loads(out.getvalue()) == from_api
    assert from_api["active"] == ["backup-manager", "health-checker"]
    assert (from_api["active_count"], from_api["heavy_active"], from_api["max_heavy"]) == (2, 1, 3)
    by_key = {row["key"]: row for row in from_api["scenarios"]}
    assert by_key["health-checker"]["active_until"].endswith("Z") and by_key["log-cleanup"]["state"] == "inactive"
    assert "activated_by" not in by_key["health-checker"]  # the public status names nobody
