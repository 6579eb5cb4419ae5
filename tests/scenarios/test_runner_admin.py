"""The runner in the admin: task settings on the scenario page (cycles refused), a task created from the
admin, the run history with its chart, a rollback behind a confirmation page."""

from assets.models import Asset
from maintenance_site.tenancy import SYSTEM
from scenarios import runner, services
from scenarios.models import ScenarioActivity, ScenarioRun
from scenarios.registry import RunResult
from tests.scenarios.conftest import fresh

RUNS = "/admin/scenarios/scenariorun/"


def test_a_tenants_staff_cannot_reach_the_runner_pages(client, test_scenarios, manager_a):
    client.force_login(manager_a)
    assert client.get("/admin/scenarios/scenario/tasks/new/").status_code == 403
    assert client.get(RUNS + "1/rollback/").status_code == 403


def test_a_task_is_created_from_the_admin(operator_client, test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    page = operator_client.get("/admin/scenarios/scenario/tasks/new/")
    assert page.status_code == 200 and "test-job" in page.content.decode()
    response = operator_client.post(
        "/admin/scenarios/scenario/tasks/new/",
        {
            "name": "Weekly job",
            "executor": "test-job",
            "category": "data",
            "priority": "critical",
            "timeout_seconds": "90",
            "max_retries": "1",
            "cron": "0 4 * * 1",
            "apply": "1",
        },
    )
    assert response.status_code == 302
    task = fresh("weekly-job")
    assert (task.executor, task.priority, task.timeout_seconds, task.cron) == ("test-job", "critical", 90, "0 4 * * 1")


def test_task_settings_on_the_scenario_page_refuse_a_cycle(operator_client, test_scenarios):
    test_scenarios.add("test-a")
    test_scenarios.add("test-b")
    tasks = test_scenarios.sync()
    tasks["test-a"].depends_on.add(tasks["test-b"])
    page = operator_client.get(f"/admin/scenarios/scenario/{tasks['test-b'].pk}/change/")
    assert "priority score" in page.content.decode().lower()
    data = {
        "interval_seconds": "60",
        "cron": "",
        "time_zone": "UTC",
        "config": "{}",
        "priority": "high",
        "timeout_seconds": "100",
        "max_retries": "0",
        "allowed_hours": "[]",
        "allowed_weekdays": "[]",
        "cooldown_minutes": "0",
        "impact_code_quality": "50",
        "impact_security": "50",
        "impact_performance": "50",
        "impact_maintainability": "50",
        "impact_user_experience": "50",
        "estimated_minutes": "5",
        "complexity": "5",
        "risk": "5",
        "depends_on": [str(tasks["test-a"].pk)],
    }
    refused = operator_client.post(f"/admin/scenarios/scenario/{tasks['test-b'].pk}/change/", data)
    assert refused.status_code == 200 and "test-b → test-a → test-b" in refused.content.decode()
    data["depends_on"] = []
    saved = operator_client.post(f"/admin/scenarios/scenario/{tasks['test-b'].pk}/change/", data)
    assert saved.status_code == 302
    assert (fresh("test-b").priority, fresh("test-b").timeout_seconds) == ("high", 100)


def test_the_run_history_draws_a_chart_and_a_rollback_asks_first(operator_client, test_scenarios, org_a):
    pump = Asset.objects.create(organization=org_a, code="P-1", name="Pump")

    def rename(context):
        row = Asset.objects.get(pk=pump.pk)
        row.name = "Renamed"
        row.save()
        return RunResult("renamed", changed=1)

    test_scenarios.add("test-rename", func=rename)
    test_scenarios.sync()
    run = runner.run_now(services.request_run("test-rename", actor=SYSTEM))
    page = operator_client.get(RUNS).content.decode()
    assert 'class="chart"' in page and "test-rename" in page and "100.0%" in page  # the theme's chart component
    confirm = operator_client.get(RUNS + f"{run.pk}/rollback/").content.decode()
    assert "Roll back run" in confirm and f"assets.Asset #{pump.pk}: restore" in confirm
    pump.refresh_from_db()
    assert pump.name == "Renamed"  # nothing happens before the confirmation
    response = operator_client.post(RUNS + f"{run.pk}/rollback/", {"apply": "1", "reason": "wrong"})
    assert response.status_code == 302
    pump.refresh_from_db()
    assert pump.name == "Pump"
    assert ScenarioRun.objects.get(pk=run.pk).rolled_back_at is not None
    assert ScenarioActivity.objects.filter(action="rollback", actor__isnull=False).exists()
