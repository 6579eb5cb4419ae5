"""Celery tasks of the scheduling app: a few lines each, calling a service, safe to run twice."""

from celery import shared_task

# --- preventive maintenance -----------------------------------------------------------------------------


@shared_task(ignore_result=True)
def generate_preventive_work_orders() -> dict:
    """Periodic (beat, every PREVENTIVE_GENERATION_INTERVAL seconds): create the preventive work orders that are
    due. Running it twice, late, or on two machines at once creates nothing twice."""
    from scheduling import preventive

    result = preventive.generate_due_work_orders()
    return {"created": result.created, "skipped": result.skipped}


# --- maintenance windows (scheduling.windows) -----------------------------------------------------------


@shared_task(ignore_result=True)
def maintenance_windows_tick() -> None:
    """Every MAINTENANCE_CHECK_INTERVAL seconds: start due windows, end finished ones, reconcile the mode.
    Safe to run twice, late, or on two machines at once (see scheduling.windows.tick)."""
    from scheduling import windows

    windows.tick()


@shared_task(ignore_result=True)
def prune_maintenance_history() -> None:
    """Keep the newest MAINTENANCE_MAX_HISTORY finished windows per organisation."""
    from scheduling import windows

    windows.prune_history()
