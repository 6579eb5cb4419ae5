from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy


class AnalyticsConfig(AppConfig):
    """Analytics: the KPI definitions, the registry the apps plug their figures into, and the daily rollups."""

    name = "maintenance_site.analytics"
    label = "analytics"
    verbose_name = gettext_lazy("Analytics")

    def ready(self):
        from maintenance_site.analytics import registry, rollups, triggers

        registry.READER = rollups.compute
        post_migrate.connect(triggers.install, sender=self, dispatch_uid="analytics_rollup_triggers")
