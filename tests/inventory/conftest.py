import pytest

from inventory.models import Part, StockLocation
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
        organization=org_a, sku="BRG-6205", name="Ball bearing 6205", unit="each", reorder_point=5, reorder_quantity=20
    )


@pytest.fixture
def oil(org_a):
    return Part.objects.create(
        organization=org_a,
        sku="OIL-46",
        name="Hydraulic oil ISO 46",
        unit="litre",
        reorder_point=10,
        reorder_quantity=60,
    )


@pytest.fixture
def job(org_a, planner_a, technician_a):
    """A work order in progress, assigned to technician A."""
    order = wo_services.create_work_order(org_a, title="Replace bearing", actor=planner_a, assignee=technician_a)
    return wo_services.start(order, actor=technician_a)
