"""Fixtures of the work-order tests: uploads in a folder of the test's own, a location tree with a pump, an
order on the pump, and an asset of organisation B."""

import pytest

from assets import services as asset_services
from workorders import services


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Uploaded files (attachments, photos) go to a folder of the test's own, not to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def site(org_a):
    """Plant (site) > Hall 1 (building) > Pump room (area), with a pump in the pump room."""
    plant = asset_services.create_location(org_a, name="Plant")
    hall = asset_services.create_location(org_a, name="Hall 1", kind="building", parent=plant)
    room = asset_services.create_location(org_a, name="Pump room", kind="area", parent=hall)
    pump = asset_services.create_asset(org_a, code="PMP-1", name="Pump", location=room)
    return {"plant": plant, "hall": hall, "room": room, "pump": pump}


@pytest.fixture
def pump(site):
    return site["pump"]


@pytest.fixture
def order(org_a, planner_a, pump):
    return services.create_work_order(org_a, title="Replace seal", asset=pump, actor=planner_a)


@pytest.fixture
def foreign_asset(org_b):
    return asset_services.create_asset(org_b, code="B-PUMP", name="Their pump")
