"""What a drag on the calendar or the board does. The page names a local day (and, on the calendar's week and day
views, a time); the instant is computed here in the organisation's time zone by the platform's one rule
(`maintenance_site.recurrence.to_utc`: a time in the spring-forward gap moves forward by the gap), and the change
goes through the work-order services, all or nothing: `schedule` (calendar), `dispatch` (board: assignee and plan),
each refusing with a sentence the page shows (a closed order, a window that takes the asset out of service, a
technician not in the order's team, a role that may not assign)."""

from datetime import date, datetime, time

from django.db import transaction
from django.utils import timezone

from maintenance_site.recurrence import to_utc
from maintenance_site.tenancy.actors import check_actor
from workorders import services as work_orders
from workorders.capacity.hours import periods_on
from workorders.capacity.models import WorkingPattern
from workorders.models import WorkOrder

DEFAULT_START = time(8, 0)  # a first plan on a day without working hours starts then


def local_time_of(work_order: WorkOrder) -> time | None:
    if work_order.scheduled_start is None:
        return None
    return timezone.localtime(work_order.scheduled_start, work_order.organization.zone).time().replace(second=0)


def first_working_time(organization, user_id: int | None, day: date) -> time:
    """When the person's working day starts (their pattern, else the organisation's), else DEFAULT_START."""
    patterns = {
        pattern.user_id: pattern
        for pattern in WorkingPattern.objects.for_tenant(organization).filter(user_id__in=[user_id, None])
        if pattern.user_id in (user_id, None)
    }
    pattern = patterns.get(user_id) or patterns.get(None) or WorkingPattern(organization=organization)
    periods = periods_on(pattern.week(), day, organization.zone)
    if not periods:
        return DEFAULT_START
    return timezone.localtime(periods[0][0], organization.zone).time()


def instant(organization, day: date, at: time) -> datetime:
    return to_utc(datetime.combine(day, at), organization.zone)


def reschedule(work_order: WorkOrder, *, actor, day: date, at: time | None = None) -> WorkOrder:
    """The calendar: move the order to `day`, at `at` or at the local time it had (else the start of the working
    day)."""
    check_actor(actor)
    at = at or local_time_of(work_order) or first_working_time(work_order.organization, work_order.assignee_id, day)
    return work_orders.schedule(work_order, actor=actor, scheduled_start=instant(work_order.organization, day, at))


def dispatch(work_order: WorkOrder, *, actor, assignee, day: date | None) -> WorkOrder:
    """The board: give the order to `assignee` (None: unassigned) and plan it on `day` at the local time it had
    (else when the person's working day starts); `day` None takes it off the plan (the "not planned" column)."""
    check_actor(actor)
    if day is None:
        with transaction.atomic():
            work_order = work_orders.dispatch(work_order, actor=actor, assignee=assignee)
            return work_orders.schedule(work_order, actor=actor, scheduled_start=None)
    at = local_time_of(work_order) or first_working_time(
        work_order.organization, assignee.pk if assignee is not None else None, day
    )
    return work_orders.dispatch(
        work_order, actor=actor, assignee=assignee, scheduled_start=instant(work_order.organization, day, at)
    )
