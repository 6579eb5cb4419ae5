"""Past one machine (issue 26): two web processes and two Celery workers, started the way docker-compose.yml's
`scale` profile starts them, sharing PostgreSQL (through PgBouncer in transaction mode when the machine has it:
.ci/run installs Debian's) and Redis (the channel layer and the broker).

- the compose file is parsed and cross-checked against what this test runs (images cannot be pulled here);
- a websocket on web process 1 receives an event committed through web process 2 (delivered by a worker);
- 200 writes spread over both web processes keep every organisation's event numbers gap-free;
- a worker killed in the middle of numbering a batch leaves nothing half-done: the batch is all or nothing, and
  the task, delivered again, numbers it on the other worker.

The processes start once for the module (each takes seconds on a loaded 2-core machine); every wait has a limit.
"""

import base64
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
import yaml
from celery import Celery
from django.conf import settings
from django.db import connection

from maintenance_site.events import services as events
from maintenance_site.events.models import Event, EventSequence
from maintenance_site.tenancy.models import Organization
from tests.web_process import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
TRUE_VALUES = {"1", "true", "yes", "on"}
STARTUP_LIMIT = 150  # seconds for a process to serve or say it is ready
VISIBILITY_TIMEOUT = 3
WRITES = 200


def command(service: dict) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def environment(service: dict) -> dict:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(path).exists()), None
    )


# --- what the test runs, from the compose file ----------------------------------------------------------------


def web_command(port: int) -> list[str]:
    """scaled-web's command on this machine: python is this interpreter, the address the loopback, the port free."""
    cmd = command(SERVICES["scaled-web"])
    assert cmd[0] == "python"
    cmd = [sys.executable, *cmd[1:]]
    cmd[cmd.index("-b") + 1] = "127.0.0.1"
    cmd[cmd.index("-p") + 1] = str(port)
    return cmd


def worker_command(queue: str, name: str) -> list[str]:
    """scaled-worker's command, on the test's queue, without the cluster chatter a test does not need."""
    cmd = command(SERVICES["scaled-worker"])
    assert cmd[0] == "celery"
    return [
        *(sys.executable, "-m", *cmd),
        *("--queues", queue, "--hostname", f"{name}-{queue}@%h", "--pool", "prefork", "--concurrency", "1"),
        *("--without-heartbeat", "--without-gossip", "--without-mingle"),
    ]


def scaled_environment() -> dict:
    """The variables the scale profile gives both scaled-web and scaled-worker that this test reproduces."""
    web, worker = environment(SERVICES["scaled-web"]), environment(SERVICES["scaled-worker"])
    return {name: web[name] for name in ("DATABASE_PGBOUNCER",) if worker.get(name) == web.get(name)}


# --- the compose file, cross-checked -----------------------------------------------------------------------------


def test_the_scale_profile_runs_pgbouncer_a_balancer_and_two_of_each():
    profiled = {name for name, service in SERVICES.items() if "scale" in service.get("profiles", [])}
    assert profiled == {"pgbouncer", "scaled-web", "scaled-worker", "lb"}
    for name in ("scaled-web", "scaled-worker"):
        assert SERVICES[name]["deploy"]["replicas"] >= 2, name
        assert SERVICES[name]["image"] == SERVICES["web"]["image"], "one image for every process"
    # The same processes as the single-machine services, only more of them.
    assert command(SERVICES["scaled-web"]) == command(SERVICES["web"])
    assert command(SERVICES["scaled-worker"]) == command(SERVICES["worker"])
    beats = [name for name, service in SERVICES.items() if "beat" in command(service)]
    assert beats == ["beat"], "one beat whatever the profile"


def test_the_scaled_processes_go_through_pgbouncer_in_transaction_mode():
    bouncer = environment(SERVICES["pgbouncer"])
    assert bouncer["POOL_MODE"] == "transaction"
    assert urlparse(bouncer["DATABASE_URL"]).netloc.endswith("@postgres:5432")
    port = bouncer["LISTEN_PORT"]
    for name in ("scaled-web", "scaled-worker"):
        env = environment(SERVICES[name])
        assert urlparse(env["DATABASE_URL"]).netloc.endswith(f"@pgbouncer:{port}"), name
        assert env["DATABASE_PGBOUNCER"].lower() in TRUE_VALUES, name
        assert "DATABASE_POOL" not in env, f"{name}: PgBouncer is the pool"
        assert env["REDIS_URL"] == environment(SERVICES["web"])["REDIS_URL"], "one Redis: layer and broker"
        assert "pgbouncer" in SERVICES[name]["depends_on"], name
    # PostgreSQL holds PgBouncer's pool (and beat's, migrate's and an admin's connections).
    postgres = dict(part.split("=", 1) for part in command(SERVICES["postgres"]) if "=" in part)
    assert int(postgres["max_connections"]) >= int(bouncer["DEFAULT_POOL_SIZE"]) + 10


