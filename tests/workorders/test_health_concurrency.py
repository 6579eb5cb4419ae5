"""On PostgreSQL: predictive runs at the same moment (two workers, two beats) open one predictive work order per
asset and cause, and publish one `predictive:alert` per order."""

import threading

import pytest
from django.db import connection

from assets import services as asset_services
from maintenance_site.events.models import Event
from tests.workorders.test_health import make_critical
from workorders.health import services
from workorders.health.models import PredictiveAlert
from workorders.models import WorkOrder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(calls):
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def test_concurrent_predictive_runs_open_each_order_once(org_a):
    assets = [asset_services.create_asset(org_a, code=f"P-{n}", name="Pump") for n in range(6)]
    for asset in assets:
        make_critical(asset)
    run_together([services.refresh_health for _ in range(3)])
    results = run_together([services.run_predictive_checks for _ in range(4)])
    assert sum(result["opened"] for result in results) == 6
    assert WorkOrder.objects.filter(type=WorkOrder.Type.PREDICTIVE).count() == 6
    assert PredictiveAlert.objects.count() == 6
    assert Event.objects.filter(type="predictive:alert").count() == 6
