from django.apps import AppConfig


class WorkOrdersConfig(AppConfig):
    """Work orders and their lifecycle, checklists, time, costs, requests; the technician views."""

    name = "workorders"
    verbose_name = "Work orders"

    def ready(self):
        # Analytics providers (maintenance_site.analytics.registry): this app's KPIs, computed by its own module.
        from workorders import (
            analytics,
            business_metrics,  # noqa: F401  (registers its families on /metrics)
            dashboard,  # noqa: F401  (registers its tiles on the manager's dashboard)
        )

        analytics.register()
