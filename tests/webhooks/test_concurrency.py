"""Two delivery jobs at once (two workers, two machines) on PostgreSQL: one pass of both sends every delivery exactly
once and leaves nothing for a later run; fan-out writes each once (the subscriptions' row locks, waited for and never
skipped, and a unique (subscription, event) row)."""

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


@pytest.mark.parametrize("round_", range(8))  # the race left work behind in 2 of 6 runs: eight rounds, every time
@pytest.mark.parametrize("concurrency", [2, 64])  # claimed per job: fewer than the cap (many claims), or many
def test_one_pass_of_two_jobs_at_once_sends_every_delivery_exactly_once(
    org_a, manager_a, receiver, settings, no_job_after_dispatch, round_, concurrency
):
    settings.WEBHOOK_MAX_IN_FLIGHT = 3  # several claim rounds per subscription
    settings.WEBHOOK_CLAIM_BATCH = concurrency
    for number in range(3):
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
    # No third run: what one pass of the two jobs leaves undelivered would wait for beat's next run.
    expected = WebhookDelivery.objects.count()
    assert expected == 45  # 15 events x 3 subscriptions, each written once
    ids = Counter(item["headers"]["webhook-id"] for item in receiver.requests)
    assert len(ids) == expected and set(ids.values()) == {1}  # each sent once
    assert sum(result["succeeded"] for result in results) == expected
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
