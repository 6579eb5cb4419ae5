"""External scenarios: discovered from service.json files, polled, and switched through their endpoints,
against a small HTTP server on 127.0.0.1 (one service that answers, one that times out, one that answers
500, one whose port refuses connections). Failures become visible state, not log lines."""

import io
import time

import pytest
from django.core.management import call_command

from maintenance_site.errors import Conflict
from maintenance_site.tenancy import SYSTEM
from scenarios import discovery, presets, services
from scenarios.models import DiscoveredService, Scenario, ScenarioActivity
from scenarios.remote import ExternalScenarioError
from tests.scenarios.conftest import fresh, service_json


@pytest.fixture
def discovered(synced, services_server, discovery_dir, closed_port):
    discovery_dir("alpha", service_json("alpha", services_server.url("ok"), category="performance"))
    discovery_dir("slowpoke", service_json("slowpoke", services_server.url("slow")))
    discovery_dir("crashy", service_json("crashy", services_server.url("broken")))
    discovery_dir("gone", service_json("gone", f"http://127.0.0.1:{closed_port}"), vrooli=False)
    discovery_dir("locked", service_json("locked", services_server.url("locked")))
    discovery_dir("flaky", service_json("flaky", services_server.url("flaky-activate")))
    discovery_dir("plain", {"service": {"name": "plain", "tags": ["web"]}})
    discovery_dir("broken-json", None, raw='{"tags": ["maintenance",]}')
    discovery_dir("no-endpoints", {"tags": ["maintenance"], "name": "no-endpoints"})
    discovery.discover()
    return services_server


def test_discovery_creates_inactive_external_scenarios_and_explains_every_file(discovered, discovery_dir):
    external = {s.key: s for s in Scenario.objects.external()}
    assert set(external) == {"alpha", "slowpoke", "crashy", "gone", "locked", "flaky"}
    alpha = external["alpha"]
    assert (alpha.state, alpha.category, alpha.name, alpha.is_present) == ("inactive", "performance", "Alpha", True)
    assert alpha.status_url == discovered.url("ok") + "/api/v1/status"
    assert alpha.activate_url == discovered.url("ok") + "/api/v1/maintenance/activate"
    outcomes = {row.path.split("/scenarios/")[1]: (row.outcome, row.message) for row in DiscoveredService.objects.all()}
    assert outcomes["plain/.vrooli/service.json"] == ("ignored", "not tagged “maintenance”")
    assert outcomes["broken-json/.vrooli/service.json"][0] == "invalid"
    assert "invalid JSON: Expecting value at line 1" in outcomes["broken-json/.vrooli/service.json"][1]
    assert outcomes["no-endpoints/.vrooli/service.json"] == (
        "invalid",
        "no endpoints: give maintenance.baseUrl or full URLs in maintenance.endpoints",
    )
    assert outcomes["gone/service.json"] == ("scenario", "scenario gone")
    logged = list(ScenarioActivity.objects.filter(action="discovery").values_list("result", "message"))
    assert ("ok", f"discovered alpha in {discovery_dir.folder}/alpha/.vrooli/service.json") in logged
    assert any(result == "failed" and "broken-json" in message for result, message in logged)
    discovery.discover()  # a second scan changes nothing and logs nothing new
    assert ScenarioActivity.objects.filter(action="discovery").count() == len(logged)


def test_polling_records_health_and_failures_as_state(discovered):
    assert discovery.poll_all() == 3  # alpha, locked, flaky answer
    alpha, slow, crashy, gone = (fresh(key) for key in ("alpha", "slowpoke", "crashy", "gone"))
    assert (alpha.remote_health, alpha.remote_state, alpha.can_toggle, alpha.last_error) == (
        "healthy",
        "inactive",
        True,
        "",
    )
    assert slow.remote_health == "unreachable" and slow.last_error.endswith("did not answer within 0.5 s")
    assert crashy.last_error.startswith(discovered.url("broken") + "/api/v1/status answered HTTP 500")
    assert "refused the connection (is the service running?)" in gone.last_error
    assert fresh("locked").can_toggle is False


def test_activating_and_deactivating_calls_the_service(discovered, operator):
    discovery.poll_all()
    services.activate_scenario("alpha", actor=operator, reason="try it")
    assert fresh("alpha").is_active and discovered.state["ok"] == "active"
    method, name, path, body = discovered.requests[-1]
    assert (method, name, path, body) == (
        "POST",
        "ok",
        "api/v1/maintenance/activate",
        {"state": "active", "reason": "try it"},
    )
    services.deactivate_scenario("alpha", actor=operator)
    assert not fresh("alpha").is_active and discovered.state["ok"] == "inactive"


