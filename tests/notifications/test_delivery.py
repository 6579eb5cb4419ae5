"""Sending: failures recorded and retried with backoff, never touching the caller's transaction;
a task that runs twice sends once; lost tasks are swept up."""

import logging
from datetime import timedelta

import pytest
from celery.app import autoretry
from django.core import mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from maintenance_site.notifications import services, tasks
from maintenance_site.notifications.models import Channel, NotificationDelivery
from maintenance_site.tenancy.models import Organization

CONTEXT = {"title": "SLA violated on WO-42", "body": "Response time exceeded by 2 h."}
Status = NotificationDelivery.Status


@pytest.fixture
def backoff_calls(monkeypatch):
    """The countdowns Celery computed for the retries (eager retries run at once, ignoring them)."""
    calls = []
    real = autoretry.get_exponential_backoff_interval

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(autoretry, "get_exponential_backoff_interval", spy)
    return calls


def slack_delivery():
    return NotificationDelivery.objects.get(channel=Channel.SLACK)


def test_failed_webhook_is_recorded_and_retried_while_the_caller_commits(
    eager_retries, org_a, manager_a, settings, http_endpoint, backoff_calls, django_capture_on_commit_callbacks
):
    slack = http_endpoint(500, 200)
    settings.SLACK_WEBHOOK_URL = slack.url
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        Organization.objects.filter(pk=org_a.pk).update(name="Org A (renamed in the caller's transaction)")
        services.notify(org_a, manager_a, "sla:violation", CONTEXT)

    org_a.refresh_from_db()
    assert org_a.name == "Org A (renamed in the caller's transaction)"  # committed regardless
    delivery = slack_delivery()
    assert len(slack.requests) == 2
    assert delivery.status == Status.SENT
    assert delivery.attempts == 2
    # The failure of the first attempt is on record, without the webhook's secret URL.
    assert "HTTP 500" in delivery.last_error and "upstream exploded" in delivery.last_error
    assert slack.url not in delivery.last_error
    # Retried through Celery's exponential backoff with full jitter.
    assert backoff_calls == [{"factor": 1, "retries": 0, "maximum": 300, "full_jitter": True}]
    # The other channels went their own way.
    assert len(mail.outbox) == 1


def test_a_webhook_that_keeps_failing_ends_failed_after_max_attempts(
    eager_retries, org_a, manager_a, settings, http_endpoint, backoff_calls, notify_now
):
    slack = http_endpoint(default=503)
    settings.SLACK_WEBHOOK_URL = slack.url
    settings.NOTIFICATION_MAX_ATTEMPTS = 3

    [notification] = notify_now(org_a, manager_a, "sla:violation", CONTEXT)

    assert notification.pk  # the caller got its notification
    delivery = slack_delivery()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 3)
    assert "HTTP 503" in delivery.last_error
    assert len(slack.requests) == 3
    assert [call["retries"] for call in backoff_calls] == [0, 1]
    assert NotificationDelivery.objects.get(channel=Channel.EMAIL).status == Status.SENT


def test_a_client_error_is_not_retried(org_a, manager_a, settings, http_endpoint, notify_now):
    slack = http_endpoint(default=404)  # a revoked webhook: asking again will not help
    settings.SLACK_WEBHOOK_URL = slack.url
    notify_now(org_a, manager_a, "sla:violation", CONTEXT)
    delivery = slack_delivery()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 1)
    assert "HTTP 404" in delivery.last_error
    assert len(slack.requests) == 1


def test_an_unreachable_endpoint_is_recorded(eager_retries, org_a, manager_a, settings, http_endpoint, notify_now):
    endpoint = http_endpoint()
    settings.SLACK_WEBHOOK_URL = "http://127.0.0.1:9/hook"  # discard port: connection refused
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    notify_now(org_a, manager_a, "sla:violation", CONTEXT)
    delivery = slack_delivery()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 2)
    assert "127.0.0.1 could not be reached" in delivery.last_error
    assert endpoint.requests == []


def test_a_task_that_runs_twice_sends_once(org_a, manager_a, settings, http_endpoint, notify_now):
    slack = http_endpoint()
    settings.SLACK_WEBHOOK_URL = slack.url
    notify_now(org_a, manager_a, "sla:violation", CONTEXT)
    delivery = slack_delivery()
    assert delivery.status == Status.SENT and len(slack.requests) == 1

    tasks.send_delivery.delay(delivery.pk)
    tasks.send_delivery.apply(args=[delivery.pk])
    assert services.send_delivery(delivery.pk) is None

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.SENT, 1)
    assert len(slack.requests) == 1
    in_app = NotificationDelivery.objects.get(channel=Channel.IN_APP)
    assert services.send_delivery(in_app.pk) is None
    assert len(mail.outbox) == 1


def test_a_delivery_claimed_by_another_run_is_left_alone_until_its_lease_expires(
    org_a, manager_a, settings, http_endpoint, django_capture_on_commit_callbacks
):
    slack = http_endpoint()
    settings.SLACK_WEBHOOK_URL = slack.url
    with django_capture_on_commit_callbacks(execute=False):
        services.notify(org_a, manager_a, "sla:violation", CONTEXT)
    delivery = slack_delivery()
    claimed_at = timezone.now()
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status=Status.SENDING, claimed_at=claimed_at, attempts=1)

    assert services.send_delivery(delivery.pk) is None  # another worker is sending it
    assert slack.requests == []

    NotificationDelivery.objects.filter(pk=delivery.pk).update(claimed_at=claimed_at - timedelta(minutes=10))
    assert services.send_delivery(delivery.pk) == Status.SENT  # that worker died: taken over
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(slack.requests)) == (Status.SENT, 2, 1)


def test_a_deleted_delivery_is_ignored(db):
    assert services.send_delivery(999_999) is None


def test_broker_down_at_commit_leaves_deliveries_pending_for_the_sweep(
    org_a, manager_a, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(tasks.send_deliveries, "delay", broker_down)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        [notification] = services.notify(org_a, manager_a, "sla:violation", CONTEXT)

    assert notification.pk  # the caller was not disturbed
    assert "broker unreachable" in caplog.text
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert mail.outbox == []

    monkeypatch.undo()
    assert tasks.sweep_deliveries.delay().get() == 0  # too recent: its own task may still come
    NotificationDelivery.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    assert tasks.sweep_deliveries.delay().get() == 2
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {Status.SENT}
    assert len(mail.outbox) == 1


def test_retry_deliveries_gives_failed_ones_a_new_round(
    eager_retries, org_a, manager_a, settings, http_endpoint, django_capture_on_commit_callbacks, notify_now
):
    slack = http_endpoint(default=500)
    settings.SLACK_WEBHOOK_URL = slack.url
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    notify_now(org_a, manager_a, "sla:violation", CONTEXT)
    assert slack_delivery().status == Status.FAILED

    slack.default = 200
    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_deliveries(NotificationDelivery.objects.all()) == 1  # only the failed one
    delivery = slack_delivery()
    assert (delivery.status, delivery.attempts) == (Status.SENT, 1)
    assert len(slack.requests) == 3


def test_task_retry_options():
    task = tasks.send_delivery
    assert task.autoretry_for == (services.DeliveryFailed,)
    assert task.retry_backoff is True and task.retry_jitter is True
