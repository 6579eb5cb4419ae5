"""A worker killed outright (SIGKILL, the whole process group) loses no short task: Redis gives it to a worker
again once CELERY_VISIBILITY_TIMEOUT has passed (shortened to a few seconds here; an hour by kombu's default).
A scenario run longer than that timeout is not started twice: the runner tick acknowledges on receipt (no
redelivery) and a run is claimed once (pending → running), so a second tick leaves it alone.

Real worker processes against the real Redis and the test database (PostgreSQL), on a queue of their own.
Waits are generous (a loaded 2-core machine starts a worker in tens of seconds) and every wait has a limit."""

import os
import signal
import subprocess
import sys
import time
import uuid
from importlib import import_module
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from maintenance_site.celery import app
from maintenance_site.tenancy import SYSTEM
from scenarios import registry, services, sync
from scenarios.models import ScenarioRun
from tests.ops import worker_tasks

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3
STARTUP_LIMIT = 120  # seconds for a worker to say it is ready


def database_url() -> str:
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"


def wait_for(condition, limit: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {limit:.0f} s")


class Worker:
    """A Celery worker process (prefork) in its own process group, consuming only the test's queue."""

    def __init__(self, folder: Path, queue: str, concurrency: int, name: str):
        self.log = folder / f"{name}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.ops.worker_settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "WORKER_DEATH_DIR": str(folder),
        }
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "maintenance_site",
                    "worker",
                    "--queues",
                    queue,
                    "--hostname",
                    f"{name}-{queue}@%h",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    str(concurrency),
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the test kills the main process and its children
            )
        wait_for(lambda: " ready." in self.output() or self.process.poll() is not None, STARTUP_LIMIT, "worker ready")
        assert self.process.poll() is None, self.output()[-3000:]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self):
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def queue():
    """A queue of the test's own on the shared Redis, emptied afterwards."""
    name = f"test-worker-death-{uuid.uuid4().hex[:8]}"
    yield name
    import redis

    redis.Redis.from_url(settings.REDIS_URL).delete(name, f"_kombu.binding.{name}")


@pytest.fixture
def workers(tmp_path, queue):
    started = []

    def start(concurrency=1, name="worker"):
        worker = Worker(tmp_path, queue, concurrency, f"{name}{len(started)}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def producer():
    """Sends through the real broker (the tests' own app runs tasks eagerly). Not the current app: later tests'
    `.delay()` calls must still reach the site's eager app."""
    return Celery("test-producer", broker=settings.REDIS_URL, set_as_current=False)


def lines(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def test_short_tasks_acknowledge_late_and_the_runner_early():
    short = [
        "maintenance_site.events.tasks.dispatch_events",
        "maintenance_site.events.tasks.sweep_events",
        "maintenance_site.notifications.tasks.send_delivery",
        "maintenance_site.notifications.tasks.sweep_deliveries",
        "maintenance_site.ops.tasks.beat_heartbeat",
        "scheduling.tasks.generate_preventive_work_orders",
        "scheduling.tasks.maintenance_windows_tick",
        "sla.tasks.monitor_sla_clocks",
        "scenarios.tasks.scheduler_tick",
    ]
    for name in [*short, "scenarios.tasks.runner_tick"]:
        import_module(name.rsplit(".", 1)[0])  # registers the module's tasks
    for name in short:
        task = app.tasks[name]
        assert (task.acks_late, task.reject_on_worker_lost) == (True, True), name
    assert app.tasks["scenarios.tasks.runner_tick"].acks_late is False


def test_the_visibility_timeout_is_ten_minutes_with_redis():
    environment = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/0"}
    environment.pop("CELERY_VISIBILITY_TIMEOUT", None)
    script = "from maintenance_site import settings; print(settings.CELERY_BROKER_TRANSPORT_OPTIONS)"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'visibility_timeout': 600}"


class TestRealWorkers:
    # The workers read what the test wrote: committed rows in the test's PostgreSQL database.
    pytestmark = [
        pytest.mark.postgres,
        pytest.mark.redis,
        pytest.mark.slow,
        pytest.mark.django_db(transaction=True),
        pytest.mark.timeout(600),  # two worker start-ups on a loaded machine; every wait has its own limit
    ]

    def test_a_killed_workers_short_task_is_delivered_again(self, workers, producer, queue, tmp_path):
        marks = tmp_path / "hold"
        first = workers()
        sent = producer.send_task("tests.ops.worker_tasks.hold", args=["hold"], queue=queue)
        wait_for(lambda: lines(marks) == ["start"], 60, "the task starts on the first worker")
        first.kill()
        killed_at = time.monotonic()
        second = workers()
        wait_for(lambda: lines(marks) == ["start", "start", "end"], 90, "the task runs again on the second worker")
        # Delivered again after the visibility timeout, not kombu's default hour (the second worker's start-up counts).
        assert time.monotonic() - killed_at < STARTUP_LIMIT + 60
        assert f"hold[{sent.id}] received" in second.output()

    def test_a_run_longer_than_the_visibility_timeout_starts_once(self, workers, producer, queue, tmp_path):
        assert worker_tasks.SLOW_RUN_SECONDS > VISIBILITY_TIMEOUT + 3
        worker_tasks.register()
        try:
            sync.sync_registry()
            run = services.request_run(worker_tasks.SLOW_RUN_KEY, actor=SYSTEM)
        finally:
            registry.unregister(worker_tasks.SLOW_RUN_KEY)
        marks = tmp_path / "slow-run"
        worker = workers(concurrency=2)  # a free process for any second delivery
        tick = producer.send_task("scenarios.tasks.runner_tick", queue=queue)
        wait_for(lambda: lines(marks) == ["start"], 60, "the run starts")
        # Another tick while the run goes on (beat's next one, or a redelivery): the run is already claimed.
        second_tick = producer.send_task("scenarios.tasks.runner_tick", queue=queue)
        wait_for(
            lambda: ScenarioRun.objects.filter(pk=run.pk).exclude(status=ScenarioRun.Status.RUNNING).exists(),
            worker_tasks.SLOW_RUN_SECONDS + 60,
            "the run finishes",
        )
        run.refresh_from_db()
        assert (run.status, run.summary) == (ScenarioRun.Status.SUCCEEDED, "slow run done")
        assert lines(marks) == ["start", "end"]
        wait_for(lambda: f"runner_tick[{second_tick.id}] succeeded" in worker.output(), 60, "the second tick ends")
        # Acknowledged on receipt: not delivered again although it ran past the visibility timeout.
        assert worker.output().count(f"runner_tick[{tick.id}] received") == 1
