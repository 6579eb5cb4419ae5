"""Fixtures of the planning tests: a plant in organisation A (Europe/Berlin) with a pump, a team with the first
technician, and times in the coming week (the forecast looks ahead from now)."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from assets import services as asset_services
from maintenance_site.recurrence import to_utc
from workorders import services as wo_services


@pytest.fixture
def plant(org_a):
    site = asset_services.create_location(org_a, name="Plant")
    hall = asset_services.create_location(org_a, name="Hall", kind="building", parent=site)
    other = asset_services.create_location(org_a, name="Annex")
    pump = asset_services.create_asset(org_a, code="PMP-1", name="Pump 1", location=hall)
    fan = asset_services.create_asset(org_a, code="FAN-1", name="Fan", location=other)
    return {"site": site, "hall": hall, "annex": other, "pump": pump, "fan": fan}


@pytest.fixture
def crew(org_a, planner_a, technician_a):
    return wo_services.create_team(org_a, name="Mechanical crew", actor=planner_a, members=[technician_a])


@pytest.fixture
def next_monday(org_a):
    today = timezone.localtime(timezone.now(), org_a.zone).date()
    return today + timedelta(days=7 - today.weekday())


@pytest.fixture
def at(org_a, next_monday):
    """`at(day_offset, hour)`: an instant next week, in the organisation's local time."""

    def make(days: int, hour: int, minute: int = 0):
        return to_utc(datetime.combine(next_monday + timedelta(days=days), time(hour, minute)), org_a.zone)

    return make
