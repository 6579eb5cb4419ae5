"""The Celery app. Tasks act as the system user (history names it) and carry the correlation id of the
request that caused them."""

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init

from maintenance_site import audit
from maintenance_site.ops import telemetry
from maintenance_site.ops.correlation import correlation_id, get_correlation_id, new_correlation_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")

app = Celery("maintenance_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_TOKENS = "_maintenance_context_tokens"
CORRELATION_HEADER = "x_correlation_id"


@before_task_publish.connect
def _attach_correlation_id(headers=None, **kwargs):
    # Not "correlation_id": Celery fills task.request.correlation_id with the task id and drops such a header.
    current = get_correlation_id()
    if headers is not None and CORRELATION_HEADER not in headers and current != "-":  # "-": no request
        headers[CORRELATION_HEADER] = current


@task_prerun.connect
def _enter_task_context(task=None, **kwargs):
    incoming = (
        getattr(task.request, CORRELATION_HEADER, None)
        or (task.request.headers or {}).get(CORRELATION_HEADER)
        or new_correlation_id()
    )
    tokens = (correlation_id.set(incoming), audit.start_acting_as(audit.system_user()))
    setattr(task.request, _TOKENS, tokens)


@task_postrun.connect
def _leave_task_context(task=None, **kwargs):
    tokens = getattr(task.request, _TOKENS, None)
    if tokens:
        correlation_token, user_token = tokens
        audit.stop_acting_as(user_token)
        correlation_id.reset(correlation_token)


@worker_process_init.connect(weak=False)
def _start_tracing(**kwargs):
    """OpenTelemetry in each worker process (after the fork: the exporter's thread must live in the child)."""
    telemetry.setup()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
