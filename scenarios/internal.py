"""The internal scenarios: the platform's own maintenance jobs, each a function registered with
`@scenario`. They run as the system user (the runner sets it), call `context.checkpoint()` between steps
so a cancel request stops them, and return a RunResult.

Scenarios that act on tenant data (inventory-reconciliation, stale-work-order-escalation, the member and
key part of security-audit) go through every organisation and record one result per organisation under
`data["organizations"]`; what they tell people goes to that organisation's members only.

No two built-in scenarios conflict: those that must not overlap in time (database-vacuum and
backup-manager) are heavy, and the runner never runs two heavy scenarios at once.
"""

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import time
import urllib.request
from datetime import timedelta
from importlib import import_module
from pathlib import Path

import redis
from celery import current_task
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import checks
from django.core.cache import cache, caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy
from django_celery_results.models import TaskResult

from inventory.services import reconcile
from maintenance_site import audit
from maintenance_site.api.idempotency import prune_expired
from maintenance_site.celery import app
from maintenance_site.events import services as event_services
from maintenance_site.events.models import Event
from maintenance_site.notifications.kinds import register_kind
from maintenance_site.notifications.models import Channel, Notification, NotificationDelivery
from maintenance_site.notifications.services import notify
from maintenance_site.ops import health, metrics
from maintenance_site.tenancy.models import Membership, Organization, OrganizationAPIKey
from maintenance_site.tenancy.roles import Role
from scenarios.models import Category, ScenarioActivity, ScenarioRun, Weight
from scenarios.registry import RunContext, RunResult, scenario
from scenarios.services import KIND_RUN_FAILED
from workorders import services as work_orders
from workorders.models import WorkOrder

KIND_LEDGER_MISMATCH = "inventory:ledger-mismatch"
KIND_SECURITY_FINDINGS = "security:audit-findings"
KIND_ESCALATED = "work-order:escalated"


def register_notification_kinds() -> None:

    register_kind(KIND_RUN_FAILED, "Maintenance scenario failed", [Channel.EMAIL])
    register_kind(KIND_LEDGER_MISMATCH, "Stock levels disagree with the ledger", [Channel.EMAIL])
    register_kind(KIND_SECURITY_FINDINGS, "Security audit findings", [Channel.EMAIL])
    register_kind(KIND_ESCALATED, "Stale work order escalated", [Channel.EMAIL])


register_notification_kinds()


# --- shared helpers -----------------------------------------------------------------------------------


def _previous_result(context: RunContext) -> dict:
    """The result of this scenario's last successful run before this one (to report only what changed)."""
    runs = ScenarioRun.objects.filter(scenario__key=context.scenario_key, status=ScenarioRun.Status.SUCCEEDED)
    if context.run_id is not None:
        runs = runs.exclude(pk=context.run_id)
    return runs.order_by("-finished_at", "-pk").values_list("result", flat=True).first() or {}


def _previous_by_organization(context: RunContext, field: str) -> dict[int, str]:
    previous = _previous_result(context)
    return {row["organization"]: row.get(field, "") for row in previous.get("organizations", [])}


def _fingerprint(value) -> str:

    return hashlib.sha256(json.dumps(value, sort_keys=True, cls=DjangoJSONEncoder).encode()).hexdigest()[:16]


def _delete_in_batches(queryset, context: RunContext, batch: int = 2000) -> int:
    """Delete the rows of `queryset` in batches (short transactions, a checkpoint between them)."""
    deleted = 0
    model = queryset.model
    while True:
        context.checkpoint()
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        _, per_model = model.objects.filter(pk__in=ids).delete()
        deleted += per_model.get(model._meta.label, 0)


def _human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# --- health-checker ------------------------------------------------------------------------------------


def ping_workers(timeout: float = 1.0) -> list[str]:
    """The Celery workers that answer a ping (the one running this code counts as alive)."""

    alive = set()
    if current_task and getattr(current_task.request, "hostname", None) and not current_task.request.is_eager:
        alive.add(current_task.request.hostname)
    for reply in app.control.ping(timeout=timeout) or []:
        alive.update(reply)
    return sorted(alive)


