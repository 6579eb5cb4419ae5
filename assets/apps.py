from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class AssetsConfig(AppConfig):
    """Assets (devices), locations, meters, diagnostics and telemetry."""

    name = "assets"
    verbose_name = gettext_lazy("Assets")

    def ready(self):
        # Analytics providers (maintenance_site.analytics.registry): this app's KPIs, computed by its own module.
        from assets import analytics

        analytics.register()
