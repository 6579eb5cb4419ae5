from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    """Operations: health, status, heartbeats, correlation ids, the core periodic jobs."""

    name = "maintenance_site.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self):
        from maintenance_site.ops import checks  # noqa: F401  (registers the deploy checks)

        post_migrate.connect(_ensure_core_tasks, sender=self, dispatch_uid="ops-core-periodic-tasks")


def _ensure_core_tasks(sender, using="default", **kwargs):
    from maintenance_site.ops.schedules import ensure_core_periodic_tasks

    ensure_core_periodic_tasks(using=using)