@scenario(
    key="health-checker", name="Health checker", category=Category.MONITORING, default_interval=300, tags=["essential"]
)
def health_checker(context: RunContext) -> RunResult:
    """Checks the database, the cache, the broker, the workers and the beat heartbeat; every result is
    recorded on the run, and the platform's administrators are told when a check starts failing."""

    results = health.as_dict(health.run_checks())
    context.checkpoint()
    started = time.perf_counter()
    try:
        workers = ping_workers()
        ok = bool(workers)
        detail = f"{len(workers)} answering: {', '.join(workers)}" if workers else "no worker answered within 1 s"
    except Exception as exc:  # the broker is down, or anything else: that is the finding
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    results["workers"] = {"ok": ok, "detail": detail, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    failed = sorted(name for name, check in results.items() if not check["ok"])
    for name, check in results.items():
        context.log(f"{name}: {'ok' if check['ok'] else 'FAILED'} ({check['detail']})")
    if failed:
        details = "; ".join(f"{name}: {results[name]['detail']}" for name in failed)
        return RunResult(
            f"{len(failed)} of {len(results)} checks failed: {details}"[:500],
            ok=False,
            data={"checks": results, "failed": failed},
        )
    return RunResult(f"all {len(results)} checks passed", data={"checks": results, "failed": []})


# --- log-cleanup ---------------------------------------------------------------------------------------


@scenario(
    key="log-cleanup",
    name="Log cleanup",
    category=Category.HOUSEKEEPING,
    default_interval=6 * 3600,
    tags=["essential"],
    reversible=False,
)
def log_cleanup(context: RunContext) -> RunResult:
    """Deletes what is past its retention: delivered events (EVENTS_RETENTION_DAYS), notifications whose
    deliveries are done (NOTIFICATION_RETENTION_DAYS), finished scenario runs and the scenario activity
    log (SCENARIO_RUN_RETENTION_DAYS, SCENARIO_ACTIVITY_RETENTION_DAYS), expired idempotency keys and
    Celery results. The audit history is never touched."""

    now = timezone.now()
    counts = {}
    events_cutoff = now - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    counts["events"] = _delete_in_batches(
        Event.objects.filter(created_at__lt=events_cutoff, dispatched_at__isnull=False), context
    )
    unfinished = [NotificationDelivery.Status.PENDING, NotificationDelivery.Status.SENDING]
    notifications = Notification.objects.filter(
        created_at__lt=now - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    ).exclude(deliveries__status__in=unfinished)
    counts["notifications"] = _delete_in_batches(notifications, context)
    counts["scenario_runs"] = _delete_in_batches(
        ScenarioRun.objects.finished().filter(
            finished_at__lt=now - timedelta(days=settings.SCENARIO_RUN_RETENTION_DAYS)
        ),
        context,
    )
    counts["scenario_activity"] = _delete_in_batches(
        ScenarioActivity.objects.filter(at__lt=now - timedelta(days=settings.SCENARIO_ACTIVITY_RETENTION_DAYS)),
        context,
    )
    counts["idempotency_keys"] = prune_expired()
    counts["celery_results"] = _delete_in_batches(
        TaskResult.objects.filter(date_done__lt=now - settings.CELERY_RESULT_EXPIRES), context
    )
    total = sum(counts.values())
    for name, count in counts.items():
        context.log(f"{name}: {count} deleted")
    if not total:
        return RunResult.nothing_to_do("nothing past its retention", deleted=counts)
    listed = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items() if count)
    return RunResult(f"deleted {listed}", changed=total, data={"deleted": counts})


# --- log-rotation --------------------------------------------------------------------------------------


def _rotated_files(log_file: Path) -> list[Path]:
    pattern = re.compile(re.escape(log_file.name) + r"\.\d{8}T\d{6}Z\.gz$")
    return sorted(path for path in log_file.parent.glob(f"{log_file.name}.*.gz") if pattern.match(path.name))


