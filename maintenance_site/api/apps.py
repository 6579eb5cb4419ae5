from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ApiConfig(AppConfig):
    """The REST API's shared parts: authentication, tenancy-aware base views, errors, idempotency."""

    name = "maintenance_site.api"
    label = "api"
    verbose_name = gettext_lazy("API")

    def ready(self):
        # The OpenAPI extensions register on import; drf-spectacular's modules need the app registry ready, and
        # Django's place for such an import is here, in ready().
        from maintenance_site.api import schema  # noqa: F401

        # A cached API key is forgotten when it, its organisation, its service user or its membership changes.
        from maintenance_site.api.authentication import connect_invalidation

        connect_invalidation()
