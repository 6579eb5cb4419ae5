"""Celery tasks of the SLA app: a few lines around the services, safe to run twice or on two machines."""

from celery import shared_task

from sla import services


@shared_task(ignore_result=True)
def monitor_sla_clocks() -> dict:
    """Periodic (SLA_MONITOR_INTERVAL): raise each warning and breach of a running clock exactly once."""
    return services.monitor_clocks()
