"""Prometheus metrics, served at /metrics.

Three kinds of numbers:

- Per web process, in memory: HTTP requests and their latency (RequestMetricsMiddleware). Labels are the
  method, the route's view name and the status, never the raw path, so the number of series stays bounded.
- Shared by every process, read at scrape time: Celery task outcomes and runtimes (recorded by the
  worker's signal receivers in `celery_metrics`), connected websockets (the consumer's two hooks below),
  both kept as counters in the shared Django cache (Redis in the full run, the file cache in the embedded
  run); the outbox lag and undelivered events, and heartbeat ages, read from the database.
- The business metrics (`business_metrics`: open and overdue work orders, SLA violations, …), one grouped query per
  family.

What costs a query (the database readings and the business families) is computed at most once per
METRICS_CACHE_SECONDS (the scrape interval) and kept as one cache entry shared by every process; the counters are read
live, in the same cache read: a scrape served from the cache is one round trip to the cache and no query.

Reading a source may fail (the cache or the database is down): /metrics still answers, without that
source's metrics, and `maintenance_metrics_source_up{source=...}` says 0.
"""

import logging
import math
import os
import time
from contextlib import contextmanager, nullcontext

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.utils import timezone
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder

from maintenance_site.celery import app
from maintenance_site.events import services as event_services
from maintenance_site.events.models import Event
from maintenance_site.ops import business_metrics
from maintenance_site.ops.models import Heartbeat

try:
    import fcntl
except ImportError:  # Windows: no cross-process lock, the file cache may then lose a count under contention
    fcntl = None

logger = logging.getLogger(__name__)

# Our own registry rather than prometheus_client's global one: importing this module twice (tests, reloads)
# cannot register a collector twice, and /metrics shows exactly what is listed here.
registry = CollectorRegistry()
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    registry.register(_standard)

# --- HTTP, in the web process ---------------------------------------------------------------------------

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

http_requests = Counter(
    "maintenance_http_requests",
    "HTTP requests answered, by method, route (view name) and status code.",
    ["method", "route", "status"],
    registry=registry,
)
http_request_duration = Histogram(
    "maintenance_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response is returned), by method and route.",
    ["method", "route"],
    registry=registry,
)


