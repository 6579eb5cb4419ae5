"""Demo SLA set-up for one organisation: a business calendar (Mon–Fri 07:00–12:00 and 12:30–16:00, with
holidays), a 24/7 calendar, a policy per priority, and clocks for the demo work orders already open."""

from datetime import date, time

from django.utils import timezone

from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.roles import Role
from sla import services
from sla.models import BusinessCalendar, EscalationStep

WORKING_DAYS = range(0, 5)  # Monday to Friday
SPANS = [(time(7, 0), time(12, 0)), (time(12, 30), time(16, 0))]
BUSINESS_DAY = 8 * 60 + 30  # minutes of working time in a business day

K, L = EscalationStep.Kind, EscalationStep.Level


def _holidays() -> list[dict]:
    year = timezone.now().year
    return [
        {"date": date(year, 12, 25), "name": "Christmas Day"},
        {"date": date(year, 12, 26), "name": "Boxing Day"},
        {"date": date(year + 1, 1, 1), "name": "New Year's Day"},
    ]


def seed(organization, users):
    if BusinessCalendar.objects.for_tenant(organization).exists():
        return
    business = services.create_calendar(
        organization,
        name="Business hours",
        hours=[{"weekday": day, "start": start, "end": end} for day in WORKING_DAYS for start, end in SPANS],
        holidays=_holidays(),
        actor=SYSTEM,
    )
    around_the_clock = services.create_calendar(organization, name="24/7", always_open=True, actor=SYSTEM)
    warn_assignee = {"level": L.WARNING, "kind": K.NOTIFY, "notify_assignee": True, "notify_roles": [Role.PLANNER]}
    policies = [
        {
            "name": "Critical: respond in 1 h, resolve in 4 h (24/7)",
            "priority": "critical",
            "calendar": around_the_clock,
            "response_minutes": 60,
            "resolution_minutes": 4 * 60,
            "escalation_steps": [
                warn_assignee,
                {"level": L.BREACH, "kind": K.NOTIFY, "notify_roles": [Role.MANAGER, Role.PLANNER]},
                {"level": L.BREACH, "target": "response", "kind": K.REASSIGN, "reassign_to": users[Role.TECHNICIAN]},
            ],
        },
        {
            "name": "High: respond in 4 business hours, resolve in 1 business day",
            "priority": "high",
            "calendar": business,
            "response_minutes": 4 * 60,
            "resolution_minutes": BUSINESS_DAY,
            "escalation_steps": [
                warn_assignee,
                {"level": L.BREACH, "kind": K.NOTIFY, "notify_roles": [Role.MANAGER]},
                {"level": L.BREACH, "target": "resolution", "kind": K.RAISE_PRIORITY, "raise_to": "critical"},
            ],
        },
        {
            "name": "Medium: respond in 1 business day, resolve in 3",
            "priority": "medium",
            "calendar": business,
            "response_minutes": BUSINESS_DAY,
            "resolution_minutes": 3 * BUSINESS_DAY,
            "escalation_steps": [
                warn_assignee,
                {"level": L.BREACH, "kind": K.RAISE_PRIORITY},
            ],
        },
        {
            "name": "Low: respond in 2 business days, resolve in 10",
            "priority": "low",
            "calendar": business,
            "response_minutes": 2 * BUSINESS_DAY,
            "resolution_minutes": 10 * BUSINESS_DAY,
            "escalation_steps": [{"level": L.BREACH, "kind": K.NOTIFY, "notify_roles": [Role.PLANNER]}],
        },
    ]
    for spec in policies:
        services.create_policy(organization, actor=SYSTEM, **spec)
    services.start_clocks_for_open_orders(organization, actor=SYSTEM)
