"""`Authorization: Api-Key <key>`: a revocable per-organisation key acting as its service user.

A verified key is kept in Redis for a minute (`KEY_CACHE_SECONDS`), under a name made from the hash of the whole
key the client presented (SHA-512, as the key is stored, hashed again with SHA-256), never the key itself nor only
its public prefix: a request finds an entry only by presenting a key that hashes to a verified one, so a forged key
sharing a real key's prefix is read from the database and refused as before. The entry holds what authentication
needs (the key without its hash, its organisation, its service user and membership); expiry is checked on every
request, and whatever changes a key, its organisation, its service user or that user's membership replaces the
entries concerned with a tombstone (`forget_keys`, from the models' signals: at once and again after commit) which
no request may overwrite for a minute, so a request that read the key before the change cannot put it back.

The entry is read and the request counted in the view's rate limits in one Redis round trip (a Lua script,
maintenance_site.api.throttling.KEY_AND_CHECK): an API-key request then makes two round trips, Redis and its own
query. Redis down or not the cache: the database, as before (never a 500).
"""

import copy
import hashlib
import logging
import pickle
import time
from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from maintenance_site.api import throttling
from maintenance_site.tenancy.models import Membership, Organization, OrganizationAPIKey

logger = logging.getLogger(__name__)

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = timedelta(seconds=60)
KEY_CACHE_SECONDS = 60  # how long a verified key is kept: the safety net under the invalidation by signals
ENTRY_VERSION = 1  # part of the entries' names: raise it when what an entry holds changes
TOMBSTONE = b"-"  # what replaces an entry whose key changed: a miss that no request may fill for KEY_CACHE_SECONDS
_PREFERRED = OrganizationAPIKey.objects.key_generator.preferred_hasher.algorithm + "$$"

# The keys whose `last_used_at` this process stamped, and when (time.monotonic()): a key read from the cache carries
# the stamp it had when it was cached, so without this every request of the entry's last seconds would send the
# (then matching nothing) conditional UPDATE. Each process stamps a key at most once a minute.
_stamped: dict = {}


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


def _entry_name(hashed_key: str) -> str | None:
    """The cache's name for the entry of the key stored with this hash (None for a hash of an older hasher: such a
    key is upgraded on its first use, and cached from its next)."""
    if not hashed_key.startswith(_PREFERRED):
        return None
    backend = throttling._redis_backend()
    if backend is None:
        return None
    return backend.make_and_validate_key(f"apikey:{ENTRY_VERSION}:" + hashlib.sha256(hashed_key.encode()).hexdigest())


def _presented_hash(key: str) -> str:
    """The hash the key presented would be stored with (the library's preferred hasher: SHA-512, no salt)."""
    return _PREFERRED + hashlib.sha512(key.encode()).hexdigest()


def _entry(api_key) -> bytes:
    """A verified key as cached: its organisation id and expiry first (read by the Lua script), then the key with
    its organisation, service user and membership, without its hash."""
    kept = copy.copy(api_key)
    kept.hashed_key = ""
    kept.service_user = copy.copy(api_key.service_user)
    kept.service_user.password = ""
    expiry = f"{api_key.expiry_date.timestamp():.6f}" if api_key.expiry_date is not None else ""
    return f"{api_key.organization_id}|{expiry}|".encode() + pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)


def _from_entry(entry: bytes):
    """The key of a cached entry; None for a tombstone or an entry this code cannot read (written by another
    version of the models: read from the database instead)."""
    if entry == TOMBSTONE or entry.count(b"|") < 2:
        return None
    try:
        api_key = pickle.loads(entry.split(b"|", 2)[2])  # noqa: S301 (written by this module, as Django's cache)
    except Exception:  # noqa: BLE001
        logger.warning("A cached API key could not be read: reading it from the database.", exc_info=True)
        return None
    return api_key if isinstance(api_key, OrganizationAPIKey) else None


def _cached_key(request, key: str):
    """The verified key for `key` from Redis (None: not cached, or Redis not usable), with the view's throttles
    counted in the same round trip when it is found (their answers left on the request)."""
    name = _entry_name(_presented_hash(key))
    if name is None or throttling.throttle_cache.degraded:
        return None
    prefix = key.partition(".")[0]
    view = (getattr(request, "parser_context", None) or {}).get("view")
    windows = throttling.key_windows(view, prefix) if prefix.isalnum() and len(prefix) <= 40 else None
    try:
        entry, answers = throttling.read_key_and_check(name, windows, prefix)
    except throttling.CACHE_ERRORS as exc:
        throttling.throttle_cache.mark_down(exc)
        return None
    api_key = _from_entry(entry) if entry is not None else None
    if api_key is not None and answers is not None:
        throttling.set_answers(request, answers)
    return api_key


