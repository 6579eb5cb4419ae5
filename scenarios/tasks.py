"""Celery tasks of the scenarios: four core jobs (see maintenance_site/ops/schedules.py). Each is a few
lines calling services, and safe to run twice or on two machines at once."""

import logging

from celery import shared_task

from scenarios import discovery, presets, resources, runner, services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def scheduler_tick() -> dict:
    """Switch off expired timers, open and close preset windows, record the runs that are due."""
    expired = services.expire_timers()
    windows = presets.tick_windows()
    recorded = runner.record_due_runs()
    return {"expired": expired, "windows": windows, "recorded": [run.pk for run in recorded]}


# Second line only: a run's own deadline (timeout_seconds, checked by the tick and at every checkpoint) is
# what stops it; these limits catch an executor that never reaches a checkpoint, on pools that honour them.
RUNNER_SOFT_TIME_LIMIT = 6 * 3600


# Acknowledged on receipt, unlike the short tasks: a run may last longer than the broker's visibility timeout
# (CELERY_VISIBILITY_TIMEOUT), after which a late-acknowledged tick would be delivered again. Its runs need no
# redelivery: each is claimed once (pending → running), and one whose worker died is marked failed ("abandoned")
# once its heartbeat is older than the run lease (SCENARIO_RUN_LEASE_MINUTES); the next due slot runs again.
@shared_task(
    ignore_result=True,
    acks_late=False,
    soft_time_limit=RUNNER_SOFT_TIME_LIMIT,
    time_limit=RUNNER_SOFT_TIME_LIMIT + 120,
)
def runner_tick() -> list[int]:
    """Mark timed-out runs, then execute the runs that are due (claimed one by one with a conditional update,
    highest priority score first)."""
    return [run.pk for run in runner.run_due()]


@shared_task(ignore_result=True)
def discovery_tick() -> dict:
    """Scan the discovery folder and poll the external scenarios' status endpoints."""
    return discovery.discover_and_poll()


@shared_task(ignore_result=True)
def sample_resources() -> int | None:
    """Record this machine's resource use for the current slot (once per host and slot), forget old samples."""
    sample = resources.sample_resources()
    return sample.pk if sample is not None else None
