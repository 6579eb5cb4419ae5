from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy


class ScenariosConfig(AppConfig):
    """Maintenance scenarios of the platform itself: presets, the task runner, history and rollback."""

    name = "scenarios"
    verbose_name = gettext_lazy("Maintenance scenarios")

    def ready(self):
        # Registers the internal scenarios (importing `internal` runs their decorators) and the notification
        # kinds; changes no state. Scenarios are switched off by the scheduler start (`manage.py maintenance
        # scheduler-start`), never here, so a web restart keeps what operators set. These modules import models,
        # which exist only once the app registry is ready: Django's place for these imports is here, in ready().
        from scenarios import internal, sync, workspaces  # noqa: F401

        post_migrate.connect(sync.after_migrate, sender=self, dispatch_uid="scenarios-sync-registry")