def _cache_key(api_key) -> None:
    """Keep a key just verified from the database, unless an entry (or a tombstone) is there."""
    name = _entry_name(api_key.hashed_key)
    if name is None or throttling.throttle_cache.degraded:
        return
    try:
        client = throttling._process_client(throttling._redis_backend())
        client.set(name, _entry(api_key), ex=KEY_CACHE_SECONDS, nx=True)
    except throttling.CACHE_ERRORS as exc:
        throttling.throttle_cache.mark_down(exc)


def forget_keys(hashed_keys) -> None:
    """Replace the cached entries of these keys (by their stored hashes) with tombstones: the next request reads the
    key from the database, and none may cache it for a minute (a request that read it before the change would
    otherwise put it back). Without Redis: nothing to forget, the entries expire within `KEY_CACHE_SECONDS`."""
    names = [name for name in map(_entry_name, hashed_keys) if name is not None]
    if not names:
        return
    try:
        client = throttling._process_client(throttling._redis_backend())
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, TOMBSTONE, ex=KEY_CACHE_SECONDS)
            pipe.execute()
    except throttling.CACHE_ERRORS as exc:
        logger.warning("Could not forget %d cached API key(s) (%s: %s).", len(names), type(exc).__name__, exc)


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
        api_key = _cached_key(request, key)
        cached = api_key is not None
        if not cached:
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
        # same minute write it once). A cached key's stamp is the one it had when cached: this process's own
        # stamps say whether it wrote one since.
        stamp = (api_key.pk, api_key.prefix)
        if (api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION) and (
            not cached or _stamped.get(stamp, -float("inf")) < time.monotonic() - LAST_USED_RESOLUTION.total_seconds()
        ):
            OrganizationAPIKey.objects.filter(pk=api_key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
            api_key.last_used_at = now
            if len(_stamped) > 10_000:
                _stamped.clear()
            _stamped[stamp] = time.monotonic()
        if not cached:
            _cache_key(api_key)
        return api_key.service_user, api_key

    def authenticate_header(self, request):
        return KEYWORD


# --- what makes a cached key stale ------------------------------------------------------------------------------


def _forget_now_and_after_commit(hashed_keys: list[str]) -> None:
    """At once (a request between the change and its commit may not cache the key as it was) and after commit (nor
    one that read it before the change)."""
    if not hashed_keys:
        return
    forget_keys(hashed_keys)
    transaction.on_commit(lambda: forget_keys(hashed_keys))


def _keys_of(**filters) -> list[str]:
    if throttling._redis_backend() is None:
        return []  # nothing cached: no query
    return list(OrganizationAPIKey.objects.filter(**filters).values_list("hashed_key", flat=True))


def key_changed(sender, instance, created=False, **kwargs):
    if not created:
        _forget_now_and_after_commit([instance.hashed_key])


def organization_changed(sender, instance, created=False, **kwargs):
    if not created:
        _forget_now_and_after_commit(_keys_of(organization_id=instance.pk))


def membership_changed(sender, instance, created=False, **kwargs):
    # created too: a key of a service user without an active membership was cached without one
    _forget_now_and_after_commit(_keys_of(service_user_id=instance.user_id))


def user_changed(sender, instance, created=False, update_fields=None, **kwargs):
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no key yet; a login changes nothing a key's authentication reads
    _forget_now_and_after_commit(_keys_of(service_user_id=instance.pk))


def connect_invalidation() -> None:
    """Connected in the API app's ready(): every save or delete of a key, its organisation, its service user or that
    user's membership (services, admin, shell) forgets the cached keys concerned. (A queryset .update() sends no
    signal: the services that use one on these models also save the key, e.g. revoke_api_key.)"""
    for model, receiver in (
        (OrganizationAPIKey, key_changed),
        (Organization, organization_changed),
        (Membership, membership_changed),
        (get_user_model(), user_changed),
    ):
        post_save.connect(receiver, sender=model, dispatch_uid=f"apikey-cache-{model._meta.label}-save")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"apikey-cache-{model._meta.label}-delete")
