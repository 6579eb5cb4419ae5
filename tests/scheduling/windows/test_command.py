"""`manage.py windows`: every verb; `--json` prints what the API answers; the API's refusals with exit codes a
script can rely on (2 bad input, 1 refused)."""

import io
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scheduling.windows.models import MaintenanceWindow

W = MaintenanceWindow


def run(*args) -> str:
    out = io.StringIO()
    call_command("windows", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def at(hours: float) -> str:
    return (timezone.now() + timedelta(hours=hours)).astimezone().replace(microsecond=0).isoformat()


def schedule(*extra) -> dict:
    return json.loads(run("schedule", "--org", "org-a", "--title", "Patch", "--json", *extra))


def test_schedule_prints_what_the_api_answers(org_a, manager_a, api):
    window = schedule("--start", at(2), "--duration", "1h30m", "--type", "database")
    assert window["title"] == "Patch" and window["duration_minutes"] == 90 and window["status"] == "scheduled"
    assert window["maintenance_type"] == "database"
    from_api = api(manager_a, org_a).get(f"/api/v1/maintenance/windows/{window['id']}/").json()
    assert window == from_api
    assert W.objects.get(pk=window["id"]).history.first().history_user.username == "system"


def test_a_time_without_offset_is_the_organisations(org_a):
    window = schedule("--start", "2030-01-15T22:00", "--end", "2030-01-15T23:00")
    # Org A is in Europe/Berlin: 22:00 there is 21:00 UTC in January.
    assert window["starts_at"] == "2030-01-15T21:00:00Z"


def test_list_shows_planned_windows_and_filters_by_status(org_a):
    first = schedule("--start", at(1), "--duration", "30")
    second = schedule("--start", at(3), "--duration", "30")
    run("cancel", str(second["id"]), "--org", "org-a", "--reason", "Not needed")
    listed = json.loads(run("list", "--org", "org-a", "--json"))
    assert [row["id"] for row in listed] == [first["id"]]
    cancelled = json.loads(run("list", "--org", "org-a", "--status", "cancelled", "--json"))
    assert [(row["id"], row["status_reason"]) for row in cancelled] == [(second["id"], "Not needed")]
    text = run("list", "--org", "org-a")
    assert "Patch" in text and "scheduled" in text


def test_an_overlap_is_refused_unless_an_emergency_with_a_reason(org_a):
    schedule("--start", at(1), "--duration", "2h")
    with pytest.raises(CommandError, match="overlaps") as refused:
        schedule("--start", at(2), "--duration", "30")
    assert refused.value.returncode == 1
    with pytest.raises(CommandError, match="needs a reason") as refused:
        schedule("--start", at(2), "--duration", "30", "--emergency")
    assert refused.value.returncode == 2
    window = schedule("--start", at(2), "--duration", "30", "--emergency", "--reason", "Security fix")
    assert window["emergency"] is True and window["overridden_conflicts"]
    assert W.objects.filter(organization=org_a).count() == 2


def test_end_a_running_window_and_the_mode_follows(org_a):
    window = schedule("--start", at(-0.1), "--duration", "1h")
    assert window["status"] == "active"
    status = json.loads(run("mode", "status", "--org", "org-a", "--json"))
    assert status["active"] is True and status["windows"][0]["id"] == window["id"]
    ended = json.loads(run("end", str(window["id"]), "--org", "org-a", "--reason", "Done early", "--json"))
    assert ended["status"] == "completed"
    assert "off" in run("mode", "status", "--org", "org-a")


def test_mode_on_and_off_agree_with_the_api(org_a, manager_a, api):
    until = at(1)
    body = json.loads(run("mode", "on", "--org", "org-a", "--reason", "Database migration", "--until", until, "--json"))
    assert body["active"] is True and body["manual"] is True and body["reason"] == "Database migration"
    assert body == api(manager_a, org_a).get("/api/v1/maintenance/mode").json() | {"retry_after": body["retry_after"]}
    assert "ON for this organisation" in run("mode", "status", "--org", "org-a")
    assert json.loads(run("mode", "off", "--org", "org-a", "--json"))["active"] is False


def test_the_platform_switch(org_a, org_b):
    run("mode", "on", "--platform", "--reason", "Upgrade")
    assert json.loads(run("mode", "status", "--org", "org-b", "--json"))["platform"] is True
    run("mode", "off", "--platform")
    assert json.loads(run("mode", "status", "--org", "org-a", "--json"))["active"] is False


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["list", "--org", "nowhere"], "No organisation with the slug “nowhere”", 2),
        (["schedule", "--org", "org-a", "--title", "X", "--start", "soon", "--duration", "1h"], "not a date", 2),
        (
            ["schedule", "--org", "org-a", "--title", "X", "--start", "2030-01-01T10:00", "--duration", "ages"],
            "not a duration",
            2,
        ),
        (
            ["schedule", "--org", "org-a", "--title", "X", "--start", "2001-01-01T10:00", "--duration", "1h"],
            "at most a year in the past",
            2,
        ),
        (["cancel", "999", "--org", "org-a", "--reason", "x"], "No maintenance window 999", 1),
        (["end", "999", "--org", "org-a"], "No maintenance window 999", 1),
    ],
)
def test_refusals_are_clear_and_non_zero(org_a, args, message, code):
    with pytest.raises(CommandError, match=message) as refused:
        run(*args)
    assert refused.value.returncode == code
    assert not W.objects.exists()


def test_another_organisations_window_is_not_found(org_a, org_b):
    window = schedule("--start", at(1), "--duration", "30")
    with pytest.raises(CommandError, match="No maintenance window") as refused:
        run("cancel", str(window["id"]), "--org", "org-b", "--reason", "Not mine")
    assert refused.value.returncode == 1
    assert W.objects.get(pk=window["id"]).status == "scheduled"


def test_ending_a_window_that_has_not_started_is_refused(org_a):
    window = schedule("--start", at(1), "--duration", "30")
    with pytest.raises(CommandError) as refused:
        run("end", str(window["id"]), "--org", "org-a")
    assert refused.value.returncode == 1


def test_the_real_command_line_exits_two_on_a_missing_argument():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "windows", "schedule", "--org", "x"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 2
    assert "--title" in result.stderr
