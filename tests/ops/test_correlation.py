"""Correlation ids: echoed, validated, carried into log records, JSON logs and published Celery tasks."""

import json
import logging
import re
import sys

import pytest
from celery.app.trace import build_tracer
from celery.worker.request import Request
from kombu import Connection

from maintenance_site.celery import app
from maintenance_site.ops.correlation import correlation_id, get_correlation_id
from maintenance_site.ops.logging import CorrelationIdFilter, JsonFormatter
from maintenance_site.ops.tasks import beat_heartbeat
from tests.ops.urls import MEMORY_BROKER, TEST_QUEUE

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]

GENERATED = re.compile(r"^[0-9a-f]{16}$")


def test_a_valid_correlation_id_is_echoed(client):
    response = client.get("/health", HTTP_X_CORRELATION_ID="req-2024.abc_1")
    assert response["X-Correlation-ID"] == "req-2024.abc_1"


@pytest.mark.parametrize("offered", ["has spaces", "semi;colon", "x" * 65, "<script>", "é"])
def test_an_invalid_correlation_id_is_replaced(client, offered):
    response = client.get("/health", HTTP_X_CORRELATION_ID=offered)
    assert response["X-Correlation-ID"] != offered
    assert GENERATED.match(response["X-Correlation-ID"])


def test_a_missing_correlation_id_is_generated_per_request(client):
    first = client.get("/health")["X-Correlation-ID"]
    second = client.get("/health")["X-Correlation-ID"]
    assert GENERATED.match(first) and GENERATED.match(second)
    assert first != second


def test_error_responses_carry_it_too(client):
    response = client.get("/no-such-page", HTTP_X_CORRELATION_ID="lost-1")
    assert response.status_code == 404
    assert response["X-Correlation-ID"] == "lost-1"


def test_a_log_record_emitted_during_the_request_carries_it(client, caplog):
    caplog.handler.addFilter(CorrelationIdFilter())  # what the console handler of LOGGING does
    with caplog.at_level(logging.INFO, logger="tests.ops"):
        client.get("/ops-tests/log", HTTP_X_CORRELATION_ID="req-log-1")
    [record] = [r for r in caplog.records if r.getMessage() == "inside the request"]
    assert record.correlation_id == "req-log-1"
    assert get_correlation_id() == "-", "the id must not leak past the request"


@pytest.fixture
def memory_broker():
    """Publishing for real (to kombu's in-process memory transport) instead of running tasks eagerly."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False

    def published():
        with Connection(MEMORY_BROKER) as connection:
            message = connection.SimpleQueue(TEST_QUEUE).get(timeout=2)
            message.ack()
            return message

    try:
        yield published
    finally:
        app.conf.task_always_eager = eager
        with Connection(MEMORY_BROKER) as connection:
            connection.SimpleQueue(TEST_QUEUE).clear()


def test_a_task_published_during_the_request_carries_it_in_its_headers(client, memory_broker):
    response = client.get("/ops-tests/publish", HTTP_X_CORRELATION_ID="req-task-1")
    assert response.status_code == 200
    message = memory_broker()
    assert message.headers["task"] == beat_heartbeat.name
    assert message.headers["x_correlation_id"] == "req-task-1"


def _run_like_a_worker(message):
    """What a worker process does with a message: build its Request and trace the task."""
    request = Request(message, app=app, task=app.tasks[message.headers["task"]])
    tracer = build_tracer(request.task.name, request.task, app=app, eager=False)
    return tracer(request.id, request.args, request.kwargs, request.request_dict)


def test_the_worker_runs_the_task_under_the_requests_id(client, memory_broker, caplog):
    client.get("/ops-tests/publish", HTTP_X_CORRELATION_ID="req-task-2")
    message = memory_broker()
    caplog.handler.addFilter(CorrelationIdFilter())
    with caplog.at_level(logging.INFO, logger="maintenance_site.ops.tasks"):
        _run_like_a_worker(message)
    [record] = [r for r in caplog.records if r.getMessage() == "beat heartbeat recorded"]
    assert record.correlation_id == "req-task-2"


def _json_line(record) -> dict:
    CorrelationIdFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_json_formatter_writes_one_json_object_with_the_correlation_id():
    token = correlation_id.set("json-1")
    try:
        record = logging.getLogger("maintenance.test").makeRecord(
            "maintenance.test",
            logging.WARNING,
            __file__,
            1,
            "stock low: %s",
            ("bolt",),
            None,
            extra={"work_order": 17, "thing": object()},
        )
        line = JsonFormatter().format(record)
        assert "\n" not in line
        entry = _json_line(record)
    finally:
        correlation_id.reset(token)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "maintenance.test"
    assert entry["message"] == "stock low: bolt"
    assert entry["correlation_id"] == "json-1"
    assert entry["work_order"] == 17
    assert entry["thing"].startswith("<object object")
    assert entry["time"].endswith("+00:00")


def test_json_formatter_includes_the_exception():
    try:
        raise ValueError("broken gauge")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = _json_line(record)
    assert entry["correlation_id"] == "-"
    assert "ValueError: broken gauge" in entry["exception"]
