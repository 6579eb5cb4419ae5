"""Fixtures of the notification tests: channels off unless a test turns them on, and a tiny local HTTP
endpoint (http.server in a thread) standing in for the Slack webhook, the SMS API and the push service."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from maintenance_site.notifications import services


@pytest.fixture(autouse=True)
def _channels_off(settings):
    settings.SLACK_WEBHOOK_URL = None
    settings.SMS_API_URL = None
    settings.SMS_API_KEY = ""
    settings.PUSH_SERVICE_URL = None
    settings.PUSH_API_KEY = ""
    settings.NOTIFICATION_HTTP_TIMEOUT = 2.0
    settings.NOTIFICATION_MAX_ATTEMPTS = 5


class Endpoint:
    """Answers POSTs with the queued statuses, then `default`; records every request."""

    def __init__(self, statuses, default):
        self.statuses = list(statuses)
        self.default = default
        self.requests: list[dict] = []
        self.url = ""
        self._lock = threading.Lock()

    def next_status(self) -> int:
        with self._lock:
            return self.statuses.pop(0) if self.statuses else self.default


@pytest.fixture
def http_endpoint():
    """`http_endpoint(500, 200)`: a local endpoint answering 500 to the first POST, then 200."""
    servers = []

    def start(*statuses, default=200) -> Endpoint:
        endpoint = Endpoint(statuses, default)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)})
                status = endpoint.next_status()
                reply = b'{"ok": true}' if status < 400 else b"upstream exploded"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # keep the test output quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        endpoint.url = f"http://127.0.0.1:{server.server_port}/hook"
        return endpoint

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def eager_retries():
    """Let Celery run a task's retries in eager mode. With task_eager_propagates on (the suite's default)
    an eager task raises its Retry to the caller instead of running the retry; off, Celery applies the
    retry signature at once (the backoff countdown is computed but not waited for)."""
    from maintenance_site.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


@pytest.fixture
def notify_now(django_capture_on_commit_callbacks):
    """notify() in a transaction that commits, then the after-commit callbacks (the Celery tasks run eagerly)."""

    def run(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.notify(*args, **kwargs)

    return run
