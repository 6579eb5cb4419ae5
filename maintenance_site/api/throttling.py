"""Rate limits per organisation, per principal (user or API key) and per anonymous address, kept in the shared
cache so that every process counts together.

Redis is a cache here, not the system of record: when it cannot be reached the limits fall back to counting in
this process's memory (with a warning in the log), rather than failing every request or switching limits off.
Each process then allows the full rate on its own, so the effective limit is looser by the number of web
processes, never stricter: no client is refused because Redis is down, and a flood is still bounded.

With Redis, the limits of a request are checked together in one round trip (`check_together`): a Lua script keeps
each limit's recent requests in a sorted set (the sliding window DRF keeps in a pickled list, without sending the
list back and forth: ~1,200 timestamps at the default rates), and records the request in every window only when no
limit refuses it (a refused request counts against none). The waits (`Retry-After`) are DRF's.
"""

import itertools
import logging
import os
import time

from django.core.cache import cache as shared_cache
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
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

    def mark_down(self, exc: Exception) -> None:
        self._shared_down_until = time.monotonic() + RETRY_SHARED_AFTER_SECONDS
        logger.warning(
            "Shared cache unreachable (%s: %s): rate limits count in this process for the next %.0f s.",
            type(exc).__name__,
            exc,
            RETRY_SHARED_AFTER_SECONDS,
        )

    def _call(self, method: str, *args, **kwargs):
        if not self.degraded:
            try:
                return getattr(self.shared, method)(*args, **kwargs)
            except CACHE_ERRORS as exc:
                self.mark_down(exc)
        return getattr(self.local, method)(*args, **kwargs)

    def get(self, key, default=None):
        return self._call("get", key, default)

    def set(self, key, value, timeout=None):
        return self._call("set", key, value, timeout)


throttle_cache = FallbackCache(shared_cache, LocMemCache("throttles", {"OPTIONS": {"MAX_ENTRIES": 50_000}}))

# KEYS: the windows (sorted sets of request times); ARGV: now, a member naming this request, then per key its limit
# and duration (seconds). Each window forgets what is older than its duration; if any holds `limit` requests the
# answer is its wait (DRF's: the time until its oldest request leaves the window), and nothing is recorded; else the
# request goes into every window. Returns per key "" (allowed) or the wait in seconds, as text.
CHECK_TOGETHER = """
local now = tonumber(ARGV[1])
local answers, refused = {}, false
for i, key in ipairs(KEYS) do
  local limit, duration = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - duration)
  local count = redis.call('ZCARD', key)
  answers[i] = ''
  if count >= limit then
    refused = true
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local remaining = duration
    if oldest[2] then remaining = duration - (now - tonumber(oldest[2])) end
    local available = limit - count + 1
    if available <= 0 then answers[i] = 'none' else answers[i] = tostring(remaining / available) end
  end
end
if not refused then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[2 + 2 * i])))
  end
end
return answers
"""
_scripts: dict[str, object] = {}
_ANSWERS = "_throttle_answers"


def _redis_backend():
    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


_clients: dict[tuple, object] = {}


class _RequestNames:
    """A name for each request in the windows, unique among every process's: this process's random prefix (made
    again in a forked child, which would otherwise repeat its parent's names) and a counter. Two requests under
    one name would count as one. Cheaper than a UUID per request (no random bytes read, no object made)."""

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex() + ":"
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter)}"  # (`next` of a count is atomic: threads get distinct numbers)


request_names = _RequestNames()


def _process_client(backend):
    """A Redis client over one connection pool for the whole process. Django keeps a cache backend, and with it its
    connection pool, per thread/async context: under ASGI every request would open its own connection to Redis (a
    TCP connect and handshake per request, more than the check itself). The pool is made from the cache's own
    settings (location and options), so a change of those (tests) gets its own."""
    cache_client = backend._cache
    identity = (tuple(cache_client._servers), repr(sorted(cache_client._pool_options.items(), key=str)))
    client = _clients.get(identity)
    if client is None:
        pool = cache_client._pool_class.from_url(cache_client._servers[0], **cache_client._pool_options)
        client = _clients[identity] = cache_client._client(connection_pool=pool)
    return client


def check_together(request, view) -> None:
    """Check every shared-window throttle of the view at once, in one round trip to Redis, and leave each one's answer
    on the request for its `allow_request`. Without Redis as the cache, or when it fails: nothing (each throttle then
    counts alone, through `throttle_cache` and its fallback)."""
    backend = _redis_backend()
    raw = request._request if hasattr(request, "_request") else request
    setattr(raw, _ANSWERS, {})
    if backend is None or throttle_cache.degraded:
        return
    windows = []
    for throttle in view.get_throttles():
        if not isinstance(throttle, ResilientRateThrottle) or throttle.rate is None:
            continue
        key = throttle.get_cache_key(request, view)
        if key is not None:
            windows.append((backend.make_and_validate_key(f"w:{key}"), key, throttle.num_requests, throttle.duration))
    if not windows:
        return
    try:
        client = _process_client(backend)
        script = _scripts.get("check")
        if script is None:  # the script's digest: EVALSHA, sending the text only when Redis does not know it yet
            script = _scripts["check"] = client.register_script(CHECK_TOGETHER)
        arguments = [repr(time.time()), request_names.next()]
        for _, _, limit, duration in windows:
            arguments += [limit, duration]
        answers = script(keys=[window[0] for window in windows], args=arguments, client=client)
    except CACHE_ERRORS as exc:
        throttle_cache.mark_down(exc)  # each throttle then counts in this process
        return
    for (_, key, _, _), answer in zip(windows, answers, strict=True):
        answer = answer.decode() if isinstance(answer, bytes) else answer
        getattr(raw, _ANSWERS)[key] = None if answer == "" else (None if answer == "none" else float(answer), answer)


class ResilientRateThrottle(SimpleRateThrottle):
    cache = throttle_cache

    def allow_request(self, request, view):
        """DRF's sliding window, checked with the view's other throttles in one Redis round trip (`check_together`);
        counted alone through `throttle_cache` when that is not possible."""
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        raw = request._request if hasattr(request, "_request") else request
        answers = getattr(raw, _ANSWERS, None)
        if answers is None:
            check_together(request, view)
            answers = getattr(raw, _ANSWERS)
        if self.key not in answers:
            return super().allow_request(request, view)
        refused = answers[self.key]
        if refused is None:
            return True
        self._wait = refused[0]
        return False

    def wait(self):
        if hasattr(self, "_wait"):
            return self._wait
        return super().wait()


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
