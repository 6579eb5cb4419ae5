"""On PostgreSQL, where rows really lock: runners claiming at the same time never pass
SCENARIO_MAX_CONCURRENT."""

import pytest
from django.utils import timezone

from maintenance_site.tenancy import SYSTEM
from scenarios import runner, services
from scenarios.models import ScenarioRun
from tests.scenarios.test_postgres import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_claims_respect_the_concurrency_limit(test_scenarios, settings):
    settings.SCENARIO_MAX_CONCURRENT = 2
    keys = [test_scenarios.add(f"test-light-{i}") for i in range(6)]
    test_scenarios.sync()
    runs = [services.request_run(key, actor=SYSTEM) for key in keys]
    results = in_threads(6, lambda i: runner._claim(ScenarioRun.objects.get(pk=runs[i].pk), timezone.now()))
    assert results.count(True) == 2
    assert ScenarioRun.objects.running().count() == 2
