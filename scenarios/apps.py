from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ScenariosConfig(AppConfig):
    """Maintenance scenarios of the platform itself: presets, the task runner, history and rollback."""

    name = "scenarios"
    verbose_name = "Maintenance scenarios"

    def ready(self):
        # Registers the internal scenarios and the notification kinds; changes no state. Scenarios are
        # switched off by the scheduler start (`manage.py maintenance scheduler-start`), never here, so a
        # web restart keeps what operators set.
        from scenarios import internal  # noqa: F401

        post_migrate.connect(_sync_registry, sender=self, dispatch_uid="scenarios-sync-registry")


def _sync_registry(sender, using="default", **kwargs):
    """Copy the registry into the database after migrations (never activates anything)."""
    from django.db import connections

    from scenarios.models import Scenario

    if using != "default" or Scenario._meta.db_table not in connections[using].introspection.table_names():
        return
    from scenarios.services import sync_registry

    sync_registry()
