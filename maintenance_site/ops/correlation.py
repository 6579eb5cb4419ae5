"""A correlation id per request, carried into the Celery tasks the request causes and into every log line."""

import uuid
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")


def new_correlation_id() -> str:
    return uuid.uuid4().hex[:16]


def get_correlation_id() -> str:
    return correlation_id.get()
