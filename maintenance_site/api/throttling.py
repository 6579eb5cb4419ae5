"""Rate limits per organisation and per principal (user or API key), kept in the shared cache so that
every process counts together."""

from rest_framework.throttling import SimpleRateThrottle

from maintenance_site.tenancy.models import OrganizationAPIKey


class OrganizationRateThrottle(SimpleRateThrottle):
    scope = "organization"

    def get_cache_key(self, request, view):
        organization = getattr(request, "organization", None)
        if not organization:  # may be a lazy object wrapping None (browser sessions without membership)
            return None
        return self.cache_format % {"scope": self.scope, "ident": organization.pk}


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "principal"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        if isinstance(request.auth, OrganizationAPIKey):
            ident = f"key:{request.auth.prefix}"
        else:
            ident = f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
