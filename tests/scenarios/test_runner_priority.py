"""The automated-task runner: task settings, the priority order of the claim, dependencies and
their cycles, the concurrency limit, execution windows and cooldown, retries with backoff."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy import SYSTEM
from scenarios import priority, registry, runner, services, sync
from scenarios.models import Category, Priority, Scenario, ScenarioRun
from scenarios.registry import RunResult, validate_config
from tests.scenarios.conftest import fresh

Status = ScenarioRun.Status


def set_task(key, **fields):
    Scenario.objects.filter(key=key).update(**fields)
    return fresh(key)


def recorder(order):
    def make(key):
        def run(context):
            order.append(key)
            return RunResult(f"{key} ran")

        return run

    return make


# --- task settings -----------------------------------------------------------------------------------------


def test_the_configuration_is_checked_against_the_tasks_schema(test_scenarios):
    assert validate_config({"days": 3}, {"days": int, "paths?": list}) == []
    assert validate_config({}, {"days": int}) == ["“days” is required."]
    assert validate_config({"days": "3"}, {"days": int}) == ["“days” must be a whole number."]
    assert validate_config({"days": True}, {"days": int}) == ["“days” must be a whole number."]
    assert "Unknown keys: dayz" in validate_config({"days": 1, "dayz": 1}, {"days": int})[0]

    def run(context):
        return RunResult(f"kept {context.config['days']} days")

    registry.scenario(key="test-schema", category=Category.OTHER, default_interval=60, schema={"days": int})(run)
    test_scenarios.keys.append("test-schema")
    test_scenarios.sync()
    task = fresh("test-schema")
    task.config = {"days": "many"}
    with pytest.raises(ValidationError) as refused:
        task.full_clean()
    assert "“days” must be a whole number." in refused.value.message_dict["config"][0]
    set_task("test-schema", config={"days": 7})
    run_row = runner.run_now(services.request_run("test-schema", actor=SYSTEM))
    assert run_row.summary == "kept 7 days"


def test_a_custom_executor_registered_in_code_runs_a_task_created_from_the_command_line(test_scenarios, capsys):
    """A custom executor is a function decorated with @scenario; `create-task` makes a task that runs it
    with its own settings (several tasks may share one executor)."""
    calls = []

    def purge(context):
        calls.append(context.scenario_key)
        return RunResult("purged")

    registry.scenario(key="test-purge", category=Category.HOUSEKEEPING, default_interval=3600)(purge)
    test_scenarios.keys.append("test-purge")
    test_scenarios.sync()
    call_command(
        "maintenance",
        "create-task",
        "--name",
        "Nightly purge",
        "--executor",
        "test-purge",
        "--category",
        "housekeeping",
        "--priority",
        "high",
        "--timeout",
        "120",
    )
    task = fresh("nightly-purge")
    assert (task.executor, task.priority, task.timeout_seconds, task.category) == (
        "test-purge",
        "high",
        120,
        "housekeeping",
    )
    assert task.state == "inactive" and task.interval_seconds == 3600
    sync.sync_registry()  # not a registered key, but its executor is: still present
    assert fresh("nightly-purge").is_present
    run = runner.run_now(services.request_run("nightly-purge", actor=SYSTEM))
    assert run.status == Status.SUCCEEDED and calls == ["nightly-purge"]


def test_create_task_errors_are_clear_and_exit_non_zero(test_scenarios):
    with pytest.raises(CommandError, match="No function is registered as “no-such-thing”"):
        call_command("maintenance", "create-task", "--name", "x", "--executor", "no-such-thing")
    test_scenarios.add("test-job")
    test_scenarios.sync()
    with pytest.raises(CommandError, match="priority"):
        call_command("maintenance", "create-task", "--name", "y", "--executor", "test-job", "--priority", "urgent")
    with pytest.raises(InvalidInput):
        services.create_task(name="z", executor="test-job", timeout_seconds=0, actor=SYSTEM)


# --- priority ----------------------------------------------------------------------------------------------


def test_analyze_priority_shows_every_term_and_its_inputs(test_scenarios):
    test_scenarios.add("test-job", category=Category.SECURITY)
    test_scenarios.sync()
    task = set_task(
        "test-job",
        priority=Priority.HIGH,
        impact_code_quality=100,
        impact_security=100,
        impact_performance=50,
        impact_maintainability=50,
        impact_user_experience=0,
        complexity=1,
        risk=1,
        estimated_minutes=0,
    )
    analysis = priority.analyze_priority(task)
    assert analysis["terms"] == {"impact": 60.0, "urgency": 0.0, "effort": 100.0, "success_rate": 50.0}
    # (60 × 0.4 + 0 × 0.3 + 100 × 0.2 + 50 × 0.1) × 1.2 (security) × 1.2 (high)
    assert analysis["score"] == pytest.approx((24 + 0 + 20 + 5) * 1.2 * 1.2)
    assert analysis["inputs"]["effort"] == {"complexity": 1, "risk": 1, "estimated_minutes": 0, "dependents": 0}


def test_weights_are_configurable(test_scenarios, settings):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    settings.SCENARIO_PRIORITY_WEIGHTS = {"impact": 1.0, "urgency": 0, "effort": 0, "success_rate": 0}
    assert priority.analyze_priority(fresh("test-job"))["score"] == 50.0


def test_the_runner_claims_the_highest_score_first(test_scenarios):
    order = []
    make = recorder(order)
    for key in ("test-low", "test-critical", "test-medium"):
        test_scenarios.add(key, func=make(key))
    test_scenarios.sync()
    set_task("test-low", priority=Priority.LOW)
    set_task("test-critical", priority=Priority.CRITICAL)
    slot = timezone.now() - timedelta(minutes=1)
    for key in ("test-low", "test-critical", "test-medium"):  # recorded in the "wrong" order, same slot
        ScenarioRun.objects.create(scenario=fresh(key), slot=slot, trigger="manual")
    runner.run_due()
    assert order == ["test-critical", "test-medium", "test-low"]


# --- dependencies ------------------------------------------------------------------------------------------


def test_a_run_waits_for_its_dependencies_runs_of_the_same_slot(test_scenarios):
    order = []
    make = recorder(order)
    test_scenarios.add("test-backup", func=make("test-backup"))
    test_scenarios.add("test-vacuum", func=make("test-vacuum"))
    test_scenarios.sync()
    vacuum = set_task("test-vacuum", priority=Priority.CRITICAL)  # would go first on score alone
    vacuum.depends_on.add(fresh("test-backup"))
    slot = timezone.now() - timedelta(minutes=1)
    waiting = ScenarioRun.objects.create(scenario=vacuum, slot=slot, trigger="manual")
    backup = ScenarioRun.objects.create(scenario=fresh("test-backup"), slot=slot, trigger="manual")
    assert runner._claim(waiting, timezone.now()) is False  # the backup of the same slot is pending
    runner.run_due()
    assert order == ["test-backup", "test-vacuum"]
    backup.refresh_from_db()
    assert backup.status == Status.SUCCEEDED


def test_a_dependency_cycle_is_refused_and_named(test_scenarios):
    for key in ("test-a", "test-b", "test-c"):
        test_scenarios.add(key)
    tasks = test_scenarios.sync()
    tasks["test-a"].depends_on.add(tasks["test-b"])
    tasks["test-b"].depends_on.add(tasks["test-c"])
    # (each refusal in its own savepoint: the m2m add runs in the caller's transaction)
    with pytest.raises(ValidationError) as refused, transaction.atomic():
        tasks["test-c"].depends_on.add(tasks["test-a"])
    assert "test-c → test-a → test-b → test-c" in refused.value.message_dict["depends_on"][0]
    with pytest.raises(ValidationError), transaction.atomic():
        tasks["test-a"].depends_on.add(tasks["test-a"])
    with pytest.raises(ValidationError), transaction.atomic():  # from the other side of the relation too
        tasks["test-a"].dependents.add(tasks["test-c"])
    assert not tasks["test-c"].depends_on.exists()


# --- concurrency, windows, cooldown ------------------------------------------------------------------------


def test_at_most_max_concurrent_runs_at_once(test_scenarios, settings):
    settings.SCENARIO_MAX_CONCURRENT = 2
    for key in ("test-a", "test-b", "test-c"):
        test_scenarios.add(key)
    test_scenarios.sync()
    now = timezone.now()
    runs = [services.request_run(key, actor=SYSTEM) for key in ("test-a", "test-b", "test-c")]
    assert runner._claim(runs[0], now) and runner._claim(runs[1], now)
    assert runner._claim(runs[2], now) is False
    runner.execute(runs[0])
    assert runner._claim(runs[2], timezone.now())


def test_a_run_waits_for_its_execution_window(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    set_task("test-job", allowed_hours=[2, 3], allowed_weekdays=[6])  # Sundays 02:00–03:59 UTC
    run = ScenarioRun.objects.create(
        scenario=fresh("test-job"), slot=datetime(2026, 7, 4, 0, 0, tzinfo=UTC), trigger="manual"
    )
    assert runner._claim(run, datetime(2026, 7, 4, 2, 30, tzinfo=UTC)) is False  # a Saturday
    assert runner._claim(run, datetime(2026, 7, 5, 1, 30, tzinfo=UTC)) is False  # Sunday, too early
    assert runner._claim(run, datetime(2026, 7, 5, 2, 30, tzinfo=UTC)) is True


def test_cooldown_between_two_starts(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    set_task("test-job", cooldown_minutes=30)
    first = runner.run_now(services.request_run("test-job", actor=SYSTEM))
    second = services.request_run("test-job", actor=SYSTEM)
    assert runner._claim(second, first.started_at + timedelta(minutes=10)) is False
    assert runner._claim(second, first.started_at + timedelta(minutes=31)) is True


# --- retries -----------------------------------------------------------------------------------------------


def test_a_failed_run_is_retried_with_exponential_backoff(test_scenarios, settings):
    settings.SCENARIO_RETRY_BACKOFF_SECONDS = 60

    def broken(context):
        raise RuntimeError("flaky")

    test_scenarios.add("test-flaky", func=broken)
    test_scenarios.sync()
    set_task("test-flaky", max_retries=2)
    first = runner.run_now(services.request_run("test-flaky", actor=SYSTEM))
    second = ScenarioRun.objects.get(retry_of=first)
    assert (second.attempt, second.trigger, second.status) == (2, "retry", Status.PENDING)
    assert second.not_before == first.finished_at + timedelta(seconds=60)
    assert runner.run_due(first.finished_at + timedelta(seconds=30)) == []  # backing off
    [ran] = runner.run_due(second.not_before + timedelta(seconds=1))
    assert ran.pk == second.pk and ran.status == Status.FAILED
    third = ScenarioRun.objects.get(retry_of=second)
    assert third.attempt == 3
    assert third.not_before == ran.finished_at + timedelta(seconds=120)  # doubled
    runner.run_due(third.not_before + timedelta(seconds=1))
    assert not ScenarioRun.objects.filter(retry_of=third).exists()  # max_retries=2: no fourth attempt


def test_duplicate_scheduling_ticks_add_no_run(test_scenarios):
    test_scenarios.add("test-job", interval=60)
    test_scenarios.sync()
    scenario = services.activate_scenario("test-job", actor=SYSTEM)
    moment = scenario.active_since + timedelta(seconds=90)
    assert len(runner.record_due_runs(moment)) == 1
    assert runner.record_due_runs(moment) == []
    assert runner.record_due_runs(moment + timedelta(seconds=5)) == []
    assert ScenarioRun.objects.filter(scenario=scenario).count() == 1


def test_a_retry_of_a_scheduled_run_is_cancelled_once_its_task_is_switched_off(test_scenarios, settings):
    settings.SCENARIO_RETRY_BACKOFF_SECONDS = 1

    def broken(context):
        raise RuntimeError("flaky")

    test_scenarios.add("test-flaky", func=broken, interval=60)
    test_scenarios.sync()
    set_task("test-flaky", max_retries=3)
    scenario = services.activate_scenario("test-flaky", actor=SYSTEM)
    [scheduled] = runner.record_due_runs(scenario.active_since + timedelta(seconds=61))
    first = runner.execute(scheduled) if runner._claim(scheduled, timezone.now()) else None
    assert first.status == Status.FAILED
    second = ScenarioRun.objects.get(retry_of=first)
    assert runner.run_origin(second) == "schedule"
    [ran] = runner.run_due(second.not_before + timedelta(seconds=1))
    third = ScenarioRun.objects.get(retry_of=ran)
    assert runner.run_origin(third) == "schedule"  # through the whole chain
    services.deactivate_scenario("test-flaky", actor=SYSTEM)
    third.refresh_from_db()
    if third.status == Status.PENDING:  # deactivation may cancel it already; otherwise the claim does
        assert runner._claim(third, third.not_before + timedelta(seconds=1)) is False
        third.refresh_from_db()
    assert third.status == Status.CANCELLED
