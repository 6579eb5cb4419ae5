"""Two delivery jobs at once (two workers, two machines) on PostgreSQL: every delivery is sent once, fan-out writes
each once (row locks with SKIP LOCKED on the subscription, a unique (subscription, event) row)."""

import threading
from collections import Counter

import pytest
from django.db import connection

from maintenance_site import hooks
from maintenance_site.events import services as events
from maintenance_site.webhooks import services
from maintenance_site.webhooks.models import WebhookDelivery
from workorders import services as work_orders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def no_job_after_dispatch():
    """The dispatcher's hook would run the job eagerly at each commit (Celery is eager in tests): off here, so that
    the two jobs below find the work."""
    hooks.events_dispatched.unregister(services.on_events_dispatched)
    yield
    hooks.events_dispatched.register(services.on_events_dispatched)


def test_two_jobs_at_once_send_every_delivery_exactly_once(org_a, manager_a, receiver, settings, no_job_after_dispatch):
    settings.WEBHOOK_MAX_IN_FLIGHT = 3  # several claim rounds per subscription
    for number in range(2):
        services.create_subscription(org_a, actor=manager_a, url=f"{receiver.url}/{number}", event_types=["*"])
    for number in range(15):
        work_orders.create_work_order(org_a, title=f"order {number}", actor=manager_a)
    events.number_pending_events()

    barrier, results, errors = threading.Barrier(2), [], []

    def job():
        try:
            barrier.wait()
            results.append(services.deliver_due(seconds=30))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    # A job that finds a subscription locked by the other skips it, so the two may leave work for the next run (beat
    # runs the job every WEBHOOK_SWEEP_INTERVAL): nothing may be sent twice, and nothing is lost once it has run.
    results.append(services.deliver_due(seconds=30))
    expected = WebhookDelivery.objects.count()
    assert expected == 30  # 15 events x 2 subscriptions, each written once
    ids = Counter(item["headers"]["webhook-id"] for item in receiver.requests)
    assert len(ids) == expected and set(ids.values()) == {1}  # each sent once
    assert sum(result["succeeded"] for result in results) == expected
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
