"""Fixtures of the inventory tests: a warehouse and technician A's van, two parts (a countable bearing and oil
by the litre), a work order in progress, stock, organisation B's stock, a vendor; and the helpers that read
the ledger back."""

from decimal import Decimal

import pytest

from inventory import services
from inventory.models import Part, Reservation, StockLevel, StockLocation, StockMovement, Vendor
from workorders import services as wo_services


@pytest.fixture
def warehouse(org_a):
    return StockLocation.objects.create(organization=org_a, name="Warehouse", kind="warehouse")


@pytest.fixture
def van(org_a, technician_a):
    return StockLocation.objects.create(organization=org_a, name="Van 3", kind="van", holder=technician_a)


@pytest.fixture
def bearing(org_a):
    return Part.objects.create(
        organization=org_a,
        sku="BRG-6205",
        name="Ball bearing 6205",
        unit="each",
        category="Bearings",
        reorder_point=5,
        reorder_quantity=20,
    )


@pytest.fixture
def oil(org_a):
    return Part.objects.create(
        organization=org_a,
        sku="OIL-46",
        name="Hydraulic oil ISO 46",
        unit="litre",
        category="Lubricants",
        reorder_point=10,
        reorder_quantity=60,
    )


@pytest.fixture
def job(org_a, planner_a, technician_a):
    """A work order in progress, assigned to technician A."""
    order = wo_services.create_work_order(org_a, title="Replace bearing", actor=planner_a, assignee=technician_a)
    return wo_services.start(order, actor=technician_a)


@pytest.fixture
def stocked(bearing, warehouse, van, storekeeper_a):
    """12 bearings in the warehouse at 4.00, 2 in van 3 at 4.00."""
    services.receive_stock(bearing, warehouse, 12, "4.00", actor=storekeeper_a)
    services.receive_stock(bearing, van, 2, "4.00", actor=storekeeper_a)
    return bearing


@pytest.fixture
def oil_in_stock(oil, warehouse, storekeeper_a):
    """30 l of oil in the warehouse at 3.00."""
    services.receive_stock(oil, warehouse, 30, "3.00", actor=storekeeper_a)
    return oil


@pytest.fixture
def other(org_b, manager_b):
    """Organisation B's part, location and work order."""
    location = StockLocation.objects.create(organization=org_b, name="B store")
    part = Part.objects.create(organization=org_b, sku="B-1", name="B's part")
    services.receive_stock(part, location, 10, "1", actor=manager_b)
    work_order = wo_services.create_work_order(org_b, title="B's job", actor=manager_b)
    return {"part": part, "location": location, "work_order": work_order}


@pytest.fixture
def vendor(org_a):
    return Vendor.objects.create(organization=org_a, name="SKF Distribution")


def on_hand(part, location) -> Decimal:
    level = StockLevel.objects.filter(part=part, location=location).first()
    return level.on_hand if level else Decimal("0")


def ledger_state():
    """Everything the ledger, the levels and the reservations hold: compared before and after a refusal."""
    return (
        StockMovement.objects.count(),
        sorted(StockLevel.objects.values_list("pk", "on_hand", "reserved", "min_quantity", "max_quantity")),
        sorted(Reservation.objects.values_list("pk", "quantity", "status")),
    )
