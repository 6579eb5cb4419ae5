"""The daemon verbs: `maintenance start --daemon` starts the worker with beat detached and writes its pid file
under VAR_DIR, `status` reads it (and the beat heartbeat), `stop` sends SIGTERM and waits for the warm shutdown.
Real processes: the commands run as subprocesses, the worker is a real Celery worker (of an app with nothing to
do, on an in-memory broker)."""

import contextlib
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone

from maintenance_site.ops.models import Heartbeat
from scenarios import daemon

ROOT = Path(__file__).resolve().parents[2]
STARTUP_LIMIT = 120  # a loaded 2-core machine starts a worker in tens of seconds


def database_url() -> str:
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"


def maintenance(var_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "VAR_DIR": str(var_dir), "DATABASE_URL": database_url()}
    return subprocess.run(
        [sys.executable, "manage.py", "maintenance", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_start_daemon_then_status_then_stop(db, tmp_path):
    started = maintenance(
        tmp_path,
        "start",
        "--daemon",
        "--skip-setup",
        "--app",
        "tests.scenarios.daemon_app",
        "--scheduler",
        "celery.beat:PersistentScheduler",
        "--concurrency",
        "1",
    )
    assert started.returncode == 0, started.stderr
    pid = int((tmp_path / daemon.PID_FILE_NAME).read_text())
    log = tmp_path / daemon.LOG_FILE_NAME
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while "ready." not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, f"the worker did not start: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        again = maintenance(tmp_path, "start", "--daemon", "--skip-setup", "--app", "tests.scenarios.daemon_app")
        assert again.returncode != 0 and "runs already" in again.stderr
        status = maintenance(tmp_path, "status")
        assert status.returncode == 0, status.stderr
        assert f"Scheduler daemon: running (pid {pid}" in status.stdout

        stopped = maintenance(tmp_path, "stop", "--timeout", "60")
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped after its warm shutdown" in stopped.stdout
        assert not (tmp_path / daemon.PID_FILE_NAME).exists()
        assert "warm shutdown" in log.read_text().lower()
        assert "Scheduler daemon: not running" in maintenance(tmp_path, "status").stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, 9)


def test_status_reads_the_pid_file_and_the_beat_heartbeat(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    (tmp_path / daemon.PID_FILE_NAME).write_text(f"{os.getpid()}\n")  # a live process, but not a worker
    Heartbeat.objects.create(component="beat", last_seen_at=timezone.now() - timedelta(seconds=30))
    state = daemon.status()
    assert state["running"] is False and not (tmp_path / daemon.PID_FILE_NAME).exists()  # stale: removed
    assert 29 <= state["beat_age_seconds"] <= 40 and state["beat_stale"] is False
