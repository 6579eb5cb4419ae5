"""Celery signal receivers that feed /metrics: task outcomes and runtimes, counted in the shared cache.

The ops app's `ready()` imports this module, so every process that sets Django up (the worker does, through
Celery's Django fix-up; the web) connects the receivers. Outcomes come from task_success, task_failure and
task_retry, which the worker also sends for hard time limits and lost child processes; the runtime of every
attempt comes from task_prerun and task_postrun. A receiver never lets a metrics failure reach the task.
"""

import logging
import time

from celery.signals import task_failure, task_postrun, task_prerun, task_retry, task_success

from maintenance_site.ops import metrics

logger = logging.getLogger(__name__)

_STARTED = "_ops_metrics_started"


def _task_name(task) -> str:
    return getattr(task, "name", None) or "unknown"


def _record_state(task, state: str) -> None:
    try:
        metrics.record_task_state(_task_name(task), state)
    except Exception as exc:  # metrics must not fail or slow down the task's outcome handling
        logger.warning("task metric not recorded (%s %s): %s", _task_name(task), state, exc)


@task_success.connect(dispatch_uid="ops-metrics-task-success")
def _task_succeeded(sender=None, **kwargs):
    _record_state(sender, "succeeded")


@task_failure.connect(dispatch_uid="ops-metrics-task-failure")
def _task_failed(sender=None, **kwargs):
    _record_state(sender, "failed")


@task_retry.connect(dispatch_uid="ops-metrics-task-retry")
def _task_retried(sender=None, **kwargs):
    _record_state(sender, "retried")


@task_prerun.connect(dispatch_uid="ops-metrics-task-prerun")
def _task_started(task=None, **kwargs):
    if task is not None:
        setattr(task.request, _STARTED, time.perf_counter())


@task_postrun.connect(dispatch_uid="ops-metrics-task-postrun")
def _task_finished(task=None, **kwargs):
    started = getattr(task.request, _STARTED, None) if task is not None else None
    if started is None:
        return
    try:
        metrics.record_task_runtime(_task_name(task), time.perf_counter() - started)
    except Exception as exc:  # as above
        logger.warning("task runtime metric not recorded (%s): %s", _task_name(task), exc)
