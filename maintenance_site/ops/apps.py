from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy


class OpsConfig(AppConfig):
    """Operations: health, status, heartbeats, correlation ids, the core periodic jobs."""

    name = "maintenance_site.ops"
    label = "ops"
    verbose_name = gettext_lazy("Operations")

    def ready(self):
        # These modules import models (the metrics collector reads the outbox and the heartbeats), which exist
        # only once the app registry is ready: Django's place for these imports is here, in ready(). Importing
        # celery_metrics connects the Celery task metrics receivers; checks registers the deploy checks.
        from maintenance_site.ops import celery_metrics, checks, db_datetimes, db_pool, schedules  # noqa: F401

        db_pool.install()
        db_datetimes.install()

        post_migrate.connect(schedules.after_migrate, sender=self, dispatch_uid="ops-core-periodic-tasks")
