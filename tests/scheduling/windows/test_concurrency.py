"""Concurrency on PostgreSQL (SQLite ignores row locks): ticks running at the same moment on several
machines start each window once, and mark its assets once; concurrent creations never let two overlapping
windows in."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from assets.models import Asset
from maintenance_site.errors import Conflict
from maintenance_site.events.models import Event
from maintenance_site.tenancy import SYSTEM
from scheduling.windows.models import MaintenanceMode, MaintenanceWindow, WindowAssetState
from scheduling.windows.services import create_window
from scheduling.windows.tick import tick
from tests.scheduling.windows.support import T0, H, make_window, scope_kwargs

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def at_once(count, operation):
    """Run `operation` from `count` threads released together; returns their results (or exceptions)."""
    barrier = threading.Barrier(count)

    def run(_):
        barrier.wait()
        try:
            return operation()
        except Exception as exc:  # noqa: BLE001  (collected and asserted on)
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_two_ticks_at_once_start_a_window_once(org_a, site):
    system = make_window(org_a, T0 + H, T0 + 2 * H, title="System")
    pump_scope = scope_kwargs(site, "assets:pump")
    pump = make_window(org_a, T0 + H, T0 + 2 * H, title="Pump", emergency=True, emergency_reason="Test", **pump_scope)
    results = at_once(2, lambda: tick(now=T0 + H))
    assert not [r for r in results if isinstance(r, Exception)], results
    started = sorted(pk for result in results for pk in result["started"])
    assert started == sorted([system.pk, pump.pk])  # each started by exactly one of the two ticks
    assert Event.objects.filter(type="maintenance:window-started").count() == 2
    assert Event.objects.filter(type="maintenance:mode-changed").count() == 1
    assert WindowAssetState.objects.filter(window=pump).count() == 1
    assert Asset.objects.get(pk=site["pump"].pk).status == Asset.Status.IN_MAINTENANCE
    assert system.history.filter(history_change_reason="Started").count() == 1
    assert MaintenanceWindow.objects.get(pk=system.pk).actual_start == T0 + H


def test_many_ticks_at_once_end_once_and_agree_on_the_mode(org_a, site):
    window = make_window(org_a, T0 + H, T0 + 2 * H, **scope_kwargs(site, "location:hall"))
    for moment in (T0 + H, T0 + 2 * H):
        results = at_once(THREADS, lambda moment=moment: tick(now=moment))
        assert not [r for r in results if isinstance(r, Exception)], results
    assert Event.objects.filter(type="maintenance:window-started").count() == 1
    assert Event.objects.filter(type="maintenance:window-ended").count() == 1
    assert MaintenanceWindow.objects.get(pk=window.pk).status == MaintenanceWindow.Status.COMPLETED
    assert set(Asset.objects.filter(location__name__in=["Hall", "Pump room"]).values_list("status", flat=True)) == {
        "operational",
        "down",
    }
    assert MaintenanceMode.objects.filter(organization=org_a).count() == 1


def test_concurrent_overlapping_creations_let_one_in(org_a):
    results = at_once(
        THREADS,
        lambda: create_window(org_a, title="Same slot", starts_at=T0 + H, ends_at=T0 + 2 * H, now=T0, actor=SYSTEM),
    )
    created = [r for r in results if isinstance(r, MaintenanceWindow)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(refused) == THREADS - 1, results
    assert MaintenanceWindow.objects.count() == 1
