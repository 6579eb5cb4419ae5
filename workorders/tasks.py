"""Celery tasks of the work-orders app: a few lines around the services, safe to run twice or on two machines."""

from celery import shared_task

from maintenance_site.tenancy import SYSTEM
from workorders import services


@shared_task(ignore_result=True)
def check_budgets() -> int:
    """Periodic (hourly): record and announce each budget threshold crossed, once (unique per budget and threshold)."""
    return services.check_budget_thresholds(actor=SYSTEM)
