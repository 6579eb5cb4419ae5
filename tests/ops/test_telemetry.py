"""OpenTelemetry (issue 25): off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; when on, spans for requests, database
calls, Celery tasks and outgoing HTTP, each with the correlation id, checked with an in-memory exporter."""

import subprocess
import sys
import urllib.request

import pytest
from django.db import connections
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from maintenance_site.ops import telemetry

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def spans():
    """Tracing into memory. psycopg connections are traced from their `connect`: the open ones are closed first
    (as in a real process, where setup() runs before the first query) and after (back to untraced ones)."""
    exporter = InMemorySpanExporter()
    connections.close_all()
    telemetry.setup(exporter=exporter, force=True)
    yield exporter
    telemetry.teardown()
    connections.close_all()


def test_off_without_the_variable_nothing_is_imported():
    # No instrumentation, exporter or tracer is loaded. (redis-py imports the OpenTelemetry metrics API on its own
    # when the package is installed; it records nothing unless configured.)
    code = (
        "import os, sys; os.environ.pop('OTEL_EXPORTER_OTLP_ENDPOINT', None);"
        "import django; django.setup();"
        "from maintenance_site.ops import telemetry; assert telemetry.setup() is None;"
        "import maintenance_site.wsgi;"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.instrumentation', "
        "'opentelemetry.exporter', 'opentelemetry.sdk.trace'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_requests_and_queries_are_traced_with_the_correlation_id(spans, api, manager_a, org_a):
    response = api(manager_a, org_a).get("/api/v1/work-orders/", HTTP_X_CORRELATION_ID="trace-me-0001")
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = [span for span in finished if span.kind.name == "SERVER"]
    assert server and server[0].attributes.get("http.route") or server[0].name
    assert server[0].attributes.get("correlation_id") == response["X-Correlation-ID"]
    trace_id = server[0].context.trace_id  # the request's queries (not the fixtures' before it)
    database = [
        span
        for span in finished
        if span.attributes.get("db.system") == "postgresql" and span.context.trace_id == trace_id
    ]
    assert database, [span.name for span in finished]
    assert all(span.attributes.get("correlation_id") == response["X-Correlation-ID"] for span in database)


def test_celery_tasks_and_outgoing_http_are_traced(spans, http_server_url):
    from maintenance_site.ops.tasks import beat_heartbeat

    beat_heartbeat.apply()
    urllib.request.urlopen(http_server_url, timeout=5).read()  # noqa: S310 - a local server
    names = [span.name for span in spans.get_finished_spans()]
    assert any("beat_heartbeat" in name for name in names), names
    assert any(
        span.kind.name == "CLIENT"
        and span.attributes.get("http.request.method", span.attributes.get("http.method")) == "GET"
        for span in spans.get_finished_spans()
    ), names


def test_webhook_posts_are_traced(spans, http_server_url, settings):
    from maintenance_site.security import outbound

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with outbound.Sender(2) as sender:  # the webhook job's aiohttp client
        result = sender.submit(http_server_url, b"{}", {"Content-Type": "application/json"}).result(10)
    assert result.status_code == 204
    assert any(
        span.kind.name == "CLIENT"
        and span.attributes.get("http.request.method", span.attributes.get("http.method")) == "POST"
        for span in spans.get_finished_spans()
    ), [span.name for span in spans.get_finished_spans()]


def test_a_collector_that_is_down_breaks_nothing(monkeypatch):
    code = (
        "import os; os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']='http://127.0.0.1:9';"
        "os.environ['OTEL_BSP_SCHEDULE_DELAY']='10';"
        "import django; django.setup();"
        "from maintenance_site.ops import telemetry; p = telemetry.setup(); assert p is not None;"
        "from opentelemetry import trace; t = trace.get_tracer('x');"
        "s = t.start_span('probe'); s.end(); p.force_flush(2000); p.shutdown(); print('alive')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("alive")


@pytest.fixture
def http_server_url():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def do_POST(self):  # noqa: N802 - the webhook sender's
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
