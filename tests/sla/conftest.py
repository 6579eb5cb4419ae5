"""SLA fixtures: a controllable clock, an office calendar (Mon–Fri 07:00–12:00 and
12:30–16:00 in the organisation's zone, Europe/Berlin), a 24/7 calendar, a location tree and a pump."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from assets import services as asset_services
from maintenance_site.tenancy import SYSTEM
from sla import services

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SPANS = [(time(7, 0), time(12, 0)), (time(12, 30), time(16, 0))]
WORKING_HOURS = [{"weekday": day, "start": start, "end": end} for day in range(5) for start, end in SPANS]


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


class Clock:
    """`timezone.now()` under the test's control: `clock.set(moment)`, `clock.advance(minutes=5)`."""

    def __init__(self, start: datetime):
        self.now = start

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    frozen = Clock(berlin(2026, 3, 2, 9, 0))  # a Monday, 09:00 in Berlin
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


@pytest.fixture
def business(org_a):
    return services.create_calendar(org_a, name="Business hours", hours=WORKING_HOURS, actor=SYSTEM)


@pytest.fixture
def always(org_a):
    return services.create_calendar(org_a, name="24/7", always_open=True, actor=SYSTEM)


@pytest.fixture
def site(org_a):
    """Plant (site) > Hall 1 (building) > Pump room (area), and a depot elsewhere."""
    plant = asset_services.create_location(org_a, name="Plant")
    hall = asset_services.create_location(org_a, name="Hall 1", kind="building", parent=plant)
    room = asset_services.create_location(org_a, name="Pump room", kind="area", parent=hall)
    depot = asset_services.create_location(org_a, name="Depot")
    return {"plant": plant, "hall": hall, "room": room, "depot": depot}


@pytest.fixture
def pump(org_a, site):
    return asset_services.create_asset(org_a, code="PMP-1", name="Pump", location=site["room"], criticality="high")


@pytest.fixture
def medium_policy(org_a, business):
    """Medium priority: respond in 60 business minutes, resolve in 240, warn at 80 %."""
    return services.create_policy(
        org_a,
        name="Medium",
        priority="medium",
        calendar=business,
        response_minutes=60,
        resolution_minutes=240,
        actor=SYSTEM,
    )


@pytest.fixture
def high_policy(org_a, always):
    """High priority, 24/7: respond in 30 minutes, resolve in 120."""
    return services.create_policy(
        org_a, name="High", priority="high", calendar=always, response_minutes=30, resolution_minutes=120, actor=SYSTEM
    )
