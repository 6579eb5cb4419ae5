"""Each internal scenario's real effect, executed the way the runner does (claimed, as the system user)."""

import gzip
import hashlib
import logging
import sqlite3
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from maintenance_site.notifications.models import Notification
from maintenance_site.ops.tasks import record_heartbeat
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.roles import Role
from scenarios import internal, runner, services
from scenarios.models import ScenarioActivity, ScenarioRun

SQLITE = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the SQLite branch")
POSTGRES = pytest.mark.postgres


def execute(key: str) -> ScenarioRun:
    return runner.run_now(services.request_run(key, actor=SYSTEM))


def succeeded(key: str) -> ScenarioRun:
    run = execute(key)
    assert run.status in ("succeeded", "skipped"), (run.status, run.summary, run.error)
    return run


# --- health-checker ------------------------------------------------------------------------------------


def test_health_checker_records_every_check(synced, monkeypatch):
    monkeypatch.setattr(internal, "ping_workers", lambda timeout=1.0: ["celery@worker-1"])
    record_heartbeat("beat")
    run = succeeded("health-checker")
    assert run.status == "succeeded" and run.summary == "all 5 checks passed"
    assert set(run.result["checks"]) == {"database", "cache", "broker", "beat", "workers"}
    assert run.result["checks"]["workers"]["detail"] == "1 answering: celery@worker-1"


def test_health_checker_fails_and_tells_the_operators(synced, operator, org_a, monkeypatch):
    from maintenance_site.tenancy import services as tenancy

    tenancy.add_member(org_a, operator, Role.MANAGER)
    monkeypatch.setattr(internal, "ping_workers", lambda timeout=1.0: [])
    run = execute("health-checker")  # no beat heartbeat either
    assert run.status == "failed"
    assert set(run.result["failed"]) == {"beat", "workers"}
    assert "no beat heartbeat recorded yet" in run.summary and "no worker answered" in run.summary
    notification = Notification.objects.get(recipient=operator)
    assert "health-checker failed" in notification.title and "no worker answered" in notification.body


# --- log-cleanup ---------------------------------------------------------------------------------------


