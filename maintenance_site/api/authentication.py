"""`Authorization: Api-Key <key>`: a revocable per-organisation key acting as its service user."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from maintenance_site.tenancy.models import OrganizationAPIKey

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed API key header: use “Authorization: Api-Key <key>”.")
        key = header[1].decode(errors="replace")
        prefix, _, _ = key.partition(".")
        api_key = (
            OrganizationAPIKey.objects.select_related("organization", "service_user").filter(prefix=prefix).first()
        )
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if api_key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked; ask a manager for a new one.")
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(
                f"This API key expired on {api_key.expiry_date:%Y-%m-%d %H:%M} UTC; ask a manager for a new one."
            )
        now = timezone.now()
        # At most one write a minute per key, whatever the request rate.
        OrganizationAPIKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        return api_key.service_user, api_key

    def authenticate_header(self, request):
        return KEYWORD
