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

# The API-key read and the throttles in one round trip (maintenance_site.api.authentication): KEYS[1] is the cached
# entry of a verified key ("<organisation id>|<expiry as epoch seconds, or empty>|<pickled key>"); ARGV: now, this
# request's member, then per throttle the window's name with "{organization}" where the key's organisation id goes,
# its limit and its duration. No entry: {} (the caller reads the database). An entry that is a tombstone (see
# `forget_keys`) or of an expired key: {entry}, nothing counted. Else {entry, answer per window} as CHECK_TOGETHER.
# (The window names are made here from the entry, so they are not all in KEYS: fine on one Redis server, which is
# what the platform runs; a cluster would need the organisation in a hash tag.)
KEY_AND_CHECK = """
local entry = redis.call('GET', KEYS[1])
if not entry then return {} end
local now = tonumber(ARGV[1])
local organization, expiry = string.match(entry, '^(%d+)|([%d.]*)|')
if not organization or (expiry ~= '' and tonumber(expiry) <= now) then return {entry} end
local windows, limits, durations = {}, {}, {}
for i = 3, #ARGV, 3 do
  windows[#windows + 1] = (string.gsub(ARGV[i], '{organization}', organization))
  limits[#limits + 1], durations[#durations + 1] = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
end
local result, refused = {entry}, false
for i, key in ipairs(windows) do
  local limit, duration = limits[i], durations[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - duration)
  local count = redis.call('ZCARD', key)
  result[i + 1] = ''
  if count >= limit then
    refused = true
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local remaining = duration
    if oldest[2] then remaining = duration - (now - tonumber(oldest[2])) end
    local available = limit - count + 1
    if available <= 0 then result[i + 1] = 'none' else result[i + 1] = tostring(remaining / available) end
  end
end
if not refused then
  for i, key in ipairs(windows) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('EXPIRE', key, math.ceil(durations[i]))
  end
end
return result
"""
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


def _decoded(answer) -> tuple | None:
    """A script's answer for one window: None (allowed) or (the wait, or None when there is none, the raw answer)."""
    answer = answer.decode() if isinstance(answer, bytes) else answer
    return None if answer == "" else (None if answer == "none" else float(answer), answer)


def _script(client, name: str, text: str):
    script = _scripts.get(name)
    if script is None:  # the script's digest: EVALSHA, sending the text only when Redis does not know it yet
        script = _scripts[name] = client.register_script(text)
    return script


def key_windows(view, prefix: str) -> list[tuple[str, int, int]] | None:
    """The view's shared windows for a request made with the API key of this prefix, as (the window's Redis key
    with "{organization}" for the key's organisation id, limit, duration): what `read_key_and_check` counts in
    the key read's round trip. None when a throttle of the view cannot say its window before the key is known
    (the throttles are then checked apart, by `check_together`)."""
    backend = _redis_backend()
    if backend is None or view is None:
        return None
    windows = []
    for throttle in view.get_throttles():
        if not isinstance(throttle, ResilientRateThrottle):
            return None
        if throttle.rate is None:
            continue
        key = throttle.api_key_cache_key(prefix)
        if key is NotImplemented:
            return None
        if key is not None:
            windows.append((backend.make_and_validate_key(f"w:{key}"), throttle.num_requests, throttle.duration))
    return windows


def read_key_and_check(entry_key: str, windows, prefix: str):
    """One round trip: the cached entry under `entry_key` and, when it is a live key's, the request counted in the
    `windows` (from `key_windows`) with its organisation filled in. Returns (entry or None, {throttle key: answer}
    or None when nothing was counted). Raises the cache's errors (the caller falls back to the database)."""
    backend = _redis_backend()
    client = _process_client(backend)
    arguments = [repr(time.time()), request_names.next()]
    for key, limit, duration in windows or ():
        arguments += [key, limit, duration]
    found = _script(client, "key", KEY_AND_CHECK)(keys=[entry_key], args=arguments, client=client)
    if not found:
        return None, None
    entry, answers = found[0], found[1:]
    if windows is None or len(answers) != len(windows):
        return entry, None  # nothing counted: the throttles count apart (`check_together`)
    organization = entry.split(b"|", 1)[0].decode()
    prefix_length = len(backend.make_and_validate_key("w:"))  # the windows' keys are the cache's, made of "w:<key>"
    return entry, {
        key[prefix_length:].replace("{organization}", organization): _decoded(answer)
        for (key, _, _), answer in zip(windows, answers, strict=True)
    }


def set_answers(request, answers: dict) -> None:
    """Leave the throttles' answers, counted with the key read, for their `allow_request`."""
    raw = request._request if hasattr(request, "_request") else request
    setattr(raw, _ANSWERS, answers)


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
        script = _script(client, "check", CHECK_TOGETHER)
        arguments = [repr(time.time()), request_names.next()]
        for _, _, limit, duration in windows:
            arguments += [limit, duration]
        answers = script(keys=[window[0] for window in windows], args=arguments, client=client)
    except CACHE_ERRORS as exc:
        throttle_cache.mark_down(exc)  # each throttle then counts in this process
        return
    for (_, key, _, _), answer in zip(windows, answers, strict=True):
        getattr(raw, _ANSWERS)[key] = _decoded(answer)


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

    def api_key_cache_key(self, prefix: str):
        """`get_cache_key` for a request made with the API key of this prefix, before the key is read: with
        "{organization}" where its organisation's id goes, None when this throttle does not count such a request,
        NotImplemented when it cannot say (then no throttle is counted with the key read)."""
        return NotImplemented


class OrganizationRateThrottle(ResilientRateThrottle):
    scope = "organization"

    def get_cache_key(self, request, view):
        organization = getattr(request, "organization", None)
        if not organization:  # may be a lazy object wrapping None (browser sessions without membership)
            return None
        return self.cache_format % {"scope": self.scope, "ident": organization.pk}

    def api_key_cache_key(self, prefix: str):
        return self.cache_format % {"scope": self.scope, "ident": "{organization}"}


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

    def api_key_cache_key(self, prefix: str):
        return self.cache_format % {"scope": self.scope, "ident": f"key:{prefix}"}


class AnonymousRateThrottle(ResilientRateThrottle, AnonRateThrottle):
    """DRF's per-address limit for anonymous requests, with the same fallback."""

    def api_key_cache_key(self, prefix: str):
        return None  # an API-key request is authenticated: not counted here