def test_log_cleanup_deletes_only_what_is_past_retention(synced, org_a, manager_a, settings):
    from maintenance_site.events.models import Event
    from maintenance_site.notifications.models import NotificationDelivery

    settings.EVENTS_RETENTION_DAYS = 30
    settings.NOTIFICATION_RETENTION_DAYS = 90
    settings.SCENARIO_RUN_RETENTION_DAYS = 60
    settings.SCENARIO_ACTIVITY_RETENTION_DAYS = 365
    long_ago = timezone.now() - timedelta(days=400)
    old_event = Event.objects.create(organization=org_a, type="test:old", dispatched_at=long_ago)
    undelivered = Event.objects.create(organization=org_a, type="test:stuck")
    recent = Event.objects.create(organization=org_a, type="test:recent", dispatched_at=timezone.now())
    Event.objects.filter(pk__in=[old_event.pk, undelivered.pk]).update(created_at=long_ago)
    done = Notification.objects.create(organization=org_a, recipient=manager_a, kind="x", title="t", body="b")
    waiting = Notification.objects.create(organization=org_a, recipient=manager_a, kind="x", title="t", body="b")
    NotificationDelivery.objects.create(organization=org_a, notification=done, channel="email", status="sent")
    NotificationDelivery.objects.create(organization=org_a, notification=waiting, channel="email", status="pending")
    Notification.objects.filter(pk__in=[done.pk, waiting.pk]).update(created_at=long_ago)
    old_run = ScenarioRun.objects.create(
        scenario=synced["log-rotation"], slot=long_ago, status="succeeded", finished_at=long_ago
    )
    old_entry = services.log_activity("activate", subject="old", actor=SYSTEM)
    ScenarioActivity.objects.filter(pk=old_entry.pk).update(at=long_ago)

    run = succeeded("log-cleanup")
    assert run.result["deleted"]["events"] == 1 and run.result["deleted"]["notifications"] == 1
    assert run.result["deleted"]["scenario_runs"] == 1 and run.result["deleted"]["scenario_activity"] == 1
    assert set(Event.objects.values_list("type", flat=True)) == {"test:stuck", "test:recent"}
    assert list(Notification.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert not ScenarioRun.objects.filter(pk=old_run.pk).exists()
    assert not ScenarioActivity.objects.filter(pk=old_entry.pk).exists()
    assert run.changed == sum(run.result["deleted"].values())
    assert recent.pk


def test_log_cleanup_with_nothing_to_delete_says_so(synced):
    run = succeeded("log-cleanup")
    assert (run.status, run.summary) == ("skipped", "nothing past its retention")


# --- log-rotation --------------------------------------------------------------------------------------


def test_log_rotation_without_file_logging(synced, settings):
    settings.LOG_FILE = ""
    run = succeeded("log-rotation")
    assert run.status == "skipped" and "file logging is not configured" in run.summary


def test_log_rotation_rotates_and_the_writer_carries_on(synced, settings, tmp_path):
    log_file = tmp_path / "platform.log"
    settings.LOG_FILE = str(log_file)
    settings.LOG_ROTATION_KEEP = 2
    for stamp in ("20250101T000000Z", "20250102T000000Z", "20250103T000000Z"):
        (tmp_path / f"platform.log.{stamp}.gz").write_bytes(gzip.compress(b"old"))
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("tests.scenarios.rotation")
    logger.addHandler(handler)
    try:
        logger.warning("before the rotation")
        handler.flush()
        run = succeeded("log-rotation")
        logger.warning("after the rotation")
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    rotated = tmp_path / run.result["rotated"]
    assert gzip.decompress(rotated.read_bytes()).decode() == "before the rotation\n"
    assert log_file.read_text() == "after the rotation\n"  # same file, emptied in place
    kept = sorted(p.name for p in tmp_path.glob("platform.log.*.gz"))
    assert kept == ["platform.log.20250103T000000Z.gz", rotated.name]
    assert run.result["deleted"] == ["platform.log.20250101T000000Z.gz", "platform.log.20250102T000000Z.gz"]


# --- database-vacuum -----------------------------------------------------------------------------------


@SQLITE
@pytest.mark.django_db(transaction=True)
def test_database_vacuum_on_sqlite_reclaims_free_pages(synced):
    ScenarioActivity.objects.bulk_create([ScenarioActivity(action="sync", message="x" * 4000) for _ in range(300)])
    ScenarioActivity.objects.filter(action="sync", message__startswith="xxxx").delete()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA freelist_count")
        assert cursor.fetchone()[0] > 100
    run = succeeded("database-vacuum")
    assert run.result["before"]["free_pages"] > 100 and run.result["after"]["free_pages"] == 0
    assert run.summary.startswith("VACUUM done")


@SQLITE
def test_database_vacuum_refuses_to_run_inside_a_transaction(synced):
    run = execute("database-vacuum")
    assert run.status == "failed" and "inside a transaction" in run.summary


@POSTGRES
@pytest.mark.django_db(transaction=True)
def test_database_vacuum_analyze_on_postgresql(synced):
    run = succeeded("database-vacuum")
    assert run.summary.startswith("VACUUM ANALYZE done")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'scenarios_scenario'"
        )
        assert cursor.fetchone() == (True, True)


# --- backup-manager ------------------------------------------------------------------------------------


def _check_backup(run: ScenarioRun):
    from pathlib import Path

    backup = Path(run.result["file"])
    checksum_line = backup.with_name(backup.name + ".sha256").read_text()
    assert checksum_line == f"{run.result['sha256']}  {backup.name}\n"
    assert hashlib.sha256(backup.read_bytes()).hexdigest() == run.result["sha256"]
    return backup


