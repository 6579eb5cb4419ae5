"""`manage.py maintenance`: every verb, and errors that print a clear message and exit non-zero."""

import io
import json
import re
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from maintenance_site.tenancy import SYSTEM
from scenarios import services
from scenarios.models import Preset, PresetSchedule, Scenario, ScenarioActivity, ScenarioRun
from tests.scenarios.conftest import fresh


def run(*args) -> str:
    out = io.StringIO()
    call_command("maintenance", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_list(synced):
    output = run("list")
    assert output.splitlines()[0].split() == [
        "key",
        "state",
        "kind",
        "weight",
        "category",
        "schedule",
        "until",
        "last",
        "run",
    ]
    assert "health-checker" in output and "every 5 minutes" in output
    rows = json.loads(run("list", "--json"))
    assert {row["key"] for row in rows} >= {"backup-manager", "log-rotation"}


def test_activate_deactivate_and_status(synced):
    assert "health-checker is active until" in run("activate", "health-checker", "--duration", "2h", "--reason", "x")
    scenario = fresh("health-checker")
    assert (scenario.active_until - scenario.active_since).total_seconds() == 7200
    entry = ScenarioActivity.objects.get(action="activate")
    assert (entry.via, entry.actor.username, entry.reason) == ("cli", "system", "x")
    status = run("status")
    assert "Active: health-checker (1)" in status and "Heavy active: 0 of at most 3" in status and "CPU 5%" in status
    assert "is inactive" in run("deactivate", "health-checker")
    run("activate", "log-cleanup")
    assert ScenarioActivity.objects.filter(action="activate").first().reason.startswith("command line (")


def test_status_json_is_the_status_endpoints_scenarios(synced):
    services.activate_scenario("log-cleanup", actor=SYSTEM)
    assert json.loads(run("status", "--json")) == services.scenarios_status()


def test_stop_all(synced):
    services.activate_scenario("log-cleanup", actor=SYSTEM)
    assert "Stopped: 1 scenario(s) deactivated" in run("stop-all", "--reason", "drill", "--yes")
    assert not Scenario.objects.active().exists()


def test_run_now(synced):
    assert "requested; the runner starts it" in run("run", "log-cleanup")
    output = run("run", "log-cleanup", "--wait")
    assert "skipped" in output and "nothing past its retention" in output
    assert ScenarioRun.objects.filter(scenario__key="log-cleanup").count() == 2


def test_presets(synced, tmp_path):
    assert re.search(r"minimal\s+built-in\s+health-checker, log-cleanup", run("preset", "list"))
    assert "Preset minimal applied: activated health-checker and log-cleanup." in run(
        "preset", "apply", "minimal", "--yes"
    )
    assert "Preset night saved: health-checker, log-cleanup." in run("preset", "create", "night", "--name", "Night")
    exported = tmp_path / "night.json"
    run("preset", "export", "night", "--output", str(exported))
    assert json.loads(exported.read_text())["scenarios"] == ["health-checker", "log-cleanup"]
    assert json.loads(run("preset", "export", "night"))["key"] == "night"
    run("preset", "delete", "night")
    assert "Preset night imported" in run("preset", "import", str(exported))
    assert Preset.objects.filter(key="night").exists()


def test_schedule(synced):
    output = run(
        "schedule",
        "create",
        "--preset",
        "security",
        "--cron",
        "0 2 * * 0",
        "--duration",
        "2h",
        "--time-zone",
        "Europe/Berlin",
    )
    assert "preset security at “0 2 * * 0” (Europe/Berlin) for 120 min; next start" in output
    schedule = PresetSchedule.objects.get()
    assert "security" in run("schedule", "list")
    run("schedule", "delete", str(schedule.pk))
    assert not PresetSchedule.objects.exists()


def test_logs_filter(synced):
    services.activate_scenario("log-cleanup", reason="tidy up", actor=SYSTEM)
    services.log_activity(
        "discovery", subject="/srv/x/service.json", result="failed", message="invalid JSON", actor=SYSTEM
    )
    output = run("logs", "--filter", "discovery")
    assert "invalid JSON" in output and "tidy up" not in output
    assert "[why: tidy up]" in run("logs", "--filter", "log-cleanup")
    assert json.loads(run("logs", "--json", "--limit", "1"))[0]["action"] == "discovery"
    assert "No activity matching “nothing-like-this”." in run("logs", "--filter", "nothing-like-this")


def test_tick_runs_what_is_due(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    services.request_run("test-job", actor=SYSTEM)
    output = run("tick")
    assert "executed 1" in output and "test-job: succeeded: test-job ran" in output


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["activate", "nope"], "There is no scenario “nope”", 1),
        (["activate", "log-cleanup", "--duration", "forever"], "“forever” is not a duration", 2),
        (["activate", "log-cleanup", "--until", "tomorrow"], "“tomorrow” is not a date and time", 2),
        (["preset", "apply", "ghost"], "There is no preset “ghost”", 1),
        (["preset", "import", "/nonexistent/preset.json"], "Cannot read /nonexistent/preset.json", 1),
        (["schedule", "create", "--preset", "security", "--cron", "bad", "--duration", "1h"], "not a cron", 2),
        (["schedule", "delete", "999"], "There is no window schedule 999", 1),
        (["discover"], "Discovery is off: set SCENARIO_DISCOVERY_DIR", 1),
    ],
)
def test_errors_are_clear_and_non_zero(synced, args, message, code):
    with pytest.raises(CommandError, match=message) as error:
        run(*args)
    assert error.value.returncode == code


@pytest.mark.parametrize("args", [["stop-all"], ["preset", "apply", "minimal"]])
def test_bulk_operations_ask_first_and_refuse_without_a_terminal(synced, args, monkeypatch):
    active_before = set(Scenario.objects.filter(state="active").values_list("key", flat=True))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="Add --yes to confirm") as refused:
        run(*args)
    assert refused.value.returncode == 2
    assert set(Scenario.objects.filter(state="active").values_list("key", flat=True)) == active_before


@pytest.mark.parametrize(("answer", "applied"), [("y\n", True), ("n\n", False)])
def test_at_a_terminal_the_answer_decides(synced, answer, applied, monkeypatch):
    stdin = io.StringIO(answer)
    stdin.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", stdin)
    if applied:
        assert "Preset minimal applied" in run("preset", "apply", "minimal")
    else:
        with pytest.raises(CommandError, match="Nothing done"):
            run("preset", "apply", "minimal")
    active = set(Scenario.objects.filter(state="active").values_list("key", flat=True))
    assert (active == {"health-checker", "log-cleanup"}) is applied


def test_a_refusal_exits_non_zero(synced, load):
    load.cpu = 99.0
    with pytest.raises(CommandError, match="The machine is busy") as error:
        run("activate", "log-cleanup")
    assert error.value.returncode == 1


def test_the_real_command_line_prints_the_error_and_exits_non_zero():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "maintenance", "activate"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0 and "the following arguments are required: key" in result.stderr
