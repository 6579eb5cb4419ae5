from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API's shared parts: authentication, tenancy-aware base views, errors, idempotency."""

    name = "maintenance_site.api"
    label = "api"
    verbose_name = "API"

    def ready(self):
        from maintenance_site.api import schema  # noqa: F401  (OpenAPI extensions register on import)
