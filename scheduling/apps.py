from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Preventive schedules and their generation; maintenance windows and maintenance mode."""

    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self):
        # Analytics providers (maintenance_site.analytics.registry): this app's KPIs, computed by its own module.
        from scheduling import (
            analytics,
            business_metrics,  # noqa: F401  (registers its family on /metrics)
            dashboard,  # noqa: F401  (registers its tiles on the manager's dashboard)
        )

        analytics.register()
