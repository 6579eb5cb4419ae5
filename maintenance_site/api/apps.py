from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API's shared parts: authentication, tenancy-aware base views, errors, idempotency."""

    name = "maintenance_site.api"
    label = "api"
    verbose_name = "API"

    def ready(self):
        # The OpenAPI extensions register on import; drf-spectacular's modules need the app registry ready, and
        # Django's place for such an import is here, in ready().
        from maintenance_site.api import schema  # noqa: F401
