"""Concurrency on PostgreSQL (SQLite ignores row locks): nobody takes the same last unit twice."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from inventory import services
from inventory.models import StockLevel
from maintenance_site.errors import Conflict

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20  # well below PostgreSQL's default 100 connections


def hammer(attempts, operation):
    """Run `operation` `attempts` times from THREADS threads; count successes and 409s."""
    outcomes = {"ok": 0, "conflict": 0}
    lock = threading.Lock()

    def attempt(_):
        try:
            operation()
            result = "ok"
        except Conflict:
            result = "conflict"
        finally:
            connection.close()
        with lock:
            outcomes[result] += 1

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(attempt, range(attempts)))
    return outcomes


def test_200_issues_against_100_units(org_a, bearing, warehouse, job, storekeeper_a, technician_a):
    services.receive_stock(bearing, warehouse, 100, "1.00", actor=storekeeper_a)
    outcomes = hammer(200, lambda: services.issue_to_work_order(job, bearing, warehouse, 1, actor=technician_a))
    assert outcomes == {"ok": 100, "conflict": 100}
    assert StockLevel.objects.get(part=bearing, location=warehouse).on_hand == 0
    assert services.reconcile(org_a) == []


def test_200_transfers_against_100_units(org_a, bearing, warehouse, van, storekeeper_a):
    services.receive_stock(bearing, warehouse, 100, "1.00", actor=storekeeper_a)
    outcomes = hammer(200, lambda: services.transfer_stock(bearing, warehouse, van, 1, actor=storekeeper_a))
    assert outcomes == {"ok": 100, "conflict": 100}
    assert StockLevel.objects.get(part=bearing, location=warehouse).on_hand == 0
    assert StockLevel.objects.get(part=bearing, location=van).on_hand == 100
    assert services.reconcile(org_a) == []


def test_opposite_transfers_do_not_deadlock(org_a, bearing, warehouse, van, storekeeper_a):
    services.receive_stock(bearing, warehouse, 50, "1.00", actor=storekeeper_a)
    services.receive_stock(bearing, van, 50, "1.00", actor=storekeeper_a)
    flip = iter(range(10_000))

    def one():
        if next(flip) % 2:
            services.transfer_stock(bearing, warehouse, van, 1, actor=storekeeper_a)
        else:
            services.transfer_stock(bearing, van, warehouse, 1, actor=storekeeper_a)

    outcomes = hammer(100, one)
    assert outcomes["ok"] == 100
    total = sum(StockLevel.objects.filter(part=bearing).values_list("on_hand", flat=True))
    assert total == 100 and services.reconcile(org_a) == []


def test_low_stock_alert_fires_once_under_concurrency(org_a, bearing, warehouse, job, storekeeper_a, technician_a):
    from maintenance_site.events.models import Event

    services.receive_stock(bearing, warehouse, 30, "1.00", actor=storekeeper_a)  # reorder point 5
    hammer(30, lambda: services.issue_to_work_order(job, bearing, warehouse, 1, actor=technician_a))
    assert Event.objects.filter(type="inventory:low-stock").count() == 1
