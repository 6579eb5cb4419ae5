"""The delivery job's throughput changes (issue 25): the fan-out of many subscriptions in one transaction, a POST's
timeout that starts with its turn for a connection, and no POST sent on a claim that may have been taken over."""

import threading

import pytest
from django.db import connections

from maintenance_site import hooks
from maintenance_site.events import services as events
from maintenance_site.events.models import Event
from maintenance_site.security import outbound
from maintenance_site.webhooks import services
from maintenance_site.webhooks.models import WebhookDelivery
from workorders import services as work_orders

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def no_job_after_dispatch():
    """The dispatcher's hook would run the job eagerly at each commit (Celery is eager in tests): off here."""
    hooks.events_dispatched.unregister(services.on_events_dispatched)
    yield
    hooks.events_dispatched.register(services.on_events_dispatched)


def test_one_fan_out_gives_each_subscription_only_its_own_events(org_a, org_b, manager_a, manager_b, receiver):
    early, _ = services.create_subscription(org_a, actor=manager_a, url=f"{receiver.url}/early", event_types=["*"])
    work_orders.create_work_order(org_a, title="before the second subscription", actor=manager_a)
    events.number_pending_events()
    late, _ = services.create_subscription(org_a, actor=manager_a, url=f"{receiver.url}/late", event_types=["*"])
    theirs, _ = services.create_subscription(org_b, actor=manager_b, url=f"{receiver.url}/b", event_types=["*"])
    work_orders.create_work_order(org_a, title="after", actor=manager_a)
    work_orders.create_work_order(org_b, title="B's order", actor=manager_b)
    events.number_pending_events()

    written = services.fan_out()

    def sequences(subscription):
        return sorted(WebhookDelivery.objects.filter(subscription=subscription).values_list("sequence", flat=True))

    a_events = sorted(Event.objects.filter(organization=org_a).values_list("sequence", flat=True))
    b_events = sorted(Event.objects.filter(organization=org_b).values_list("sequence", flat=True))
    assert sequences(early) == a_events  # everything since it was created
    assert sequences(late) == [s for s in a_events if s > late.last_sequence]  # only what came after it
    assert sequences(late) and len(sequences(late)) < len(a_events)
    assert sequences(theirs) == [s for s in b_events if s > theirs.last_sequence]
    assert written == WebhookDelivery.objects.count()
    assert services.fan_out() == 0  # the cursors moved: nothing twice


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_busy_job_skips_the_fan_out_another_job_is_doing_and_a_waiting_one_does_it(
    org_a, manager_a, receiver, no_job_after_dispatch
):
    services.create_subscription(org_a, actor=manager_a, url=receiver.url, event_types=["*"])
    work_orders.create_work_order(org_a, title="one", actor=manager_a)
    events.number_pending_events()
    holding, release = threading.Event(), threading.Event()

    def other_job():  # holds the fan-out lock as a job fanning out would
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [services._FAN_OUT_LOCK])
                holding.set()
                release.wait(10)
                cursor.execute("COMMIT")
        finally:
            other.close()

    thread = threading.Thread(target=other_job)
    thread.start()
    try:
        assert holding.wait(10)
        assert services.fan_out(wait=False) == 0  # the other job writes them
        assert WebhookDelivery.objects.count() == 0
    finally:
        release.set()
        thread.join(10)
    assert services.fan_out() > 0  # a waiting fan-out (a job's first and last) writes them
    assert WebhookDelivery.objects.count() == 1


def test_a_queued_post_has_its_whole_timeout_once_its_turn_comes(receiver, settings):
    settings.WEBHOOK_TIMEOUT = 1.5
    receiver.script = [(200, 0.8), (200, 0.8), (200, 0.8)]  # one after another: 2.4 s in all, 0.8 s each
    with outbound.Sender(concurrency=1) as sender:
        futures = sender.submit_many([(receiver.url, b"{}", {"webhook-id": f"msg_{n}"}) for n in range(3)])
        results = [future.result(timeout=30) for future in futures]
    assert [result.status_code for result in results] == [200, 200, 200], [result.error for result in results]
    assert len(receiver.requests) == 3


def test_a_post_whose_claim_ran_out_while_queued_is_not_sent(receiver):
    with outbound.Sender(concurrency=1) as sender:
        [future] = sender.submit_many([(receiver.url, b"{}", {"webhook-id": "msg_late"})], not_after=0.0)
        result = future.result(timeout=30)
    assert result.status_code is None and result.error == outbound.NOT_SENT
    assert receiver.requests == []
