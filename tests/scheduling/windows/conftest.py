"""Fixtures of the maintenance-window tests.

The site: Plant (site) > Hall (building) > Pump room (area), and Office (building) beside the hall.
Assets: a pump in the pump room (with a motor as its component), a fan in the hall, a PC in the office,
and a conveyor that is down.
"""

import pytest
from rest_framework.views import APIView

from assets import services as asset_services
from assets.models import Asset
from maintenance_site.api.permissions import RolePermission
from scheduling.windows.permissions import NotInMaintenanceMode
from tests.scheduling.windows.support import CONTEXT_PROCESSOR, MIDDLEWARE


@pytest.fixture
def site(org_a):
    plant = asset_services.create_location(org_a, name="Plant")
    hall = asset_services.create_location(org_a, name="Hall", kind="building", parent=plant)
    room = asset_services.create_location(org_a, name="Pump room", kind="area", parent=hall)
    office = asset_services.create_location(org_a, name="Office", kind="building", parent=plant)
    pump = asset_services.create_asset(org_a, code="PMP-1", name="Pump", location=room)
    motor = asset_services.create_asset(org_a, code="MOT-1", name="Pump motor", location=room, parent=pump)
    fan = asset_services.create_asset(org_a, code="FAN-1", name="Fan", location=hall)
    pc = asset_services.create_asset(org_a, code="PC-1", name="Office PC", location=office)
    conveyor = asset_services.create_asset(
        org_a, code="CNV-1", name="Conveyor", location=hall, status=Asset.Status.DOWN
    )
    return {
        "plant": plant,
        "hall": hall,
        "room": room,
        "office": office,
        "pump": pump,
        "motor": motor,
        "fan": fan,
        "pc": pc,
        "conveyor": conveyor,
    }


@pytest.fixture
def foreign_asset(org_b):
    return asset_services.create_asset(org_b, code="B-PUMP", name="Their pump")


@pytest.fixture
def gated(settings, monkeypatch):
    """Maintenance mode wired as settings.py will have it: NotInMaintenanceMode after RolePermission in the
    API's default permissions (views read the default at import, hence the patch of APIView), the middleware
    after ActiveOrganizationMiddleware, and the banner's context processor."""
    monkeypatch.setattr(APIView, "permission_classes", [RolePermission, NotInMaintenanceMode])
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_PERMISSION_CLASSES": [
            "maintenance_site.api.permissions.RolePermission",
            "scheduling.windows.permissions.NotInMaintenanceMode",
        ],
    }
    if MIDDLEWARE not in settings.MIDDLEWARE:
        middleware = list(settings.MIDDLEWARE)
        middleware.insert(
            middleware.index("maintenance_site.tenancy.middleware.ActiveOrganizationMiddleware") + 1, MIDDLEWARE
        )
        settings.MIDDLEWARE = middleware
    templates = [dict(engine, OPTIONS=dict(engine["OPTIONS"])) for engine in settings.TEMPLATES]
    processors = templates[0]["OPTIONS"]["context_processors"]
    if CONTEXT_PROCESSOR not in processors:
        templates[0]["OPTIONS"]["context_processors"] = [*processors, CONTEXT_PROCESSOR]
    settings.TEMPLATES = templates
