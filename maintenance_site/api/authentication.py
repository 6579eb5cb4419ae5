"""`Authorization: Api-Key <key>`: a revocable per-organisation key acting as its service user."""

from datetime import timedelta

from django.db.models import DecimalField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from maintenance_site.tenancy.models import Membership, OrganizationAPIKey

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = timedelta(seconds=60)


def with_membership(keys):
    """Keys with their organisation, service user and that user's active membership of the key's organisation, in
    one query (`membership_of(key)`, None when there is none): the request's tenant without a second query."""
    # Raw SQL: three ORM subqueries cost more to compile than the whole query takes to run.
    key, membership = OrganizationAPIKey._meta.db_table, Membership._meta.db_table
    active = (
        f'FROM "{membership}" m WHERE m.user_id = "{key}".service_user_id '  # noqa: S608 (table names, no input)
        f'AND m.organization_id = "{key}".organization_id AND m.is_active'
    )
    return keys.select_related("organization", "service_user").annotate(
        membership_pk=RawSQL(f"SELECT m.id {active}", ()),  # noqa: S611 (no input in it)
        membership_role=RawSQL(f"SELECT m.role {active}", ()),  # noqa: S611
        membership_rate=RawSQL(f"SELECT m.hourly_rate {active}", (), output_field=DecimalField()),  # noqa: S611
    )


def membership_of(api_key) -> Membership | None:
    """The membership `with_membership` read along with the key (only while the service user is active)."""
    if getattr(api_key, "membership_pk", None) is None or not api_key.service_user.is_active:
        return None
    membership = Membership(
        pk=api_key.membership_pk,
        organization=api_key.organization,
        user=api_key.service_user,
        role=api_key.membership_role,
        hourly_rate=api_key.membership_rate,
        is_active=True,
    )
    membership._state.adding, membership._state.db = False, "default"
    return membership


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed API key header: use “Authorization: Api-Key <key>”.")
        key = header[1].decode(errors="replace")
        prefix, _, _ = key.partition(".")
        api_key = with_membership(OrganizationAPIKey.objects.filter(prefix=prefix)).first()
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if api_key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked; ask a manager for a new one.")
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(
                f"This API key expired on {api_key.expiry_date:%Y-%m-%d %H:%M} UTC; ask a manager for a new one."
            )
        now = timezone.now()
        # At most one write a minute per key, whatever the request rate: the key just read says whether its
        # stamp is older than that, and only then is an UPDATE sent (conditional, so concurrent requests of the
        # same minute write it once).
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            OrganizationAPIKey.objects.filter(pk=api_key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
        return api_key.service_user, api_key

    def authenticate_header(self, request):
        return KEYWORD
