from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed webhooks (Standard Webhooks) per organisation, fed from the event outbox."""

    name = "maintenance_site.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from maintenance_site import hooks
        from maintenance_site.webhooks import services

        hooks.events_dispatched.register(services.on_events_dispatched)