@scenario(
    key="log-rotation", name="Log rotation", category=Category.HOUSEKEEPING, default_cron="0 0 * * *", reversible=False
)
def log_rotation(context: RunContext) -> RunResult:
    """Rotates the platform's log file when file logging is on (LOG_FILE): the file is compressed to
    LOG_FILE.<time>.gz and emptied in place (copy-truncate, so every process keeps writing to it), and
    only the newest LOG_ROTATION_KEEP rotated files are kept."""
    setting = settings.LOG_FILE
    if not setting:
        return RunResult.nothing_to_do("nothing to rotate: file logging is not configured (LOG_FILE is empty)")
    log_file = Path(setting)
    if not log_file.is_file():
        return RunResult.nothing_to_do(f"nothing to rotate: {log_file} does not exist yet")
    size = log_file.stat().st_size
    deleted = []
    rotated = None
    if size:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        rotated = log_file.with_name(f"{log_file.name}.{stamp}.gz")
        with open(log_file, "rb") as source, gzip.open(rotated, "wb") as target:
            shutil.copyfileobj(source, target, length=1024 * 1024)
            copied = source.tell()
            # Lines written while copying are copied too; only those between this and the truncate are lost.
            with open(log_file, "r+b") as writer:
                remainder = source.read()
                target.write(remainder)
                copied += len(remainder)
                writer.truncate(0)
        context.log(f"{log_file} ({_human_bytes(copied)}) rotated to {rotated.name}")
    keep = settings.LOG_ROTATION_KEEP
    for old in _rotated_files(log_file)[:-keep] if keep else []:
        old.unlink(missing_ok=True)
        deleted.append(old.name)
        context.log(f"deleted {old.name}")
    if rotated is None and not deleted:
        return RunResult.nothing_to_do(f"nothing to rotate: {log_file} is empty")
    summary = f"rotated {log_file.name} ({_human_bytes(size)}) to {rotated.name}" if rotated else "nothing to rotate"
    if deleted:
        summary += f"; deleted {len(deleted)} old file(s)"
    return RunResult(
        summary,
        changed=(1 if rotated else 0) + len(deleted),
        data={"rotated": rotated.name if rotated else None, "bytes": size, "deleted": deleted},
    )


# --- database-vacuum -----------------------------------------------------------------------------------


def _sqlite_pages(cursor) -> dict:
    cursor.execute("PRAGMA page_count")
    pages = cursor.fetchone()[0]
    cursor.execute("PRAGMA freelist_count")
    free = cursor.fetchone()[0]
    cursor.execute("PRAGMA page_size")
    return {"pages": pages, "free_pages": free, "bytes": pages * cursor.fetchone()[0]}


@scenario(
    key="database-vacuum",
    reversible=False,
    name="Database vacuum",
    category=Category.PERFORMANCE,
    weight=Weight.HEAVY,
    default_cron="30 3 * * *",
)
def database_vacuum(context: RunContext) -> RunResult:
    """VACUUM ANALYZE on PostgreSQL (on its own connection, outside any transaction), VACUUM and ANALYZE on
    SQLite: space of deleted rows reused or returned, planner statistics refreshed."""
    vendor = connection.vendor
    if vendor == "postgresql":
        own = connections.create_connection("default")  # autocommit: VACUUM refuses to run in a transaction
        try:
            with own.cursor() as cursor:
                cursor.execute("SELECT pg_database_size(current_database())")
                before = cursor.fetchone()[0]
                started = time.perf_counter()
                cursor.execute("VACUUM (ANALYZE)")
                seconds = time.perf_counter() - started
                cursor.execute("SELECT pg_database_size(current_database())")
                after = cursor.fetchone()[0]
        finally:
            own.close()
        context.log(f"VACUUM (ANALYZE) took {seconds:.1f} s; database {_human_bytes(before)} → {_human_bytes(after)}")
        return RunResult(
            f"VACUUM ANALYZE done in {seconds:.1f} s (database {_human_bytes(after)})",
            data={"bytes_before": before, "bytes_after": after, "seconds": round(seconds, 2)},
        )
    if vendor == "sqlite":
        if connection.in_atomic_block:
            raise RuntimeError("VACUUM cannot run inside a transaction; the runner calls scenarios outside one.")
        with connection.cursor() as cursor:
            before = _sqlite_pages(cursor)
            started = time.perf_counter()
            cursor.execute("VACUUM")
            cursor.execute("ANALYZE")
            seconds = time.perf_counter() - started
            after = _sqlite_pages(cursor)
        freed = before["bytes"] - after["bytes"]
        context.log(
            f"VACUUM took {seconds:.1f} s; {before['free_pages']} free pages before, {after['free_pages']} after"
        )
        return RunResult(
            f"VACUUM done in {seconds:.1f} s: {_human_bytes(max(freed, 0))} returned "
            f"({before['free_pages']} free pages reclaimed)",
            data={"before": before, "after": after, "seconds": round(seconds, 2)},
        )
    return RunResult.unavailable(f"no vacuum for the {vendor} database")


# --- backup-manager ------------------------------------------------------------------------------------

BACKUP_NAME = re.compile(r"^db-\d{8}T\d{6}Z\.(sqlite3|dump)$")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _backup_sqlite(target: Path, context: RunContext) -> None:
    connection.ensure_connection()
    source = connection.connection

    def progress(status, remaining, total):
        context.checkpoint()

    destination = sqlite3.connect(target)
    try:
        source.backup(destination, pages=512, progress=progress)
        check = destination.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        destination.close()
    if check != "ok":
        raise RuntimeError(f"the backup failed its integrity check: {check}")