def test_a_service_that_times_out_is_not_activated(discovered, operator):
    started = time.monotonic()
    with pytest.raises(ExternalScenarioError, match=r"Could not activate slowpoke: .* did not answer within 0.5 s"):
        services.activate_scenario("slowpoke", actor=operator)
    assert time.monotonic() - started < 1.9  # the timeout, not the service's 2 s, decided
    slow = fresh("slowpoke")
    assert not slow.is_active and "did not answer within 0.5 s" in slow.last_error
    entry = ScenarioActivity.objects.filter(action="activate").get()
    assert entry.result == "failed" and "did not answer" in entry.message


def test_refused_connections_and_server_errors_are_named(discovered):
    with pytest.raises(ExternalScenarioError, match="refused the connection"):
        services.activate_scenario("gone", actor=SYSTEM)
    with pytest.raises(ExternalScenarioError, match="answered HTTP 500"):
        services.activate_scenario("crashy", actor=SYSTEM)
    assert not Scenario.objects.active().exists()


def test_a_service_that_cannot_toggle_is_refused(discovered):
    discovery.poll_all()
    with pytest.raises(Conflict, match="locked reports canToggle: false"):
        services.activate_scenario("locked", actor=SYSTEM)


def test_a_preset_with_a_failing_service_is_all_or_nothing(discovered):
    discovery.poll_all()
    presets.define_preset("mixed", scenario_keys=["health-checker", "alpha", "flaky"], actor=SYSTEM)
    with pytest.raises(ExternalScenarioError, match="Could not activate flaky: .* answered HTTP 500"):
        presets.apply_preset("mixed", actor=SYSTEM)
    assert not Scenario.objects.active().exists()
    assert discovered.state["ok"] == "inactive"  # alpha was switched on, then back off
    assert [req[2] for req in discovered.requests if req[1] == "ok" and req[0] == "POST"] == [
        "api/v1/maintenance/activate",
        "api/v1/maintenance/deactivate",
    ]


def test_stop_all_is_never_refused_by_an_unreachable_service(discovered, services_server):
    discovery.poll_all()
    services.activate_scenario("alpha", actor=SYSTEM)
    services_server.behaviour["ok"] = "broken"
    result = services.stop_all(reason="now", actor=SYSTEM)
    assert result["deactivated"] == ["alpha"] and not fresh("alpha").is_active
    assert "answered HTTP 500" in fresh("alpha").last_error  # the drift is shown on the board


def test_a_removed_service_file_retires_its_scenario(discovered, discovery_dir):
    discovery.poll_all()
    services.activate_scenario("alpha", actor=SYSTEM)
    (discovery_dir.folder / "alpha" / ".vrooli" / "service.json").unlink()
    discovery.discover()
    alpha = fresh("alpha")
    assert not alpha.is_present and not alpha.is_active
    with pytest.raises(Conflict, match="no longer found by the last discovery"):
        services.activate_scenario("alpha", actor=SYSTEM)
    out = io.StringIO()
    call_command("maintenance", "logs", "--filter", "discovery", stdout=out)
    assert "alpha is no longer discovered (its service.json is gone)" in out.getvalue()


def test_declared_conflicts_with_internal_scenarios(synced, services_server, discovery_dir):
    discovery_dir("hog", service_json("hog", services_server.url("ok"), conflicts=["backup-manager"]))
    discovery.discover()
    discovery.poll_all()
    assert list(fresh("backup-manager").conflicts.values_list("key", flat=True)) == ["hog"]
    services.activate_scenario("backup-manager", actor=SYSTEM)
    with pytest.raises(Conflict, match="hog conflicts with backup-manager, which is active"):
        services.activate_scenario("hog", actor=SYSTEM)


def test_a_key_taken_by_an_internal_scenario_is_invalid(synced, services_server, discovery_dir):
    discovery_dir("impostor", service_json("log-cleanup", services_server.url("ok")))
    discovery.discover()
    row = DiscoveredService.objects.get()
    assert row.outcome == "invalid" and "belongs to an internal scenario" in row.message
    assert fresh("log-cleanup").kind == "internal"


def test_the_discovery_tick_scans_and_polls(discovered):
    from scenarios.tasks import discovery_tick

    result = discovery_tick.delay().get()
    assert result["enabled"] and result["answered"] == 3


def test_a_missing_discovery_folder_is_reported(synced, settings, tmp_path):
    settings.SCENARIO_DISCOVERY_DIR = str(tmp_path / "nowhere")
    result = discovery.discover()
    assert result["problem"].startswith("the discovery folder")
