from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Preventive schedules and their generation; maintenance windows and maintenance mode."""

    name = "scheduling"
    verbose_name = "Scheduling"
