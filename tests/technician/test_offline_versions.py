"""What the phone queues offline carries the order's version and the device's time (issue 29, "Time as it
happened"): a step or a tick made on an order that somebody else changed since is refused as stale (409
`stale_version`, saying who changed what), the technician's own earlier steps are not a conflict; ticks, notes and
time entries are dated by the device within the same bounds as the lifecycle steps, the sync time kept apart."""

import json
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.technician.test_offline import backdate
from workorders import services
from workorders.models import ChecklistItem, Comment, TimeEntry, WorkOrder

pytestmark = pytest.mark.django_db


def api(name, *args):
    return reverse(f"technician:{name}", args=args)


def send(client, path, **body):
    body.setdefault("client_id", str(uuid.uuid4()))
    for key, value in list(body.items()):
        if hasattr(value, "isoformat"):
            body[key] = value.isoformat()
    return client.post(path, json.dumps(body), content_type="application/json")


def test_the_order_page_carries_its_version(client_of, technician_a, order):
    page = client_of(technician_a).get(reverse("technician:order", args=[order.pk]))
    assert f'data-version="{order.version}"'.encode() in page.content


def test_a_step_on_an_order_changed_by_someone_else_since_is_stale(client_of, technician_a, planner_a, order):
    backdate(order)
    version = order.version  # what the phone saved
    services.start(order, actor=technician_a)
    services.hold(order, reason="Waiting for the crane", actor=planner_a)  # the planner, meanwhile
    services.resume(order, actor=planner_a)
    answer = send(
        client_of(technician_a),
        api("api-step", order.pk, "complete"),
        occurred_at=timezone.now() - timedelta(minutes=5),
        version=version,
    )
    assert answer.status_code == 409, answer.json()
    error = answer.json()["error"]
    assert error["code"] == "stale_version" and "planner" in error["message"] and "on hold" in error["message"]
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS


def test_the_technicians_own_earlier_steps_are_not_a_conflict(client_of, technician_a, order):
    backdate(order)
    version, client = order.version, client_of(technician_a)
    now = timezone.now()
    started = send(client, api("api-step", order.pk, "start"), occurred_at=now - timedelta(minutes=30), version=version)
    assert started.status_code == 201, started.json()
    item = order.checklist.get(text="Isolate the pump")
    ticked = send(
        client,
        api("api-checklist", order.pk, item.pk),
        done="1",
        occurred_at=now - timedelta(minutes=20),
        version=version,
    )
    assert ticked.status_code == 200, ticked.json()
    done = send(client, api("api-step", order.pk, "complete"), occurred_at=now - timedelta(minutes=10), version=version)
    assert done.status_code == 201, done.json()


def test_a_tick_on_an_item_changed_by_someone_else_is_stale_and_completing_after_a_new_required_item_too(
    client_of, technician_a, planner_a, order
):
    backdate(order)
    version, client = order.version, client_of(technician_a)
    item = order.checklist.get(text="Isolate the pump")
    services.record_checklist_result(item, actor=planner_a, done=True)  # somebody else ticked it meanwhile
    tick = send(client, api("api-checklist", order.pk, item.pk), done="1", version=version)
    assert tick.status_code == 409 and tick.json()["error"]["code"] == "stale_version"
    services.start(order, actor=technician_a)
    services.add_checklist_item(order, text="Photograph the seal", actor=planner_a)
    done = send(client, api("api-step", order.pk, "complete"), occurred_at=timezone.now(), version=version)
    assert done.status_code == 409, done.json()
    assert "Photograph the seal" in done.json()["error"]["message"]


def test_an_unknown_version_names_the_field(client_of, technician_a, order):
    answer = send(client_of(technician_a), api("api-step", order.pk, "start"), version=10**9)
    assert answer.status_code == 400 and "version" in answer.json()["error"]["fields"]


