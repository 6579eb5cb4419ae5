"""Fixtures of the technician view's tests: a pump with orders on it, stock in technician A's van, and
clients signed in as the personas."""

import pytest
from django.test import Client

from assets import services as asset_services
from inventory import services as inventory_services
from inventory.models import Part, StockLocation
from workorders import services
from workorders.models import ItemKind


@pytest.fixture(autouse=True)
def _media_in_a_temporary_folder(settings, tmp_path):
    """Uploaded photos go to a folder of the test's own, not to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def client_of():
    """`client_of(user)`: a test client signed in as `user`."""

    def make(user, **kwargs):
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def pump(org_a):
    location = asset_services.create_location(org_a, name="Plant room")
    return asset_services.create_asset(org_a, code="PMP-1", name="Cooling pump", location=location)


@pytest.fixture
def order(org_a, planner_a, technician_a, pump):
    """Assigned to technician A, with a required tick item and an optional text item."""
    work_order = services.create_work_order(
        org_a,
        title="Replace the seal",
        description="Leaks at the shaft.",
        asset=pump,
        actor=planner_a,
        assignee=technician_a,
    )
    services.add_checklist_item(work_order, text="Isolate the pump", actor=planner_a)
    services.add_checklist_item(work_order, text="Remarks", kind=ItemKind.TEXT, required=False, actor=planner_a)
    return work_order


@pytest.fixture
def van(org_a, technician_a):
    return StockLocation.objects.create(organization=org_a, name="Van 3", kind="van", holder=technician_a)


@pytest.fixture
def warehouse(org_a):
    return StockLocation.objects.create(organization=org_a, name="Warehouse", kind="warehouse")


@pytest.fixture
def seal(org_a, van, warehouse, storekeeper_a):
    """Two seals in Van 3 and ten in the warehouse."""
    part = Part.objects.create(organization=org_a, sku="SEAL-40", name="Mechanical seal 40 mm", unit="each")
    inventory_services.receive_stock(part, van, 2, "12.50", actor=storekeeper_a)
    inventory_services.receive_stock(part, warehouse, 10, "12.50", actor=storekeeper_a)
    return part
