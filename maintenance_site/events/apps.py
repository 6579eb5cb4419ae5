from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class EventsConfig(AppConfig):
    """The transactional outbox: events published inside services, numbered and delivered after commit."""

    name = "maintenance_site.events"
    label = "events"
    verbose_name = gettext_lazy("Events")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from maintenance_site.events import services
        from maintenance_site.tenancy.models import Membership

        # A membership saved or deleted, or a user saved (deactivated): that user's event sockets re-check theirs
        # at once (consumers.EventStreamConsumer.membership_changed) instead of every socket asking per event.
        post_save.connect(services.membership_saved, sender=Membership, dispatch_uid="events-membership-saved")
        post_delete.connect(services.membership_saved, sender=Membership, dispatch_uid="events-membership-deleted")
        post_save.connect(services.user_saved, sender=get_user_model(), dispatch_uid="events-user-saved")
