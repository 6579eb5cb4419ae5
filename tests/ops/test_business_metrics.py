"""Business metrics on /metrics (issue 25): one grouped query per family, cached for the scrape interval with the
outbox and heartbeat readings (a cached scrape is one cache read), labels per organisation only when the setting
allows."""

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from maintenance_site.ops import business_metrics, metrics
from maintenance_site.ops.tasks import record_heartbeat
from workorders import services as work_orders
from workorders.models import WorkOrder

pytestmark = [pytest.mark.django_db]

OPEN = "maintenance_work_orders_open"
OVERDUE = "maintenance_work_orders_overdue"
PREVENTIVE = "maintenance_preventive_work_orders_generated"


@pytest.fixture(autouse=True)
def _open(settings):
    settings.DEBUG = True
    settings.METRICS_CACHE_SECONDS = 0


def samples(client) -> dict:
    text = client.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_work_orders_open_and_overdue_are_counted(client, org_a, manager_a):
    work_orders.create_work_order(org_a, title="open", actor=manager_a)
    late = work_orders.create_work_order(org_a, title="late", actor=manager_a)
    WorkOrder.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(days=1))
    values = samples(client)
    assert values[("maintenance_work_orders_open", ())] == 2
    assert values[("maintenance_work_orders_overdue", ())] == 1
    assert values[("maintenance_mode_active", ())] == 0
    assert values[("maintenance_business_metrics_up", ())] == 1


def test_per_organisation_labels_only_when_allowed(client, org_a, org_b, manager_a, manager_b, settings):
    settings.METRICS_PER_ORGANIZATION = True
    work_orders.create_work_order(org_a, title="a", actor=manager_a)
    work_orders.create_work_order(org_b, title="b1", actor=manager_b)
    work_orders.create_work_order(org_b, title="b2", actor=manager_b)
    values = samples(client)
    assert values[("maintenance_work_orders_open", (("organization", "org-a"),))] == 1
    assert values[("maintenance_work_orders_open", (("organization", "org-b"),))] == 2


def test_work_order_families_keep_their_label_sets_per_organisation(
    client, org_a, org_b, manager_a, manager_b, settings
):
    """Open, overdue and preventive come from one query; per organisation each family still lists only the
    organisations it counts (org B has a closed preventive order, nothing open), platform-wide it always answers."""
    settings.METRICS_PER_ORGANIZATION = True
    late = work_orders.create_work_order(org_a, title="late", actor=manager_a)
    WorkOrder.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(days=1))
    work_orders.create_work_order(org_a, title="on time", actor=manager_a, due_at=timezone.now() + timedelta(days=1))
    done = work_orders.create_work_order(org_b, title="pm", actor=manager_b, source=WorkOrder.Source.PREVENTIVE)
    WorkOrder.objects.filter(pk=done.pk).update(status=WorkOrder.Status.COMPLETED)
    values = samples(client)
    by_org = {
        name: {labels: value for (family, labels), value in values.items() if family == name}
        for name in (OPEN, OVERDUE, PREVENTIVE)
    }
    assert by_org == {
        OPEN: {(("organization", "org-a"),): 2},
        OVERDUE: {(("organization", "org-a"),): 1},
        PREVENTIVE: {(("organization", "org-b"),): 1},
    }
    settings.METRICS_PER_ORGANIZATION = False
    values = samples(client)
    assert [values[(name, ())] for name in (OPEN, OVERDUE, PREVENTIVE)] == [2, 1, 1]


def maintenance_samples(text: str) -> dict:
    """The platform's own samples, without the per-process ones that move between two scrapes."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("maintenance_") and not sample.name.startswith("maintenance_http_")
    }


class CacheCalls:
    """Counts the calls to the default cache, and the commands sent to Redis when the cache is Redis."""

    METHODS = ("get", "get_many", "set", "set_many", "add", "incr", "decr", "delete", "delete_many", "has_key")

    def __init__(self, monkeypatch):
        self.calls, self.commands = [], 0
        backend = caches["default"]
        for method in self.METHODS:
            monkeypatch.setattr(backend, method, self._counted(method, getattr(backend, method)))
        if isinstance(backend, RedisCache):
            execute = Redis.execute_command

            def counted_command(client, *args, **options):
                self.commands += 1
                return execute(client, *args, **options)

            monkeypatch.setattr(Redis, "execute_command", counted_command)

    def _counted(self, method, function):
        def counted(*args, **kwargs):
            self.calls.append(method)
            return function(*args, **kwargs)

        return counted


def test_one_query_per_family_then_one_cache_read_for_the_scrape_interval(
    org_a, manager_a, settings, monkeypatch, django_assert_num_queries
):
    """A recomputation: the outbox (two), the heartbeats, one grouped query for the three work-order families,
    one per other family. Then, for METRICS_CACHE_SECONDS, a scrape is one cache read and no query, with the same
    figures (outbox and heartbeats included)."""
    settings.METRICS_CACHE_SECONDS = 60
    for number in range(5):
        work_orders.create_work_order(org_a, title=f"order {number}", actor=manager_a)
    record_heartbeat("worker")
    with django_assert_num_queries(3 + 5):  # outbox lag, undelivered, heartbeats; work orders, SLA, parts, …
        first, _ = metrics.render()
    calls = CacheCalls(monkeypatch)
    with django_assert_num_queries(0):
        second, _ = metrics.render()
    assert calls.calls == ["get_many"]
    if isinstance(caches["default"], RedisCache):
        assert calls.commands == 1  # one MGET
    assert maintenance_samples(second.decode()) == maintenance_samples(first.decode())
    assert maintenance_samples(second.decode())[(OPEN, ())] == 5


def test_a_source_that_failed_is_not_cached(client, monkeypatch, settings):
    settings.METRICS_CACHE_SECONDS = 60

    def broken():
        raise RuntimeError("database down")

    with monkeypatch.context() as patch:
        patch.setattr(business_metrics, "compute", broken)
        assert samples(client)[("maintenance_business_metrics_up", ())] == 0
    assert samples(client)[("maintenance_business_metrics_up", ())] == 1  # the next scrape computes again


def test_served_without_the_cache(client, org_a, manager_a, cache_down):
    """Redis down: the counters are missing, everything read from the database is there."""
    work_orders.create_work_order(org_a, title="open", actor=manager_a)
    values = samples(client)
    assert values[("maintenance_metrics_source_up", (("source", "cache"),))] == 0
    assert values[("maintenance_business_metrics_up", ())] == 1
    assert values[(OPEN, ())] == 1
    assert ("maintenance_outbox_lag_seconds", ()) in values


def test_a_failing_source_is_reported_not_raised(client, monkeypatch):
    def broken():
        raise RuntimeError("database down")

    monkeypatch.setattr(business_metrics, "compute", broken)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"maintenance_business_metrics_up 0.0" in response.content


def test_an_unreadable_cache_entry_is_recomputed(client, settings):
    """Whatever sits under the snapshot's key (an older format, another program's value) is not served."""
    settings.METRICS_CACHE_SECONDS = 60
    caches["default"].set(metrics.SNAPSHOT_KEY, ["not", "a", "snapshot"])
    values = samples(client)
    assert values[("maintenance_business_metrics_up", ())] == 1
    assert values[("maintenance_metrics_source_up", (("source", "database"),))] == 1
    assert isinstance(caches["default"].get(metrics.SNAPSHOT_KEY), dict)
