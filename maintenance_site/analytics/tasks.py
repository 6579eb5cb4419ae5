"""Celery task of the analytics: the daily rollups' refresh, safe to run twice or on two machines at once."""

from celery import shared_task

from maintenance_site.analytics import rollups


@shared_task(ignore_result=True)
def rollup_analytics() -> dict:
    """Periodic: roll up each organisation's settled days and recompute the days that changes touched."""
    return {str(org): result for org, result in rollups.refresh_all().items()}
