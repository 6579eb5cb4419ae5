"""Celery tasks of the work-orders app (Celery's autodiscovery reads this module): a few lines around the services,
safe to run twice or on two machines; asset health's are in its package."""

from celery import shared_task

from maintenance_site.tenancy import SYSTEM
from workorders import services
from workorders.health.tasks import complete_deep_diagnostic, refresh_asset_health

__all__ = ["check_budgets", "complete_deep_diagnostic", "discard_abandoned_uploads", "refresh_asset_health"]


@shared_task(ignore_result=True)
def check_budgets() -> int:
    """Periodic (hourly): record and announce each budget threshold crossed, once (unique per budget and threshold)."""
    return services.check_budget_thresholds(actor=SYSTEM)


@shared_task(ignore_result=True)
def discard_abandoned_uploads() -> int:
    """Periodic (hourly): forget uploads a phone left unfinished for longer than OFFLINE_MAX_AGE_DAYS."""
    return services.discard_abandoned_uploads(actor=SYSTEM)