def test_the_balancer_spreads_http_and_websockets_over_the_web_processes():
    lb = SERVICES["lb"]
    assert lb["ports"] == SERVICES["web"]["ports"], "published where the single web was"
    assert "scaled-web" in lb["depends_on"]
    config = COMPOSE["configs"][lb["configs"][0]["source"]]["content"]
    assert "server scaled-web:8000" in config
    assert "proxy_set_header Upgrade $http_upgrade" in config.replace("$$", "$")
    # One more proxy hop in front of Django: the client address is one entry further left.
    assert environment(SERVICES["scaled-web"])["TRUSTED_PROXY_COUNT"].endswith("2}")


def test_postgresql_is_configured_for_the_job():
    settings_given = {part.split("=", 1)[0] for part in command(SERVICES["postgres"]) if "=" in part}
    assert {
        "shared_buffers",
        "work_mem",
        "effective_cache_size",
        "random_page_cost",
        "autovacuum_vacuum_scale_factor",
        "autovacuum_analyze_scale_factor",
    } <= settings_given
    assert "random_page_cost=1.1" in command(SERVICES["postgres"])


def test_the_processes_this_test_starts_are_the_compose_ones():
    assert web_command(9999)[1:] == [
        *command(SERVICES["web"])[1:3],
        *("-b", "127.0.0.1", "-p", "9999"),
        *command(SERVICES["web"])[7:],
    ]
    assert worker_command("q", "w")[2:8] == command(SERVICES["scaled-worker"])
    assert scaled_environment() == {"DATABASE_PGBOUNCER": "true"}


# --- the processes ---------------------------------------------------------------------------------------------


