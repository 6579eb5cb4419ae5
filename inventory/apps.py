from django.apps import AppConfig
from django.utils.translation import gettext_lazy

from maintenance_site import hooks


class InventoryConfig(AppConfig):
    """Spare parts, stock locations, the stock ledger, reservations, vendors and purchasing."""

    name = "inventory"
    verbose_name = gettext_lazy("Inventory")

    def ready(self):
        # The services and views import models, which exist only once the app registry is ready: Django's place
        # for these imports is here, in ready().
        from inventory import (
            analytics,
            business_metrics,  # noqa: F401  (registers its family on /metrics)
            dashboard,  # noqa: F401  (registers its tiles on the manager's dashboard)
            reports,  # noqa: F401  (its section of the status report)
            services,
            technician_views,
        )

        hooks.work_order_closing.register(services.release_reservations_for)
        hooks.work_order_cancelling.register(services.settle_parts_on_cancel)
        hooks.work_order_parts_cost.register(services.parts_cost_for)
        hooks.technician_order_page.register(technician_views.order_page_parts)
        hooks.technician_offline_urls.register(technician_views.offline_urls)
        analytics.register()  # its KPIs (maintenance_site.analytics.registry)
