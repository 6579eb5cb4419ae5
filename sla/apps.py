from django.apps import AppConfig
from django.utils.translation import gettext_lazy

from maintenance_site import hooks


class SlaConfig(AppConfig):
    """SLA policies, business calendars, clocks, violations and escalation."""

    name = "sla"
    verbose_name = gettext_lazy("SLAs")

    def ready(self):
        # The services import models, which exist only once the app registry is ready: Django's place for this
        # import is here, in ready().
        from sla import (
            analytics,
            business_metrics,  # noqa: F401  (registers its family on /metrics)
            dashboard,  # noqa: F401  (registers its tiles on the manager's dashboard)
            reports,  # noqa: F401  (its section of the quality report)
            services,
        )

        hooks.work_order_created.register(services.on_work_order_created)
        hooks.work_orders_created.register(services.on_work_orders_created)
        hooks.work_order_edited.register(services.on_work_order_edited)
        hooks.work_order_transitioned.register(services.on_work_order_transition)
        hooks.work_order_sla.register(services.clock_summary)
        hooks.work_order_list.register(services.for_work_order_lists)
        analytics.register()  # its KPIs (maintenance_site.analytics.registry)
