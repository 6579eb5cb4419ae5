"""Celery tasks of webhooks: a few lines around the services, safe to run twice or on two machines at once."""

from celery import shared_task

from maintenance_site.webhooks import services


@shared_task(ignore_result=True)
def deliver_webhooks() -> dict:
    """After events were numbered, and periodically: fan out new events, send what is due (retries included)."""
    return services.deliver_due()


@shared_task(ignore_result=True)
def prune_webhook_log() -> int:
    """Periodic: forget finished deliveries older than WEBHOOK_LOG_DAYS."""
    return services.prune_log()
