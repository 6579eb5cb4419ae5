"""Demo maintenance windows for one organisation: a completed one last week, a system update next Sunday at
02:00 (local time) for two hours, and a weekly network window on Wednesday evenings."""

from datetime import datetime, time, timedelta

from django.utils import timezone

from assets.models import Location
from maintenance_site.tenancy.roles import Role
from scheduling.windows import services
from scheduling.windows.models import MaintenanceWindow


def _next_weekday_at(organization, weekday: int, at: time, now) -> datetime:
    """The next local `weekday` (Monday 0) at `at`, in the organisation's time zone, after `now`."""
    zone = organization.zone
    local_now = now.astimezone(zone)
    day = local_now.date() + timedelta(days=(weekday - local_now.weekday()) % 7)
    moment = datetime.combine(day, at, tzinfo=zone)
    return moment if moment > now else datetime.combine(day + timedelta(days=7), at, tzinfo=zone)


def seed(organization, users):
    if MaintenanceWindow.objects.for_tenant(organization).exists():
        return
    manager = users.get(Role.MANAGER) if isinstance(users, dict) else None
    now = timezone.now()

    # Last week: a database maintenance that ran and completed.
    start = (now - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    past = services.create_window(
        organization,
        title="Database index rebuild",
        maintenance_type=MaintenanceWindow.Type.DATABASE,
        description="Rebuilt the indexes of the work-order tables.",
        starts_at=start,
        ends_at=start + timedelta(minutes=90),
        notify_users=False,
        actor=manager,
        now=start,
    )
    services.end_window(past, actor=manager, now=start + timedelta(minutes=84))

    # Next Sunday 02:00 local time, two hours: the platform's system update (maintenance mode while it runs).
    services.schedule_maintenance(
        organization,
        "system_update",
        _next_weekday_at(organization, 6, time(2, 0), now),
        120,
        "System update to version 2.0",
        title="System update 2.0",
        actor=manager,
    )

    # Every Wednesday 22:00-23:00 local time: network maintenance of the office building (or everything).
    office = Location.objects.for_tenant(organization).filter(name="Office block").first()
    scope = {"scope": MaintenanceWindow.Scope.LOCATION, "location": office} if office else {}
    start = _next_weekday_at(organization, 2, time(22, 0), now)
    services.create_window(
        organization,
        title="Weekly network maintenance",
        maintenance_type=MaintenanceWindow.Type.NETWORK,
        description="Switch firmware and Wi-Fi controller updates.",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        recurrence="FREQ=WEEKLY;BYDAY=WE",
        notify_users=False,
        actor=manager,
        **scope,
    )
