"""Seed 000's Python API (`scheduling.windows.facade.MaintenanceService`): the seed's usage example runs as
written inside an `async def` (only the import line changed, the organisation added to config); its config
keys map onto the settings; refusals are the services' own."""

import asyncio
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from maintenance_site.errors import Conflict, InvalidInput
from maintenance_site.notifications import services as notification_services
from maintenance_site.notifications.models import NotificationDelivery
from maintenance_site.tenancy import SYSTEM
from scheduling.windows import services
from scheduling.windows.facade import MaintenanceService
from scheduling.windows.models import MaintenanceWindow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clock_in_berlin(monkeypatch):
    """The script runs on a machine whose clock shows the organisation's time (Django sets the process's TZ to
    settings.TIME_ZONE; a planner's laptop in Berlin shows Berlin time)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_seed_usage_example_runs_as_written(org_a, clock_in_berlin):
    async def seed_example():
        # --- seed 000 "Usage", verbatim but for the organisation in config ---
        maintenance_service = MaintenanceService(
            config={
                "organization": "org-a",
                "maintenance_check_interval": 300,  # 5 minutes
            }
        )

        await maintenance_service.start()

        maintenance_id = await maintenance_service.schedule_maintenance(
            maintenance_type="system_update",
            start_time=datetime.now() + timedelta(hours=1),
            duration=30,  # minutes
            description="System update to version 2.0",
        )

        schedule = maintenance_service.get_maintenance_schedule()
        history = maintenance_service.get_maintenance_history()
        is_maintenance = maintenance_service.is_in_maintenance_mode()

        await maintenance_service.stop()
        return maintenance_service, maintenance_id, schedule, history, is_maintenance

    service, window_id, schedule, history, in_maintenance = asyncio.run(seed_example())

    window = MaintenanceWindow.objects.get(pk=window_id)
    assert window.organization == org_a
    assert window.maintenance_type == "system_update"
    assert window.duration_minutes == 30
    assert window.title == "System update to version 2.0"
    assert [row["id"] for row in schedule] == [window_id]
    assert schedule[0]["duration"] == 30 and schedule[0]["status"] == "scheduled"
    assert history == []
    assert in_maintenance is False
    assert not service.running
    assert window.history.first().history_user.username == "system"
    assert abs((window.starts_at - timezone.now()) - timedelta(hours=1)) < timedelta(minutes=1)


def test_a_naive_now_is_read_in_the_organisations_time_zone(org_a):
    berlin_wall_clock = timezone.now().astimezone(ZoneInfo("Europe/Berlin")).replace(tzinfo=None, microsecond=0)
    start = berlin_wall_clock + timedelta(hours=2)

    async def schedule():
        service = MaintenanceService(config={"organization": org_a})
        return await service.schedule_maintenance(maintenance_type="database", start_time=start, duration=45)

    window = MaintenanceWindow.objects.get(pk=asyncio.run(schedule()))
    assert window.starts_at == start.replace(tzinfo=ZoneInfo("Europe/Berlin"))
    assert abs((window.starts_at - timezone.now()) - timedelta(hours=2)) < timedelta(minutes=1)


def test_the_tick_opens_a_due_window_and_the_mode_follows(org_a):
    now = timezone.now()
    window = services.create_window(
        org_a, title="Patch", starts_at=now + timedelta(minutes=5), duration_minutes=30, actor=SYSTEM
    )
    MaintenanceWindow.objects.filter(pk=window.pk).update(starts_at=now - timedelta(minutes=1))

    async def run():
        async with MaintenanceService(config={"organization": org_a.pk, "check_interval": 1}) as service:
            return service.is_in_maintenance_mode(), service.get_maintenance_schedule()

    in_maintenance, schedule = asyncio.run(run())
    assert in_maintenance is True
    assert schedule[0]["status"] == "active"


def test_history_is_bounded_by_max_history_size(org_a):
    now = timezone.now()
    for hours in (3, 5, 7):
        window = services.create_window(
            org_a, title=f"Old {hours}", starts_at=now + timedelta(minutes=5), duration_minutes=30, actor=SYSTEM
        )
        MaintenanceWindow.objects.filter(pk=window.pk).update(
            starts_at=now - timedelta(hours=hours), ends_at=now - timedelta(hours=hours - 1), status="completed"
        )
    service = MaintenanceService(config={"organization": "org-a", "max_history_size": 2})
    assert [row["title"] for row in service.get_maintenance_history()] == ["Old 3", "Old 5"]


def test_overlaps_are_refused_unless_an_emergency_with_a_reason(org_a):
    service = MaintenanceService(config={"organization": "org-a"})
    start = timezone.now() + timedelta(hours=1)

    async def schedule(**options):
        return await service.schedule_maintenance(
            maintenance_type="system_update", start_time=start, duration=60, **options
        )

    asyncio.run(schedule(description="First"))
    with pytest.raises(Conflict):
        asyncio.run(schedule(description="Second"))
    with pytest.raises(InvalidInput):
        asyncio.run(schedule(description="Second", emergency=True))
    asyncio.run(schedule(description="Second", emergency=True, emergency_reason="Security fix"))
    assert len(service.get_maintenance_schedule()) == 2


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "organization"),
        ({"organization": "no-such-org"}, "organization"),
        ({"organization": "org-a", "maintenance_check_interval": 0}, "maintenance_check_interval"),
        ({"organization": "org-a", "max_history_size": "many"}, "max_history_size"),
        ({"organization": "org-a", "notification_channels": "email"}, "notification_channels"),
        ({"organization": "org-a", "notification_channels": ["carrier-pigeon"]}, "notification_channels"),
        ({"organization": "org-a", "check_intervall": 5}, "check_intervall"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(org_a, config, key):
    with pytest.raises(InvalidInput) as refused:
        MaintenanceService(config=config)
    assert key in refused.value.fields


def test_config_defaults_come_from_the_settings(org_a, settings):
    settings.MAINTENANCE_CHECK_INTERVAL = 42
    settings.MAINTENANCE_MAX_HISTORY = 7
    service = MaintenanceService(config={"organization": "org-a", "notification_channels": ["email", "email"]})
    assert (service.check_interval, service.max_history_size) == (42, 7)
    assert service.notification_channels == ["email"]


def test_chat_kinds_in_notification_channels_route_maintenance_notices_to_the_organisations_channels(org_a, manager_a):
    slack = notification_services.create_chat_channel(
        org_a, actor=SYSTEM, name="ops", kind="slack", url="http://127.0.0.1:9/hook", kinds=["sla:*"]
    )
    MaintenanceService(config={"organization": "org-a", "notification_channels": ["email", "slack"]})
    slack.refresh_from_db()
    assert slack.kinds == ["sla:*", "maintenance:*"]
    MaintenanceService(config={"organization": "org-a", "notification_channels": ["slack"]})  # routed once only
    slack.refresh_from_db()
    assert slack.kinds == ["sla:*", "maintenance:*"]

    async def schedule():
        service = MaintenanceService(config={"organization": "org-a"})
        await service.schedule_maintenance(
            maintenance_type="network", start_time=timezone.now() + timedelta(hours=3), duration=20
        )

    asyncio.run(schedule())
    assert NotificationDelivery.objects.filter(
        chat_channel=slack, notification__kind="maintenance:window-scheduled"
    ).exists()


def test_a_chat_kind_the_organisation_has_no_channel_of_is_refused(org_a):
    with pytest.raises(InvalidInput, match="has no active teams chat channel") as refused:
        MaintenanceService(config={"organization": "org-a", "notification_channels": ["teams"]})
    assert "notification_channels" in refused.value.fields