def _wait_for(condition, limit: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {limit:.0f} s")


class PgBouncer:
    """Debian's pgbouncer in transaction mode (the compose service's settings) in front of the test database."""

    def __init__(self, binary: str, database: dict):
        bouncer = environment(SERVICES["pgbouncer"])
        self.folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.folder.chmod(0o755)  # pgbouncer gives up root (-u nobody) and reads its file again on reload
        self.port = free_port()
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={database['HOST'] or '127.0.0.1'} port={database['PORT'] or 5432} user={database['USER']}"
            + (f" password={database['PASSWORD']}" if database.get("PASSWORD") else "")
            + "\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\nauth_type = any\n"
            f"pool_mode = {bouncer['POOL_MODE']}\nmax_client_conn = {bouncer['MAX_CLIENT_CONN']}\n"
            "default_pool_size = 10\n"  # a small pool: two clients queue for one server connection more often
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        config.chmod(0o644)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.log = open(self.folder / "pgbouncer.log", "w")  # noqa: SIM115 (pgbouncer writes to it until stopped)
        self.process = subprocess.Popen(  # noqa: S603
            [binary, *user, str(config)], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait_for(self._accepts, 30, "pgbouncer listening")

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return self.process.poll() is not None  # died: the URL check below shows it

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Process:
    """A server or worker in its own process group, its output in a file."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log = log
        with open(log, "w") as handle:
            self.process = subprocess.Popen(  # noqa: S603
                args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self):
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self):
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


class Cluster:
    def __init__(self, folder: Path, database_url: str, behind_pgbouncer: bool):
        self.folder = folder
        self.database_url = database_url
        self.behind_pgbouncer = behind_pgbouncer
        self.queue = f"test-scale-out-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.ops.scale_settings",
            "SCALE_OUT_QUEUE": self.queue,
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "THROTTLE_ORGANIZATION_RATE": "100000/min",
            "THROTTLE_PRINCIPAL_RATE": "100000/min",
        }
        self.env.pop("DATABASE_POOL", None)
        if behind_pgbouncer:
            self.env.update(scaled_environment())
        self.webs: list[tuple[Process, int]] = []
        self.workers: list[Process] = []

    def start_web(self) -> int:
        port = free_port()
        self.webs.append((Process(web_command(port), self.env, self.folder / f"web{len(self.webs)}.log"), port))
        return port

    def start_worker(self) -> Process:
        name = f"worker{len(self.workers)}"
        worker = Process(worker_command(self.queue, name), self.env, self.folder / f"{name}.log")
        self.workers.append(worker)
        return worker

    def wait_ready(self):
        for web, port in self.webs:
            _wait_for(lambda port=port, web=web: _serves(port) or not web.alive(), STARTUP_LIMIT, "web serving")
            assert web.alive(), web.output()[-3000:]
        for worker in self.workers:
            self.wait_worker(worker)

    def wait_worker(self, worker: Process):
        _wait_for(lambda: " ready." in worker.output() or not worker.alive(), STARTUP_LIMIT, "worker ready")
        assert worker.alive(), worker.output()[-3000:]

    def stop(self):
        for process in [*(web for web, _ in self.webs), *self.workers]:
            process.stop()


def _serves(port: int) -> bool:
    try:
        status, _ = _http(port, "GET", "/health")
        return status == 200
    except OSError:
        return False


def _http(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    import http.client

    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Host": "localhost", **({"Content-Type": "application/json"} if payload else {})}
        client.request(method, path, body=payload, headers={**all_headers, **(headers or {})})
        response = client.getresponse()
        return response.status, response.read()
    finally:
        client.close()


def _url(database: dict, host: str, port: int) -> str:
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return f"postgres://{credentials}@{host}:{port}/{database['NAME']}"


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two web processes and two workers on the test database (through PgBouncer when there is one)."""
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL and Redis")
    with django_db_blocker.unblock():
        database = dict(connection.settings_dict)
    binary = pgbouncer_binary()
    if binary is None and os.environ.get("CI"):
        pytest.fail("CI runs this test through PgBouncer: .ci/run installs Debian's pgbouncer")
    bouncer = PgBouncer(binary, database) if binary else None
    url = (
        _url(database, "127.0.0.1", bouncer.port)
        if bouncer
        else _url(database, database["HOST"] or "127.0.0.1", database["PORT"] or 5432)
    )
    running = Cluster(tmp_path_factory.mktemp("scale-out"), url, behind_pgbouncer=bouncer is not None)
    try:
        if bouncer:
            with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as check:
                assert check.execute("SELECT 1").fetchone() == (1,), "PgBouncer does not reach the database"
        running.start_web()
        running.start_web()
        running.start_worker()
        running.start_worker()
        running.wait_ready()
        yield running
    finally:
        running.stop()
        if bouncer:
            bouncer.stop()
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete(running.queue, f"_kombu.binding.{running.queue}")


CLUSTER_MARKS = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]


def _bearer(user) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    return f"Bearer {AccessToken.for_user(user)}"


# --- a minimal websocket client (RFC 6455): the handshake, and reading the server's text frames ----------------


class EventSocket:
    def __init__(self, port: int, path: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "the server closed during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("the server closed the socket")
            data += chunk
        return data

    def _send(self, opcode: int, payload: bytes = b""):
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def receive(self, timeout: float) -> dict:
        """The next JSON message (answering pings on the way)."""
        self.sock.settimeout(timeout)
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8), "big")
            payload = self._read(length)
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError(f"closed by the server: {payload!r}")
            elif opcode == 0x1:
                return json.loads(payload)

    def close(self):
        try:
            self._send(0x8, (1000).to_bytes(2, "big"))
        finally:
            self.sock.close()


# --- the tests -------------------------------------------------------------------------------------------------


