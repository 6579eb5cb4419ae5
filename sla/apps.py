from django.apps import AppConfig


class SlaConfig(AppConfig):
    """SLA policies, business calendars, clocks, violations and escalation."""

    name = "sla"
    verbose_name = "SLAs"
