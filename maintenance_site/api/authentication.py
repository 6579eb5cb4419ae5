"""`Authorization: Api-Key <key>`: a revocable per-organisation key acting as its service user."""

from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from maintenance_site.tenancy.models import Membership, Organization, OrganizationAPIKey

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = timedelta(seconds=60)


class _Loader:
    """A model's concrete columns in SQL under a table alias, and the instance built from them as the ORM builds it
    (each field's database converters applied): `key_by_prefix` reads three models in one hand-written query
    without compiling an ORM query per request (compiling it cost more than running it)."""

    def __init__(self, model, alias: str, connection):
        self.model, self.fields = model, model._meta.concrete_fields
        self.names = [field.attname for field in self.fields]
        self.sql = ", ".join(f'{alias}."{field.column}"' for field in self.fields)
        self.converters = []
        for index, field in enumerate(self.fields):
            col = field.get_col(alias)
            found = [*connection.ops.get_db_converters(col), *field.get_db_converters(connection)]
            if found:
                self.converters.append((index, found, col))

    def build(self, values, connection):
        values = list(values)
        for index, converters, col in self.converters:
            for convert in converters:
                values[index] = convert(values[index], col, connection)
        return self.model.from_db(connection.alias, self.names, values)


@cache
def _key_query(alias: str):
    """The loaders and SQL of `key_by_prefix` (built once per process and database)."""
    connection = connections[alias]
    key, org, user = (
        _Loader(OrganizationAPIKey, "k", connection),
        _Loader(Organization, "o", connection),
        _Loader(get_user_model(), "u", connection),
    )
    table = {model: f'"{model._meta.db_table}"' for model in (OrganizationAPIKey, Organization, Membership)}
    user_table = f'"{get_user_model()._meta.db_table}"'
    sql = (
        f"SELECT {key.sql}, {org.sql}, {user.sql}, m.id, m.role, m.hourly_rate "  # noqa: S608 (names, no input)
        f"FROM {table[OrganizationAPIKey]} k "
        f"JOIN {table[Organization]} o ON o.id = k.organization_id "
        f"JOIN {user_table} u ON u.id = k.service_user_id "
        f"LEFT JOIN {table[Membership]} m ON m.user_id = k.service_user_id "
        f"AND m.organization_id = k.organization_id AND m.is_active "
        f"WHERE k.prefix = %s"
    )
    return sql, key, org, user


def key_by_prefix(prefix: str, using: str = "default"):
    """The key with this prefix (None if there is none) with its organisation and service user attached and the
    service user's active membership of the key's organisation as `membership_pk/role/rate` (None without one).
    One query, written by hand: every API-key request runs it."""
    sql, key, org, user = _key_query(using)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    a, b = len(key.names), len(key.names) + len(org.names)
    c = b + len(user.names)
    api_key = key.build(row[:a], connection)
    api_key.organization = org.build(row[a:b], connection)
    api_key.service_user = user.build(row[b:c], connection)
    api_key.membership_pk, api_key.membership_role, api_key.membership_rate = row[c:]
    return api_key


def membership_of(api_key) -> Membership | None:
    """The membership `key_by_prefix` read along with the key (only while the service user is active)."""
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
            raise exceptions.AuthenticationFailed(
                gettext("Malformed API key header: use “Authorization: Api-Key <key>”.")
            )
        key = header[1].decode(errors="replace")
        prefix, _, _ = key.partition(".")
        api_key = key_by_prefix(prefix)
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(gettext("Invalid API key."))
        if api_key.revoked:
            raise exceptions.AuthenticationFailed(
                gettext("This API key has been revoked; ask a manager for a new one.")
            )
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(
                gettext("This API key expired on %(moment)s UTC; ask a manager for a new one.")
                % {"moment": f"{api_key.expiry_date:%Y-%m-%d %H:%M}"}
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
