"""Celery tasks of the work-orders app (Celery's autodiscovery reads this module): a few lines around the services,
safe to run twice or on two machines; asset health's are in its package."""

from celery import shared_task

from maintenance_site.tenancy import SYSTEM
from workorders import services
from workorders.health.tasks import complete_deep_diagnostic, refresh_asset_health

__all__ = ["check_budgets", "complete_deep_diagnostic", "refresh_asset_health"]


@shared_task(ignore_result=True)
def check_budgets() -> int:
    """Periodic (hourly): record and announce each budget threshold crossed, once (unique per budget and threshold)."""
    return services.check_budget_thresholds(actor=SYSTEM)
