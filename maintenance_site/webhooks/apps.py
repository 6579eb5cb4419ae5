from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class WebhooksConfig(AppConfig):
    """Signed webhooks (Standard Webhooks) per organisation, fed from the event outbox."""

    name = "maintenance_site.webhooks"
    label = "webhooks"
    verbose_name = gettext_lazy("Webhooks")

    def ready(self):
        from maintenance_site import hooks
        from maintenance_site.webhooks import business_metrics, services  # noqa: F401  (its /metrics family)

        hooks.events_dispatched.register(services.on_events_dispatched)
