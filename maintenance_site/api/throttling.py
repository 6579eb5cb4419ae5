"""Rate limits per organisation, per principal (user or API key) and per anonymous address, kept in the shared
cache so that every process counts together.

Redis is a cache here, not the system of record: when it cannot be reached the limits fall back to counting in
this process's memory (with a warning in the log), rather than failing every request or switching limits off.
Each process then allows the full rate on its own, so the effective limit is looser by the number of web
processes, never stricter: no client is refused because Redis is down, and a flood is still bounded.
"""

import logging
import time

from django.core.cache import cache as shared_cache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from maintenance_site.tenancy.models import OrganizationAPIKey

logger = logging.getLogger(__name__)

# After a failure the shared cache is left alone this long: a Redis that hangs would otherwise cost every
# request a connection timeout per throttle.
RETRY_SHARED_AFTER_SECONDS = 10.0
CACHE_ERRORS = (RedisError, OSError)


class FallbackCache:
    """The shared cache while it answers, else a process-local one (the calls throttles make)."""

    def __init__(self, shared, local):
        self.shared = shared
        self.local = local
        self._shared_down_until = 0.0

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._shared_down_until

    def _call(self, method: str, *args, **kwargs):
        if not self.degraded:
            try:
                return getattr(self.shared, method)(*args, **kwargs)
            except CACHE_ERRORS as exc:
                self._shared_down_until = time.monotonic() + RETRY_SHARED_AFTER_SECONDS
                logger.warning(
                    "Shared cache unreachable (%s: %s): rate limits count in this process for the next %.0f s.",
                    type(exc).__name__,
                    exc,
                    RETRY_SHARED_AFTER_SECONDS,
                )
        return getattr(self.local, method)(*args, **kwargs)

    def get(self, key, default=None):
        return self._call("get", key, default)

    def set(self, key, value, timeout=None):
        return self._call("set", key, value, timeout)


throttle_cache = FallbackCache(shared_cache, LocMemCache("throttles", {"OPTIONS": {"MAX_ENTRIES": 50_000}}))


class ResilientRateThrottle(SimpleRateThrottle):
    cache = throttle_cache


class OrganizationRateThrottle(ResilientRateThrottle):
    scope = "organization"

    def get_cache_key(self, request, view):
        organization = getattr(request, "organization", None)
        if not organization:  # may be a lazy object wrapping None (browser sessions without membership)
            return None
        return self.cache_format % {"scope": self.scope, "ident": organization.pk}


class PrincipalRateThrottle(ResilientRateThrottle):
    scope = "principal"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        if isinstance(request.auth, OrganizationAPIKey):
            ident = f"key:{request.auth.prefix}"
        else:
            ident = f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonymousRateThrottle(ResilientRateThrottle, AnonRateThrottle):
    """DRF's per-address limit for anonymous requests, with the same fallback."""
