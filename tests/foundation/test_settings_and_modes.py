"""Settings from the environment, the embedded run mode, and deploy checks. These start real processes.

Their timeouts guard against a hang, not a slow machine: a loaded CI machine may take minutes to migrate.
"""

import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from maintenance_site import env

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**overrides) -> dict:
    """The process environment without database/Redis, i.e. the embedded mode, with the site's own settings
    (not the test suite's), plus overrides."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CI")}
    environment["DJANGO_SETTINGS_MODULE"] = "maintenance_site.settings"
    environment.update(overrides)
    return environment


def run_manage(*args, timeout=600, **env_overrides):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean_env(**env_overrides),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://nope"),
        ("REDIS_URL", "localhost:6379"),
        ("API_MAX_PAGE_SIZE", "lots"),
        ("THROTTLE_ORGANIZATION_RATE", "fast"),
        ("LOG_LEVEL", "LOUD"),
        ("HEARTBEAT_INTERVAL", "0"),
        ("SCENARIO_PRIORITY_WEIGHTS", '{"speed": 1}'),
    ],
)
def test_malformed_setting_stops_start_up_naming_the_variable(variable, value, tmp_path):
    result = run_manage("check", VAR_DIR=str(tmp_path), **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_debug_is_off_by_default_and_the_embedded_run_stays_on_plain_http(tmp_path):
    code = "from django.conf import settings as s; print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE)"
    result = run_manage("shell", "-v", "0", "-c", code, VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]
    result = run_manage("shell", "-v", "0", "-c", code, VAR_DIR=str(tmp_path), DEBUG="1")
    assert result.stdout.split() == ["True", "False", "False"]
    # behind the compose file's TLS proxy, even with loopback host names only: secure cookies
    result = run_manage("shell", "-v", "0", "-c", code, VAR_DIR=str(tmp_path), BEHIND_TLS_PROXY="true")
    assert result.stdout.split() == ["False", "True", "True"]


def test_without_secret_key_one_is_generated_once_and_check_deploy_says_so(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_manage("shell", "-v", "0", "-c", code, VAR_DIR=str(tmp_path), SECRET_KEY="")
    second = run_manage("shell", "-v", "0", "-c", code, VAR_DIR=str(tmp_path), SECRET_KEY="")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) >= 50 and first.stdout == second.stdout  # web and worker agree
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only
    result = run_manage(
        "check", "--deploy", VAR_DIR=str(tmp_path), SECRET_KEY="", ALLOWED_HOSTS="maintenance.example.com"
    )
    assert "ops.W001" in result.stderr + result.stdout and "Set SECRET_KEY" in result.stderr + result.stdout


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        VAR_DIR=str(tmp_path),
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="maintenance.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_helpers_name_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env.env_bool("SOME_FLAG", False)
    monkeypatch.setenv("SOME_NUMBER", "-3")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER=-3 is below its minimum of 0"):
        env.env_int("SOME_NUMBER", 1, minimum=0)
    monkeypatch.setenv("SOME_FLAG", "Yes")
    assert env.env_bool("SOME_FLAG", False) is True


def test_embedded_database_is_sqlite_in_wal_mode_with_immediate_transactions(tmp_path):
    code = (
        "import django; django.setup();"
        "from django.db import connection; from django.conf import settings;"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "print(settings.DATABASES['default']['OPTIONS']['transaction_mode']);"
        "print(settings.CELERY_BROKER_URL); print(settings.CACHES['default']['BACKEND'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean_env(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="maintenance_site.settings"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "wal",
        "IMMEDIATE",
        "filesystem://localhost//",
        "django.core.cache.backends.filebased.FileBasedCache",
    ]


def heartbeats(database: Path) -> int:
    """Beats recorded in an embedded run's SQLite database, read without starting Django."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        (total,) = connection.execute("SELECT COALESCE(SUM(beats), 0) FROM ops_heartbeat").fetchone()
    return total


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_embedded_worker_with_beat_really_runs_periodic_jobs(tmp_path):
    """The embedded mode's promise: no server, yet beat-driven jobs run (heartbeat every second here)."""
    environment = clean_env(VAR_DIR=str(tmp_path), HEARTBEAT_INTERVAL="1")
    migrate = run_manage("migrate", "--noinput", VAR_DIR=str(tmp_path), HEARTBEAT_INTERVAL="1")
    assert migrate.returncode == 0, migrate.stderr
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "maintenance_site",
            "worker",
            "-B",
            "--concurrency",
            "1",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # the worker's start-up alone can take a minute on a busy machine
        beats = 0
        while time.monotonic() < deadline and beats < 2 and worker.poll() is None:
            time.sleep(1)
            beats = heartbeats(tmp_path / "db.sqlite3")
        assert beats >= 2, "beat did not run the heartbeat twice within 300 s"
    finally:
        worker.terminate()  # SIGTERM: Celery's warm shutdown
        try:
            output, _ = worker.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert "Warm shutdown" in output
    assert worker.returncode == 0, output[-3000:]
