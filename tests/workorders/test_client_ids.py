"""Offline sync never loses an entry: a client id belongs to (organisation, author, kind of record). Sent again
with the same content it is a replay (the stored record, 200); with other content a 409 naming the record
that has it — never a success with someone else's record. Through the API, the technician view's JSON
endpoints (the offline replay) and its forms, including the two reported cases: a planner's comment reusing a
technician's client id, and a part usage on a second work order reusing a used one (the ledger stays right).
On PostgreSQL, concurrent double submits of one entry store one record."""

import json
import threading
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from inventory import services as inventory_services
from inventory.models import MovementKind, Part, StockLevel, StockLocation, StockMovement
from maintenance_site.errors import Conflict
from workorders import services
from workorders.models import Comment, TimeEntry

ORDERS = "/api/v1/work-orders"
PARTS = "/api/v1/inventory/parts"


@pytest.fixture
def order(org_a, planner_a, technician_a):
    work_order = services.create_work_order(org_a, title="Replace the seal", actor=planner_a, assignee=technician_a)
    return services.start(work_order, actor=technician_a)


@pytest.fixture
def second_order(org_a, planner_a, technician_a):
    work_order = services.create_work_order(org_a, title="Check the belt", actor=planner_a, assignee=technician_a)
    return services.start(work_order, actor=technician_a)


@pytest.fixture
def van(org_a, technician_a, storekeeper_a):
    van = StockLocation.objects.create(organization=org_a, name="Van 1", kind="van", holder=technician_a)
    return van


@pytest.fixture
def bearing(org_a, van, storekeeper_a):
    part = Part.objects.create(organization=org_a, sku="BRG-6205", name="Ball bearing 6205", unit="each")
    inventory_services.receive_stock(part, van, 10, "8.00", actor=storekeeper_a)
    return part


def on_hand(part, location) -> Decimal:
    return StockLevel.objects.get(part=part, location=location).on_hand


def error(response) -> dict:
    return response.json()["error"]


def post_json(client, path, payload):
    return client.post(path, json.dumps(payload), content_type="application/json")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def technician_url(name, *args):
    return reverse(f"technician:{name}", args=args)


# --- comments -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestComments:
    def test_a_planner_reusing_a_technicians_client_id_gets_their_own_comment(
        self, api, order, technician_a, planner_a
    ):
        technician = api(technician_a).post(
            f"{ORDERS}/{order.pk}/comments/", {"body": "Seal ordered", "client_id": "c-1"}
        )
        planner = api(planner_a).post(
            f"{ORDERS}/{order.pk}/comments/", {"body": "Approved the overtime", "client_id": "c-1"}
        )
        assert (technician.status_code, planner.status_code) == (201, 201)
        assert planner.json()["id"] != technician.json()["id"]
        assert (planner.json()["body"], planner.json()["author"]) == ("Approved the overtime", planner_a.pk)
        assert sorted(Comment.objects.values_list("body", flat=True)) == ["Approved the overtime", "Seal ordered"]

    def test_a_replay_returns_the_stored_comment(self, api, order, technician_a):
        client = api(technician_a)
        first = client.post(f"{ORDERS}/{order.pk}/comments/", {"body": "Seal ordered", "client_id": "c-1"})
        replay = client.post(f"{ORDERS}/{order.pk}/comments/", {"body": " Seal ordered ", "client_id": "c-1"})
        assert (first.status_code, replay.status_code) == (201, 200)
        assert replay.json()["id"] == first.json()["id"]
        assert Comment.objects.count() == 1

    @pytest.mark.parametrize("other", ["body", "work_order"])
    def test_the_same_client_id_with_other_content_is_a_409_naming_the_comment(
        self, api, order, second_order, technician_a, other
    ):
        client = api(technician_a)
        first = client.post(f"{ORDERS}/{order.pk}/comments/", {"body": "Seal ordered", "client_id": "c-1"})
        target = second_order if other == "work_order" else order
        body = "Seal fitted" if other == "body" else "Seal ordered"
        reused = client.post(f"{ORDERS}/{target.pk}/comments/", {"body": body, "client_id": "c-1"})
        assert reused.status_code == 409
        assert error(reused)["code"] == "client_id_reused"
        existing = error(reused)["existing"]
        assert (existing["kind"], existing["id"]) == ("comment", first.json()["id"])
        assert existing["work_order"] == order.number
        assert f"comment #{first.json()['id']} on {order.number}" in error(reused)["message"]
        assert other.replace("_", " ") in error(reused)["message"]
        assert list(Comment.objects.values_list("body", flat=True)) == ["Seal ordered"]


