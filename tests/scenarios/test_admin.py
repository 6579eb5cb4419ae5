"""The scenario board in the admin: platform administrators only, state and toggles, presets one click
away, resource usage, the activity log; every change behind a confirmation page."""

import json

from django.contrib.admin import helpers

from maintenance_site.tenancy import SYSTEM
from scenarios import services
from scenarios.models import Preset, PresetSchedule, Scenario, ScenarioActivity, ScenarioRun
from tests.scenarios.conftest import fresh

BOARD = "/admin/scenarios/scenario/"
PRESET_WINDOWS = "/admin/scenarios/presetschedule/"


def add_security_window(client, **fields):
    """Post the add form of a preset window: the security preset, Sundays 02:00 UTC for two hours, switched on."""
    data = {"cron": "0 2 * * 0", "duration_minutes": "120", "time_zone": "UTC", "enabled": "on", **fields}
    data["preset"] = Preset.objects.get(key="security").pk
    return client.post(f"{PRESET_WINDOWS}add/", {name: value for name, value in data.items() if value is not None})


def test_a_tenants_staff_cannot_see_the_board(client, synced, manager_a):
    client.force_login(manager_a)
    assert client.get(BOARD).status_code == 403
    assert client.get(BOARD + "board/stop-all/").status_code == 403
    assert client.post(BOARD + "board/toggle/health-checker/", {"apply": "1"}).status_code == 403
    assert b"Maintenance scenarios" not in client.get("/admin/").content
    assert not fresh("health-checker").is_active


def test_the_board_shows_state_presets_resources_and_activity(operator_client, synced):
    services.activate_scenario("health-checker", reason="watching", actor=SYSTEM)
    page = operator_client.get(BOARD).content.decode()
    assert "Scenario board" in page
    assert 'CPU <strong data-usage="cpu_percent">5%</strong>' in page
    assert 'Memory <strong data-usage="memory_percent">30%</strong>' in page
    assert "heavy 0 of at most 3" in page
    for preset in ("Full maintenance", "Security", "Performance", "Off hours", "Minimal"):
        assert preset in page
    assert "/admin/scenarios/scenario/board/preset/minimal/" in page
    assert "Stop all…" in page and "health-checker" in page and "Deactivate" in page
    assert "activate health-checker" in page


def test_a_toggle_asks_first(operator_client, synced, operator):
    url = BOARD + "board/toggle/health-checker/"
    page = operator_client.get(url)
    assert page.status_code == 200 and b"Activate health-checker?" in page.content
    assert not fresh("health-checker").is_active
    response = operator_client.post(url, {"apply": "1", "duration_minutes": "15", "reason": "from the board"})
    assert response.status_code == 302
    scenario = fresh("health-checker")
    assert scenario.is_active and scenario.activated_by == operator
    entry = ScenarioActivity.objects.get(action="activate")
    assert (entry.via, entry.reason) == ("admin", "from the board")
    assert b"Deactivate health-checker?" in operator_client.get(url).content
    operator_client.post(url, {"apply": "1"})
    assert not fresh("health-checker").is_active


def test_a_refusal_is_shown_as_a_message(operator_client, synced, load):
    load.cpu = 99.0
    response = operator_client.post(BOARD + "board/toggle/health-checker/", {"apply": "1"}, follow=True)
    assert "The machine is busy" in response.content.decode()
    assert not fresh("health-checker").is_active


def test_bulk_activation_has_a_confirmation_page(operator_client, synced):
    ids = [str(fresh(key).pk) for key in ("health-checker", "log-cleanup")]
    data = {"action": "activate_selected", helpers.ACTION_CHECKBOX_NAME: ids, "index": 0}
    page = operator_client.post(BOARD, data)
    assert page.status_code == 200 and b"Activate these scenarios?" in page.content
    assert not Scenario.objects.active().exists()
    response = operator_client.post(BOARD, {**data, "apply": "1", "reason": "bulk"})
    assert response.status_code == 302
    assert set(Scenario.objects.active().values_list("key", flat=True)) == {"health-checker", "log-cleanup"}
    data["action"] = "deactivate_selected"
    operator_client.post(BOARD, {**data, "apply": "1"})
    assert not Scenario.objects.active().exists()


def test_a_preset_is_one_click_and_a_confirmation_away(operator_client, synced):
    services.activate_scenario("security-audit", actor=SYSTEM)
    url = BOARD + "board/preset/minimal/"
    page = operator_client.get(url).content.decode()
    assert "Apply preset minimal?" in page
    assert "activate health-checker" in page and "deactivate security-audit" in page
    operator_client.post(url, {"apply": "1", "reason": "evening"})
    assert set(Scenario.objects.active().values_list("key", flat=True)) == {"health-checker", "log-cleanup"}