def _backup_postgres(pg_dump: str, target: Path, context: RunContext) -> None:
    database = settings.DATABASES["default"]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    for variable, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if database.get(key):
            env[variable] = str(database[key])
    if (database.get("OPTIONS") or {}).get("sslmode"):
        env["PGSSLMODE"] = str(database["OPTIONS"]["sslmode"])
    command = [pg_dump, "--format=custom", "--no-password", f"--file={target}", str(database["NAME"])]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    try:
        while process.poll() is None:
            context.checkpoint()
            time.sleep(0.2)
    except BaseException:
        process.terminate()
        process.wait(timeout=10)
        raise
    stderr = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"pg_dump exited with {process.returncode}: {stderr[:1000]}")


@scenario(
    key="backup-manager",
    name="Backup manager",
    category=Category.DATA,
    weight=Weight.HEAVY,
    default_cron="0 2 * * *",
    reversible=False,
)
def backup_manager(context: RunContext) -> RunResult:
    """A dump of the database into BACKUP_DIR (SQLite: the online backup API; PostgreSQL: pg_dump in its
    custom format), with a SHA-256 checksum file beside it; only the newest BACKUP_RETENTION backups are
    kept. Without pg_dump the run fails saying backups are unavailable, so nobody believes they exist."""
    folder = Path(settings.BACKUP_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    vendor = connection.vendor
    if vendor == "sqlite":
        target = folder / f"db-{stamp}.sqlite3"
    elif vendor == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            why = (
                "pg_dump is not installed (not on PATH): install the PostgreSQL client of the server's version "
                "(postgresql-client) where the worker runs"
            )
            return RunResult(f"unavailable: {why}", ok=False, data={"unavailable": why})
        target = folder / f"db-{stamp}.dump"
    else:
        return RunResult(f"unavailable: no backup method for the {vendor} database", ok=False)
    partial = target.with_name(target.name + ".partial")
    try:
        if vendor == "sqlite":
            _backup_sqlite(partial, context)
        else:
            _backup_postgres(pg_dump, partial, context)
        checksum = sha256_of(partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    checksum_file = target.with_name(target.name + ".sha256")
    checksum_file.write_text(f"{checksum}  {target.name}\n")
    size = target.stat().st_size
    context.log(f"wrote {target} ({_human_bytes(size)}), sha256 {checksum}")

    keep = settings.BACKUP_RETENTION
    backups = sorted(path for path in folder.iterdir() if BACKUP_NAME.match(path.name))
    deleted = []
    for old in backups[:-keep]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
        deleted.append(old.name)
        context.log(f"deleted {old.name} (retention {keep})")
    summary = f"backup {target.name} ({_human_bytes(size)}) written with its checksum"
    if deleted:
        summary += f"; {len(deleted)} old backup(s) deleted"
    return RunResult(
        summary,
        changed=1 + len(deleted),
        data={"file": str(target), "bytes": size, "sha256": checksum, "deleted": deleted, "kept": keep},
    )


# --- performance-monitor -------------------------------------------------------------------------------

# The samples compared with the median of the previous ones, and the value below which none is a regression.
WATCHED = {
    "db_latency_ms": 5.0,
    "cache_latency_ms": 5.0,
    "request_latency_ms": 100.0,
    "queue_depth": 20,
    "outbox_lag_seconds": 30.0,
    "task_runtime_ms": 500.0,
}


def _timed_ms(func, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 2)


def db_latency_ms() -> float:
    def query():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return _timed_ms(query, 5)


def cache_latency_ms() -> float:

    def round_trip():
        cache.set("scenarios:performance-probe", "1", 30)
        cache.get("scenarios:performance-probe")

    return _timed_ms(round_trip, 3)


def request_latency_ms() -> float | None:
    """Time to fetch SCENARIO_PROBE_URL (e.g. the web server's /health), None when none is configured."""

    url = settings.SCENARIO_PROBE_URL
    if not url:
        return None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.perf_counter()
    with opener.open(url, timeout=5) as response:  # noqa: S310 (an operator's setting)
        response.read(1024)
    return round((time.perf_counter() - started) * 1000, 2)


def queue_depth() -> int | None:
    """Messages waiting in the default Celery queue (Redis list length, or files of the filesystem broker)."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        return int(client.llen("celery"))
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    if folder and Path(folder).is_dir():
        return sum(1 for entry in os.scandir(folder) if entry.is_file())
    return None


def task_runtime_totals() -> dict:
    """Celery task runs and their total runtime, from the counters every worker keeps in the shared cache."""

    names = cache.get(metrics.TASK_NAMES_KEY) or []
    keys = [metrics.task_key(name, "runtime-sum-us") for name in names]
    keys += [
        metrics.task_key(name, f"runtime:{metrics.bucket_label(b)}")
        for name in names
        for b in metrics.TASK_RUNTIME_BUCKETS
    ]
    values = cache.get_many(keys)
    total_us = sum(values.get(metrics.task_key(name, "runtime-sum-us"), 0) for name in names)
    runs = sum(value for key, value in values.items() if ":runtime:" in key)
    return {"runs": runs, "runtime_us": total_us}


def database_statistics() -> dict:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT numbackends, xact_commit, xact_rollback, blks_read, blks_hit, deadlocks, temp_bytes, "
                "pg_database_size(datname) FROM pg_stat_database WHERE datname = current_database()"
            )
            row = cursor.fetchone()
            names = [
                "connections",
                "commits",
                "rollbacks",
                "blocks_read",
                "blocks_hit",
                "deadlocks",
                "temp_bytes",
                "bytes",
            ]
            stats = dict(zip(names, row, strict=True))
            reads = stats["blocks_read"] + stats["blocks_hit"]
            stats["cache_hit_ratio"] = round(stats["blocks_hit"] / reads, 4) if reads else None
            return stats
        if connection.vendor == "sqlite":
            return _sqlite_pages(cursor)
    return {}


def _sample(previous: dict) -> dict:

    sample, notes = {}, []
    readers = {
        "db_latency_ms": db_latency_ms,
        "cache_latency_ms": cache_latency_ms,
        "request_latency_ms": request_latency_ms,
        "queue_depth": queue_depth,
        "outbox_lag_seconds": lambda: round(event_services.outbox_lag_seconds(), 1),
    }
    for name, reader in readers.items():
        try:
            sample[name] = reader()
        except Exception as exc:  # one unreadable source must not hide the others
            sample[name] = None
            notes.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
    try:
        totals = task_runtime_totals()
        before = previous.get("task_totals") or {}
        runs = totals["runs"] - before.get("runs", 0)
        spent = totals["runtime_us"] - before.get("runtime_us", 0)
        sample["task_runtime_ms"] = round(spent / runs / 1000, 2) if before and runs > 0 else None
    except Exception as exc:  # as above
        totals = {}
        sample["task_runtime_ms"] = None
        notes.append(f"task_runtime_ms: {type(exc).__name__}: {exc}"[:200])
    if sample.get("request_latency_ms") is None and not settings.SCENARIO_PROBE_URL:
        notes.append("request latency not sampled: set SCENARIO_PROBE_URL (e.g. http://web:8000/health)")
    try:
        database = database_statistics()
    except DatabaseError as exc:
        database = {}
        notes.append(f"database statistics: {exc}"[:200])
    return {"sample": sample, "database": database, "task_totals": totals, "notes": notes}


@scenario(key="performance-monitor", name="Performance monitor", category=Category.PERFORMANCE, default_interval=300)
def performance_monitor(context: RunContext) -> RunResult:
    """Samples database and cache latency, request latency (SCENARIO_PROBE_URL), Celery queue depth and
    task runtimes, the outbox lag and database statistics; a value PERFORMANCE_REGRESSION_FACTOR times
    worse than the median of the previous five samples is flagged as a regression."""
    runs = ScenarioRun.objects.filter(scenario__key=context.scenario_key, status=ScenarioRun.Status.SUCCEEDED)
    if context.run_id is not None:
        runs = runs.exclude(pk=context.run_id)
    history = [row for row in runs.order_by("-finished_at", "-pk").values_list("result", flat=True)[:5] if row]
    measured = _sample(history[0] if history else {})
    sample = measured["sample"]
    factor = settings.PERFORMANCE_REGRESSION_FACTOR
    regressions = []
    for name, floor in WATCHED.items():
        value = sample.get(name)
        earlier = [row.get("sample", {}).get(name) for row in history]
        earlier = [v for v in earlier if isinstance(v, int | float)]
        if value is None or len(earlier) < 3:
            continue
        baseline = statistics.median(earlier)
        if value > floor and value > factor * max(baseline, 1e-9):
            regressions.append({"metric": name, "value": value, "baseline": baseline})
    for name, value in sample.items():
        context.log(f"{name}: {value}")
    measured["regressions"] = regressions
    described = ", ".join(f"{r['metric']} {r['value']} (median {r['baseline']})" for r in regressions)
    summary = f"{len([v for v in sample.values() if v is not None])} metrics sampled"
    summary += f"; {len(regressions)} regression(s): {described}" if regressions else "; no regression"
    return RunResult(summary[:500], data=measured)


# --- cache-optimizer -----------------------------------------------------------------------------------


def _expired_cache_files(backend, context: RunContext) -> int:
    removed = 0
    for path in backend._list_cache_files():
        context.checkpoint()
        try:
            with open(path, "rb") as handle:
                if backend._is_expired(handle):
                    removed += 1
        except FileNotFoundError:
            continue
    return removed


def _stray_throttle_keys(backend) -> int:
    """Throttle keys without an expiry in Redis (they would stay for ever)."""
    client = backend._cache.get_client(write=True)
    removed = 0
    for key in client.scan_iter(match="*throttle_*", count=500):
        if client.ttl(key) == -1:
            removed += client.delete(key)
    return removed


@scenario(key="cache-optimizer", name="Cache optimizer", category=Category.PERFORMANCE, default_interval=3600)
def cache_optimizer(context: RunContext) -> RunResult:
    """Deletes expired sessions, expired cache entries (the file cache keeps them until someone reads them,
    throttle counters included) and, in Redis, throttle keys that were written without an expiry."""

    counts = {}
    engine = import_module(settings.SESSION_ENGINE)
    before = None
    if settings.SESSION_ENGINE.endswith(".db") or settings.SESSION_ENGINE.endswith("cached_db"):
        before = Session.objects.filter(expire_date__lt=timezone.now()).count()
    engine.SessionStore.clear_expired()
    counts["sessions"] = before or 0
    for alias in settings.CACHES:
        backend = caches[alias]
        if isinstance(backend, FileBasedCache):
            counts[f"cache:{alias}"] = _expired_cache_files(backend, context)
        elif isinstance(backend, RedisCache):
            counts[f"cache:{alias}"] = _stray_throttle_keys(backend)
            context.log(f"cache {alias}: Redis expires entries itself; checked throttle keys only")
    total = sum(counts.values())
    for name, count in counts.items():
        context.log(f"{name}: {count} removed")
    if not total:
        return RunResult.nothing_to_do("nothing expired to remove", removed=counts)
    listed = ", ".join(f"{count} from {name}" for name, count in counts.items() if count)
    return RunResult(f"removed {total} expired entries ({listed})", changed=total, data={"removed": counts})


# --- query-analyzer ------------------------------------------------------------------------------------


def slow_statements(threshold_ms: float, limit: int = 20) -> list[dict]:
    """The statements of this database slower than `threshold_ms` on average, from pg_stat_statements."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT queryid, calls, mean_exec_time, total_exec_time, rows, left(query, 1000) "
            "FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND mean_exec_time >= %s ORDER BY mean_exec_time DESC LIMIT %s",
            [threshold_ms, limit],
        )
        names = ["queryid", "calls", "mean_ms", "total_ms", "rows", "query"]
        return [
            {**dict(zip(names, row, strict=True)), "mean_ms": round(row[2], 2), "total_ms": round(row[3], 2)}
            for row in cursor.fetchall()
        ]


@scenario(key="query-analyzer", name="Query analyzer", category=Category.PERFORMANCE, default_interval=3600)
def query_analyzer(context: RunContext) -> RunResult:
    """Reports the slowest statements of the database (mean time above SLOW_QUERY_MS) from PostgreSQL's
    pg_stat_statements, and which of them are new since the last run; says clearly when that is
    unavailable (SQLite, extension not installed or not loaded)."""
    if connection.vendor != "postgresql":
        return RunResult.unavailable(
            f"query statistics need PostgreSQL with the pg_stat_statements extension; this database is "
            f"{connection.vendor}"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        installed = cursor.fetchone() is not None
    if not installed:
        return RunResult.unavailable(
            "the pg_stat_statements extension is not installed in this database: add pg_stat_statements to "
            "shared_preload_libraries, restart PostgreSQL and run CREATE EXTENSION pg_stat_statements"
        )
    threshold = settings.SLOW_QUERY_MS
    try:
        with transaction.atomic():
            statements = slow_statements(threshold)
    except DatabaseError as exc:
        return RunResult.unavailable(
            "pg_stat_statements is installed but cannot be read (is it in shared_preload_libraries, and "
            f"PostgreSQL restarted since?): {str(exc).strip()}"[:400]
        )
    seen = {row.get("queryid") for row in _previous_result(context).get("statements", [])}
    new = [row["queryid"] for row in statements if row["queryid"] not in seen]
    for row in statements:
        context.log(f"{row['mean_ms']} ms × {row['calls']}: {row['query'][:200]}")
    summary = f"{len(statements)} statement(s) slower than {threshold:g} ms on average"
    if new:
        summary += f", {len(new)} new since the last run"
    return RunResult(summary, data={"threshold_ms": threshold, "statements": statements, "new": new})


# --- security-audit ------------------------------------------------------------------------------------


def deploy_check_messages() -> list[dict]:

    return [
        {"id": message.id, "level": message.level, "message": message.msg}
        for message in checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        if message.level >= checks.WARNING
    ]


def organization_findings(organization, now) -> list[str]:

    findings = []
    unused_before = now - timedelta(days=settings.API_KEY_UNUSED_DAYS)
    old_before = now - timedelta(days=settings.API_KEY_MAX_AGE_DAYS)
    keys = OrganizationAPIKey.objects.filter(organization=organization, revoked=False).order_by("prefix")
    for key in keys:
        label = f"API key “{key.name}” ({key.prefix})"
        if key.expiry_date and key.expiry_date < now:
            findings.append(f"{label} expired on {key.expiry_date:%Y-%m-%d} but is not revoked")
        elif key.last_used_at is None and key.created < unused_before:
            findings.append(f"{label} was created on {key.created:%Y-%m-%d} and never used")
        elif key.last_used_at is not None and key.last_used_at < unused_before:
            findings.append(f"{label} has not been used since {key.last_used_at:%Y-%m-%d}")
        if key.created < old_before:
            findings.append(f"{label} is older than {settings.API_KEY_MAX_AGE_DAYS} days: rotate it")
    inactive_before = now - timedelta(days=settings.MEMBER_INACTIVE_DAYS)
    members = (
        Membership.objects.active()
        .filter(organization=organization, user__api_key__isnull=True)
        .filter(
            Q(user__last_login__lt=inactive_before) | Q(user__last_login__isnull=True, created_at__lt=inactive_before)
        )
        .select_related("user")
        .order_by("user__username")
    )
    for membership in members:
        last = membership.user.last_login
        when = f"since {last:%Y-%m-%d}" if last else "ever"
        findings.append(
            f"{membership.user.get_username()} ({membership.get_role_display().lower()}) has not logged in {when}"
        )
    return findings


@scenario(key="security-audit", name="Security audit", category=Category.SECURITY, default_cron="0 6 * * *")
def security_audit(context: RunContext) -> RunResult:
    """Django's deployment checks; in every organisation, API keys unused for API_KEY_UNUSED_DAYS, older than
    API_KEY_MAX_AGE_DAYS or expired but not revoked, and members who have not logged in for
    MEMBER_INACTIVE_DAYS. An organisation's managers are told when its findings change."""

    now = timezone.now()
    deploy = deploy_check_messages()
    for message in deploy:
        context.log(f"deploy check {message['id']}: {message['message']}")
    previous = _previous_by_organization(context, "fingerprint")
    organizations, flagged = [], 0
    for organization in Organization.objects.order_by("pk"):
        context.checkpoint()
        findings = organization_findings(organization, now)
        fingerprint = _fingerprint(findings)
        notified = 0
        if findings and previous.get(organization.pk) != fingerprint:
            with transaction.atomic():
                notified = len(
                    notify(
                        organization,
                        [Role.MANAGER],
                        KIND_SECURITY_FINDINGS,
                        {
                            "title": format_lazy(
                                gettext_lazy("Security audit: {count} finding(s)"), count=len(findings)
                            ),
                            "body": "\n".join(findings),
                            "findings": findings,
                        },
                    )
                )
        flagged += bool(findings)
        organizations.append(
            {
                "organization": organization.pk,
                "slug": organization.slug,
                "findings": findings,
                "fingerprint": fingerprint,
                "notified": notified,
            }
        )
        for finding in findings:
            context.log(f"{organization.slug}: {finding}")
    summary = (
        f"{len(deploy)} deployment warning(s); {flagged} of {len(organizations)} organisation(s) with findings "
        f"({sum(len(o['findings']) for o in organizations)})"
    )
    return RunResult(summary, data={"deploy": deploy, "organizations": organizations})


# --- inventory-reconciliation --------------------------------------------------------------------------


@scenario(
    key="inventory-reconciliation",
    name="Inventory reconciliation",
    category=Category.DATA,
    weight=Weight.HEAVY,
    default_cron="0 4 * * *",
)
def inventory_reconciliation(context: RunContext) -> RunResult:
    """Compares every stock level with the sum of its ledger in every organisation; the differences are
    recorded per organisation, and the organisation's managers and storekeepers told when they change."""

    previous = _previous_by_organization(context, "fingerprint")
    organizations = []
    for organization in Organization.objects.order_by("pk"):
        context.checkpoint()
        differences = reconcile(organization)
        fingerprint = _fingerprint(differences)
        notified = 0
        if differences and previous.get(organization.pk) != fingerprint:
            lines = [
                f"{d['part']} at {d['location']}: on hand {d['on_hand']}, ledger {d['ledger']}" for d in differences
            ]
            with transaction.atomic():
                notified = len(
                    notify(
                        organization,
                        [Role.MANAGER, Role.STOREKEEPER],
                        KIND_LEDGER_MISMATCH,
                        {
                            "title": format_lazy(
                                gettext_lazy("{count} stock level(s) disagree with the ledger"), count=len(differences)
                            ),
                            "body": "\n".join(lines),
                        },
                    )
                )
        organizations.append(
            {
                "organization": organization.pk,
                "slug": organization.slug,
                "differences": differences,
                "fingerprint": fingerprint,
                "notified": notified,
            }
        )
        if differences:
            context.log(f"{organization.slug}: {len(differences)} difference(s)")
    mismatched = [o["slug"] for o in organizations if o["differences"]]
    summary = f"{len(organizations)} organisation(s) checked: " + (
        f"{len(mismatched)} with differences ({', '.join(mismatched)})" if mismatched else "the books balance"
    )
    return RunResult(summary[:500], data={"organizations": organizations})


# --- stale-work-order-escalation -----------------------------------------------------------------------

ESCALATION = {"low": "medium", "medium": "high", "high": "critical", "critical": "critical"}
ESCALATIONS_PER_RUN = 500


@scenario(
    key="stale-work-order-escalation", name="Stale work-order escalation", category=Category.DATA, default_interval=3600
)
def stale_work_order_escalation(context: RunContext) -> RunResult:
    """Open work orders nobody has touched for STALE_WORK_ORDER_DAYS, in every organisation: priority raised
    one step (critical stays critical), a comment saying why, and the planners, managers and assignee told.
    The escalation touches the order, so it is escalated again only after another quiet period."""

    days = settings.STALE_WORK_ORDER_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    system = audit.system_user()
    organizations, total = [], 0
    for organization in Organization.objects.order_by("pk"):
        escalated = []
        stale = WorkOrder.objects.for_tenant(organization).open().filter(updated_at__lt=cutoff).order_by("updated_at")
        for work_order in stale.select_related("assignee")[: ESCALATIONS_PER_RUN - total]:
            context.checkpoint()
            before = work_order.priority
            after = ESCALATION.get(before, before)
            quiet_since = work_order.updated_at
            with transaction.atomic():
                work_order = work_orders.update_work_order(work_order, actor=system, priority=after)
                work_orders.add_comment(
                    work_order,
                    actor=system,
                    body=f"Escalated automatically: no change since {quiet_since:%Y-%m-%d} ({days}+ days); "
                    f"priority {before} → {after}.",
                )
                recipients = [Role.PLANNER, Role.MANAGER] + ([work_order.assignee] if work_order.assignee else [])
                notify(
                    organization,
                    recipients,
                    KIND_ESCALATED,
                    {
                        "title": format_lazy(
                            gettext_lazy("{number} escalated to {priority}"), number=work_order.number, priority=after
                        ),
                        "body": format_lazy(
                            gettext_lazy("{number} “{title}” has not changed since {since}."),
                            number=work_order.number,
                            title=work_order.title,
                            since=f"{quiet_since:%Y-%m-%d}",
                        ),
                        "work_order": work_order.pk,
                    },
                )
            escalated.append({"work_order": work_order.pk, "number": work_order.number, "from": before, "to": after})
            context.log(f"{organization.slug}: {work_order.number} {before} → {after}")
        total += len(escalated)
        organizations.append({"organization": organization.pk, "slug": organization.slug, "escalated": escalated})
        if total >= ESCALATIONS_PER_RUN:
            context.log(f"stopped after {ESCALATIONS_PER_RUN} escalations; the next run continues")
            break
    if not total:
        return RunResult.nothing_to_do(f"no open work order untouched for {days} days", organizations=organizations)
    by_org = ", ".join(f"{o['slug']} {len(o['escalated'])}" for o in organizations if o["escalated"])
    return RunResult(
        f"escalated {total} stale work order(s) ({by_org})"[:500], changed=total, data={"organizations": organizations}
    )
