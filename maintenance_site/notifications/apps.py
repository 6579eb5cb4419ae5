from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class NotificationsConfig(AppConfig):
    """Notifications to people: in-app, e-mail, Slack-compatible webhooks, SMS and push, per user preference."""

    name = "maintenance_site.notifications"
    label = "notifications"
    verbose_name = gettext_lazy("Notifications")
