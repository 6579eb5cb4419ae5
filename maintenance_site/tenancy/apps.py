from django.apps import AppConfig


class TenancyConfig(AppConfig):
    """Organisations, memberships with roles, API keys: who may see and do what."""

    name = "maintenance_site.tenancy"
    label = "tenancy"
    verbose_name = "Organisations and access"
