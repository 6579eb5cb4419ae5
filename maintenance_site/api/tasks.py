from celery import shared_task

from maintenance_site.api import idempotency


@shared_task(ignore_result=True)
def prune_idempotency_keys() -> int:
    """Periodic: forget Idempotency-Key responses older than IDEMPOTENCY_KEY_TTL_HOURS."""
    return idempotency.prune_expired()
