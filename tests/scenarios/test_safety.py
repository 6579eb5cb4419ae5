"""Safe by default, and the safety rules: the heavy limit, the load ceiling, conflicts, timers, stop-all,
and an activity log that records who, when, what, why and how it ended (refusals included)."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.utils import timezone

from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, NotFound
from maintenance_site.tenancy import SYSTEM
from scenarios import runner, services, sync
from scenarios.models import Scenario, ScenarioActivity, ScenarioRun, Weight
from tests.scenarios.conftest import INTERNAL_KEYS, fresh

Action = ScenarioActivity.Action


def test_the_registry_is_in_the_database_and_everything_starts_inactive(synced):
    internal = Scenario.objects.internal()
    assert sorted(internal.values_list("key", flat=True)) == INTERNAL_KEYS
    assert not Scenario.objects.active().exists()
    assert set(internal.values_list("kind", flat=True)) == {"internal"}
    vacuum = fresh("database-vacuum")
    assert vacuum.weight == Weight.HEAVY and vacuum.cron and vacuum.description.startswith("VACUUM ANALYZE")


def test_activate_records_who_when_why_and_the_timer(synced, operator):
    before = timezone.now()
    scenario = services.activate_scenario("health-checker", actor=operator, duration_minutes=30, reason="checking")
    assert scenario.is_active and scenario.activated_by == operator
    assert before <= scenario.active_since <= timezone.now()
    assert scenario.active_until == scenario.active_since + timedelta(minutes=30)
    entry = ScenarioActivity.objects.get(action=Action.ACTIVATE)
    assert (entry.actor, entry.scenario, entry.reason, entry.result) == (operator, scenario, "checking", "ok")
    assert scenario.history.first().history_user == operator  # simple-history names the operator too


def test_deactivate_cancels_pending_scheduled_runs(synced, operator):
    services.activate_scenario("health-checker", actor=operator)
    pending = ScenarioRun.objects.create(scenario=fresh("health-checker"), slot=timezone.now())
    services.deactivate_scenario("health-checker", actor=operator, reason="done")
    pending.refresh_from_db()
    assert fresh("health-checker").state == "inactive"
    assert pending.status == ScenarioRun.Status.CANCELLED and "deactivated" in pending.summary


def test_unknown_scenario_is_a_clear_error(synced):
    with pytest.raises(NotFound, match="There is no scenario “nope”"):
        services.activate_scenario("nope", actor=SYSTEM)


def test_the_default_timer_comes_from_default_timeout(synced, settings):
    settings.DEFAULT_TIMEOUT = 45
    scenario = services.activate_scenario("log-cleanup", actor=SYSTEM)
    assert scenario.active_until == scenario.active_since + timedelta(minutes=45)
    other = services.activate_scenario("health-checker", duration_minutes=5, actor=SYSTEM)  # a per-activation override
    assert other.active_until == other.active_since + timedelta(minutes=5)


def test_bad_timers_are_refused(synced):
    with pytest.raises(InvalidInput, match="in the past"):
        services.activate_scenario("log-cleanup", until=timezone.now() - timedelta(minutes=1), actor=SYSTEM)
    with pytest.raises(InvalidInput, match="1 to 44640 minutes"):
        services.activate_scenario("log-cleanup", duration_minutes=0, actor=SYSTEM)


# --- safe by default ---------------------------------------------------------------------------------


def test_scheduler_start_switches_every_scenario_off(synced, operator):
    services.activate_scenario("health-checker", actor=operator)
    services.activate_scenario("backup-manager", actor=operator)
    run = ScenarioRun.objects.create(scenario=fresh("log-cleanup"), slot=timezone.now(), trigger="manual")
    call_command("maintenance", "scheduler-start", stdout=None)
    assert not Scenario.objects.active().exists()
    run.refresh_from_db()
    assert run.status == ScenarioRun.Status.CANCELLED
    reset = ScenarioActivity.objects.get(action=Action.RESET)
    assert reset.via == "scheduler" and sorted(reset.details["deactivated"]) == ["backup-manager", "health-checker"]


def test_the_reset_can_be_switched_off(synced, settings):
    settings.SCENARIOS_RESET_ON_START = False
    services.activate_scenario("health-checker", actor=SYSTEM)
    call_command("maintenance", "scheduler-start")
    assert fresh("health-checker").is_active


def test_a_web_restart_keeps_what_operators_set(synced, operator, django_assert_num_queries):
    services.activate_scenario("health-checker", actor=operator, duration_minutes=60)
    services.activate_scenario("log-cleanup", actor=operator)
    with django_assert_num_queries(0):  # the app's start-up touches no state
        apps.get_app_config("scenarios").ready()
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # a deploy's migrate
    from django.core.wsgi import get_wsgi_application

    get_wsgi_application()
    assert set(Scenario.objects.active().values_list("key", flat=True)) == {"health-checker", "log-cleanup"}


# --- the heavy limit, the load ceiling, conflicts ------------------------------------------------------


def test_heavy_limit(synced, settings):
    settings.SCENARIOS_MAX_HEAVY = 2
    services.activate_scenario("database-vacuum", actor=SYSTEM)
    services.activate_scenario("backup-manager", actor=SYSTEM)
    with pytest.raises(Conflict, match=r"At most 2 heavy scenarios may be active at once") as refused:
        services.activate_scenario("inventory-reconciliation", reason="month end", actor=SYSTEM)
    assert "backup-manager, database-vacuum and inventory-reconciliation" in refused.value.message
    assert not fresh("inventory-reconciliation").is_active
    services.activate_scenario("health-checker", actor=SYSTEM)  # light ones are not limited
    entry = ScenarioActivity.objects.filter(result="refused").get()
    assert entry.scenario.key == "inventory-reconciliation" and entry.reason == "month end"
    assert "At most 2 heavy" in entry.message


def test_load_ceiling(synced, load):
    load.cpu = 97.0
    with pytest.raises(Conflict, match=r"The machine is busy \(CPU at 97% \(ceiling 85%\)\)"):
        services.activate_scenario("health-checker", actor=SYSTEM)
    load.cpu, load.memory = 10.0, 95.0
    with pytest.raises(Conflict, match=r"memory at 95% \(ceiling 90%\)"):
        services.activate_scenario("health-checker", actor=SYSTEM)
    services.deactivate_scenario("health-checker", actor=SYSTEM)  # switching off is never refused
    load.memory = 50.0
    assert services.activate_scenario("health-checker", actor=SYSTEM).is_active


def test_conflicts_are_refused_naming_them(test_scenarios):
    test_scenarios.add("test-writer", conflicts=["test-reader"])
    test_scenarios.add("test-reader")
    test_scenarios.add("test-other")
    made = test_scenarios.sync()
    assert list(made["test-reader"].conflicts.values_list("key", flat=True)) == ["test-writer"]  # symmetric
    services.activate_scenario("test-reader", actor=SYSTEM)
    with pytest.raises(Conflict, match="test-writer conflicts with test-reader, which is active") as refused:
        services.activate_scenario("test-writer", actor=SYSTEM)
    assert refused.value.extra["conflicts"] == ["test-reader"]
    services.activate_scenario("test-other", actor=SYSTEM)
    services.deactivate_scenario("test-reader", actor=SYSTEM)
    assert services.activate_scenario("test-writer", actor=SYSTEM).is_active


def test_a_scenario_gone_from_code_is_switched_off_and_cannot_be_activated(test_scenarios):
    test_scenarios.add("test-temporary")
    test_scenarios.sync()
    services.activate_scenario("test-temporary", actor=SYSTEM)
    from scenarios import registry

    registry.unregister("test-temporary")
    sync.sync_registry()
    gone = fresh("test-temporary")
    assert not gone.is_present and not gone.is_active
    with pytest.raises(Conflict, match="no longer registered in code"):
        services.activate_scenario(gone, actor=SYSTEM)


# --- auto-deactivate and stop-all ----------------------------------------------------------------------


def test_timers_switch_scenarios_off(synced):
    services.activate_scenario("health-checker", duration_minutes=10, actor=SYSTEM)
    services.activate_scenario("log-cleanup", actor=SYSTEM)  # no timer
    assert services.expire_timers(timezone.now() + timedelta(minutes=9)) == []
    assert services.expire_timers(timezone.now() + timedelta(minutes=11)) == ["health-checker"]
    assert not fresh("health-checker").is_active and fresh("log-cleanup").is_active
    entry = ScenarioActivity.objects.get(action=Action.EXPIRE)
    assert entry.actor == audit.system_user() and "was active until" in entry.message


def test_the_scheduler_tick_expires_timers(synced):
    from scenarios.tasks import scheduler_tick

    scenario = services.activate_scenario("health-checker", duration_minutes=1, actor=SYSTEM)
    Scenario.objects.filter(pk=scenario.pk).update(
        active_since=timezone.now() - timedelta(minutes=5), active_until=timezone.now() - timedelta(seconds=1)
    )
    assert scheduler_tick.delay().get()["expired"] == ["health-checker"]


def test_stop_all_deactivates_everything_and_cancels_runs(synced, operator):
    for key in ("health-checker", "log-cleanup", "backup-manager"):
        services.activate_scenario(key, actor=operator)
    pending = ScenarioRun.objects.create(scenario=fresh("log-cleanup"), slot=timezone.now())
    running = ScenarioRun.objects.create(scenario=fresh("health-checker"), slot=timezone.now() - timedelta(minutes=1))
    assert runner._claim(running, timezone.now())
    result = services.stop_all(actor=operator, reason="incident 42")
    assert sorted(result["deactivated"]) == ["backup-manager", "health-checker", "log-cleanup"]
    assert (result["runs_cancelled"], result["runs_asked_to_stop"]) == (1, 1)
    assert not Scenario.objects.active().exists()
    pending.refresh_from_db()
    running.refresh_from_db()
    assert pending.status == "cancelled"
    assert running.status == "running" and running.cancel_requested_at is not None
    entry = ScenarioActivity.objects.get(action=Action.STOP_ALL)
    assert (entry.actor, entry.reason) == (operator, "incident 42")


def test_a_running_run_stops_at_its_next_checkpoint(test_scenarios):
    from scenarios.registry import RunResult

    progress = []

    def long_job(context):
        for step in range(5):
            context.checkpoint(force=True)
            progress.append(step)
            if step == 1:
                services.stop_all(reason="emergency", actor=SYSTEM)  # as if an operator pressed the button meanwhile
        return RunResult("finished")

    test_scenarios.add("test-long", func=long_job)
    test_scenarios.sync()
    run = services.request_run("test-long", actor=SYSTEM)
    run = runner.run_now(run)
    assert progress == [0, 1]
    assert run.status == "cancelled" and "cancel request" in run.summary


def test_the_activity_log_keeps_refusals_with_their_reason(synced, operator, load):
    load.cpu = 99.0
    with pytest.raises(Conflict):
        services.activate_scenario("log-cleanup", actor=operator, reason="cleanup before audit")
    entry = ScenarioActivity.objects.exclude(action=Action.SYNC).get()
    assert (entry.actor, entry.action, entry.result, entry.reason) == (
        operator,
        "activate",
        "refused",
        "cleanup before audit",
    )
    assert "The machine is busy" in entry.message
