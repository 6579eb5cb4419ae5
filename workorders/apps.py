from django.apps import AppConfig


class WorkOrdersConfig(AppConfig):
    """Work orders and their lifecycle, checklists, time, costs, requests; the technician views."""

    name = "workorders"
    verbose_name = "Work orders"

    def ready(self):
        from workorders import dashboard  # noqa: F401  (registers its tiles on the manager's dashboard)
