"""Replica-safe reads (maintenance_site/db_routing.py): analytics, reports and exports read from the `replica` alias
when DATABASE_REPLICA_URL configures one, everything else from the primary; and the database settings behind
PgBouncer.

The replica here is a second alias mirrored to the default (Django's TEST MIRROR: the same test database through a
connection of its own), so the queries each connection runs tell which alias a read used.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

from assets.models import Asset
from assets.resources import AssetResource
from maintenance_site.db_routing import REPLICA, ReplicaRouter, reading_from_replica, replica_alias
from workorders import services
from workorders.models import WorkOrder

ROOT = Path(__file__).resolve().parents[2]
CHANGELIST = "/admin/workorders/workorder/"

pytestmark = pytest.mark.django_db(transaction=True)  # the replica's own connection sees committed rows only


@pytest.fixture(scope="class")
def replica():
    """A `replica` alias mirroring the default: what settings.py builds from DATABASE_REPLICA_URL, in a test run.
    Class-scoped: it exists before the test's database set-up, which then allows it (`databases`)."""
    primary = connections[DEFAULT_DB_ALIAS].settings_dict
    connections.settings[REPLICA] = {**copy.deepcopy(primary), "TEST": {**primary["TEST"], "MIRROR": "default"}}
    try:
        yield connections[REPLICA]
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


def tables_read(captured) -> set[str]:
    return {
        table
        for query in captured.captured_queries
        if "SELECT" in query["sql"]
        for table in ("workorders_workorder", "assets_asset")
        if f'"{table}"' in query["sql"]
    }


def both(alias_queries):
    """CaptureQueriesContext on the primary and the replica."""
    return CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]), CaptureQueriesContext(connections[REPLICA])


def test_without_a_replica_everything_uses_the_primary(org_a, manager_a):
    assert replica_alias() == DEFAULT_DB_ALIAS
    services.create_work_order(org_a, title="Belt", actor=manager_a)
    with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary, reading_from_replica() as alias:
        assert alias == DEFAULT_DB_ALIAS
        assert list(WorkOrder.objects.values_list("title", flat=True)) == ["Belt"]
    assert tables_read(primary) == {"workorders_workorder"}


@pytest.mark.usefixtures("replica")
class TestWithAReplica:
    pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])

    def test_marked_reads_go_to_the_replica_and_everything_else_to_the_primary(self, replica, org_a, manager_a):
        services.create_work_order(org_a, title="Belt", actor=manager_a)
        on_primary, on_replica = both(None)
        with on_primary, on_replica:
            assert replica_alias() == REPLICA
            assert WorkOrder.objects.using(replica_alias()).get().title == "Belt"
        assert tables_read(on_replica) == {"workorders_workorder"} and not tables_read(on_primary)

        on_primary, on_replica = both(None)
        with on_primary, on_replica:
            with reading_from_replica() as alias:
                assert alias == REPLICA
                order = WorkOrder.objects.get()
                assert order._state.db == REPLICA
                # A write inside the block still goes to the primary, a row read on the replica included.
                services.create_work_order(org_a, title="Motor", actor=manager_a)
            unmarked = WorkOrder.objects.order_by("pk").last()
        assert unmarked.title == "Motor" and unmarked._state.db == DEFAULT_DB_ALIAS
        assert any(query["sql"].startswith("INSERT") for query in on_primary.captured_queries)
        assert not any(query["sql"].startswith(("INSERT", "UPDATE")) for query in on_replica.captured_queries)
        assert tables_read(on_replica) == {"workorders_workorder"}

    def test_the_router_never_writes_to_or_migrates_the_replica(self, replica, org_a, manager_a):
        router = ReplicaRouter()
        with reading_from_replica():
            assert router.db_for_write(WorkOrder) == DEFAULT_DB_ALIAS
            assert router.db_for_read(WorkOrder) == REPLICA
        assert router.db_for_read(WorkOrder) is None  # Django's default: the primary
        assert router.allow_migrate(REPLICA, "workorders") is False
        assert router.allow_migrate(DEFAULT_DB_ALIAS, "workorders") is True

    def test_the_work_order_csv_export_reads_from_the_replica(self, replica, client, org_a, manager_a):
        services.create_work_order(org_a, title="Belt", actor=manager_a)
        client.force_login(manager_a)
        on_primary, on_replica = both(None)
        with on_primary, on_replica:
            response = client.get(f"{CHANGELIST}export-csv/")
            body = b"".join(response.streaming_content).decode()
        assert "Belt" in body
        assert "workorders_workorder" in tables_read(on_replica)
        # The primary only serves the request itself (session, user, membership), not the exported rows.
        exported = [q["sql"] for q in on_primary.captured_queries if "workorders_workorder" in q["sql"]]
        assert not [sql for sql in exported if "LIMIT" not in sql and "COUNT" not in sql.upper()], exported

    def test_the_asset_export_reads_from_the_replica(self, replica, org_a, manager_a):
        from assets import services as asset_services

        asset_services.create_asset(org_a, code="PUMP-1", name="Pump")
        resource = AssetResource(organization=org_a)
        queryset = resource.filter_export(Asset.objects.all())
        assert queryset.db == REPLICA
        on_primary, on_replica = both(None)
        with on_primary, on_replica:
            dataset = resource.export(queryset=queryset)
        assert "PUMP-1" in dataset.csv
        assert "assets_asset" in tables_read(on_replica) and "assets_asset" not in tables_read(on_primary)


# --- the database settings ------------------------------------------------------------------------------------


def _settings_with(**variables) -> subprocess.CompletedProcess:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")},
        "DATABASE_URL": "postgres://u:p@db.example:5432/app",
        **variables,
    }
    script = (
        "import json; from maintenance_site import settings as s; "
        "print(json.dumps({alias: {k: d.get(k) for k in ('HOST', 'PORT', 'CONN_MAX_AGE', "
        "'DISABLE_SERVER_SIDE_CURSORS', 'OPTIONS', 'TEST')} for alias, d in s.DATABASES.items()}, default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.django_db(transaction=False)
def test_behind_pgbouncer_no_server_side_cursors_no_pool_no_prepared_statements():
    result = _settings_with(DATABASE_PGBOUNCER="true", DATABASE_REPLICA_URL="postgres://u:p@replica.example:6432/app")
    assert result.returncode == 0, result.stderr
    databases = json.loads(result.stdout.strip().splitlines()[-1])
    for alias in ("default", "replica"):
        assert databases[alias]["DISABLE_SERVER_SIDE_CURSORS"] is True, alias
        assert "pool" not in databases[alias]["OPTIONS"], alias
        assert databases[alias]["OPTIONS"]["prepare_threshold"] is None, alias
    assert databases["replica"]["HOST"] == "replica.example"
    assert databases["replica"]["TEST"] == {"MIRROR": "default"}

    both_pools = _settings_with(DATABASE_PGBOUNCER="true", DATABASE_POOL="true")
    assert both_pools.returncode != 0 and "PgBouncer is the pool" in both_pools.stderr


@pytest.mark.django_db(transaction=False)
def test_without_pgbouncer_the_defaults_stay():
    result = _settings_with(DATABASE_POOL="true")
    assert result.returncode == 0, result.stderr
    databases = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(databases) == {"default"}
    assert not databases["default"]["DISABLE_SERVER_SIDE_CURSORS"]
    assert "pool" in databases["default"]["OPTIONS"]
