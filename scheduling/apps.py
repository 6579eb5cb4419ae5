from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class SchedulingConfig(AppConfig):
    """Preventive schedules and their generation; maintenance windows and maintenance mode."""

    name = "scheduling"
    verbose_name = gettext_lazy("Scheduling")

    def ready(self):
        # Analytics providers (maintenance_site.analytics.registry): this app's KPIs, computed by its own module.
        from scheduling import (
            analytics,
            business_metrics,  # noqa: F401  (registers its family on /metrics)
            dashboard,  # noqa: F401  (registers its tiles on the manager's dashboard)
            reports,  # noqa: F401  (its section of the status report)
        )

        analytics.register()

        from maintenance_site import hooks
        from scheduling.windows.reports import refuse_work_in_window

        hooks.work_order_planning.register(refuse_work_in_window)
