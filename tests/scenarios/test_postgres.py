"""On PostgreSQL, where rows really lock: concurrent claims of one run, concurrent activations against the
heavy limit, and a real web process starting against the same database."""

import os
import subprocess
import sys
import threading

import pytest
from django.db import connection, connections

from maintenance_site.errors import Conflict
from maintenance_site.tenancy import SYSTEM
from scenarios import runner, services
from scenarios.models import Scenario, ScenarioRun, Weight

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_threads(count, target):
    barrier = threading.Barrier(count)
    results = []

    def work(index):
        try:
            barrier.wait()
            results.append(target(index))
        except Exception as exc:  # collected and checked by the test
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_one_run_is_claimed_by_exactly_one_of_many_runners(test_scenarios):
    from django.utils import timezone

    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = services.request_run("test-job", actor=SYSTEM)
    results = in_threads(8, lambda i: runner._claim(ScenarioRun.objects.get(pk=run.pk), timezone.now()))
    assert sorted(results) == [False] * 7 + [True]


def test_two_heavy_runs_are_never_claimed_together(test_scenarios):
    from django.utils import timezone

    keys = [test_scenarios.add(f"test-heavy-{i}", weight=Weight.HEAVY) for i in range(6)]
    test_scenarios.sync()
    runs = [services.request_run(key, actor=SYSTEM) for key in keys]
    results = in_threads(6, lambda i: runner._claim(ScenarioRun.objects.get(pk=runs[i].pk), timezone.now()))
    assert results.count(True) == 1
    assert ScenarioRun.objects.running().count() == 1


def test_concurrent_activations_respect_the_heavy_limit(test_scenarios, settings):
    settings.SCENARIOS_MAX_HEAVY = 2
    keys = [test_scenarios.add(f"test-heavy-{i}", weight=Weight.HEAVY) for i in range(6)]
    test_scenarios.sync()
    results = in_threads(6, lambda i: services.activate_scenario(keys[i], actor=SYSTEM))
    assert sum(isinstance(r, Scenario) for r in results) == 2
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Scenario))
    assert Scenario.objects.active().filter(weight=Weight.HEAVY).count() == 2


def test_a_real_web_process_start_keeps_the_state(synced):
    services.activate_scenario("health-checker", duration_minutes=60, actor=SYSTEM)
    services.activate_scenario("log-cleanup", actor=SYSTEM)
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    if database.get("PASSWORD"):
        url = f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    script = (
        "import django; django.setup();"
        "from maintenance_site.asgi import application;"
        "from django.core.wsgi import get_wsgi_application; get_wsgi_application();"
        "from django.urls import resolve; resolve('/api/v1/status');"
        "from scenarios.models import Scenario;"
        "print(sorted(Scenario.objects.active().values_list('key', flat=True)))"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "maintenance_site.settings"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)  # noqa: S603
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['health-checker', 'log-cleanup']"
    assert set(Scenario.objects.active().values_list("key", flat=True)) == {"health-checker", "log-cleanup"}
