"""Celery tasks of the reports: a few lines around the services, safe to run twice or on two machines at once."""

from celery import shared_task

from maintenance_site.reports import services


@shared_task(ignore_result=True)
def generate_report(report_id: int) -> None:
    """Generate one queued report (claimed once: a second run of the task does nothing)."""
    services.generate(report_id)


@shared_task(ignore_result=True)
def send_scheduled_reports() -> dict:
    """Periodic: each schedule's report of its last complete period, sent once."""
    return services.send_due_reports()


@shared_task(ignore_result=True)
def reports_housekeeping() -> dict:
    """Periodic: retention of the archive, and the queued reports whose task was lost."""
    return {"pruned": services.prune_reports(), "requeued": services.sweep_queued()}
