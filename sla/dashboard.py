"""The SLA figures on the manager's dashboard (maintenance_site.dashboard): resolution compliance of the clocks
started in the period, and the breaches found in it. Registered by SLAConfig.ready(); one query each."""

from django.db.models import Count, Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_site import dashboard
from maintenance_site.i18n import number
from sla.models import ClockState, SLAClock, SLAViolation

SLA_CLOCK = "sla.slaclock"


def _percent(met: int, total: int) -> float | None:
    return round(100 * met / total, 1) if total else None


@dashboard.tile(
    "sla_compliance", title=gettext_lazy("SLA compliance (resolution)"), order=40, model=SLA_CLOCK, unit="%"
)
def sla_compliance(organization, period):
    """Of the clocks started in the period, the share not breached (at the previous period's same measure)."""
    clocks = SLAClock.objects.filter(organization=organization, started_at__gte=period.previous_start)
    breached = Q(resolution_state=ClockState.BREACHED)
    current, previous = Q(started_at__gte=period.start), Q(started_at__lt=period.start)
    found = clocks.aggregate(
        total=Count("id", filter=current),
        breached=Count("id", filter=current & breached),
        previous_total=Count("id", filter=previous),
        previous_breached=Count("id", filter=previous & breached),
    )
    return dashboard.Figure(
        _percent(found["total"] - found["breached"], found["total"]),
        _percent(found["previous_total"] - found["previous_breached"], found["previous_total"]),
        link=reverse("admin:sla_slaclock_changelist") + "?resolution_state__exact=breached",
        footer=_("%(count)s clocks started in the last %(days)s days")
        % {"count": number(found["total"]), "days": period.days},
    )


@dashboard.tile(
    "sla_breaches",
    title=gettext_lazy("SLA breaches"),
    order=50,
    model="sla.slaviolation",
    icon="timer",
    lower_is_better=True,
)
def sla_breaches(organization, period):
    """Deadlines passed (response or resolution) that the monitor found in the period, against the previous one."""
    found = SLAViolation.objects.filter(
        organization=organization, detected_at__gte=period.previous_start, level="breach"
    ).aggregate(
        now=Count("id", filter=Q(detected_at__gte=period.start)),
        then=Count("id", filter=Q(detected_at__lt=period.start)),
    )
    return dashboard.Figure(
        found["now"], found["then"], link=reverse("admin:sla_slaviolation_changelist") + "?level__exact=breach"
    )