def test_ticks_notes_and_time_are_dated_by_the_device(client_of, technician_a, order):
    backdate(order)
    client, when = client_of(technician_a), timezone.now() - timedelta(minutes=50)
    item = order.checklist.get(text="Isolate the pump")
    assert send(client, api("api-checklist", order.pk, item.pk), done="1", occurred_at=when).status_code == 200
    item = ChecklistItem.objects.get(pk=item.pk)
    assert item.done_at == when and item.history.latest("history_id").history_date == when
    assert send(client, api("api-note", order.pk), body="Seal was cracked", occurred_at=when).status_code == 201
    note = Comment.objects.get(work_order=order)
    assert note.occurred_at == when and note.created_at > when  # the sync time kept apart
    assert note.history.get().history_date == when
    assert send(client, api("api-time", order.pk), minutes="40", occurred_at=when).status_code == 201
    entry = TimeEntry.objects.get(work_order=order)
    assert entry.ended_at == when and entry.started_at == when - timedelta(minutes=40)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [("api-note", {"body": "x"}), ("api-time", {"minutes": "5"}), ("api-checklist", {"done": "1"})],
)
def test_device_times_out_of_bounds_are_refused_beside_the_field(client_of, technician_a, order, kind, fields):
    client = client_of(technician_a)
    args = (order.pk, order.checklist.first().pk) if kind == "api-checklist" else (order.pk,)
    future = send(client, api(kind, *args), occurred_at=timezone.now() + timedelta(hours=1), **fields)
    assert future.status_code == 400 and future.json()["error"]["code"] == "occurred_at_out_of_bounds"
    assert "occurred_at" in future.json()["error"]["fields"]
    old = send(client, api(kind, *args), occurred_at=timezone.now() - timedelta(days=30), **fields)
    assert old.status_code == 400 and "too old" in old.json()["error"]["message"]


# --- parts used offline (gap closed: they carry the version and the device's time like the rest) ------------


def use_part(client, order, van, seal, **body):
    return send(client, api("api-part", order.pk), part=seal.pk, quantity="1", location=van.pk, **body)


def test_a_part_used_offline_on_an_order_changed_by_someone_else_is_stale_until_applied_anyway(
    client_of, technician_a, planner_a, order, van, seal
):
    from inventory.models import StockLevel, StockMovement

    backdate(order)
    version, client, used_at = order.version, client_of(technician_a), timezone.now() - timedelta(minutes=20)
    services.start(order, actor=technician_a)  # my own step: never a conflict
    services.hold(order, reason="Waiting for the crane", actor=planner_a)  # the planner, meanwhile
    services.resume(order, actor=planner_a)
    refused = use_part(client, order, van, seal, client_id="part-stale", occurred_at=used_at, version=version)
    assert refused.status_code == 409, refused.json()
    error = refused.json()["error"]
    assert error["code"] == "stale_version" and "planner" in error["message"] and "on hold" in error["message"]
    assert not StockMovement.objects.filter(work_order=order).exists()
    assert StockLevel.objects.get(part=seal, location=van).on_hand == 2  # nothing taken from the van

    # The technician read the refusal and applies it anyway: the phone sends it again without the version.
    applied = use_part(client, order, van, seal, client_id="part-stale", occurred_at=used_at)
    assert applied.status_code == 201, applied.json()
    movement = StockMovement.objects.get(work_order=order)
    assert (movement.user, movement.occurred_at) == (technician_a, used_at)
    assert movement.created_at > used_at  # the sync time kept apart
    assert StockLevel.objects.get(part=seal, location=van).on_hand == 1


def test_a_part_used_offline_after_my_own_steps_is_applied_with_the_device_time(
    client_of, technician_a, order, van, seal
):
    from inventory.models import StockMovement

    backdate(order)
    version, client, used_at = order.version, client_of(technician_a), timezone.now() - timedelta(minutes=10)
    started = send(client, api("api-step", order.pk, "start"), occurred_at=used_at - timedelta(minutes=5))
    assert started.status_code == 201
    answer = use_part(client, order, van, seal, occurred_at=used_at, version=version)
    assert answer.status_code == 201, answer.json()
    assert StockMovement.objects.get(work_order=order).occurred_at == used_at


