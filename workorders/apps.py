from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class WorkOrdersConfig(AppConfig):
    """Work orders and their lifecycle, checklists, time, costs, requests; the technician views."""

    name = "workorders"
    verbose_name = gettext_lazy("Work orders")

    def ready(self):
        # Analytics providers (maintenance_site.analytics.registry): this app's KPIs, computed by its own module.
        from workorders import (
            analytics,
            business_metrics,  # noqa: F401  (registers its families on /metrics)
            dashboard,  # noqa: F401  (registers its tiles on the manager's dashboard)
            quality,
            reports,  # noqa: F401  (registers its sections of the status and quality reports)
        )

        analytics.register()
        quality.register()
