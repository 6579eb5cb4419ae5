from django.apps import AppConfig


class AssetsConfig(AppConfig):
    """Assets (devices), locations, meters, diagnostics and telemetry."""

    name = "assets"
    verbose_name = "Assets"

    def ready(self):
        # Analytics providers (maintenance_site.analytics.registry): this app's KPIs, computed by its own module.
        from assets import analytics

        analytics.register()