def test_a_part_used_offline_on_an_order_cancelled_meanwhile_is_refused_in_the_orders_words(
    client_of, technician_a, planner_a, order, van, seal
):
    from inventory.models import StockMovement

    backdate(order)
    version = order.version
    services.cancel(order, reason="Pump replaced instead", actor=planner_a)
    refused = use_part(client_of(technician_a), order, van, seal, occurred_at=timezone.now(), version=version)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "work_order_closed" and "cancelled" in error["message"]
    assert not StockMovement.objects.filter(work_order=order).exists()


def test_a_part_used_offline_with_a_device_time_out_of_bounds_is_refused_beside_the_field(
    client_of, technician_a, order, van, seal
):
    client = client_of(technician_a)
    future = use_part(client, order, van, seal, occurred_at=timezone.now() + timedelta(hours=1))
    assert future.status_code == 400 and "occurred_at" in future.json()["error"]["fields"]
    before_mine = use_part(client, order, van, seal, occurred_at=timezone.now() - timedelta(days=2))
    assert before_mine.status_code == 400 and "before" in before_mine.json()["error"]["message"]


# --- required items edited by someone else (gap closed) -----------------------------------------------------


def edit_item(item, who, **changes):
    """An edit by someone else outside the services (the shell, a data fix): simple-history records who."""
    for name, value in changes.items():
        setattr(item, name, value)
    item._history_user = who
    item.save()


def complete_offline(client, order, version):
    return send(client, api("api-step", order.pk, "complete"), occurred_at=timezone.now(), version=version)


def test_completing_after_someone_else_reworded_a_required_item_is_stale(client_of, technician_a, planner_a, order):
    backdate(order)
    version, client = order.version, client_of(technician_a)
    services.start(order, actor=technician_a)
    item = order.checklist.get(text="Isolate the pump")
    services.record_checklist_result(item, actor=technician_a, done=True)
    edit_item(ChecklistItem.objects.get(pk=item.pk), planner_a, text="Isolate and lock out the pump")
    answer = complete_offline(client, order, version)
    assert answer.status_code == 409, answer.json()
    error = answer.json()["error"]
    assert error["code"] == "stale_version"
    assert "“Isolate the pump” to “Isolate and lock out the pump”" in error["message"] and "planner" in error["message"]
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS


def test_completing_after_an_item_was_made_required_is_stale(client_of, technician_a, planner_a, order):
    backdate(order)
    version, client = order.version, client_of(technician_a)
    services.start(order, actor=technician_a)
    services.record_checklist_result(order.checklist.get(text="Isolate the pump"), actor=technician_a, done=True)
    edit_item(order.checklist.get(text="Remarks"), planner_a, required=True)
    answer = complete_offline(client, order, version)
    assert answer.status_code == 409
    assert "made the checklist item “Remarks” required" in answer.json()["error"]["message"]


def test_completing_is_not_stale_for_what_it_did_not_rely_on(client_of, technician_a, planner_a, order):
    """Someone else ticking a required item, rewording an optional one or making one optional: the required items
    the phone checked still stand."""
    backdate(order)
    version, client = order.version, client_of(technician_a)
    services.start(order, actor=technician_a)
    services.record_checklist_result(order.checklist.get(text="Isolate the pump"), actor=planner_a, done=True)
    edit_item(order.checklist.get(text="Remarks"), planner_a, text="Remarks for the next visit")
    answer = complete_offline(client, order, version)
    assert answer.status_code == 201, answer.json()


def test_the_refusals_of_a_phone_are_in_the_technicians_language(client_of, technician_a, planner_a, order):
    from maintenance_site.tenancy.services import set_language

    set_language(technician_a, actor=technician_a, language="es")
    backdate(order)
    version, client = order.version, client_of(technician_a)
    services.start(order, actor=technician_a)
    edit_item(order.checklist.get(text="Isolate the pump"), planner_a, text="Isolate and lock out the pump")
    stale = complete_offline(client, order, version).json()["error"]["message"]
    assert "cambió el elemento obligatorio" in stale and "«Isolate the pump»" in stale
    future = send(client, api("api-note", order.pk), body="x", occurred_at=timezone.now() + timedelta(hours=1))
    assert "en el futuro" in future.json()["error"]["message"]
