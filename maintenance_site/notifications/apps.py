from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications to people: in-app, e-mail, Slack-compatible webhooks, SMS and push, per user preference."""

    name = "maintenance_site.notifications"
    label = "notifications"
    verbose_name = "Notifications"
