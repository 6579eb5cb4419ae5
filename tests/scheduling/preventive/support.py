"""Helpers of the preventive-maintenance tests (their fixtures are in conftest.py)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from maintenance_site.tenancy import SYSTEM
from scheduling.preventive.generation import generate_due_work_orders
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule
from scheduling.preventive.services import create_schedule
from workorders.models import WorkOrder

Schedule = PreventiveSchedule
Occurrence = PreventiveOccurrence


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_schedule(org, *, actor=SYSTEM, **fields) -> Schedule:
    """A schedule through the service, with a start date well before the test's moments."""
    fields.setdefault("name", f"Schedule {Schedule.objects.count() + 1}")
    fields.setdefault("start_date", date(2026, 1, 1))
    if "cron_expression" in fields:
        fields.setdefault("trigger", Schedule.Trigger.CRON)
    if "rrule" in fields:
        fields.setdefault("trigger", Schedule.Trigger.RRULE)
    if "interval_count" in fields:
        fields.setdefault("trigger", Schedule.Trigger.INTERVAL)
        fields.setdefault("interval_unit", Schedule.IntervalUnit.DAYS)
    return create_schedule(org, actor=actor, **fields)


def owed_from(schedule: Schedule, moment: datetime) -> Schedule:
    """Pretend the schedule was created at `moment` (its generation cursor starts there)."""
    Schedule.objects.filter(pk=schedule.pk).update(
        generated_through=moment - timedelta(days=schedule.lead_days), next_run_at=moment
    )
    schedule.refresh_from_db()
    return schedule


def tick(moment: datetime, **kwargs):
    return generate_due_work_orders(now=moment, actor=SYSTEM, **kwargs)


def ticks(start: datetime, end: datetime, step: timedelta = timedelta(minutes=30), **kwargs):
    """Beat every `step` from start to end (inclusive)."""
    moment, created = start, 0
    while moment <= end:
        created += tick(moment, **kwargs).created
        moment += step
    return created


def orders_of(schedule: Schedule):
    return WorkOrder.objects.filter(preventive_occurrence__schedule=schedule).order_by("due_at")


def occurrences_of(schedule: Schedule):
    return Occurrence.objects.filter(schedule=schedule).order_by("due_at")


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def complete(order: WorkOrder, at: datetime):
    """Mark an order completed at a given moment (the lifecycle itself is tested with work orders)."""
    WorkOrder.objects.filter(pk=order.pk).update(status=WorkOrder.Status.COMPLETED, completed_at=at)
