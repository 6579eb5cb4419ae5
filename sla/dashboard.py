"""The SLA figures on the manager's dashboard (maintenance_site.dashboard): resolution compliance of the clocks
started in the period, and the running clocks at risk. Registered by SLAConfig.ready(); one query each."""

from django.db.models import Count, Q
from django.urls import reverse

from maintenance_site import dashboard
from sla.models import ClockState, SLAClock

SLA_CLOCK = "sla.slaclock"


def _percent(met: int, total: int) -> float | None:
    return round(100 * met / total, 1) if total else None


@dashboard.tile("sla_compliance", title="SLA compliance (resolution)", order=40, model=SLA_CLOCK, unit="%")
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
        footer=f"{found['total']:,} clocks started in the last {period.days} days",
    )


@dashboard.tile("sla_at_risk", title="SLA at risk now", order=50, model=SLA_CLOCK, icon="timer", lower_is_better=True)
def sla_at_risk(organization, period):
    """Running clocks in warning or breached (resolution)."""
    count = SLAClock.objects.filter(
        organization=organization,
        stopped_at__isnull=True,
        resolution_state__in=[ClockState.WARNING, ClockState.BREACHED],
    ).count()
    return dashboard.Figure(count, link=reverse("admin:sla_slaclock_changelist") + "?resolution_state__exact=warning")
