"""The preventive figures on the manager's dashboard (maintenance_site.dashboard): PM compliance (preventive
orders due in the period that were completed by their due time) and preventive work due in the coming week.
Registered by SchedulingConfig.ready(); one query each."""

from datetime import timedelta

from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_site import dashboard
from maintenance_site.i18n import number
from workorders.models import WorkOrder

PREVENTIVE = WorkOrder.Type.PREVENTIVE


def _list(query: str) -> str:
    return reverse("admin:workorders_workorder_changelist") + f"?{query}"


@dashboard.tile("pm_compliance", title=gettext_lazy("PM compliance"), order=35, model="workorders.workorder", unit="%")
def pm_compliance(organization, period):
    """Preventive orders due in the period (not cancelled): the share completed by their due time."""
    orders = WorkOrder.objects.filter(
        organization=organization, type=PREVENTIVE, due_at__gte=period.previous_start, due_at__lt=period.now
    ).exclude(status=WorkOrder.Status.CANCELLED)
    on_time = Q(completed_at__isnull=False, completed_at__lte=F("due_at"))
    current, previous = Q(due_at__gte=period.start), Q(due_at__lt=period.start)
    found = orders.aggregate(
        due=Count("id", filter=current),
        on_time=Count("id", filter=current & on_time),
        previous_due=Count("id", filter=previous),
        previous_on_time=Count("id", filter=previous & on_time),
    )

    def percent(done, due):
        return round(100 * done / due, 1) if due else None

    return dashboard.Figure(
        percent(found["on_time"], found["due"]),
        percent(found["previous_on_time"], found["previous_due"]),
        link=_list("type__exact=preventive&overdue=yes"),
        footer=_("%(count)s preventive orders due in the last %(days)s days")
        % {"count": number(found["due"]), "days": period.days},
    )


@dashboard.tile(
    "pm_due", title=gettext_lazy("PM due in 7 days"), order=36, model="workorders.workorder", icon="event_repeat"
)
def pm_due(organization, period):
    count = WorkOrder.objects.filter(
        organization=organization,
        type=PREVENTIVE,
        status__in=WorkOrder.OPEN_STATUSES,
        due_at__gte=period.now,
        due_at__lt=period.now + timedelta(days=7),
    ).count()
    return dashboard.Figure(
        count, link=_list("type__exact=preventive&" + "status__in=" + ",".join(WorkOrder.OPEN_STATUSES))
    )