@SQLITE
@pytest.mark.django_db(transaction=True)
def test_backup_manager_on_sqlite_writes_a_verified_copy_and_keeps_the_newest(synced, settings, tmp_path):
    from maintenance_site.tenancy.services import create_organization

    create_organization(name="Backed up", slug="backed-up")
    settings.BACKUP_RETENTION = 2
    folder = tmp_path / "backups"
    folder.mkdir()
    for stamp in ("20250101T000000Z", "20250102T000000Z"):
        (folder / f"db-{stamp}.sqlite3").write_bytes(b"old")
        (folder / f"db-{stamp}.sqlite3.sha256").write_text("x")
    (folder / "notes.txt").write_text("not a backup: left alone")
    run = succeeded("backup-manager")
    backup = _check_backup(run)
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT name FROM tenancy_organization WHERE slug = 'backed-up'").fetchone() == (
            "Backed up",
        )
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "db-20250102T000000Z.sqlite3",
            "db-20250102T000000Z.sqlite3.sha256",
            backup.name,
            backup.name + ".sha256",
            "notes.txt",
        ]
    )
    assert run.result["deleted"] == ["db-20250101T000000Z.sqlite3"]


@POSTGRES
@pytest.mark.django_db(transaction=True)
def test_backup_manager_on_postgresql_uses_pg_dump(synced):
    import shutil

    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed here (the unavailable case is tested below)")
    run = succeeded("backup-manager")
    backup = _check_backup(run)
    assert backup.suffix == ".dump" and backup.read_bytes()[:5] == b"PGDMP"


@POSTGRES
def test_backup_manager_says_unavailable_without_pg_dump(synced, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    run = execute("backup-manager")
    assert run.status == "failed"
    assert run.summary.startswith("unavailable: pg_dump is not installed")


# --- performance-monitor -------------------------------------------------------------------------------


def test_performance_monitor_samples_and_flags_regressions(synced, monkeypatch, settings, services_server):
    settings.SCENARIO_PROBE_URL = services_server.url("ok") + "/api/v1/status"
    # Cache and request latency are measured for real: their earlier samples are slow enough that a busy test
    # machine never looks like a regression; the database's is pinned at 40 times its earlier samples.
    for _ in range(3):
        ScenarioRun.objects.create(
            scenario=synced["performance-monitor"],
            slot=timezone.now() - timedelta(minutes=_ + 5),
            status="succeeded",
            finished_at=timezone.now(),
            result={"sample": {"db_latency_ms": 1.0, "cache_latency_ms": 1000.0, "request_latency_ms": 5000.0}},
        )
    monkeypatch.setattr(internal, "db_latency_ms", lambda: 40.0)
    run = succeeded("performance-monitor")
    sample = run.result["sample"]
    assert sample["db_latency_ms"] == 40.0 and sample["cache_latency_ms"] is not None
    assert sample["request_latency_ms"] is not None and sample["outbox_lag_seconds"] == 0.0
    assert run.result["regressions"] == [{"metric": "db_latency_ms", "value": 40.0, "baseline": 1.0}]
    assert "1 regression(s): db_latency_ms 40.0 (median 1.0)" in run.summary
    assert run.result["database"]  # database statistics sampled


def test_performance_monitor_without_history_flags_nothing(synced):
    run = succeeded("performance-monitor")
    assert run.result["regressions"] == [] and "no regression" in run.summary
    assert any("SCENARIO_PROBE_URL" in note for note in run.result["notes"])


# --- cache-optimizer -----------------------------------------------------------------------------------


def test_cache_optimizer_removes_expired_sessions_and_cache_entries(synced, settings, tmp_path):
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.cache import caches

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path / "c")}
    }
    expired = SessionStore()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(expire_date=timezone.now() - timedelta(days=1))
    live = SessionStore()
    live.create()
    cache = caches["default"]
    cache.set("throttle_user_1", [1, 2, 3], timeout=60)
    cache.set("throttle_user_2", [1], timeout=60)
    cache.set("kept", "value", timeout=3600)
    # Age two entries past their expiry, as time would.
    import pickle
    import time

    for key in ("throttle_user_1", "throttle_user_2"):
        path = cache._key_to_file(key)
        with open(path, "rb") as handle:
            pickle.load(handle)
            rest = handle.read()
        with open(path, "wb") as handle:
            handle.write(pickle.dumps(time.time() - 10, pickle.HIGHEST_PROTOCOL) + rest)
    run = succeeded("cache-optimizer")
    assert run.result["removed"] == {"sessions": 1, "cache:default": 2}
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
    assert cache.get("kept") == "value" and len(cache._list_cache_files()) == 1