# --- time entries ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestTimeEntries:
    def test_a_planner_logging_for_the_technician_has_client_ids_of_their_own(
        self, api, order, technician_a, planner_a
    ):
        own = api(technician_a).post(f"{ORDERS}/{order.pk}/time-entries/", {"minutes": 30, "client_id": "t-1"})
        for_them = api(planner_a).post(
            f"{ORDERS}/{order.pk}/time-entries/", {"minutes": 45, "technician": technician_a.pk, "client_id": "t-1"}
        )
        assert (own.status_code, for_them.status_code) == (201, 201)
        entries = TimeEntry.objects.order_by("pk")
        assert [(e.minutes, e.technician, e.entered_by) for e in entries] == [
            (30, technician_a, technician_a),
            (45, technician_a, planner_a),
        ]

    def test_the_same_client_id_with_other_minutes_is_a_409(self, api, order, technician_a):
        client = api(technician_a)
        first = client.post(f"{ORDERS}/{order.pk}/time-entries/", {"minutes": 30, "client_id": "t-1"})
        replay = client.post(f"{ORDERS}/{order.pk}/time-entries/", {"minutes": 30, "client_id": "t-1"})
        reused = client.post(f"{ORDERS}/{order.pk}/time-entries/", {"minutes": 40, "client_id": "t-1"})
        assert (first.status_code, replay.status_code, reused.status_code) == (201, 200, 409)
        assert error(reused)["existing"]["id"] == first.json()["id"]
        assert "minutes" in error(reused)["message"]
        assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [30]


# --- part usage -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestPartUsage:
    def test_a_used_client_id_on_a_second_work_order_is_a_409_and_the_ledger_stays_right(
        self, api, org_a, order, second_order, technician_a, van, bearing
    ):
        client = api(technician_a)
        body = {"work_order": order.pk, "location": van.pk, "quantity": 2, "client_id": "u-1"}
        first = client.post(f"{PARTS}/{bearing.pk}/usage/", body)
        assert first.status_code == 201
        reused = client.post(f"{PARTS}/{bearing.pk}/usage/", {**body, "work_order": second_order.pk})
        assert reused.status_code == 409
        assert error(reused)["code"] == "client_id_reused"
        assert error(reused)["existing"]["id"] == first.json()["id"]
        assert (
            f"stock movement #{first.json()['id']} (2 × BRG-6205 from Van 1 on {order.number})"
            in (error(reused)["message"])
        )
        assert on_hand(bearing, van) == 8
        assert StockMovement.objects.filter(kind=MovementKind.ISSUE).count() == 1
        assert not second_order.stock_movements.exists()
        assert inventory_services.reconcile(org_a) == []

    def test_a_replay_and_another_authors_client_id(self, api, org_a, order, technician_a, storekeeper_a, van, bearing):
        body = {"work_order": order.pk, "location": van.pk, "quantity": 1, "client_id": "u-1"}
        first = api(technician_a).post(f"{PARTS}/{bearing.pk}/usage/", body)
        replay = api(technician_a).post(f"{PARTS}/{bearing.pk}/usage/", {**body, "quantity": "1.000"})
        storekeeper = api(storekeeper_a).post(f"{PARTS}/{bearing.pk}/usage/", body)  # their own id space
        assert (first.status_code, replay.status_code, storekeeper.status_code) == (201, 200, 201)
        assert replay.json()["id"] == first.json()["id"] != storekeeper.json()["id"]
        assert on_hand(bearing, van) == 8
        assert inventory_services.reconcile(org_a) == []

    def test_a_replay_after_the_order_closed_still_answers_with_the_movement(self, order, technician_a, van, bearing):
        movement = inventory_services.issue_to_work_order(order, bearing, van, 1, actor=technician_a, client_id="u-1")
        services.complete(order, actor=technician_a)
        again = inventory_services.issue_to_work_order(order, bearing, van, 1, actor=technician_a, client_id="u-1")
        assert again.pk == movement.pk and again.replayed
        with pytest.raises(Conflict) as refused:
            inventory_services.issue_to_work_order(order, bearing, van, 3, actor=technician_a, client_id="u-1")
        assert refused.value.code == "client_id_reused"


# --- the technician view: offline replay endpoints and forms ---------------------------------------------------


