"""The batch services (`create_work_orders_bulk`, `reserve_bulk`): an order they create is the order
`create_work_order` and `reserve` create one by one — the same fields, history rows, checklist, reservation, SLA
clock and event, compared field by field — they refuse what the one-by-one services refuse, and their queries do
not grow with the orders."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import Part, Reservation, StockLevel, StockLocation
from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.events.models import Event
from maintenance_site.tenancy import SYSTEM
from sla import services as sla_services
from sla.models import SLAClock
from workorders import services
from workorders.models import ChecklistItem, WorkOrder
from workorders.services import NewWorkOrder

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch):
    """`timezone.now()` stands still, so that both ways of creating an order stamp the same times."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def procedure(org_a, planner_a):
    return services.create_procedure(
        org_a,
        name="Pump service",
        actor=planner_a,
        items=[
            {"text": "Check the seal", "kind": "pass_fail"},
            {"text": "Grease", "required": False},
            {"text": "Vibration", "kind": "number", "unit": "mm/s"},
        ],
    )


@pytest.fixture
def store(org_a):
    warehouse = StockLocation.objects.create(organization=org_a, name="Warehouse")
    seal = Part.objects.create(organization=org_a, sku="SEAL-1", name="Seal kit", unit="each", reorder_point=3)
    StockLevel.objects.create(organization=org_a, part=seal, location=warehouse, on_hand=Decimal("10"))
    return {"warehouse": warehouse, "seal": seal}


@pytest.fixture
def policy(org_a):
    calendar = sla_services.create_calendar(org_a, name="24/7", always_open=True, actor=SYSTEM)
    return sla_services.create_policy(
        org_a,
        name="High",
        priority="high",
        calendar=calendar,
        response_minutes=60,
        resolution_minutes=240,
        actor=SYSTEM,
    )


def _fields(instance, *, leave_out=()) -> dict:
    """Every column of a row, its own id and what names the order left out."""
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if f.attname not in ("id", "history_id", *leave_out)
    }


def _history(model, **where) -> list[dict]:
    rows = model.history.model.objects.filter(**where).order_by("history_id")
    return [_fields(row, leave_out=("work_order_id", "number")) for row in rows]


def _related(model, order) -> list[dict]:
    rows = model.objects.filter(work_order=order).order_by("pk")
    return [_fields(row, leave_out=("work_order_id",)) for row in rows]


def _everything(order) -> dict:
    """What an order is, besides its id and number: its row, its history, its checklist and its history, its
    reservations and their history, its SLA clock and its history, its event."""
    items = list(ChecklistItem.objects.filter(work_order=order).values_list("pk", flat=True))
    reservations = list(Reservation.objects.filter(work_order=order).values_list("pk", flat=True))
    clocks = list(SLAClock.objects.filter(work_order=order).values_list("pk", flat=True))
    event = Event.objects.get(type="work-order:created", payload__id=order.pk)
    return {
        "order": _fields(WorkOrder.objects.get(pk=order.pk), leave_out=("number",)),
        "order history": _history(WorkOrder, id=order.pk),
        "checklist": _related(ChecklistItem, order),
        "checklist history": _history(ChecklistItem, id__in=items),
        "reservations": _related(Reservation, order),
        "reservation history": _history(Reservation, id__in=reservations),
        "clock": _related(SLAClock, order),
        "clock history": _history(SLAClock, id__in=clocks),
        "event": {
            **_fields(event, leave_out=("payload",)),
            "payload": {k: v for k, v in event.payload.items() if k not in ("id", "number")},
        },
    }


def test_a_bulk_created_order_is_the_order_created_one_by_one(
    frozen, org_a, planner_a, technician_a, pump, procedure, store, policy
):
    fields = {
        "title": "Quarterly pump service",
        "description": "Look and listen.",
        "type": WorkOrder.Type.INSPECTION,
        "priority": WorkOrder.Priority.HIGH,
        "due_at": NOW + timedelta(days=2),
        "estimated_minutes": 45,
        "source": WorkOrder.Source.PREVENTIVE,
    }
    with audit.acting_as(planner_a, reason="planned"):
        one = services.create_work_order(
            org_a, actor=planner_a, asset=pump, assignee=technician_a, procedure=procedure, **fields
        )
        inventory_services.reserve(one, store["seal"], store["warehouse"], 2, actor=planner_a)
        [bulk] = services.create_work_orders_bulk(
            [
                NewWorkOrder(
                    organization_id=org_a.pk,
                    asset_id=pump.pk,
                    assignee_id=technician_a.pk,
                    procedure_id=procedure.pk,
                    **fields,
                )
            ],
            actor=planner_a,
        )
        result = inventory_services.reserve_bulk([(bulk, store["seal"], store["warehouse"], 2)], actor=planner_a)
    assert result.refused == [] and len(result.reservations) == 1

    expected, got = _everything(one), _everything(bulk)
    for part in expected:
        assert got[part] == expected[part], part
    # what makes it this order: its own id and the next number of the organisation's counter
    assert bulk.pk != one.pk and int(bulk.number.removeprefix("WO-")) == int(one.number.removeprefix("WO-")) + 1
    # and the order it returns is the row in the database
    assert _fields(bulk) == _fields(WorkOrder.objects.get(pk=bulk.pk))
    # the things compared are there: the clock of the high-priority policy, three steps, the history's author
    assert len(got["checklist"]) == 3 and got["clock"][0]["policy_id"] == policy.pk
    assert {row["history_user_id"] for part in expected if "history" in part for row in got[part]} == {planner_a.pk}
    assert got["order history"][0]["history_change_reason"] == "planned"
    assert StockLevel.objects.get(part=store["seal"]).reserved == Decimal("4")


