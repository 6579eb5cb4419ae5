"""workorders 0002 on a database migrated before it: the links between downtime and work orders, once columns of
assets' tables, become DowntimeLink rows (with their history) and the old columns go.

The test takes the test database back to before workorders 0002, re-creates the old columns exactly as the former
assets 0002 did (the migration's own LEGACY_FIELDS), writes downtime linked to orders through them, and migrates
forward. A database created from empty (the test database itself) never has the columns.
"""

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from assets import services as asset_services
from assets.models import Downtime
from workorders import services as wo_services
from workorders.asset_history import asset_history
from workorders.models import DowntimeLink

pytestmark = pytest.mark.django_db(transaction=True)

MIGRATION = importlib.import_module("workorders.migrations.0002_downtime_link")
BEFORE = [("workorders", "0001_initial")]
AFTER = [("workorders", "0002_downtime_link")]


def columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {column.name for column in connection.introspection.get_table_description(cursor, table)}


def test_a_fresh_database_has_no_link_columns_in_assets():
    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_downtime"))
    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_historicaldowntime"))


# Unapplying and reapplying every later migration: about a minute on an idle machine, several under load.
@pytest.mark.timeout(900)
def test_existing_links_move_to_workorders_with_their_history(org_a, planner_a, technician_a):
    pump = asset_services.create_asset(org_a, code="P-1", name="Pump")
    fan = asset_services.create_asset(org_a, code="F-1", name="Fan")
    boiler = asset_services.create_asset(org_a, code="B-1", name="Boiler")
    overhaul = wo_services.create_work_order(org_a, title="Overhaul", asset=pump, actor=planner_a)
    check = wo_services.create_work_order(org_a, title="Check", asset=fan, actor=planner_a, assignee=technician_a)
    start = timezone.now() - timedelta(days=2)
    ended = start + timedelta(hours=3)

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    legacy = MIGRATION.with_legacy_fields(executor.loader.project_state(BEFORE)).apps
    try:
        with connection.schema_editor() as editor:
            for model_name, fields in MIGRATION.LEGACY_FIELDS.items():
                model = legacy.get_model("assets", model_name)
                for name in fields:
                    editor.add_field(model, model._meta.get_field(name))
        assert {"work_order_id", "caused_by_id"} <= columns("assets_downtime")
        old_downtime = legacy.get_model("assets", "Downtime").objects
        old_history = legacy.get_model("assets", "HistoricalDowntime").objects

        def downtime(pk, asset, reason, *, ended_at=None, caused_by=None, ended_by=None):
            row = {
                "id": pk,
                "organization_id": org_a.pk,
                "asset_id": asset.pk,
                "started_at": start,
                "ended_at": ended_at,
                "reason": reason,
                "caused_by_id": caused_by,
                "work_order_id": ended_by,
            }
            old_downtime.create(**row)
            return row

        def record(row, kind, at, user, **changes):
            old_history.create(
                **{**row, **changes},
                created_at=start,
                updated_at=at,
                history_date=at,
                history_type=kind,
                history_user_id=user.pk,
            )

        # The overhaul took the pump down and brought it back (two recorded changes by the technician); the fan
        # is down for the check, still open; the boiler was marked down by hand (no order).
        row = downtime(1, pump, "Overhaul", ended_at=ended, caused_by=overhaul.pk, ended_by=overhaul.pk)
        record(row, "+", start, technician_a, ended_at=None, work_order_id=None)
        record(row, "~", ended, technician_a)
        record(downtime(2, fan, "Check", caused_by=check.pk), "+", start, technician_a)
        record(downtime(3, boiler, "tripped"), "+", start, planner_a)
    finally:
        MigrationExecutor(connection).migrate(AFTER)
        # Then forward to the latest state again: going back undid every later migration that depends on
        # workorders (its own and other apps'), and the tests after this one need the whole schema.
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())

    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_downtime"))
    assert {"work_order_id", "caused_by_id"}.isdisjoint(columns("assets_historicaldowntime"))
    links = {link.downtime_id: (link.caused_by_id, link.ended_by_id) for link in DowntimeLink.objects.all()}
    assert links == {1: (overhaul.pk, overhaul.pk), 2: (check.pk, None)}  # the boiler's downtime has none
    assert Downtime.objects.count() == 3 and Downtime.history.count() == 4  # the downtime itself untouched
    history = list(DowntimeLink.history.order_by("history_date", "history_id"))
    assert [(h.downtime_id, h.history_type, h.caused_by_id, h.ended_by_id, h.history_user) for h in history] == [
        (1, "+", overhaul.pk, None, technician_a),
        (2, "+", check.pk, None, technician_a),
        (1, "~", overhaul.pk, overhaul.pk, technician_a),
    ]
    assert history[2].history_date == ended

    # What people read: the pump's history names the order that took it down and the one that brought it back.
    entries = {(e["kind"], e["details"]["event"]): e for e in asset_history(pump)}
    assert entries[("downtime", "started")]["details"]["caused_by_work_order"] == overhaul.number
    assert entries[("downtime", "ended")]["details"]["ended_by_work_order"] == overhaul.number

    # And the services carry on from there: completing the check ends the fan's downtime and records it.
    wo_services.start(check, actor=technician_a)
    wo_services.complete(check, actor=technician_a)
    assert Downtime.objects.get(pk=2).ended_at is not None
    assert DowntimeLink.objects.get(downtime_id=2).ended_by == check
