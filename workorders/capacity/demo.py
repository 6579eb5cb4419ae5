"""Demo capacity: the organisation's week (Monday to Friday, 08:00-12:00 and 13:00-17:00), the technician's own
part-time week, and a day of training next week."""

from datetime import datetime, time, timedelta

from django.utils import timezone

from maintenance_site.recurrence import to_utc
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.roles import Role
from workorders.capacity import services
from workorders.capacity.models import TimeOff, WorkingPattern


def seed(organization, users):
    if WorkingPattern.objects.for_tenant(organization).exists():
        return
    technician = users[Role.TECHNICIAN]
    services.save_working_pattern(organization, actor=SYSTEM)
    services.save_working_pattern(
        organization,
        actor=SYSTEM,
        user=technician,
        monday="07:00-12:00, 12:30-15:30",
        tuesday="07:00-12:00, 12:30-15:30",
        wednesday="07:00-12:00, 12:30-15:30",
        thursday="07:00-12:00, 12:30-15:30",
        friday="",
    )
    today = timezone.localtime(timezone.now(), organization.zone).date()
    monday = today + timedelta(days=7 - today.weekday())
    services.create_time_off(
        organization,
        actor=SYSTEM,
        user=technician,
        starts_at=to_utc(datetime.combine(monday + timedelta(days=2), time(0)), organization.zone),
        ends_at=to_utc(datetime.combine(monday + timedelta(days=3), time(0)), organization.zone),
        kind=TimeOff.Kind.TRAINING,
        note="Pump seal training",
    )
