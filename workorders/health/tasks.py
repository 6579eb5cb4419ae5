"""Asset health's Celery tasks: a few lines each that call the services; all safe to run twice or on two machines at
once. `refresh_asset_health` is a core job (maintenance_site.ops.schedules): scores due, then the predictive check,
then pending deep diagnostics whose task was lost."""

from celery import shared_task

from workorders.health import services


@shared_task
def complete_deep_diagnostic(run_id: int) -> str | None:
    """Run a queued deep diagnostic (a run already done, or gone, is left alone)."""
    run = services.complete_deep_run(run_id)
    return run.status if run is not None else None


@shared_task
def refresh_asset_health() -> dict:
    """Recompute the scores that are due (debounced), open the predictive orders that are due, sweep deep runs."""
    computed = services.refresh_health()
    predictive = services.run_predictive_checks()
    swept = services.complete_pending_runs()
    return {"computed": computed, **predictive, "deep_runs_swept": swept}