class TestTwoWebProcessesAndTwoWorkers:
    pytestmark = CLUSTER_MARKS

    def test_a_socket_on_one_web_process_gets_an_event_committed_through_the_other(self, cluster, manager_a, org_a):
        (_, port_1), (_, port_2) = cluster.webs
        ticket = events.issue_websocket_ticket(manager_a, org_a)["ticket"]
        socket_1 = EventSocket(port_1, f"/ws/events/?ticket={ticket}")
        try:
            status, body = _http(
                port_2,
                "POST",
                "/api/v1/work-orders/",
                {"title": "Pump leaking on line 2"},
                {"Authorization": _bearer(manager_a), "X-Organization": org_a.slug},
            )
            assert status == 201, body[:500]
            number = json.loads(body)["number"]
            deadline = time.monotonic() + 60
            while True:
                message = socket_1.receive(timeout=max(1.0, deadline - time.monotonic()))
                if message.get("type") == "event" and message["event"]["type"] == "work-order:created":
                    break
            assert message["event"]["organization"] == org_a.pk
            assert message["event"]["payload"]["number"] == number
        finally:
            socket_1.close()

    def test_writes_over_both_processes_keep_event_numbers_gap_free(self, cluster, manager_a, manager_b, org_a, org_b):
        ports = [port for _, port in cluster.webs]
        callers = [(manager_a, org_a), (manager_b, org_b)]
        failures = []

        def write(index: int):
            user, org = callers[index % 2]
            status, body = _http(
                ports[(index // 2) % 2],
                "POST",
                "/api/v1/work-orders/",
                {"title": f"Write {index}"},
                {"Authorization": _bearer(user), "X-Organization": org.slug},
            )
            if status != 201:
                failures.append((status, body[:300]))

        def run(start: int):
            for index in range(start, WRITES, 8):
                write(index)

        threads = [threading.Thread(target=run, args=(start,)) for start in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not failures, failures[:3]

        created = Event.objects.filter(type="work-order:created")
        assert created.count() == WRITES
        _wait_for(
            lambda: not Event.objects.filter(dispatched_at__isnull=True).exists(),
            120,
            "every event numbered and delivered by the workers",
            interval=0.5,
        )
        for org in (org_a, org_b):
            sequences = list(
                Event.objects.filter(organization=org).order_by("sequence").values_list("sequence", flat=True)
            )
            assert sequences == list(range(1, len(sequences) + 1)), f"{org.slug}: gaps or repeats"
            assert EventSequence.objects.get(organization=org).last_sequence == len(sequences)
            assert created.filter(organization=org).count() == WRITES // 2

    def test_a_worker_killed_mid_batch_leaves_nothing_half_done(self, cluster, org_a):
        org = Organization.objects.create(name="Killed batch", slug=f"killed-{uuid.uuid4().hex[:6]}")
        batch = Event.objects.bulk_create(
            [Event(organization=org, type="test:batch", payload={"n": n}) for n in range(40)]
        )
        database = connection.settings_dict
        direct = _url(database, database["HOST"] or "127.0.0.1", database["PORT"] or 5432)
        # Hold the batch's last row: the worker numbering it stops in the middle of its UPDATE.
        locker = psycopg.connect(direct.replace("postgres://", "postgresql://", 1))
        locker.execute("SELECT id FROM events_event WHERE id = %s FOR UPDATE", [batch[-1].pk])
        try:
            producer = Celery("test-producer", broker=settings.REDIS_URL, set_as_current=False)
            sent = producer.send_task("maintenance_site.events.tasks.dispatch_events", queue=cluster.queue)
            victim = _wait_for(
                lambda: next((w for w in cluster.workers if w.alive() and sent.id in w.output()), None),
                60,
                "a worker takes the task",
            )
            _wait_for(
                lambda: _blocked_on(locker, batch[-1].pk),
                60,
                "the worker numbering the batch, waiting for the held row",
            )
            victim.kill()
        finally:
            locker.rollback()
            locker.close()
        # All or nothing: never some of the batch numbered, the counter never ahead of the numbered rows.
        for _ in range(20):
            numbered = Event.objects.filter(organization=org, sequence__isnull=False).count()
            last = EventSequence.objects.filter(organization=org).values_list("last_sequence", flat=True).first() or 0
            assert numbered in (0, len(batch)) and last == numbered, (numbered, last)
            time.sleep(0.1)
        # Delivered again (acknowledged late) to the other worker, which numbers the whole batch.
        _wait_for(
            lambda: not Event.objects.filter(organization=org, dispatched_at__isnull=True).exists(),
            120,
            "the batch numbered and delivered by the surviving worker",
            interval=0.5,
        )
        sequences = list(Event.objects.filter(organization=org).order_by("id").values_list("sequence", flat=True))
        assert sequences == list(range(1, len(batch) + 1))


def _blocked_on(locker, event_id: int) -> bool:
    """Whether a backend other than the locker's waits for a row lock held by the locker."""
    row = locker.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [locker.info.backend_pid]
    ).fetchone()
    return row[0] > 0
