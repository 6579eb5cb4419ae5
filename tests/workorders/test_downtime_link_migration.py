"""workorders 0002 on a database migrated before it: the links between downtime and work orders, once columns of
assets' tables, become DowntimeLink rows (with their history) and the old columns go.

The test builds a database of its own (beside the test database, dropped at the end) up to workorders 0001: five
migrations. There it re-creates the old columns exactly as the former assets 0002 did (the migration's own
LEGACY_FIELDS), writes downtime linked to orders through them, and applies workorders 0002 with what it depends on.
It reads the result through the migration state after 0002. Taking the test database itself back and forward
again, as this test once did, unapplied and reapplied every later migration: three minutes of CI's time.
A database created from empty (the test database itself) never has the columns.
"""

import importlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

MIGRATION = importlib.import_module("workorders.migrations.0002_downtime_link")
BEFORE = [("workorders", "0001_initial")]
AFTER = [("workorders", "0002_downtime_link")]
ALIAS = "downtime_link_migration"


def columns(table: str, on=connection) -> set[str]:
    with on.cursor() as cursor:
        return {column.name for column in on.introspection.get_table_description(cursor, table)}


@pytest.fixture
def old_database():
    """A connection (registered as ALIAS) to an empty database of the test database's engine, dropped after."""
    settings_dict = dict(connection.settings_dict)
    vendor = connection.vendor
    workdir = None
    if vendor == "postgresql":
        settings_dict["NAME"] = f"{connection.settings_dict['NAME']}_{ALIAS}"[:63]
        with connection.creation._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{settings_dict["NAME"]}"')
            cursor.execute(f'CREATE DATABASE "{settings_dict["NAME"]}"')
    else:
        workdir = tempfile.TemporaryDirectory()
        settings_dict["NAME"] = str(Path(workdir.name, "old.sqlite3"))
    settings_dict["TEST"] = {**settings_dict.get("TEST", {}), "NAME": settings_dict["NAME"]}
    old = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, ALIAS)
    connections[ALIAS] = old
    try:
        yield old
    finally:
        old.close()
        del connections[ALIAS]
        if vendor == "postgresql":
            with connection.creation._nodb_cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{settings_dict["NAME"]}"')
        else:
            workdir.cleanup()


def test_a_fresh_database_has_no_link_columns_in_assets():
    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_downtime"))
    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_historicaldowntime"))


def test_existing_links_move_to_workorders_with_their_history(old_database):
    executor = MigrationExecutor(old_database)
    executor.migrate(BEFORE)
    legacy = MIGRATION.with_legacy_fields(executor.loader.project_state(BEFORE)).apps
    with old_database.schema_editor() as editor:
        for model_name, fields in MIGRATION.LEGACY_FIELDS.items():
            model = legacy.get_model("assets", model_name)
            for name in fields:
                editor.add_field(model, model._meta.get_field(name))
    assert {"work_order_id", "caused_by_id"} <= columns("assets_downtime", on=old_database)

    def model(label):
        return legacy.get_model(label).objects.db_manager(ALIAS)

    org = model("tenancy.Organization").create(name="Plant A", slug="plant-a")
    planner = model("auth.User").create(username="planner")
    technician = model("auth.User").create(username="technician")
    pump, fan, boiler = (
        model("assets.Asset").create(organization_id=org.pk, code=code, name=name)
        for code, name in [("P-1", "Pump"), ("F-1", "Fan"), ("B-1", "Boiler")]
    )
    overhaul = model("workorders.WorkOrder").create(
        organization_id=org.pk, number=1, title="Overhaul", asset_id=pump.pk
    )
    check = model("workorders.WorkOrder").create(organization_id=org.pk, number=2, title="Check", asset_id=fan.pk)
    start = timezone.now() - timedelta(days=2)
    ended = start + timedelta(hours=3)

    def downtime(pk, asset, reason, *, ended_at=None, caused_by=None, ended_by=None):
        row = {
            "id": pk,
            "organization_id": org.pk,
            "asset_id": asset.pk,
            "started_at": start,
            "ended_at": ended_at,
            "reason": reason,
            "caused_by_id": caused_by,
            "work_order_id": ended_by,
        }
        model("assets.Downtime").create(**row)
        return row

    def record(row, kind, at, user, **changes):
        model("assets.HistoricalDowntime").create(
            **{**row, **changes},
            created_at=start,
            updated_at=at,
            history_date=at,
            history_type=kind,
            history_user_id=user.pk,
        )

    # The overhaul took the pump down and brought it back (two recorded changes by the technician); the fan is
    # down for the check, still open; the boiler was marked down by hand (no order).
    row = downtime(1, pump, "Overhaul", ended_at=ended, caused_by=overhaul.pk, ended_by=overhaul.pk)
    record(row, "+", start, technician, ended_at=None, work_order_id=None)
    record(row, "~", ended, technician)
    record(downtime(2, fan, "Check", caused_by=check.pk), "+", start, technician)
    record(downtime(3, boiler, "tripped"), "+", start, planner)

    executor = MigrationExecutor(old_database)
    executor.migrate(AFTER)
    after = executor.loader.project_state(AFTER).apps

    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_downtime", on=old_database))
    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_historicaldowntime", on=old_database))
    links = after.get_model("workorders.DowntimeLink").objects.using(ALIAS)
    assert {link.downtime_id: (link.caused_by_id, link.ended_by_id) for link in links} == {
        1: (overhaul.pk, overhaul.pk),
        2: (check.pk, None),
    }  # the boiler's downtime has none
    downtime_rows = after.get_model("assets.Downtime").objects.using(ALIAS)
    downtime_history = after.get_model("assets.HistoricalDowntime").objects.using(ALIAS)
    assert downtime_rows.count() == 3 and downtime_history.count() == 4  # the downtime itself untouched
    history = list(
        after.get_model("workorders.HistoricalDowntimeLink")
        .objects.using(ALIAS)
        .order_by("history_date", "history_id")
        .values_list("downtime_id", "history_type", "caused_by_id", "ended_by_id", "history_user_id", "history_date")
    )
    assert [h[:5] for h in history] == [
        (1, "+", overhaul.pk, None, technician.pk),
        (2, "+", check.pk, None, technician.pk),
        (1, "~", overhaul.pk, overhaul.pk, technician.pk),
    ]
    assert history[2][5] == ended