def test_stop_all_asks_first(operator_client, synced):
    services.activate_scenario("log-cleanup", actor=SYSTEM)
    url = BOARD + "board/stop-all/"
    page = operator_client.get(url).content.decode()
    assert "Stop every scenario?" in page and "log-cleanup" in page
    assert fresh("log-cleanup").is_active
    operator_client.post(url, {"apply": "1", "reason": "drill"})
    assert not Scenario.objects.active().exists()


def test_changing_a_schedule(operator_client, synced):
    scenario = fresh("health-checker")
    response = operator_client.post(
        f"/admin/scenarios/scenario/{scenario.pk}/change/",
        {"interval_seconds": "", "cron": "*/10 * * * *", "time_zone": "Europe/Berlin"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    scenario = fresh("health-checker")
    assert (scenario.interval_seconds, scenario.cron, scenario.time_zone) == (None, "*/10 * * * *", "Europe/Berlin")
    assert ScenarioActivity.objects.filter(action="reschedule").exists()


def test_presets_pages(operator_client, synced):
    assert operator_client.get("/admin/scenarios/preset/").status_code == 200
    response = operator_client.post(
        "/admin/scenarios/preset/add/",
        {"key": "night", "name": "Night", "description": "", "scenarios": ["log-cleanup", "backup-manager"]},
    )
    assert response.status_code == 302
    assert Preset.objects.get(key="night").scenario_keys == ["log-cleanup", "backup-manager"]
    exported = operator_client.get("/admin/scenarios/preset/night/export/")
    assert exported["Content-Disposition"] == 'attachment; filename="preset-night.json"'
    document = json.loads(exported.content)
    document["key"] = "night-2"
    assert operator_client.get("/admin/scenarios/preset/import/").status_code == 200
    response = operator_client.post("/admin/scenarios/preset/import/", {"apply": "1", "document": json.dumps(document)})
    assert response.status_code == 302 and Preset.objects.filter(key="night-2").exists()
    response = operator_client.post("/admin/scenarios/preset/import/", {"apply": "1", "document": "{oops"})
    assert response.status_code == 200 and "not valid JSON" in response.content.decode()
    full = Preset.objects.get(key="full")
    assert operator_client.post(f"/admin/scenarios/preset/{full.pk}/delete/", {"post": "yes"}).status_code == 403


def test_windows_runs_and_activity_pages(operator_client, synced):
    response = add_security_window(operator_client)
    assert response.status_code == 302 and PresetSchedule.objects.count() == 1
    run = services.request_run("log-cleanup", actor=SYSTEM)
    assert operator_client.get("/admin/scenarios/scenariorun/").status_code == 200
    data = {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [str(run.pk)], "index": 0}
    assert b"Cancel these runs?" in operator_client.post("/admin/scenarios/scenariorun/", data).content
    operator_client.post("/admin/scenarios/scenariorun/", {**data, "apply": "1"})
    assert ScenarioRun.objects.get(pk=run.pk).status == "cancelled"
    page = operator_client.get("/admin/scenarios/scenarioactivity/").content.decode()
    assert "run-cancel" in page
    assert operator_client.get("/admin/scenarios/discoveredservice/").status_code == 200


def test_forms_show_the_services_refusals_next_to_the_field(operator_client, synced):
    response = operator_client.post("/admin/scenarios/preset/add/", {"key": "minimal", "name": "", "scenarios": []})
    assert response.status_code == 200 and "A preset “minimal” already exists." in response.content.decode()
    response = add_security_window(operator_client, cron="0 * * * *", duration_minutes="90")
    assert response.status_code == 200
    assert "Longer than the gap between two occurrences." in response.content.decode()
    assert not PresetSchedule.objects.exists()


def test_preset_window_schedules_are_written_through_the_service_with_history(operator_client, operator, synced):
    """Adding and switching off a preset window from the admin: the service's rows, each history row naming the
    operator and each change in the activity log (switching used to be an UPDATE that left no history)."""
    response = add_security_window(operator_client, enabled=None)  # the box left unticked
    assert response.status_code == 302
    schedule = PresetSchedule.objects.get()
    assert not schedule.enabled  # created as the form said: switched off
    assert (schedule.history.latest().history_type, schedule.history.latest().history_user) == ("+", operator)

    response = operator_client.post(f"{PRESET_WINDOWS}{schedule.pk}/change/", {"enabled": "on"})
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.enabled
    latest = schedule.history.latest()
    assert (latest.history_type, latest.history_user, latest.enabled) == ("~", operator, True)
    logged = ScenarioActivity.objects.filter(action="schedule").order_by("at")
    assert [(entry.via, entry.actor) for entry in logged] == [("admin", operator)] * 2
    assert "enabled" in logged.last().message
