from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Preventive schedules and their generation; maintenance windows and maintenance mode."""

    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self):
        from scheduling import dashboard  # noqa: F401  (registers its tiles on the manager's dashboard)