def test_the_orders_of_several_organisations_take_their_own_numbers(org_a, org_b, pump, technician_a):
    mine = services.create_work_order(org_a, title="Before", actor=SYSTEM)
    orders = services.create_work_orders_bulk(
        [
            NewWorkOrder(organization_id=org_a.pk, title="A 1", asset_id=pump.pk),
            NewWorkOrder(organization_id=org_b.pk, title="B 1"),
            NewWorkOrder(organization_id=org_a.pk, title="A 2", assignee_id=technician_a.pk),
        ],
        actor=SYSTEM,
    )
    first = int(mine.number.removeprefix("WO-"))
    assert [o.number for o in orders] == [f"WO-{first + 1:06d}", "WO-000001", f"WO-{first + 2:06d}"]
    assert orders[0].location_id == pump.location_id  # from the asset
    assert [o.status for o in orders] == ["open", "open", "assigned"]
    assert Event.objects.filter(type="work-order:created", organization=org_b).count() == 1
    assert WorkOrder.history.filter(id__in=[o.pk for o in orders]).count() == 3


@pytest.mark.parametrize(
    "change, refusal",
    [
        ({"asset": "foreign"}, (InvalidInput, "asset belongs to another organisation")),
        ({"procedure": "foreign"}, (InvalidInput, "No such procedure")),
        ({"priority": "urgent"}, (InvalidInput, "priority")),
        ({"title": ""}, (InvalidInput, "title")),
        ({"title": "x" * 201}, (InvalidInput, "title")),
        ({"assignee": "viewer"}, (InvalidInput, "cannot carry out work")),
        ({"actor": "technician"}, (PermissionDeniedError, None)),
        ({"actor": "stranger"}, (PermissionDeniedError, "not a member")),
    ],
)
def test_a_batch_refuses_what_one_by_one_refuses_and_writes_nothing(
    org_a, org_b, planner_a, technician_a, viewer_a, manager_b, pump, foreign_asset, change, refusal
):
    foreign_procedure = services.create_procedure(org_b, name="Theirs", actor=manager_b)
    people = {"viewer": viewer_a, "technician": technician_a, "stranger": manager_b}
    good = NewWorkOrder(organization_id=org_a.pk, title="Fine", asset_id=pump.pk)
    bad = NewWorkOrder(organization_id=org_a.pk, title="Check")
    actor = planner_a
    for name, value in change.items():
        if name == "asset":
            bad.asset_id = foreign_asset.pk
        elif name == "procedure":
            bad.procedure_id = foreign_procedure.pk
        elif name == "assignee":
            bad.assignee_id = people[value].pk
        elif name == "actor":
            actor = people[value]
        else:
            setattr(bad, name, value)
    error, message = refusal
    before = (WorkOrder.objects.count(), Event.objects.count())
    with pytest.raises(error, match=message):
        services.create_work_orders_bulk([good, bad], actor=actor)
    assert (WorkOrder.objects.count(), Event.objects.count()) == before


