"""Rollback points: a run's history rows (change reason "scenario-run:<id>") say what it changed; a rollback
restores that, refuses when a record changed later (unless forced), and irreversible tasks offer none."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from assets.models import Asset
from maintenance_site.errors import Conflict
from maintenance_site.tenancy import SYSTEM
from scenarios import registry, rollback, runner, services
from scenarios.models import Category, ScenarioActivity
from scenarios.registry import RunResult


@pytest.fixture
def assets(org_a):
    pump = Asset.objects.create(organization=org_a, code="P-1", name="Pump", manufacturer="Acme")
    fan = Asset.objects.create(organization=org_a, code="F-1", name="Fan")
    return pump, fan


@pytest.fixture
def editing_task(test_scenarios, assets, org_a):
    """A task that renames the pump, retires the fan by deleting it and adds a compressor."""
    pump, fan = assets

    def edit(context):
        pump_row = Asset.objects.get(pk=pump.pk)
        pump_row.name, pump_row.manufacturer = "Pump (renamed)", "Other"
        pump_row.save()
        Asset.objects.get(pk=fan.pk).delete()
        Asset.objects.create(organization=org_a, code="C-1", name="Compressor")
        return RunResult("edited 3 assets", changed=3)

    test_scenarios.add("test-editor", func=edit)
    test_scenarios.sync()
    return runner.run_now(services.request_run("test-editor", actor=SYSTEM))


def test_a_rollback_restores_the_records_the_run_changed(editing_task, assets):
    pump, fan = assets
    run = editing_task
    assert run.status == "succeeded"
    assert run in rollback.points()
    outcome = rollback.rollback(run, "wrong supplier data", actor=SYSTEM)
    assert len(outcome["restored"]) == 1 and len(outcome["recreated"]) == 1 and len(outcome["deleted"]) == 1
    pump.refresh_from_db()
    assert (pump.name, pump.manufacturer) == ("Pump", "Acme")
    assert Asset.objects.get(pk=fan.pk).name == "Fan"
    assert not Asset.objects.filter(code="C-1").exists()
    # audited: the history rows and the activity log say so
    assert pump.history.first().history_change_reason == f"rollback of run {run.pk}: wrong supplier data"
    assert ScenarioActivity.objects.filter(action="rollback", scenario=run.scenario).exists()
    run.refresh_from_db()
    assert run.rolled_back_at is not None and run not in rollback.points()
    with pytest.raises(Conflict, match="already rolled back"):
        rollback.rollback(run, "again", actor=SYSTEM)


def test_a_rollback_is_refused_listing_records_changed_after_the_run(editing_task, assets):
    pump, _ = assets
    pump.refresh_from_db()
    pump.name = "Pump (edited by a planner)"
    pump.save()
    with pytest.raises(Conflict) as refused:
        rollback.rollback(editing_task, "wrong data", actor=SYSTEM)
    assert f"assets.Asset #{pump.pk}" in refused.value.message
    pump.refresh_from_db()
    assert pump.name == "Pump (edited by a planner)"  # nothing touched
    with pytest.raises(CommandError, match="changed after run"):
        call_command("maintenance", "rollback", str(editing_task.pk), "--reason", "wrong data")
    rollback.rollback(editing_task, "wrong data, overwrite", force=True, actor=SYSTEM)
    pump.refresh_from_db()
    assert pump.name == "Pump"


def test_an_irreversible_task_offers_no_rollback_point(test_scenarios, assets):
    pump, _ = assets

    def vacuum(context):
        row = Asset.objects.get(pk=pump.pk)
        row.notes = "vacuumed"
        row.save()
        return RunResult("vacuumed", changed=1)

    registry.scenario(key="test-vacuum", category=Category.HOUSEKEEPING, default_interval=60, reversible=False)(vacuum)
    test_scenarios.keys.append("test-vacuum")
    test_scenarios.sync()
    run = runner.run_now(services.request_run("test-vacuum", actor=SYSTEM))
    assert run not in rollback.points()
    with pytest.raises(Conflict, match="irreversible"):
        rollback.rollback(run, "undo", actor=SYSTEM)
    for key in ("database-vacuum", "backup-manager", "log-cleanup"):
        assert registry.get(key).reversible is False


def test_rollback_points_are_limited_in_number(editing_task, settings, test_scenarios):
    settings.SCENARIO_ROLLBACK_MAX = 0
    assert rollback.points() == []
    with pytest.raises(Conflict, match="offers no rollback point"):
        rollback.rollback(editing_task, "too late", actor=SYSTEM)


def test_list_rollbacks_and_rollback_from_the_command_line(editing_task, capsys):
    call_command("maintenance", "list-rollbacks")
    assert "test-editor" in capsys.readouterr().out
    call_command("maintenance", "rollback", str(editing_task.pk), "--reason", "bad run")
    assert "rolled back" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No run #999999"):
        call_command("maintenance", "rollback", "999999", "--reason", "x")
