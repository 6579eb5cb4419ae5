"""Celery tasks of notifications: a few lines each around the services, safe to run twice."""

import logging

from celery import Task, shared_task
from django.conf import settings

from maintenance_site.notifications import services
from maintenance_site.notifications.senders import DeliveryFailed

logger = logging.getLogger(__name__)


class DeliveryTask(Task):
    """Retries bounded by NOTIFICATION_MAX_ATTEMPTS read at run time. The delivery row's attempt counter is
    what really stops the retries (the service stops raising once it reaches the limit); this is a backstop."""

    @property
    def max_retries(self):
        return settings.NOTIFICATION_MAX_ATTEMPTS


@shared_task(
    base=DeliveryTask,
    ignore_result=True,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=True,  # 1 s, 2 s, 4 s, ... with full jitter, at most retry_backoff_max
    # A retry waits in a worker, unacknowledged, until its time: kept under the broker's visibility timeout
    # (CELERY_VISIBILITY_TIMEOUT, 600 s) so that Redis does not hand the waiting retry to a second worker.
    retry_backoff_max=300,
    retry_jitter=True,
)
def send_delivery(delivery_id: int) -> str | None:
    """Send one notification delivery; a delivery already sent (or being sent) is left alone."""
    return services.send_delivery(delivery_id)


@shared_task(ignore_result=True)
def send_deliveries(delivery_ids: list[int]) -> None:
    """After the commit of a notify(): one task per delivery, so each channel retries on its own."""
    for delivery_id in delivery_ids:
        try:
            send_delivery.delay(delivery_id)
        except Exception:  # one unqueued delivery must not stop the others; the sweep picks it up
            logger.exception("could not queue notification delivery %s", delivery_id)


@shared_task(ignore_result=True)
def sweep_deliveries() -> int:
    """Periodic: queue deliveries whose task was lost (broker down at commit, worker died mid-send)."""
    return services.requeue_stuck_deliveries()


@shared_task(ignore_result=True)
def send_digests() -> int:
    """Periodic: the daily digest e-mails that are due."""
    return services.send_due_digests()