def route_label(request) -> str:
    """The resolved URL pattern's view name (`health-ready`, `admin:assets_asset_change`): bounded,
    unlike the path. Requests that matched no pattern share one label."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED_ROUTE
    return match.view_name or match.route or UNMATCHED_ROUTE


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "other"
    http_requests.labels(method, route, str(status)).inc()
    http_request_duration.labels(method, route).observe(seconds)


# --- Counters shared through the cache ------------------------------------------------------------------

KEY_PREFIX = "ops:metrics"
WEBSOCKETS_KEY = f"{KEY_PREFIX}:websockets"
TASK_NAMES_KEY = f"{KEY_PREFIX}:celery:task-names"
MAX_TASK_NAMES = 500  # bounds the series if something odd reaches the signals
TASK_STATES = ("succeeded", "failed", "retried")
TASK_RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, math.inf)
_LOCK_FILE = "ops-metrics.lock"  # no .djcache suffix: the file cache neither culls nor clears it


def _cache() -> BaseCache:
    return caches[DEFAULT_CACHE_ALIAS]


@contextmanager
def _file_lock(directory: str):
    with open(os.path.join(directory, _LOCK_FILE), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock(backend: BaseCache):
    """Serialises read-then-write updates across processes where the backend itself does not.

    The file cache's add and incr read then write, so two workers finishing at once would lose a count:
    they take an flock on a file in the cache folder (opened per use, so a forked child never shares its
    parent's lock). Redis, Memcached and local memory increment atomically and need nothing.
    """
    directory = getattr(backend, "_dir", None)
    if fcntl is not None and isinstance(backend, FileBasedCache) and directory:
        os.makedirs(directory, exist_ok=True)
        return _file_lock(directory)
    return nullcontext()


def _incr(key: str, delta: int = 1) -> int:
    """Add `delta` to a counter that never expires, creating it when missing."""
    backend = _cache()
    if type(backend).incr is BaseCache.incr:
        # The generic incr is get-then-set and re-sets the key with the default timeout (300 s): a counter
        # would vanish five minutes after its last change. Do the same read-write under the lock, without expiry.
        with _lock(backend):
            value = backend.get(key, 0) + delta
            backend.set(key, value, timeout=None)
            return value
    try:
        return backend.incr(key, delta)
    except ValueError:  # missing: create it, unless another process just did
        if backend.add(key, delta, timeout=None):
            return delta
        return backend.incr(key, delta)


def task_key(task_name: str, what: str) -> str:
    """The shared-cache key of one Celery task counter (`what`: a state, a runtime bucket or the runtime sum)."""
    return f"{KEY_PREFIX}:celery:{task_name}:{what}"


def bucket_label(bound: float) -> str:
    """A runtime histogram bucket's label, as in the counter's key and Prometheus' `le`."""
    return "+Inf" if math.isinf(bound) else repr(bound)


def _remember_task_name(task_name: str) -> None:
    """Keep the list of task names seen, so the web process finds tasks it has not registered itself.

    Checked on every event: if two processes add different names at once on Redis and one is lost, the
    next event of that task adds it again.
    """
    backend = _cache()
    names = backend.get(TASK_NAMES_KEY) or []
    if task_name in names or len(names) >= MAX_TASK_NAMES:
        return
    with _lock(backend):
        names = backend.get(TASK_NAMES_KEY) or []
        if task_name not in names and len(names) < MAX_TASK_NAMES:
            backend.set(TASK_NAMES_KEY, [*names, task_name], timeout=None)


def record_task_state(task_name: str, state: str) -> None:
    """Count one outcome of a task run: succeeded, failed or retried."""
    if state not in TASK_STATES:
        raise ValueError(f"Unknown task state {state!r}; expected one of {TASK_STATES}.")
    _remember_task_name(task_name)
    _incr(task_key(task_name, state))


def record_task_runtime(task_name: str, seconds: float) -> None:
    """Observe one run's duration: one bucket counter (cumulated at scrape time) and the sum in microseconds."""
    seconds = max(0.0, seconds)
    bound = next(b for b in TASK_RUNTIME_BUCKETS if seconds <= b)
    _remember_task_name(task_name)
    _incr(task_key(task_name, f"runtime:{bucket_label(bound)}"))
    _incr(task_key(task_name, "runtime-sum-us"), round(seconds * 1_000_000))


def websocket_opened() -> None:
    """Called by the websocket consumer when a connection is accepted. Never raises."""
    _adjust_websockets(1)


def websocket_closed() -> None:
    """Called by the websocket consumer when an accepted connection closes. Never raises."""
    _adjust_websockets(-1)


def websockets_changed(delta: int) -> None:
    """`delta` sockets opened (or closed, when negative) since the last call, in one cache round trip: the
    consumer's gauge hands over the net change of a thousand handshakes at once. Never raises."""
    if delta:
        _adjust_websockets(delta)


def _adjust_websockets(delta: int) -> None:
    try:
        _incr(WEBSOCKETS_KEY, delta)
    except Exception as exc:  # a metric must never break a connection
        logger.warning("websocket metric not updated: %s", exc)


# --- The scrape-time collector --------------------------------------------------------------------------

# The readings that cost a query (the outbox, the heartbeats, the business families) are kept together in one cache
# entry for METRICS_CACHE_SECONDS; the counters are read live. Both come from one cache read: a scrape served from the
# cache is one round trip to Redis and no query.
SNAPSHOT_KEY = f"{KEY_PREFIX}:snapshot"

_tasks_discovered = False
# What this process's last scrape found: the task names and which of them have run. The next scrape asks for their
# keys in its one read; a name or a first run it did not know costs one more read, once.
_last_names: frozenset[str] = frozenset()
_last_ran: frozenset[str] = frozenset()


def _registered_task_names() -> set[str]:
    """The app's own tasks (so they show 0 before they first run); Celery's built-ins only once seen."""
    global _tasks_discovered
    if not _tasks_discovered:
        # Only a worker imports every app's tasks module at start; the web process does it once here.
        app.autodiscover_tasks(force=True)
        _tasks_discovered = True
    return {name for name in app.tasks if not name.startswith("celery.")}


def _counter_keys(names) -> list[str]:
    return [task_key(name, what) for name in names for what in (*TASK_STATES, "runtime-sum-us")]


def _bucket_keys(names) -> list[str]:
    return [task_key(name, f"runtime:{bucket_label(bound)}") for name in names for bound in TASK_RUNTIME_BUCKETS]


def _read_cache(backend: BaseCache) -> tuple[dict, list[str], list[str]]:
    """One read of everything /metrics wants from the cache: the snapshot, the task names, the websockets and the
    task counters (those of the names this process's last scrape saw). Returns (values, task names, names that
    ran); raises when the cache is unreadable."""
    global _last_names, _last_ran
    try:
        registered = _registered_task_names()
    except Exception as exc:  # the remembered names still give every task that ran
        logger.warning("metrics: could not list the registered Celery tasks: %s", exc)
        registered = set()
    asked = registered | _last_names
    asked_ran = _last_ran & asked
    values = backend.get_many(
        [SNAPSHOT_KEY, TASK_NAMES_KEY, WEBSOCKETS_KEY, *_counter_keys(asked), *_bucket_keys(asked_ran)]
    )
    names = asked | set(values.get(TASK_NAMES_KEY) or [])
    # Rare: a name another process recorded, or a task's first run, since this process's last scrape.
    for _ in range(2):
        ran = {name for name in names if task_key(name, "runtime-sum-us") in values}
        missing = _counter_keys(names - asked) + _bucket_keys(ran - asked_ran)
        if not missing:
            break
        values.update(backend.get_many(missing))
        asked, asked_ran = names, ran
    _last_names, _last_ran = frozenset(names), frozenset(ran)
    return values, sorted(names), sorted(ran)


def _cache_families(values: dict, names: list[str], ran: list[str]) -> list:
    tasks = CounterMetricFamily(
        "maintenance_celery_tasks",
        "Celery task runs by task name and outcome (succeeded, failed, retried), from every worker.",
        labels=["task", "state"],
    )
    for name in names:
        for state in TASK_STATES:
            tasks.add_metric([name, state], values.get(task_key(name, state), 0))
    runtime = HistogramMetricFamily(
        "maintenance_celery_task_runtime_seconds",
        "Duration of Celery task runs (every attempt), by task name, from every worker.",
        labels=["task"],
    )
    for name in ran:
        cumulative, points = 0, []
        for bound in TASK_RUNTIME_BUCKETS:
            label = bucket_label(bound)
            cumulative += values.get(task_key(name, f"runtime:{label}"), 0)
            points.append((label, cumulative))
        runtime.add_metric([name], points, sum_value=values[task_key(name, "runtime-sum-us")] / 1_000_000)
    websockets = GaugeMetricFamily(
        "maintenance_websocket_connections",
        "Websocket connections open across all web processes.",
        value=max(0, values.get(WEBSOCKETS_KEY, 0)),
    )
    return [tasks, runtime, websockets]


def _database_readings() -> list[tuple[str, str, list[str], list[tuple[list[str], float]]]]:
    """The outbox and the heartbeats as plain data (cacheable), like the business families."""
    now = timezone.now()
    seen = dict(Heartbeat.objects.values_list("component", "last_seen_at"))
    seen.setdefault("beat", None)
    ages = [
        ([component], math.inf if last_seen_at is None else max(0.0, (now - last_seen_at).total_seconds()))
        for component, last_seen_at in sorted(seen.items())
    ]
    return [
        (
            "maintenance_outbox_lag_seconds",
            "Age of the oldest undelivered event (0 when the outbox is empty).",
            [],
            [([], event_services.outbox_lag_seconds())],
        ),
        (
            "maintenance_outbox_undelivered_events",
            "Events not yet delivered to their listeners.",
            [],
            [([], float(Event.objects.undelivered().count()))],
        ),
        (
            "maintenance_heartbeat_age_seconds",
            "Seconds since a background component's last heartbeat; +Inf for beat when none was ever recorded.",
            ["component"],
            ages,
        ),
    ]


def compute_snapshot() -> dict:
    """What the cache entry holds: {"database": readings, "business": families}, either None when its source
    failed (logged)."""
    started = time.monotonic()
    snapshot = {"database": None, "business": None}
    try:
        snapshot["database"] = _database_readings()
    except Exception as exc:
        logger.warning("metrics: reading the database failed: %s", exc)
    try:
        snapshot["business"] = business_metrics.compute()
    except Exception as exc:
        logger.warning("metrics: business metrics failed: %s", exc)
    if snapshot["business"] is not None:
        snapshot["business"].append(
            (
                "maintenance_business_metrics_compute_seconds",
                "Time the last computation took.",
                [],
                [([], round(time.monotonic() - started, 4))],
            )
        )
    return snapshot


def _gauges(families) -> list[GaugeMetricFamily]:
    gauges = []
    for name, help_text, labels, samples in families:
        gauge = GaugeMetricFamily(name, help_text, labels=labels)
        for values, value in samples:
            gauge.add_metric(values, value)
        gauges.append(gauge)
    return gauges


class ScrapeCollector:
    """Everything /metrics reads when Prometheus scrapes: the cache counters, live, and the snapshot of the
    database readings and business families, from the cache while fresh (else computed and cached)."""

    def describe(self):
        # Without this the registry would call collect() at registration, i.e. query the database at import.
        return []

    def collect(self):
        source_up = GaugeMetricFamily(
            "maintenance_metrics_source_up",
            "1 when /metrics could read this source during the scrape, 0 when it failed.",
            labels=["source"],
        )
        backend, values, counters = None, None, []
        try:
            backend = _cache()
            values, names, ran = _read_cache(backend)
            counters = _cache_families(values, names, ran)
        except Exception as exc:  # the cache is down: the counters are missing, the snapshot is computed
            logger.warning("metrics: reading the cache failed: %s", exc)
            values = None
        snapshot = values.get(SNAPSHOT_KEY) if values is not None else None
        if not (isinstance(snapshot, dict) and snapshot.keys() == {"database", "business"}):
            snapshot = compute_snapshot()
            timeout = settings.METRICS_CACHE_SECONDS
            # Only a complete snapshot: a source that failed is tried again at the next scrape.
            if values is not None and timeout and None not in snapshot.values():
                try:
                    backend.set(SNAPSHOT_KEY, snapshot, timeout=timeout)
                except Exception as exc:
                    logger.warning("metrics: snapshot not cached: %s", exc)
        yield from counters
        source_up.add_metric(["cache"], 0 if values is None else 1)
        if snapshot["database"] is not None:
            yield from _gauges(snapshot["database"])
        source_up.add_metric(["database"], 0 if snapshot["database"] is None else 1)
        yield source_up
        business_up = GaugeMetricFamily(
            "maintenance_business_metrics_up", "1 when the business metrics could be read during the scrape, else 0."
        )
        if snapshot["business"] is not None:
            yield from _gauges(snapshot["business"])
        business_up.add_metric([], 0 if snapshot["business"] is None else 1)
        yield business_up


registry.register(ScrapeCollector())


def render(accept_header: str = "") -> tuple[bytes, str]:
    """The exposition in the format the scraper asked for (Prometheus text, or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept_header)
    return encoder(registry), content_type