@pytest.mark.redis
def test_cache_optimizer_removes_throttle_keys_that_never_expire_in_redis(synced, settings):
    from django.core.cache import caches

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL}
    }
    cache = caches["default"]
    client = cache._cache.get_client(write=True)
    stray = cache.make_and_validate_key("throttle_leaked")
    client.set(stray, b"1")  # no expiry
    cache.set("throttle_fine", [1], timeout=60)
    try:
        run = succeeded("cache-optimizer")
        assert run.result["removed"]["cache:default"] >= 1
        assert client.exists(stray) == 0 and cache.get("throttle_fine") == [1]
    finally:
        cache.delete("throttle_fine")


# --- query-analyzer ------------------------------------------------------------------------------------


@SQLITE
def test_query_analyzer_is_unavailable_on_sqlite(synced):
    run = succeeded("query-analyzer")
    assert run.status == "skipped"
    assert run.summary == (
        "unavailable: query statistics need PostgreSQL with the pg_stat_statements extension; this database is sqlite"
    )


@POSTGRES
def test_query_analyzer_explains_what_is_missing_on_postgresql(synced, monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    run = succeeded("query-analyzer")
    assert run.status == "skipped" and "extension is not installed in this database" in run.summary
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cursor.execute("SHOW shared_preload_libraries")
        loaded = "pg_stat_statements" in cursor.fetchone()[0]
    if not loaded:
        run = succeeded("query-analyzer")
        assert run.status == "skipped" and "installed but cannot be read" in run.summary
    rows = [{"queryid": 7, "calls": 3, "mean_ms": 950.0, "total_ms": 2850.0, "rows": 1, "query": "SELECT pg_sleep($1)"}]
    monkeypatch.setattr(internal, "slow_statements", lambda threshold, limit=20: rows)
    run = succeeded("query-analyzer")
    assert run.status == "succeeded" and run.result["statements"] == rows and run.result["new"] == [7]
    assert run.summary == "1 statement(s) slower than 200 ms on average, 1 new since the last run"
    assert succeeded("query-analyzer").result["new"] == []


# --- security-audit ------------------------------------------------------------------------------------


def test_security_audit_finds_stale_keys_and_members_and_tells_each_organisations_managers(
    synced, org_a, org_b, manager_a, manager_b, technician_a
):
    from maintenance_site.tenancy.models import Membership, OrganizationAPIKey
    from maintenance_site.tenancy.services import create_api_key

    key, _ = create_api_key(org_a, name="ERP", scope="read_write")
    OrganizationAPIKey.objects.filter(pk=key.pk).update(created=timezone.now() - timedelta(days=400))
    Membership.objects.filter(user=technician_a).update(created_at=timezone.now() - timedelta(days=200))
    for user in (manager_a, manager_b):
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
    run = succeeded("security-audit")
    by_org = {row["slug"]: row for row in run.result["organizations"]}
    findings = by_org["org-a"]["findings"]
    assert any("API key “ERP”" in f and "never used" in f for f in findings)
    assert any("API key “ERP”" in f and "older than 365 days" in f for f in findings)
    assert any(f.startswith("technician-a (technician) has not logged in ever") for f in findings)
    assert by_org["org-b"]["findings"] == []
    notice = Notification.objects.get(kind="security:audit-findings")
    assert notice.recipient == manager_a and notice.organization == org_a  # org B's manager sees nothing of A
    assert isinstance(run.result["deploy"], list)
    succeeded("security-audit")
    assert Notification.objects.filter(kind="security:audit-findings").count() == 1  # unchanged: not told twice


# --- inventory-reconciliation --------------------------------------------------------------------------


def test_inventory_reconciliation_reports_per_organisation(synced, org_a, org_b, manager_a, storekeeper_a, manager_b):
    from inventory import services as inventory
    from inventory.models import Part, StockLevel, StockLocation

    def stocked(org):
        part = Part.objects.create(organization=org, sku="BRG-1", name="Bearing", unit="each")
        location = StockLocation.objects.create(organization=org, name="Store")
        inventory.receive_stock(part, location, Decimal("10"), Decimal("2.50"), actor=SYSTEM)
        return part

    stocked(org_a)
    stocked(org_b)
    StockLevel.objects.filter(organization=org_a).update(on_hand=Decimal("7"))  # the books no longer balance
    run = succeeded("inventory-reconciliation")
    by_org = {row["slug"]: row for row in run.result["organizations"]}
    [difference] = by_org["org-a"]["differences"]
    assert (difference["part"], Decimal(difference["on_hand"]), Decimal(difference["ledger"])) == (
        "BRG-1",
        Decimal("7"),
        Decimal("10"),
    )
    assert by_org["org-b"]["differences"] == []
    assert run.summary == "2 organisation(s) checked: 1 with differences (org-a)"
    told = set(
        Notification.objects.filter(kind="inventory:ledger-mismatch").values_list("recipient__username", flat=True)
    )
    assert told == {"manager-a", "storekeeper-a"}
    succeeded("inventory-reconciliation")
    assert Notification.objects.filter(kind="inventory:ledger-mismatch").count() == 2  # not again


# --- stale-work-order-escalation -----------------------------------------------------------------------


def test_stale_work_orders_are_escalated_once(synced, org_a, planner_a, manager_a, technician_a, settings):
    from workorders import services as work_orders
    from workorders.models import WorkOrder

    settings.STALE_WORK_ORDER_DAYS = 14
    stale = work_orders.create_work_order(
        org_a, title="Leaking valve", actor=planner_a, priority="medium", assignee=technician_a
    )
    critical = work_orders.create_work_order(org_a, title="Fire pump", actor=planner_a, priority="critical")
    fresh_order = work_orders.create_work_order(org_a, title="New", actor=planner_a, priority="low")
    WorkOrder.objects.filter(pk__in=[stale.pk, critical.pk]).update(updated_at=timezone.now() - timedelta(days=20))
    run = succeeded("stale-work-order-escalation")
    stale.refresh_from_db()
    critical.refresh_from_db()
    fresh_order.refresh_from_db()
    assert (stale.priority, critical.priority, fresh_order.priority) == ("high", "critical", "low")
    assert "Escalated automatically" in stale.comments.get().body
    assert stale.history.first().history_change_reason == f"scenario-run:{run.pk}"
    told = set(Notification.objects.filter(kind="work-order:escalated").values_list("recipient__username", flat=True))
    assert told == {"planner-a", "manager-a", "technician-a"}
    [org_result] = [row for row in run.result["organizations"] if row["slug"] == "org-a"]
    assert {row["to"] for row in org_result["escalated"]} == {"high", "critical"}
    assert run.changed == 2
    again = succeeded("stale-work-order-escalation")
    assert again.status == "skipped"  # escalation touched them: nothing stale until another quiet period


def test_every_internal_scenario_is_tested_here():
    from scenarios import registry

    tested = {
        "health-checker",
        "log-cleanup",
        "log-rotation",
        "database-vacuum",
        "backup-manager",
        "performance-monitor",
        "cache-optimizer",
        "query-analyzer",
        "security-audit",
        "inventory-reconciliation",
        "stale-work-order-escalation",
    }
    # the workspace executors (templates tasks run) are tested in test_workspaces.py
    assert {d.key for d in registry.definitions() if not d.key.startswith("test-") and not d.template} == tested
