from django.apps import AppConfig


class ScenariosConfig(AppConfig):
    """Maintenance scenarios of the platform itself: presets, the task runner, history and rollback."""

    name = "scenarios"
    verbose_name = "Maintenance scenarios"
