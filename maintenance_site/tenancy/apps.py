from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class TenancyConfig(AppConfig):
    """Organisations, memberships with roles, API keys: who may see and do what."""

    name = "maintenance_site.tenancy"
    label = "tenancy"
    verbose_name = gettext_lazy("Organisations and access")
