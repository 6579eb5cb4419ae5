"""The scheduler daemon verbs (`maintenance start --daemon`, `stop`, `status`): the Celery worker with embedded
beat, started detached (its own session, output to a log file) with its pid in a pid file under VAR_DIR;
stopped with SIGTERM, which Celery answers with a warm shutdown (running tasks finish first).

A pid file whose process is gone, or is no longer a Celery worker (the pid was reused), counts as stale: it is
removed, and `start` goes ahead.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from django.conf import settings
from django.utils import timezone

from maintenance_site.ops.models import Heartbeat

PID_FILE_NAME = "maintenance-worker.pid"
LOG_FILE_NAME = "maintenance-worker.log"


def pid_file() -> Path:
    return Path(settings.VAR_DIR) / PID_FILE_NAME


def log_file() -> Path:
    return Path(settings.VAR_DIR) / LOG_FILE_NAME


def _is_worker(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return any("celery" in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def running_pid() -> int | None:
    """The daemon's pid when it runs; a stale pid file is removed."""
    path = pid_file()
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if _is_worker(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def worker_command(*, app: str, scheduler: str, concurrency: int, loglevel: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "-B",
        "--scheduler",
        scheduler,
        "--schedule",
        str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
        "--loglevel",
        loglevel,
        "--concurrency",
        str(concurrency),
    ]


def start(*, app: str = "maintenance_site", scheduler: str = "", concurrency: int = 2) -> int:
    """Start the worker with beat detached; returns its pid. RuntimeError when one runs already."""
    pid = running_pid()
    if pid is not None:
        raise RuntimeError(f"The scheduler runs already (pid {pid}, pid file {pid_file()}).")
    command = worker_command(app=app, scheduler=scheduler or settings.CELERY_BEAT_SCHEDULER, concurrency=concurrency)
    log = open(log_file(), "ab")  # noqa: SIM115 (handed to the child, closed here once it has started)
    try:
        process = subprocess.Popen(  # noqa: S603 (a fixed argument list)
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: no terminal's signals reach it
            close_fds=True,
            cwd=str(settings.BASE_DIR),
        )
    finally:
        log.close()
    pid_file().write_text(f"{process.pid}\n")
    return process.pid


def stop(timeout: float = 60.0) -> dict:
    """SIGTERM to the daemon, then wait up to `timeout` seconds for its warm shutdown."""
    pid = running_pid()
    if pid is None:
        return {"was_running": False, "stopped": True, "pid": None}
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_worker(pid):
            pid_file().unlink(missing_ok=True)
            return {"was_running": True, "stopped": True, "pid": pid}
        time.sleep(0.2)
    return {"was_running": True, "stopped": False, "pid": pid}


def status() -> dict:
    """Whether the daemon runs (pid file) and the beat's last heartbeat."""
    pid = running_pid()
    beat = Heartbeat.objects.filter(component="beat").first()
    age = round((timezone.now() - beat.last_seen_at).total_seconds()) if beat else None
    return {
        "running": pid is not None,
        "pid": pid,
        "pid_file": str(pid_file()),
        "log_file": str(log_file()),
        "beat_last_seen": beat.last_seen_at if beat else None,
        "beat_age_seconds": age,
        "beat_stale": age is None or age > settings.HEALTH_BEAT_STALE_SECONDS,
    }
