from django.apps import AppConfig


class EventsConfig(AppConfig):
    """The transactional outbox: events published inside services, numbered and delivered after commit."""

    name = "maintenance_site.events"
    label = "events"
    verbose_name = "Events"
