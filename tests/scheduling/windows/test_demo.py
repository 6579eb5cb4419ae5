"""The demo data: a completed window last week, a system update next Sunday at 02:00 local time for two
hours, and a weekly network window; seeding twice adds nothing."""

from datetime import timedelta

from assets import demo as assets_demo
from maintenance_site.tenancy.roles import Role
from scheduling.windows import demo
from scheduling.windows.mode import is_in_maintenance_mode
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.reports import get_maintenance_history


def test_demo_windows(org_a, manager_a):
    users = {Role.MANAGER: manager_a}
    assets_demo.seed(org_a, users)
    demo.seed(org_a, users)
    demo.seed(org_a, users)
    rows = MaintenanceWindow.objects.for_tenant(org_a)
    past = rows.get(title="Database index rebuild")
    assert past.status == MaintenanceWindow.Status.COMPLETED and past.actual_end is not None
    update = rows.get(title="System update 2.0")
    local = update.starts_at.astimezone(org_a.zone)
    assert (local.weekday(), local.hour, local.minute) == (6, 2, 0) or local.hour == 3  # 3: the spring gap
    assert update.duration == timedelta(hours=2) and update.status == MaintenanceWindow.Status.SCHEDULED
    network = rows.series().get()
    assert network.recurrence == "FREQ=WEEKLY;BYDAY=WE" and network.location.name == "Office block"
    assert network.occurrences.count() >= 8
    assert [record["title"] for record in get_maintenance_history(org_a)] == ["Database index rebuild"]
    assert not is_in_maintenance_mode(org_a)
