"""Fixtures of the preventive-maintenance tests: a plant in organisation A (Europe/Berlin) with pumps and a
compressor, a procedure, and a store with parts."""

from decimal import Decimal

import pytest

from assets import services as asset_services
from inventory.models import Part, StockLevel, StockLocation
from workorders.models import ItemKind, Procedure, ProcedureItem


@pytest.fixture
def plant(org_a):
    """Org A (Europe/Berlin): a site with a building, two pumps and a compressor."""
    site = asset_services.create_location(org_a, name="Plant")
    hall = asset_services.create_location(org_a, name="Hall", kind="building", parent=site)
    pump_type = asset_services.create_asset_type(org_a, name="Pump")
    compressor_type = asset_services.create_asset_type(org_a, name="Compressor")
    pump_1 = asset_services.create_asset(org_a, code="PMP-1", name="Pump 1", asset_type=pump_type, location=hall)
    pump_2 = asset_services.create_asset(org_a, code="PMP-2", name="Pump 2", asset_type=pump_type, location=hall)
    compressor = asset_services.create_asset(
        org_a, code="CMP-1", name="Compressor", asset_type=compressor_type, location=hall
    )
    return {
        "site": site,
        "hall": hall,
        "pump_type": pump_type,
        "compressor_type": compressor_type,
        "pump_1": pump_1,
        "pump_2": pump_2,
        "compressor": compressor,
    }


@pytest.fixture
def pump(plant):
    return plant["pump_1"]


@pytest.fixture
def procedure(org_a):
    procedure = Procedure.objects.create(organization=org_a, name="Pump service")
    for position, (text, kind) in enumerate([("Check the seal", ItemKind.PASS_FAIL), ("Grease", ItemKind.TICK)]):
        ProcedureItem.objects.create(organization=org_a, procedure=procedure, position=position, text=text, kind=kind)
    return procedure


@pytest.fixture
def stores(org_a):
    warehouse = StockLocation.objects.create(organization=org_a, name="Warehouse")
    seal = Part.objects.create(organization=org_a, sku="SEAL-1", name="Seal kit", unit="each", reorder_point=0)
    grease = Part.objects.create(organization=org_a, sku="GRS-1", name="Grease", unit="kilogram", reorder_point=0)
    StockLevel.objects.create(organization=org_a, part=seal, location=warehouse, on_hand=Decimal("50"))
    return {"warehouse": warehouse, "seal": seal, "grease": grease}
