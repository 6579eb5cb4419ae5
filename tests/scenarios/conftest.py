"""Fixtures of the scenario tests: a platform administrator, a calm machine (psutil readings pinned, so a
busy test host never trips the load ceiling by accident), scenarios registered only for a test, a local
HTTP server playing external services, and a discovery folder."""

import json
import threading
import time
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from scenarios import registry
from scenarios.models import Category, Scenario, Weight
from scenarios.registry import RunResult
from scenarios.sync import sync_registry
from tests.conftest import make_user

Memory = namedtuple("Memory", "percent total available")
INTERNAL_KEYS = [
    "backup-manager",
    "cache-optimizer",
    "database-vacuum",
    "health-checker",
    "inventory-reconciliation",
    "log-cleanup",
    "log-rotation",
    "performance-monitor",
    "query-analyzer",
    "security-audit",
    "stale-work-order-escalation",
]


@pytest.fixture(autouse=True)
def scenario_settings(settings, tmp_path):
    settings.BACKUP_DIR = str(tmp_path / "backups")
    settings.SCENARIO_DISCOVERY_DIR = ""
    settings.DEFAULT_TIMEOUT = 0
    settings.EXTERNAL_SCENARIO_TIMEOUT = 0.5
    settings.SCENARIOS_MAX_HEAVY = 3
    settings.SCENARIOS_LOAD_CEILING_CPU = 85.0
    settings.SCENARIOS_LOAD_CEILING_MEMORY = 90.0
    return settings


class Load:
    """The psutil readings the services see; tests raise them to trip the ceiling."""

    def __init__(self, monkeypatch):
        self.cpu = 5.0
        self.memory = 30.0
        monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None, percpu=False: self.cpu)
        monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory(self.memory, 16 * 1024**3, 8 * 1024**3))


@pytest.fixture(autouse=True)
def load(monkeypatch):
    return Load(monkeypatch)


@pytest.fixture
def synced(db):
    sync_registry()
    return {s.key: s for s in Scenario.objects.all()}


@pytest.fixture
def operator(db):
    """A platform administrator."""
    return make_user("platform-admin", is_staff=True, is_superuser=True)


@pytest.fixture
def operator_client(client, operator):
    """The test client signed in as the platform administrator."""
    client.force_login(operator)
    return client


def fresh(key: str) -> Scenario:
    return Scenario.objects.get(key=key)


class ScenarioMaker:
    """Scenarios registered for one test, removed after it."""

    def __init__(self):
        self.keys = []
        self.calls = []

    def add(self, key, *, weight=Weight.LIGHT, conflicts=(), interval=60, func=None, category=Category.OTHER):
        def run(context):
            self.calls.append(key)
            return RunResult(f"{key} ran")

        registry.scenario(
            key=key, category=category, weight=weight, conflicts=list(conflicts), default_interval=interval
        )(func or run)
        self.keys.append(key)
        return key

    def sync(self):
        sync_registry()
        return {key: fresh(key) for key in self.keys}


@pytest.fixture
def test_scenarios(db):
    made = ScenarioMaker()
    yield made
    for key in made.keys:
        registry.unregister(key)


# --- a local HTTP server playing external services -------------------------------------------------------


class Services:
    """Routes: /<name>/api/v1/status, /<name>/api/v1/maintenance/activate|deactivate. Behaviours per name:
    "ok" (answers, toggles), "slow" (sleeps past the timeout), "broken" (HTTP 500), "locked" (canToggle
    false), "flaky-activate" (status fine, activate 500)."""

    def __init__(self):
        self.state = {}
        self.requests = []
        self.behaviour = {}
        self.server = None

    def url(self, name: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{name}"


def _handler(services: Services):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, code, body):
            data = json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): that is the point of "slow"

        def _route(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            parts = self.path.strip("/").split("/")
            name, rest = parts[0], "/".join(parts[1:])
            services.requests.append((method, name, rest, body))
            behaviour = services.behaviour.get(name, name)
            if behaviour == "slow":
                time.sleep(2)
                return self._answer(200, {"health": "healthy"})
            if behaviour == "broken":
                return self._answer(500, {"error": "internal error"})
            if rest == "api/v1/status":
                return self._answer(
                    200,
                    {
                        "health": "healthy",
                        "maintenanceState": services.state.get(name, "inactive"),
                        "canToggle": behaviour != "locked",
                    },
                )
            if rest.startswith("api/v1/maintenance/"):
                if behaviour == "flaky-activate" and rest.endswith("activate") and not rest.endswith("deactivate"):
                    return self._answer(500, {"error": "cannot start"})
                services.state[name] = "active" if rest.endswith("/activate") else "inactive"
                return self._answer(200, {"maintenanceState": services.state[name]})
            return self._answer(404, {"error": "not found"})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

    return Handler


@pytest.fixture
def services_server():
    services = Services()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(services))
    server.daemon_threads = True
    services.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield services
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port():
    """A port nothing listens on: connections are refused."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def discovery_dir(tmp_path, settings):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    settings.SCENARIO_DISCOVERY_DIR = str(folder)

    def write(name, document, *, vrooli=True, raw=None):
        target = folder / name / (".vrooli" if vrooli else "")
        target.mkdir(parents=True, exist_ok=True)
        path = target / "service.json"
        path.write_text(raw if raw is not None else json.dumps(document))
        return path

    write.folder = folder
    return write


def service_json(name, base_url, **maintenance):
    return {
        "service": {
            "name": name,
            "displayName": name.title(),
            "description": f"{name} service",
            "tags": ["maintenance", "demo"],
        },
        "maintenance": {"canDeactivate": True, "defaultState": "inactive", "baseUrl": base_url, **maintenance},
    }
