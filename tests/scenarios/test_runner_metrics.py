"""History and metrics from the runs: success rate, average duration, trends, consecutive failures, last
success; the alert when failures in a row reach the threshold (once per streak); cleanup."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from scenarios import metrics, runner, services
from scenarios.models import ScenarioActivity, ScenarioRun
from scenarios.registry import RunResult
from tests.scenarios.conftest import fresh

Status = ScenarioRun.Status


def seed(scenario, days_ago, status, duration_ms, now):
    at = now - timedelta(days=days_ago)
    return ScenarioRun.objects.create(
        scenario=scenario,
        slot=at - timedelta(seconds=duration_ms / 1000),
        status=status,
        started_at=at - timedelta(seconds=duration_ms / 1000),
        finished_at=at,
        duration_ms=duration_ms,
    )


def test_metrics_and_trends_from_a_seeded_history(test_scenarios):
    test_scenarios.add("test-job")
    scenario = test_scenarios.sync()["test-job"]
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    seed(scenario, 40, Status.FAILED, 9000, now)  # outside the 30 days
    seed(scenario, 3, Status.SUCCEEDED, 1000, now)
    seed(scenario, 3, Status.SUCCEEDED, 3000, now - timedelta(hours=1))
    seed(scenario, 2, Status.FAILED, 2000, now)
    seed(scenario, 2, Status.SKIPPED, 10, now - timedelta(hours=1))  # says nothing of health
    seed(scenario, 1, Status.TIMED_OUT, 6000, now)
    found = metrics.task_metrics(scenario, days=30, now=now)
    assert (found["runs"], found["succeeded"], found["failed"], found["timed_out"]) == (5, 2, 1, 1)
    assert found["success_rate"] == 50.0
    assert found["average_duration_ms"] == 3000  # (1000 + 3000 + 2000 + 6000) / 4
    assert found["consecutive_failures"] == 2
    assert found["last_success"] == now - timedelta(days=3)
    assert [(d["runs"], d["success_rate"], d["average_duration_ms"]) for d in found["trend"]] == [
        (2, 100.0, 2000),
        (1, 0.0, 2000),
        (1, 0.0, 6000),
    ]


def test_the_operators_are_alerted_once_when_failures_in_a_row_reach_the_threshold(test_scenarios, operator, settings):
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role

    settings.SCENARIO_FAILURE_ALERT_THRESHOLD = 3
    organization = tenancy.create_organization(name="Ops", slug="ops")
    tenancy.add_member(organization, operator, Role.MANAGER)
    outcome = {"ok": False}

    def sometimes(context):
        if not outcome["ok"]:
            raise RuntimeError("down")
        return RunResult("fine")

    test_scenarios.add("test-flaky", func=sometimes)
    test_scenarios.sync()

    def alerts():
        return Notification.objects.filter(recipient=operator, title__contains="times in a row").count()

    for _ in range(2):
        runner.run_now(services.request_run("test-flaky", actor=SYSTEM))
    assert alerts() == 0
    runner.run_now(services.request_run("test-flaky", actor=SYSTEM))
    assert alerts() == 1
    assert ScenarioActivity.objects.filter(action="failure-alert").count() == 1
    runner.run_now(services.request_run("test-flaky", actor=SYSTEM))  # 4 in a row: the same streak, no second alert
    assert alerts() == 1
    outcome["ok"] = True
    runner.run_now(services.request_run("test-flaky", actor=SYSTEM))
    outcome["ok"] = False
    for _ in range(3):  # a new streak alerts again
        runner.run_now(services.request_run("test-flaky", actor=SYSTEM))
    assert alerts() == 2
    assert metrics.task_metrics(fresh("test-flaky"))["consecutive_failures"] == 3


def test_cleanup_deletes_old_runs_and_forgets_old_rollback_points(test_scenarios, capsys):
    test_scenarios.add("test-job")
    scenario = test_scenarios.sync()["test-job"]
    now = timezone.now()
    old = seed(scenario, 100, Status.SUCCEEDED, 10, now)
    middle = seed(scenario, 40, Status.SUCCEEDED, 10, now)
    ScenarioRun.objects.filter(pk=middle.pk).update(changed=2)
    recent = seed(scenario, 1, Status.SUCCEEDED, 10, now)
    call_command("maintenance", "cleanup", "--history-days", "90", "--rollback-days", "30")
    assert "Deleted 1 runs; forgot 1 rollback points" in capsys.readouterr().out
    assert not ScenarioRun.objects.filter(pk=old.pk).exists()
    middle.refresh_from_db()
    assert middle.rollback_expired_at is not None
    assert ScenarioRun.objects.filter(pk=recent.pk).exists()
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("maintenance", "cleanup", "--history-days", "0")


def test_the_task_verbs_on_the_command_line(test_scenarios, capsys):
    test_scenarios.add("test-job")
    scenario = test_scenarios.sync()["test-job"]
    seed(scenario, 1, Status.SUCCEEDED, 1500, timezone.now())
    call_command("maintenance", "list-tasks")
    assert "test-job" in capsys.readouterr().out
    call_command("maintenance", "schedule-task", "test-job", "--cron", "0 3 * * *")
    assert fresh("test-job").cron == "0 3 * * *"
    with pytest.raises(CommandError, match="not a cron expression"):
        call_command("maintenance", "schedule-task", "test-job", "--cron", "every day")
    call_command("maintenance", "run-task", str(scenario.pk), "--wait")
    assert "succeeded" in capsys.readouterr().out
    call_command("maintenance", "history", "test-job", "--limit", "5")
    out = capsys.readouterr().out
    assert out.count("succeeded") == 2
    call_command("maintenance", "metrics", "--days", "7")
    assert "test-job" in capsys.readouterr().out
    call_command("maintenance", "analyze-priority", "test-job")
    out = capsys.readouterr().out
    for term in ("impact", "urgency", "effort", "success_rate", "category", "priority"):
        assert term in out
    with pytest.raises(CommandError, match="No task “nope”"):
        call_command("maintenance", "history", "nope")
