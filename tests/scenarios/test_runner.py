"""Activation schedules runs: the scheduler tick only records that a run is due (once per slot, whatever
beats twice), the runner tick claims and executes it, recording status, output and duration."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from maintenance_site.errors import Conflict, InvalidInput
from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.models import Organization
from scenarios import runner, services
from scenarios.models import Scenario, ScenarioActivity, ScenarioRun, Weight
from scenarios.registry import RunResult
from scenarios.tasks import runner_tick, scheduler_tick
from tests.scenarios.conftest import fresh

Status = ScenarioRun.Status


def activated(key, minutes_ago=0, **schedule):
    scenario = services.activate_scenario(key, actor=SYSTEM)
    since = timezone.now() - timedelta(minutes=minutes_ago)
    Scenario.objects.filter(pk=scenario.pk).update(active_since=since, **schedule)
    return fresh(key)


def test_activation_does_not_run_at_once_but_after_one_interval(test_scenarios):
    test_scenarios.add("test-job", interval=600)
    test_scenarios.sync()
    scenario = services.activate_scenario("test-job", actor=SYSTEM)
    assert runner.record_due_runs(scenario.active_since + timedelta(seconds=599)) == []
    [run] = runner.record_due_runs(scenario.active_since + timedelta(seconds=601))
    assert run.slot == scenario.active_since + timedelta(seconds=600)
    assert run.trigger == "schedule" and run.status == Status.PENDING


def test_a_duplicate_beat_records_one_run(test_scenarios):
    test_scenarios.add("test-job", interval=60)
    test_scenarios.sync()
    activated("test-job", minutes_ago=5)
    scheduler_tick.delay()
    scheduler_tick.delay()  # a second beat, or the same tick delivered twice
    runner.record_due_runs()
    assert ScenarioRun.objects.filter(scenario__key="test-job").count() == 1


def test_only_the_latest_slot_is_kept_pending(test_scenarios):
    test_scenarios.add("test-job", interval=60)
    test_scenarios.sync()
    scenario = activated("test-job", minutes_ago=10)
    [first] = runner.record_due_runs(scenario.active_since + timedelta(seconds=61))
    [second] = runner.record_due_runs(scenario.active_since + timedelta(seconds=185))
    first.refresh_from_db()
    assert first.status == Status.SKIPPED and "superseded" in first.summary
    assert second.slot == scenario.active_since + timedelta(seconds=180)


def test_cron_slots_follow_the_time_zone(synced):
    scenario = services.activate_scenario("backup-manager", actor=SYSTEM)
    Scenario.objects.filter(pk=scenario.pk).update(
        cron="0 2 * * *", time_zone="Europe/Berlin", active_since=datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    )
    scenario = fresh("backup-manager")
    # 02:00 in Berlin in July is 00:00 UTC.
    assert runner.due_slot(scenario, datetime(2026, 7, 1, 23, 59, tzinfo=UTC)) is None
    assert runner.due_slot(scenario, datetime(2026, 7, 2, 0, 1, tzinfo=UTC)) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)


def test_the_runner_executes_due_runs_and_records_them(test_scenarios):
    def job(context):
        context.log("step one")
        context.checkpoint()
        return RunResult("did the thing", data={"answer": 42}, changed=3)

    test_scenarios.add("test-job", interval=60, func=job)
    test_scenarios.sync()
    activated("test-job", minutes_ago=2)
    scheduler_tick.delay()
    runner_tick.delay()
    run = ScenarioRun.objects.get(scenario__key="test-job")
    assert run.status == Status.SUCCEEDED and run.summary == "did the thing"
    assert run.output == "step one" and run.result == {"answer": 42} and run.changed == 3
    assert run.duration_ms is not None and run.finished_at >= run.started_at
    assert run.worker and run.heartbeat_at
    scenario = fresh("test-job")
    assert (scenario.last_run_status, scenario.last_run_summary) == ("succeeded", "did the thing")
    assert runner.run_due() == []  # nothing left


def test_a_run_is_claimed_once(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = services.request_run("test-job", actor=SYSTEM)
    now = timezone.now()
    assert runner._claim(run, now) is True
    assert runner._claim(run, now) is False  # another runner: the conditional UPDATE finds it running


def test_heavy_scenarios_never_run_together(test_scenarios):
    test_scenarios.add("test-heavy-a", weight=Weight.HEAVY)
    test_scenarios.add("test-heavy-b", weight=Weight.HEAVY)
    test_scenarios.add("test-light")
    test_scenarios.sync()
    first = services.request_run("test-heavy-a", actor=SYSTEM)
    second = services.request_run("test-heavy-b", actor=SYSTEM)
    light = services.request_run("test-light", actor=SYSTEM)
    now = timezone.now()
    assert runner._claim(first, now)
    assert not runner._claim(second, now)  # waits for the first heavy run
    assert runner._claim(light, now)
    runner.execute(first)
    assert runner._claim(second, timezone.now())


def test_a_failing_run_is_recorded_and_the_operators_told_once(test_scenarios, operator):
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.roles import Role

    organization = tenancy.create_organization(name="Ops", slug="ops")
    tenancy.add_member(organization, operator, Role.MANAGER)

    def broken(context):
        raise ValueError("the disk is full")

    test_scenarios.add("test-broken", func=broken)
    test_scenarios.sync()
    run = runner.run_now(services.request_run("test-broken", actor=SYSTEM))
    assert run.status == Status.FAILED and run.summary == "ValueError: the disk is full"
    assert "Traceback" in run.error and "the disk is full" in run.error
    notification = Notification.objects.get(recipient=operator)
    assert notification.kind == "scenario:run-failed" and "test-broken" in notification.title
    runner.run_now(services.request_run("test-broken", actor=SYSTEM))  # still failing: no second notification
    assert Notification.objects.filter(recipient=operator).count() == 1
    assert ScenarioActivity.objects.filter(action="run-failed").count() == 2


def test_a_deactivated_scenarios_scheduled_run_is_not_executed(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    activated("test-job", minutes_ago=3)
    [run] = runner.record_due_runs()
    Scenario.objects.filter(key="test-job").update(state="inactive", active_since=None)  # behind the services' back
    assert runner.run_due() == []
    run.refresh_from_db()
    assert run.status == Status.CANCELLED and test_scenarios.calls == []


def test_abandoned_runs_are_marked_failed(test_scenarios, settings):
    settings.SCENARIO_RUN_LEASE_MINUTES = 10
    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = services.request_run("test-job", actor=SYSTEM)
    runner._claim(run, timezone.now())
    ScenarioRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert runner.expire_abandoned_runs() == 1
    run.refresh_from_db()
    assert run.status == Status.FAILED and "abandoned" in run.summary


def test_manual_runs_work_whatever_the_state_but_not_for_external_ones(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    assert not fresh("test-job").is_active
    run = runner.run_now(services.request_run("test-job", actor=SYSTEM))
    assert run.status == Status.SUCCEEDED and run.trigger == "manual"
    external = Scenario.objects.create(key="outside", name="Outside", kind="external")
    with pytest.raises(InvalidInput, match="runs itself"):
        services.request_run(external, actor=SYSTEM)


def test_run_now_refuses_while_the_same_scenario_runs(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    first = services.request_run("test-job", actor=SYSTEM)
    runner._claim(first, timezone.now())
    with pytest.raises(Conflict, match="cannot start now"):
        runner.run_now(services.request_run("test-job", actor=SYSTEM))


def test_history_written_by_a_run_names_the_run(test_scenarios, org_a):
    def rename(context):
        organization = Organization.objects.get(slug="org-a")
        organization.name = "Org A (renamed)"
        organization.save()
        return RunResult("renamed")

    test_scenarios.add("test-rename", func=rename)
    test_scenarios.sync()
    run = runner.run_now(services.request_run("test-rename", actor=SYSTEM))
    record = org_a.history.first()
    assert record.history_change_reason == runner.change_reason(run.pk) == f"scenario-run:{run.pk}"
    assert record.history_user.username == "system"


def test_cancel_a_pending_run(test_scenarios, operator):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = services.request_run("test-job", actor=SYSTEM)
    run = services.cancel_run(run, actor=operator)
    assert run.status == Status.CANCELLED
    with pytest.raises(Conflict, match="already finished"):
        services.cancel_run(run, actor=operator)