def test_reserving_in_bulk_grows_an_active_reservation_and_reports_what_is_not_in_use(org_a, planner_a, pump, store):
    order, other = services.create_work_orders_bulk(
        [NewWorkOrder(organization_id=org_a.pk, title=t, asset_id=pump.pk) for t in ("One", "Two")], actor=planner_a
    )
    inventory_services.reserve(order, store["seal"], store["warehouse"], 1, actor=planner_a)
    old = StockLocation.objects.create(organization=org_a, name="Closed store", is_active=False)
    result = inventory_services.reserve_bulk(
        [
            (order, store["seal"], store["warehouse"], 2),
            (other, store["seal"], old, 1),
            (other, store["seal"], store["warehouse"], "1"),
        ],
        actor=planner_a,
    )
    assert [index for index, _ in result.refused] == [1] and "Closed store is no longer in use" in result.refused[0][1]
    held = {(r.work_order_id, r.quantity) for r in Reservation.objects.filter(status=Reservation.Status.ACTIVE)}
    assert held == {(order.pk, Decimal("3")), (other.pk, Decimal("1"))}  # one line per order and part, grown
    grown = Reservation.objects.get(work_order=order)
    assert [row.history_type for row in grown.history.order_by("history_id")] == ["+", "~"]
    assert StockLevel.objects.get(part=store["seal"], location=store["warehouse"]).reserved == Decimal("4")


def test_reserving_in_bulk_refuses_a_closed_order_a_bad_quantity_or_a_foreign_part(
    org_a, org_b, planner_a, pump, store
):
    [order] = services.create_work_orders_bulk([NewWorkOrder(organization_id=org_a.pk, title="One")], actor=planner_a)
    theirs = Part.objects.create(organization=org_b, sku="THEIRS", name="Their part", unit="each")
    with pytest.raises(InvalidInput, match="whole"):
        inventory_services.reserve_bulk([(order, store["seal"], store["warehouse"], "1.5")], actor=planner_a)
    with pytest.raises(NotFound):
        inventory_services.reserve_bulk([(order, theirs, store["warehouse"], 1)], actor=planner_a)
    WorkOrder.objects.filter(pk=order.pk).update(status=WorkOrder.Status.CANCELLED)
    with pytest.raises(Conflict, match="can no longer be issued"):
        inventory_services.reserve_bulk([(order, store["seal"], store["warehouse"], 1)], actor=planner_a)
    assert not Reservation.objects.exists()


def test_low_stock_is_raised_once_when_a_batch_crosses_the_reorder_point(org_a, planner_a, store):
    orders = services.create_work_orders_bulk(
        [NewWorkOrder(organization_id=org_a.pk, title=f"Job {n}") for n in range(4)], actor=planner_a
    )
    lines = [(order, store["seal"], store["warehouse"], 2) for order in orders]  # 10 on hand, 8 reserved
    inventory_services.reserve_bulk(lines, actor=planner_a)
    alerts = Event.objects.filter(type="inventory:low-stock")
    assert [Decimal(event.payload["available"]) for event in alerts] == [2]
    inventory_services.reserve_bulk(lines[:1], actor=planner_a)
    assert alerts.count() == 1  # still low: not raised again


def _queries(org_a, pump, procedure, store, policy, size) -> int:
    orders = [
        NewWorkOrder(
            organization_id=org_a.pk,
            title=f"Job {n}",
            asset_id=pump.pk,
            priority="high",
            procedure_id=procedure.pk,
            event={"batch": size},
        )
        for n in range(size)
    ]
    system = audit.system_user()
    services.reserve_numbers(org_a, 0)
    StockLevel.objects.filter(part=store["seal"]).update(on_hand=1000)  # no low-stock alert in either batch
    with CaptureQueriesContext(connection) as captured, audit.acting_as(system):
        created = services.create_work_orders_bulk(orders, actor=SYSTEM)
        inventory_services.reserve_bulk([(o, store["seal"], store["warehouse"], 1) for o in created], actor=SYSTEM)
    assert SLAClock.objects.filter(work_order__in=created).count() == size
    assert ChecklistItem.objects.filter(work_order__in=created).count() == 3 * size
    return [query["sql"][:100] for query in captured.captured_queries]


def test_the_queries_of_a_batch_do_not_grow_with_its_orders(org_a, pump, procedure, store, policy):
    """Creating (one savepoint): the organisations; the assets and the procedures named (field rules need no
    query); the number counter (UPDATE, SELECT); the ids and the COPY of the orders; their history; the checklist
    items and their history; the SLA clocks (policies, assets, the calendar's holidays, the clocks, their history);
    the events' ids and COPY. Reserving (one savepoint): parts; locations; the orders locked; their active
    reservations; the stock levels made sure of; the reservations' ids, COPY and history; the stock level's
    UPDATE; the low-stock check (availability, re-arming)."""
    # SQLite: Django splits a bulk INSERT at 999 parameters (an SLA clock's history row has ~30 columns)
    size = 40 if connection.vendor == "postgresql" else 20
    few, many = (
        _queries(org_a, pump, procedure, store, policy, 3),
        _queries(org_a, pump, procedure, store, policy, size),
    )
    assert len(few) == len(many), "\n".join(many)
