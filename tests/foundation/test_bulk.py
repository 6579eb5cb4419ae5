"""`maintenance_site.bulk`, the set-based writes of the batch services: rows go in as the ORM would write them
(defaults, timestamps, JSON), with ids taken beforehand when asked; rows meeting a unique conflict are left out and
say so; history rows name who acted and why; id sets select exactly their rows; the instances built for rows just
written are those rows."""

import gc
import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from maintenance_site import audit
from maintenance_site.bulk import (
    collector_paused,
    history_by_select,
    id_in,
    insert_new_rows,
    insert_rows,
    loaded,
    take_ids,
)
from maintenance_site.events.models import Event
from workorders.models import Procedure

pytestmark = pytest.mark.django_db


def _procedures(org, names):
    return [(org.pk, name, f"About {name}") for name in names]


def test_rows_go_in_with_their_defaults_timestamps_and_ids(org_a):
    ids = insert_rows(Procedure, ["organization_id", "name", "description"], _procedures(org_a, ["Pumps", "Fans"]))
    rows = {p.pk: p for p in Procedure.objects.filter(pk__in=ids)}
    assert [rows[pk].name for pk in ids] == ["Pumps", "Fans"]  # the ids in the order of the rows
    assert all(p.created_at is not None and p.created_at == p.updated_at for p in rows.values())
    later = Procedure.objects.create(organization=org_a, name="Later")
    assert later.pk > max(ids)  # the sequence moved past the ids taken


def test_ids_taken_beforehand_are_the_rows_ids_and_nobody_elses(org_a):
    taken = take_ids(Procedure, 3)
    assert taken == sorted(taken) and len(set(taken)) == 3
    other = Procedure.objects.create(organization=org_a, name="Meanwhile")
    assert other.pk not in taken
    ids = insert_rows(Procedure, ["organization_id", "name"], [(org_a.pk, n) for n in "ABC"], ids=taken)
    assert ids == taken and set(Procedure.objects.filter(pk__in=taken).values_list("name", flat=True)) == set("ABC")


def test_json_is_given_as_its_text_and_stored_as_json(org_a):
    payload = {"title": "Pumpe “Süd”", "due_at": "2027-06-07T04:00:00Z", "nested": {"n": [1, 2]}}
    insert_rows(
        Event, ["organization_id", "type", "payload"], [(org_a.pk, "tests:bulk", json.dumps(payload))], with_ids=False
    )
    event = Event.objects.get(type="tests:bulk")
    assert event.payload == payload and event.sequence is None and event.delivery_attempts == 0


def test_rows_meeting_a_unique_conflict_are_left_out_and_the_call_says_so(org_a):
    Procedure.objects.create(organization=org_a, name="Pumps", description="the first")
    assert insert_new_rows(Procedure, ["organization_id", "name", "description"], _procedures(org_a, ["Fans"]))
    written = insert_new_rows(
        Procedure, ["organization_id", "name", "description"], _procedures(org_a, ["Doors", "Pumps", "Gates"])
    )
    assert written is False
    assert sorted(Procedure.objects.values_list("name", flat=True)) == ["Doors", "Fans", "Gates", "Pumps"]
    assert Procedure.objects.get(name="Pumps").description == "the first"


def test_history_rows_name_who_acted_and_why(org_a, planner_a):
    ids = insert_rows(Procedure, ["organization_id", "name"], [(org_a.pk, "Pumps"), (org_a.pk, "Fans")])
    with audit.acting_as(planner_a):
        where, params = id_in("t.id", ids)
        assert history_by_select(Procedure, where, params, reason="imported") == 2
    rows = Procedure.history.filter(id__in=ids)
    assert {(r.name, r.history_type, r.history_user_id, r.history_change_reason) for r in rows} == {
        ("Pumps", "+", planner_a.pk, "imported"),
        ("Fans", "+", planner_a.pk, "imported"),
    }


@pytest.mark.parametrize("pick", [slice(1, 4), slice(0, 5, 2)], ids=["a run", "scattered"])
def test_an_id_set_selects_exactly_its_rows(org_a, pick):
    ids = insert_rows(Procedure, ["organization_id", "name"], [(org_a.pk, f"P{n}") for n in range(5)])
    wanted = ids[pick]
    where, params = id_in("id", wanted)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Procedure._meta.db_table} WHERE {where}", params)  # noqa: S608
        assert sorted(row[0] for row in cursor.fetchall()) == wanted


def test_the_instances_of_rows_just_written_are_those_rows(org_a):
    now = datetime(2027, 6, 7, 4, 0, tzinfo=UTC)
    fields = ["organization_id", "created_at", "updated_at", "name", "description"]
    rows = [(org_a.pk, now, now, "Pumps", "")]
    [made] = loaded(Procedure, fields, rows, insert_rows(Procedure, fields, rows))
    stored = Procedure.objects.get(pk=made.pk)
    assert not made._state.adding and made.organization == org_a
    assert {f.attname: getattr(made, f.attname) for f in Procedure._meta.concrete_fields} == {
        f.attname: getattr(stored, f.attname) for f in Procedure._meta.concrete_fields
    }


def test_the_collector_is_paused_for_a_batch_and_back_afterwards():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
