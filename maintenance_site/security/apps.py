from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class SecurityConfig(AppConfig):
    """Client addresses, login lockouts and the Content-Security-Policy."""

    name = "maintenance_site.security"
    label = "security"
    verbose_name = gettext_lazy("Security")

    def ready(self):
        from maintenance_site.security import logins  # noqa: F401  (the failed-login log listens to signals)