@pytest.mark.django_db
class TestTechnicianView:
    def test_the_replay_endpoints_answer_replays_and_refuse_reused_ids(self, order, technician_a):
        client = signed_in(technician_a)
        note = technician_url("api-note", order.pk)
        assert post_json(client, note, {"body": "Seal ordered", "client_id": "n-1"}).status_code == 201
        assert post_json(client, note, {"body": "Seal ordered", "client_id": "n-1"}).status_code == 200
        reused = post_json(client, note, {"body": "Pump restarted", "client_id": "n-1"})
        assert reused.status_code == 409
        assert reused.json()["error"]["code"] == "client_id_reused"
        assert reused.json()["error"]["existing"]["kind"] == "comment"
        time = technician_url("api-time", order.pk)
        assert post_json(client, time, {"minutes": 20, "client_id": "t-1"}).status_code == 201
        reused_time = post_json(client, time, {"minutes": 25, "client_id": "t-1"})
        assert reused_time.status_code == 409
        assert "already used by your time entry" in reused_time.json()["error"]["message"]
        assert list(Comment.objects.values_list("body", flat=True)) == ["Seal ordered"]
        assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [20]

    def test_a_planners_note_reusing_a_technicians_client_id_is_stored(self, org_a, order, technician_a, planner_a):
        for user, body in ((technician_a, "Seal ordered"), (planner_a, "Overtime approved")):
            response = post_json(
                signed_in(user), technician_url("api-note", order.pk), {"body": body, "client_id": "n-1"}
            )
            assert response.status_code == 201
        assert set(Comment.objects.values_list("author", "body")) == {
            (technician_a.pk, "Seal ordered"),
            (planner_a.pk, "Overtime approved"),
        }

    def test_the_part_form_refuses_a_used_client_id_on_another_order(
        self, org_a, order, second_order, technician_a, van, bearing
    ):
        client = signed_in(technician_a)
        body = {"part_query": "BRG-6205", "quantity": "2", "location": van.pk, "client_id": "p-1"}
        assert client.post(technician_url("part", order.pk), body).status_code == 302
        refused = client.post(technician_url("part", second_order.pk), body)
        assert refused.status_code == 409
        assert "already used by your stock movement" in refused.content.decode()
        assert on_hand(bearing, van) == 8
        assert not second_order.stock_movements.exists()
        assert inventory_services.reconcile(org_a) == []

    def test_the_note_form_refuses_a_reused_client_id_with_another_text(self, order, technician_a):
        client = signed_in(technician_a)
        assert client.post(technician_url("note", order.pk), {"body": "One", "client_id": "n-9"}).status_code == 302
        assert client.post(technician_url("note", order.pk), {"body": "One", "client_id": "n-9"}).status_code == 302
        refused = client.post(technician_url("note", order.pk), {"body": "Two", "client_id": "n-9"})
        assert refused.status_code == 409
        assert list(Comment.objects.values_list("body", flat=True)) == ["One"]


# --- concurrent double submits, where rows really lock (PostgreSQL) ------------------------------------------------


def at_once(count, target):
    """Run `target(index)` in `count` threads released together; results (or exceptions) in index order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def work(index):
        try:
            barrier.wait(timeout=30)
            results[index] = target(index)
        except Exception as exc:  # collected and checked by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a submit hung"
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestConcurrentDoubleSubmits:
    def test_one_comment_per_client_id(self, order, technician_a):
        results = at_once(
            4, lambda i: services.add_comment(order, actor=technician_a, body="Seal ordered", client_id="c-1")
        )
        assert all(isinstance(result, Comment) for result in results), results
        assert len({result.pk for result in results}) == 1
        assert Comment.objects.count() == 1

    def test_one_time_entry_per_client_id_even_across_orders(self, order, second_order, technician_a):
        orders = [order, second_order]
        results = at_once(
            4, lambda i: services.log_time(orders[i % 2], actor=technician_a, minutes=30, client_id="t-1")
        )
        assert TimeEntry.objects.count() == 1
        stored = TimeEntry.objects.get()
        for index, result in enumerate(results):
            if orders[index % 2].pk == stored.work_order_id:
                assert isinstance(result, TimeEntry) and result.pk == stored.pk, result
            else:
                assert isinstance(result, Conflict) and result.code == "client_id_reused", result

    def test_one_part_usage_per_client_id_and_the_ledger_reconciles(self, org_a, order, technician_a, van, bearing):
        def issue(index):
            return inventory_services.issue_to_work_order(order, bearing, van, 2, actor=technician_a, client_id="u-1")

        results = at_once(4, issue)
        assert all(isinstance(result, StockMovement) for result in results), results
        assert len({result.pk for result in results}) == 1
        assert StockMovement.objects.filter(kind=MovementKind.ISSUE).count() == 1
        assert on_hand(bearing, van) == 8
        assert inventory_services.reconcile(org_a) == []

    def test_the_api_answers_one_201_and_replays(self, api, order, technician_a, van, bearing):
        body = {"work_order": order.pk, "location": van.pk, "quantity": 1, "client_id": "u-2"}
        responses = at_once(3, lambda i: api(technician_a).post(f"{PARTS}/{bearing.pk}/usage/", body, format="json"))
        assert sorted(response.status_code for response in responses) == [200, 200, 201]
        assert len({response.json()["id"] for response in responses}) == 1
        assert on_hand(bearing, van) == 9
