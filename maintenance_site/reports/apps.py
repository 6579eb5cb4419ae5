from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ReportsConfig(AppConfig):
    """The four reports (status, performance, quality, audit), their archive and their schedules."""

    name = "maintenance_site.reports"
    label = "reports"
    verbose_name = gettext_lazy("Reports")

    def ready(self):
        from maintenance_site.reports import audit, sections  # noqa: F401  (their sections of the reports)
