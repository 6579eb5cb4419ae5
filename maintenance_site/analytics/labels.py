"""The KPIs' names and units as a person reads them, in the active language (reports, dashboards). The definitions
(`maintenance_site.analytics.definitions`) stay in English: they are the API's reference text, named by key."""

from django.utils.translation import gettext_lazy as _

from maintenance_site.analytics.definitions import KPIS

NAMES = {
    "availability": _("Availability"),
    "mtbf": _("Mean time between failures"),
    "mttr": _("Mean time to repair"),
    "failures": _("Failures"),
    "unscheduled_downtime_hours": _("Unscheduled downtime"),
    "scheduled_downtime_hours": _("Scheduled downtime"),
    "pm_compliance": _("PM compliance"),
    "planned_ratio": _("Planned work"),
    "backlog_count": _("Backlog"),
    "backlog_hours": _("Backlog hours"),
    "backlog_age_days": _("Backlog age"),
    "rework_rate": _("Rework"),
    "first_time_fix": _("First-time fix"),
    "wrench_time": _("Wrench time"),
    "response_compliance": _("SLA response compliance"),
    "resolution_compliance": _("SLA resolution compliance"),
    "labour_cost": _("Labour cost"),
    "parts_cost": _("Parts cost"),
    "external_cost": _("External cost"),
    "total_cost": _("Maintenance cost"),
    "inventory_turns": _("Inventory turns"),
    "stock_outs": _("Stock-out events"),
    "verification_rejects": _("Verification rejects"),
    "verification_reject_rate": _("Verification reject rate"),
}
UNITS = {
    "percent": _("percent"),
    "hours": _("hours"),
    "days": _("days"),
    "count": _("count"),
    "money": _("money"),
    "ratio": _("ratio"),
}


def kpi_name(key: str) -> str:
    """The KPI's name in the active language (the definition's English name for a KPI not listed here)."""
    name = NAMES.get(key)
    return str(name) if name is not None else KPIS[key].name


def unit_name(unit: str) -> str:
    name = UNITS.get(unit)
    return str(name) if name is not None else unit
