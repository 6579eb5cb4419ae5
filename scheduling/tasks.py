"""Celery tasks of the scheduling app: a few lines each, calling a service, safe to run twice. Their names
(`scheduling.tasks.…`) are what beat's periodic tasks point at."""

from celery import shared_task

from maintenance_site.tenancy import SYSTEM
from scheduling.preventive.generation import generate_due_work_orders
from scheduling.windows.tick import prune_history, tick


@shared_task(ignore_result=True)
def generate_preventive_work_orders() -> dict:
    """Periodic (beat, every PREVENTIVE_GENERATION_INTERVAL seconds): create the preventive work orders that are
    due. Running it twice, late, or on two machines at once creates nothing twice."""
    result = generate_due_work_orders(actor=SYSTEM)
    return {"created": result.created, "skipped": result.skipped}


@shared_task(ignore_result=True)
def maintenance_windows_tick() -> None:
    """Every MAINTENANCE_CHECK_INTERVAL seconds: start due windows, end finished ones, reconcile the mode.
    Safe to run twice, late, or on two machines at once (see scheduling.windows.tick)."""
    tick()


@shared_task(ignore_result=True)
def prune_maintenance_history() -> None:
    """Keep the newest MAINTENANCE_MAX_HISTORY finished windows per organisation."""
    prune_history()
