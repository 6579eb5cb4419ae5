"""Checks of the platform's dependencies, shared by /health/ready and /api/v1/status."""

import os
import time
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection
from django.utils import timezone

from maintenance_site.celery import app
from maintenance_site.ops.models import Heartbeat


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    latency_ms: float


def _timed(name, func) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = func()
        ok = True
    except Exception as exc:  # a health check reports any failure, whatever its kind
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    return CheckResult(name, ok, detail or "ok", round((time.perf_counter() - started) * 1000, 1))


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_cache() -> str:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", 10)
    if cache.get(key) != "1":
        raise RuntimeError("value written to the cache could not be read back")
    cache.delete(key)
    return caches["default"].__class__.__name__


def check_broker() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type


def check_beat() -> str:
    beat = Heartbeat.objects.filter(component="beat").first()
    if beat is None:
        raise RuntimeError("no beat heartbeat recorded yet: is the worker with beat running?")
    age = (timezone.now() - beat.last_seen_at).total_seconds()
    if age > settings.HEALTH_BEAT_STALE_SECONDS:
        raise RuntimeError(f"last beat heartbeat {age:.0f}s ago (limit {settings.HEALTH_BEAT_STALE_SECONDS:.0f}s)")
    return f"last heartbeat {age:.0f}s ago"


STARTING_SECONDS = 60


def starting() -> bool:
    """Within the first minute of a platform start (`runplatform` sets PLATFORM_STARTED_AT for its processes)."""
    started = os.environ.get("PLATFORM_STARTED_AT")
    try:
        return started is not None and time.time() - float(started) < STARTING_SECONDS
    except ValueError:
        return False


CHECKS = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "beat": check_beat,
}


def run_checks(names=None) -> list[CheckResult]:
    return [_timed(name, CHECKS[name]) for name in (names or CHECKS)]


def as_dict(results: list[CheckResult]) -> dict:
    return {r.name: {k: v for k, v in asdict(r).items() if k != "name"} for r in results}
