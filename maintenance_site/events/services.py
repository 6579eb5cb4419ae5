"""Publishing and dispatching events (the transactional outbox).

`publish()` only inserts a row in the caller's transaction: an event of a rolled-back change never
exists. After commit one dispatcher numbers the new events per organisation, in the order it sees them
committed, then delivers them to the organisation's Channels group, the concerned user's group and, when
Redis is configured, the `maintenance:<type>` pub/sub channel. A periodic sweep repeats both steps for
whatever a failed or missed dispatch left behind, so an outage delays events but loses none.
"""

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
import weakref
from datetime import timedelta
from urllib.parse import urlparse

import redis
import socketio
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisSerializer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from maintenance_site import hooks
from maintenance_site.bulk import insert_rows
from maintenance_site.errors import InvalidInput, PermissionDeniedError, ServiceUnavailable
from maintenance_site.events import tasks  # tasks call these services, and these services queue tasks
from maintenance_site.events.models import Event, EventSequence
from maintenance_site.ops.correlation import get_correlation_id
from maintenance_site.tenancy.middleware import SESSION_KEY
from maintenance_site.tenancy.models import Membership, Organization
from maintenance_site.tenancy.roles import Action, role_allows
from maintenance_site.tenancy.services import resolve_membership

logger = logging.getLogger(__name__)

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")
NUMBERING_BATCH = 5000
EVENT_BATCH_MAX = 100  # events in one channel-layer message (the layer's message size stays well below 1 MB)


def organization_group(organization_id: int) -> str:
    return f"org.{organization_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(organization, event_type: str, payload: dict | None = None, *, user=None) -> Event:
    """Record an event in the current transaction; it is delivered after commit.

    `event_type` is `area:what-happened` (`work-order:created`). `user` is the person
    the event concerns (an assignee), who also receives it on their own channel.
    """
    if not EVENT_TYPE.match(event_type):
        raise ValueError(f"Event type {event_type!r} must look like 'work-order:created'.")
    event = Event.objects.create(
        organization=organization,
        type=event_type,
        payload=json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder)),
        user=user,
        correlation_id=get_correlation_id() if get_correlation_id() != "-" else "",
    )
    schedule_dispatch()
    return event


def _start_dispatch():
    tasks.dispatch_events.delay()


def schedule_dispatch() -> None:
    """Ask for one dispatch after the current transaction commits (once, however many events it holds).

    If the broker is down the request is lost; the sweep delivers the events later.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(func is _start_dispatch for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_start_dispatch, robust=True)


def number_pending_events(*, organization_id: int | None = None) -> int:
    """Give committed, unnumbered events the next sequence numbers of their organisation.

    The organisation's EventSequence row is locked while numbering, so concurrent dispatchers take
    turns and numbers are gap-free; an event not yet committed is simply numbered by a later pass.
    """
    pending_orgs = Event.objects.unnumbered()
    if organization_id is not None:
        pending_orgs = pending_orgs.filter(organization_id=organization_id)
    numbered = 0
    for org_id in sorted(set(pending_orgs.values_list("organization_id", flat=True))):
        EventSequence.objects.get_or_create(organization_id=org_id)
        with transaction.atomic():
            sequence = EventSequence.objects.select_for_update().get(organization_id=org_id)
            pending = list(
                Event.objects.filter(organization_id=org_id, sequence__isnull=True).order_by("id")[:NUMBERING_BATCH]
            )
            if not pending:
                continue
            now = timezone.now()
            last = sequence.last_sequence
            for event in pending:
                last += 1
                event.sequence = last
                event.numbered_at = now
            Event.objects.bulk_update(pending, ["sequence", "numbered_at"])
            sequence.last_sequence = last
            sequence.save(update_fields=["last_sequence"])
            numbered += len(pending)
    return numbered


_redis_client = None


def _redis():
    global _redis_client
    if not settings.REDIS_URL:
        return None
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    return _redis_client


_socketio_writer = None


def emit_to_socketio(message: dict) -> None:
    """Send one numbered event to its organisation's Socket.IO room (maintenance_site/events/socketio_server.py)
    through Redis, where every web process's AsyncRedisManager picks it up. Without Redis the web processes poll
    the database instead, and this does nothing."""
    global _socketio_writer
    if not settings.REDIS_URL:
        return
    if _socketio_writer is None:
        _socketio_writer = socketio.RedisManager(
            settings.REDIS_URL, channel=settings.SOCKETIO_REDIS_CHANNEL, write_only=True
        )
    _socketio_writer.emit(message["type"], message, room=organization_group(message["organization"]), namespace="/")


def event_frame(message: dict) -> str:
    """The websocket frame of one event message, as `/ws/events/` sends it (`{"type": "event", "event": …}`)."""
    return json.dumps({"type": "event", "event": message}, cls=DjangoJSONEncoder)


def channel_message(message: dict) -> dict:
    """The channel-layer message of one event: its organisation and sequence (what a socket decides on) and the
    frame encoded once, which every socket sends as it is."""
    return {
        "type": "event.message",
        "organization": message["organization"],
        "sequence": message["sequence"],
        "text": event_frame(message),
    }


_dispatch_loops: dict[int, asyncio.AbstractEventLoop] = {}
_dispatch_loop_lock = threading.Lock()


def _on_dispatch_loop(coroutine, timeout: float = 120):
    """Run `coroutine` on this process's long-lived dispatch event loop (a daemon thread, started on first use and
    again after a fork) and return its result: the channel layer keeps its Redis connections between dispatches,
    where async_to_sync would open a new loop, a new pool and new connections for each."""
    pid = os.getpid()
    with _dispatch_loop_lock:
        loop = _dispatch_loops.get(pid)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="events-dispatch", daemon=True).start()
            _dispatch_loops.clear()
            _dispatch_loops[pid] = loop
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)


_dispatch_layers: dict[int, tuple] = {}  # pid → (the process's shared layer, the dispatch loop's own instance)


def _dispatch_layer(shared):
    """The dispatch loop's own instance of the channel layer (its pools stay on that loop: another loop flushing
    or closing the shared instance never touches them); made again when the settings give a new shared layer."""
    entry = _dispatch_layers.get(os.getpid())
    if entry is None or entry[0] is not shared:
        _dispatch_layers.clear()
        entry = _dispatch_layers[os.getpid()] = (shared, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
    return entry[1]


def batch_message(organization_id: int, frames: list[tuple[int, str]]) -> dict:
    """The channel-layer message of several events of one organisation, in sequence order: one message per group
    and dispatch instead of one per event (each socket wakes once per batch), each frame encoded once."""
    return {"type": "event.batch", "organization": organization_id, "events": [list(frame) for frame in frames]}


async def _group_send_all(layer, sends: list[tuple[list[int], str, dict]]) -> dict[int, Exception]:
    """The channel-layer part of a batch, in order, in one event loop (one connection pool for the batch).
    Returns the failures by event id (a failed send fails every event it carried)."""
    failures: dict[int, Exception] = {}
    for event_ids, group, message in sends:
        earlier = next((failures[event_id] for event_id in event_ids if event_id in failures), None)
        if earlier is not None:  # an event of this send already failed: its later sends would leave a gap
            for event_id in event_ids:
                failures.setdefault(event_id, earlier)
            continue
        try:
            await layer.group_send(group, message)
        except Exception as exc:  # noqa: BLE001 (any transport failure: the events stay for the sweep)
            for event_id in event_ids:
                failures[event_id] = exc
    return failures


def _channel_sends(messages: list[tuple[Event, dict]]) -> list[tuple[list[int], str, dict]]:
    """The group messages of a batch: per group, the events it gets in order, as one `event.batch` message (one
    event: `event.message`), at most EVENT_BATCH_MAX events each."""
    by_group: dict[str, list[tuple[Event, dict]]] = {}
    for event, message in messages:
        by_group.setdefault(organization_group(event.organization_id), []).append((event, message))
        if event.user_id:
            by_group.setdefault(user_group(event.user_id), []).append((event, message))
    sends = []
    for group, rows in by_group.items():
        # A user's group may carry events of several organisations: one batch per organisation run.
        runs: list[list[tuple[Event, dict]]] = []
        for row in rows:
            if runs and runs[-1][0][0].organization_id == row[0].organization_id and len(runs[-1]) < EVENT_BATCH_MAX:
                runs[-1].append(row)
            else:
                runs.append([row])
        for run in runs:
            if len(run) == 1:
                sends.append(([run[0][0].pk], group, channel_message(run[0][1])))
            else:
                frames = [(message["sequence"], event_frame(message)) for _, message in run]
                sends.append(([event.pk for event, _ in run], group, batch_message(run[0][0].organization_id, frames)))
    return sends


def deliver_many(events: list[Event]) -> dict[int, Exception]:
    """Send numbered events to their listeners, in order, as one batch: the channel-layer sends in one event loop
    (one message per group, _channel_sends), the Redis pub/sub publishes in one pipeline. Returns the events that
    failed (by id) with the error."""
    failures: dict[int, Exception] = {}
    messages = [(event, event.as_message()) for event in events]
    layer = get_channel_layer()
    if layer is not None and messages:
        sends = _channel_sends(messages)
        if isinstance(layer, InMemoryChannelLayer):  # the sockets' own loop (tests, embedded): asgiref finds it
            failures.update(async_to_sync(_group_send_all)(layer, sends))
        else:
            failures.update(_on_dispatch_loop(_group_send_all(_dispatch_layer(layer), sends)))
    client = _redis()
    if client is not None and messages:
        try:
            pipeline = client.pipeline(transaction=False)
            for _, message in messages:
                pipeline.publish(f"maintenance:{message['type']}", json.dumps(message, cls=DjangoJSONEncoder))
            pipeline.execute()
            for _, message in messages:
                emit_to_socketio(json.loads(json.dumps(message, cls=DjangoJSONEncoder)))
        except Exception as exc:  # noqa: BLE001
            for event, _ in messages:
                failures.setdefault(event.pk, exc)
    return failures


def deliver(event: Event) -> None:
    """Send one numbered event to its listeners. Raises when a transport fails."""
    failures = deliver_many([event])
    if failures:
        raise failures[event.pk]


def deliver_numbered_events(*, older_than: timedelta | None = None, limit: int = 1000) -> tuple[int, int]:
    """Deliver numbered, undelivered events in sequence order, as one batch (deliver_many). Returns (delivered,
    failed)."""
    queryset = Event.objects.numbered().undelivered().order_by("organization_id", "sequence")
    if older_than is not None:
        queryset = queryset.filter(numbered_at__lt=timezone.now() - older_than)
    events = list(queryset.select_related(None)[:limit])
    if not events:
        return 0, 0
    failures = deliver_many(events)
    for event_id, exc in failures.items():
        event = next(event for event in events if event.pk == event_id)
        logger.warning("event %s (#%s) not delivered: %s", event.type, event.sequence, exc)
        Event.objects.filter(pk=event_id).update(
            delivery_attempts=F("delivery_attempts") + 1, last_error=str(exc)[:1000]
        )
    delivered = [event.pk for event in events if event.pk not in failures]
    if delivered:
        Event.objects.filter(pk__in=delivered).update(
            dispatched_at=timezone.now(), delivery_attempts=F("delivery_attempts") + 1, last_error=""
        )
    return len(delivered), len(failures)


def dispatch() -> dict:
    """Number what is committed, then deliver it: what the after-commit task runs."""
    numbered = number_pending_events()
    delivered, failed = deliver_numbered_events()
    if numbered or delivered:
        hooks.events_dispatched(numbered, delivered)
    return {"numbered": numbered, "delivered": delivered, "failed": failed}


def sweep() -> dict:
    """The periodic safety net: number and deliver whatever an earlier dispatch missed."""
    return dispatch()


def prune(retention_days: int | None = None) -> int:
    """Delete delivered events older than the retention (EVENTS_RETENTION_DAYS)."""
    days = retention_days if retention_days is not None else settings.EVENTS_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Event.objects.filter(created_at__lt=cutoff, dispatched_at__isnull=False).delete()
    return deleted


def outbox_lag_seconds() -> float:
    """Age of the oldest undelivered event (0 when the outbox is empty): the metric to alert on."""
    oldest = Event.objects.undelivered().order_by("created_at").values_list("created_at", flat=True).first()
    return (timezone.now() - oldest).total_seconds() if oldest else 0.0


# --- Catching up and the event socket ---------------------------------------------------------------------
# Imports stay inside the functions below so that this section only appends to the module.

CATCH_UP_DEFAULT_LIMIT = 100
CATCH_UP_MAX_LIMIT = 1000
WEBSOCKET_TICKET_TTL_SECONDS = 60
_MAX_SEQUENCE = 2**63 - 1  # the largest BigIntegerField value
_TICKET_CACHE_PREFIX = "events:ws-ticket:"


def parse_sequence_number(value, field: str = "after", *, default: int | None = 0) -> int | None:
    """A client's sequence number (`after`) as an int ≥ 0; raises InvalidInput (a 400) otherwise.

    Missing or empty gives `default`.
    """
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool | float):
            raise ValueError
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not 0 <= number <= _MAX_SEQUENCE:
        message = _("“%(value)s” is not a sequence number: give the last sequence you received, a whole number ≥ 0.")
        raise InvalidInput(message % {"value": value}, fields={field: [_("A whole number ≥ 0.")]})
    return number


def parse_catch_up_limit(value, field: str = "limit") -> int:
    """How many events one catch-up page holds: 1 to CATCH_UP_MAX_LIMIT, default CATCH_UP_DEFAULT_LIMIT."""
    if value is None or value == "":
        return CATCH_UP_DEFAULT_LIMIT
    try:
        if isinstance(value, bool | float):
            raise ValueError
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not 1 <= number <= CATCH_UP_MAX_LIMIT:
        message = _("“%(value)s” is not a page size: ask for 1 to %(limit)s events.")
        raise InvalidInput(
            message % {"value": value, "limit": CATCH_UP_MAX_LIMIT},
            fields={field: [_("A whole number from 1 to %(limit)s.") % {"limit": CATCH_UP_MAX_LIMIT}]},
        )
    return number


def events_after(organization_id: int, after: int, limit: int) -> tuple[list[dict], bool]:
    """The organisation's numbered events with a sequence above `after`, in order, at most `limit`, as
    messages; and whether more follow. Served by the (organization, sequence) unique index."""
    rows = list(
        Event.objects.filter(organization_id=organization_id, sequence__gt=after).order_by("sequence")[: limit + 1]
    )
    return [event.as_message() for event in rows[:limit]], len(rows) > limit


def event_frames_after(organization_id: int, after: int, limit: int) -> tuple[list[tuple[int, str]], bool]:
    """events_after as the socket sends them: [(sequence, frame)], each frame encoded once for every socket that
    catches up from the same read; and whether more follow."""
    events, has_more = events_after(organization_id, after, limit)
    return [(event["sequence"], event_frame(event)) for event in events], has_more


def last_sequence(organization_id: int) -> int:
    """The highest sequence number the organisation's events have (0 before the first)."""
    highest = (
        Event.objects.filter(organization_id=organization_id, sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    return highest or 0


def catch_up(organization, *, after=None, limit=None) -> dict:
    """One page of the catch-up API: the organisation's events numbered after `after` (raw client values
    are validated here; bad ones raise InvalidInput).

    Every numbered event of the organisation is included, also those concerning one particular user
    (`user` set): they are organisation events, visible to every member who may see the organisation's
    data; the user's own channel only makes sure that person hears of them even without the org stream.
    Events are listed only once numbered, i.e. once the dispatcher has seen them committed; the numbering
    is gap-free, so a client that stores `last_sequence` and asks again never misses one.
    """
    after = parse_sequence_number(after, "after")
    limit = parse_catch_up_limit(limit, "limit")
    events, has_more = events_after(organization.pk, after, limit)
    return {
        "events": events,
        "last_sequence": events[-1]["sequence"] if events else after,
        "has_more": has_more,
    }


def _ticket_clock() -> float:
    """Now, for ticket expiry (a function so that tests can move time)."""
    return time.time()


def _ticket_cache_key(ticket: str) -> str:
    # The cache holds a hash only: whoever can read the cache cannot open sockets with it.
    return _TICKET_CACHE_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def issue_websocket_ticket(user, organization) -> dict:
    """A single-use ticket opening the event socket (`/ws/events/?ticket=…`) as `user` in `organization`,
    for clients that cannot send the session cookie. Valid WEBSOCKET_TICKET_TTL_SECONDS seconds."""
    ticket = secrets.token_urlsafe(32)
    value = {
        "user_id": user.pk,
        "organization_id": organization.pk,
        "expires_at": _ticket_clock() + WEBSOCKET_TICKET_TTL_SECONDS,
    }
    try:
        cache.set(_ticket_cache_key(ticket), value, timeout=WEBSOCKET_TICKET_TTL_SECONDS)
    except (RedisError, OSError):  # tickets live in the shared cache: without it the socket is down as well
        raise ServiceUnavailable(
            _(
                "Live events are unavailable right now (the shared cache is unreachable): catch up with "
                "GET /api/v1/events/?after=<sequence> and ask for a ticket again in a minute."
            ),
            code="events_unavailable",
        ) from None
    return {"ticket": ticket, "expires_in": WEBSOCKET_TICKET_TTL_SECONDS}


def active_membership(user_id: int, organization_id: int):
    """The user's active membership of the organisation (user active too), else None."""
    return (
        Membership.objects.active()
        .select_related("organization")
        .filter(user_id=user_id, organization_id=organization_id)
        .first()
    )


def may_receive_events(user_id: int, organization_id: int) -> bool:
    """Whether the user may still receive the organisation's events: an active member whose role may view."""
    membership = active_membership(user_id, organization_id)
    return membership is not None and role_allows(membership.role, Action.VIEW)


def _ticket_claim(value, ticket_ok: bool = True) -> tuple[int, int] | None:
    """(user id, organisation id) of a stored ticket value, if it is one and has not expired."""
    if not ticket_ok or not isinstance(value, dict) or value.get("expires_at", 0) <= _ticket_clock():
        return None
    user_id, organization_id = value.get("user_id"), value.get("organization_id")
    if not isinstance(user_id, int) or not isinstance(organization_id, int):
        return None
    return user_id, organization_id


def claim_websocket_ticket(ticket: str) -> tuple[int, int] | None:
    """Use up a ticket: (user id, organisation id) it was issued for if it is valid, unexpired and not used
    before, else None. The membership is not checked here (websocket_ticket_membership does). A ticket works once,
    even when two connections present it at the same moment (only one cache delete succeeds)."""
    if not ticket or len(ticket) > 200:
        return None
    key = _ticket_cache_key(ticket)
    value = cache.get(key)
    if not isinstance(value, dict) or not cache.delete(key):
        return None
    return _ticket_claim(value)


_ticket_redis_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()
_REDIS_CACHE_BACKEND = "django.core.cache.backends.redis.RedisCache"


def _ticket_redis():
    """This event loop's asyncio client of the default cache's Redis (its write server), or None when the cache
    is not Redis (embedded mode: the file cache, reached through a thread)."""
    config = settings.CACHES.get("default", {})
    if config.get("BACKEND") != _REDIS_CACHE_BACKEND:
        return None
    location = config["LOCATION"]
    location = re.split("[;,]", location)[0] if isinstance(location, str) else location[0]
    clients = _ticket_redis_clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(location)
    if client is None:
        options = config.get("OPTIONS", {})
        pool = aioredis.BlockingConnectionPool.from_url(
            location,
            max_connections=50,
            timeout=10,
            socket_timeout=options.get("socket_timeout", 2),
            socket_connect_timeout=options.get("socket_connect_timeout", 2),
        )
        client = clients[location] = aioredis.Redis(connection_pool=pool)
    return client


async def aclaim_websocket_ticket(ticket: str) -> tuple[int, int] | None:
    """claim_websocket_ticket from the event loop: with the cache on Redis one GETDEL of the cache's own key (atomic:
    a ticket works once), decoded as Django's Redis cache stores values; no trip through a thread. Raises RedisError
    or OSError when the cache's Redis is unreachable."""
    client = _ticket_redis()
    if client is None:
        return await sync_to_async(claim_websocket_ticket, thread_sensitive=False)(ticket)
    if not ticket or len(ticket) > 200:
        return None
    raw = await client.getdel(cache.make_key(_ticket_cache_key(ticket)))
    if raw is None:
        return None
    try:
        value = RedisSerializer().loads(raw)
    except Exception:  # noqa: BLE001 (not a ticket this code wrote)
        return None
    return _ticket_claim(value)


async def aclaim_websocket_tickets(tickets: list[str]) -> list[tuple[int, int] | None]:
    """aclaim_websocket_ticket for several tickets at once (the handshakes a web process is serving together): one
    pipeline of GETDELs on the cache's Redis, each ticket still working once. Raises RedisError or OSError when the
    cache's Redis is unreachable."""
    client = _ticket_redis()
    if client is None:
        return await sync_to_async(
            lambda: [claim_websocket_ticket(ticket) for ticket in tickets], thread_sensitive=False
        )()
    valid = [ticket for ticket in tickets if ticket and len(ticket) <= 200]
    raws = {}
    if valid:
        pipeline = client.pipeline(transaction=False)
        for ticket in valid:
            pipeline.getdel(cache.make_key(_ticket_cache_key(ticket)))
        raws = dict(zip(valid, await pipeline.execute(), strict=True))
    claims = []
    for ticket in tickets:
        raw = raws.get(ticket)
        try:
            claims.append(None if raw is None else _ticket_claim(RedisSerializer().loads(raw)))
        except Exception:  # noqa: BLE001 (not a ticket this code wrote)
            claims.append(None)
    return claims


def websocket_ticket_memberships(pairs) -> dict[tuple[int, int], tuple]:
    """websocket_ticket_membership for several claimed tickets' (user id, organisation id) pairs, in one query: for
    each pair, (the membership or None, the organisation's last sequence)."""
    pairs = set(pairs)
    if not pairs:
        return {}
    latest = (
        Event.objects.filter(organization_id=OuterRef("organization_id"), sequence__isnull=False)
        .order_by("-sequence")
        .values("sequence")[:1]
    )
    rows = (
        Membership.objects.active()
        .select_related("organization")
        .filter(user_id__in={user for user, _ in pairs}, organization_id__in={org for _, org in pairs})
        .annotate(events_last_sequence=Subquery(latest))
        .order_by("pk")
    )
    found: dict[tuple[int, int], tuple] = {}
    for membership in rows:
        pair = (membership.user_id, membership.organization_id)
        if pair in pairs and pair not in found:
            allowed = role_allows(membership.role, Action.VIEW)
            found[pair] = (membership if allowed else None), membership.events_last_sequence or 0
    return {pair: found.get(pair, (None, 0)) for pair in pairs}


def last_sequences(organization_ids) -> dict[int, int]:
    """last_sequence of several organisations in one query (one index lookup each)."""
    latest = (
        Event.objects.filter(organization_id=OuterRef("pk"), sequence__isnull=False)
        .order_by("-sequence")
        .values("sequence")[:1]
    )
    ids = set(organization_ids)
    rows = Organization.objects.filter(pk__in=ids).annotate(last=Subquery(latest)).values_list("pk", "last")
    found = {pk: last or 0 for pk, last in rows}
    return {pk: found.get(pk, 0) for pk in ids}


def websocket_ticket_membership(user_id: int, organization_id: int):
    """For a claimed ticket, in one query: the membership it acts through (None when it no longer allows receiving
    the organisation's events, as may_receive_events) and the organisation's last sequence (as last_sequence)."""
    latest = (
        Event.objects.filter(organization_id=OuterRef("organization_id"), sequence__isnull=False)
        .order_by("-sequence")
        .values("sequence")[:1]
    )
    membership = (
        Membership.objects.active()
        .select_related("organization")
        .filter(user_id=user_id, organization_id=organization_id)
        .annotate(events_last_sequence=Subquery(latest))
        .first()
    )
    if membership is None:
        return None, 0
    highest = membership.events_last_sequence or 0
    return (membership if role_allows(membership.role, Action.VIEW) else None), highest


def redeem_websocket_ticket(ticket: str):
    """Use up a ticket: the membership it was issued for if the ticket is valid, unexpired, not used
    before and the membership still allows viewing; else None (claim_websocket_ticket, then one query)."""
    claim = claim_websocket_ticket(ticket)
    if claim is None:
        return None
    return websocket_ticket_membership(*claim)[0]


def pairs_allowed_to_receive(pairs) -> set[tuple[int, int]]:
    """Of the (user id, organisation id) pairs, those whose user may still receive the organisation's events (as
    may_receive_events), in one query: the web process's periodic re-check of all its sockets."""
    pairs = set(pairs)
    if not pairs:
        return set()
    rows = (
        Membership.objects.active()
        .filter(user_id__in={user for user, _ in pairs}, organization_id__in={org for _, org in pairs})
        .values_list("user_id", "organization_id", "role")
    )
    return {(user, org) for user, org, role in rows if (user, org) in pairs and role_allows(role, Action.VIEW)}


def notify_membership_changed(user_id: int) -> None:
    """Tell the user's open event sockets that one of their memberships changed (each re-checks its own, once);
    called after commit when a membership is saved or deleted, or a user saved (events/apps.py). Best effort: with
    the channel layer down the sockets' periodic re-check (EVENTS_PERMISSION_RECHECK_SECONDS) still applies."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": "membership.changed"})
    except Exception as exc:  # noqa: BLE001
        logger.warning("membership change of user %s not pushed to their sockets: %s", user_id, exc)


def websocket_origin_allowed(origin: str | None) -> bool:
    """Whether a browser page at `origin` may use the session cookie on the event socket: its host is one
    of ALLOWED_HOSTS (as asgi.py's AllowedHostsOriginValidator checks) or it is one of ALLOWED_ORIGINS."""
    patterns = list(settings.ALLOWED_HOSTS) + list(settings.ALLOWED_ORIGINS)
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        patterns += ["localhost", "127.0.0.1", "[::1]"]
    parsed = urlparse(origin) if origin else None
    return OriginValidator(None, patterns).valid_origin(parsed)


def websocket_membership(user, requested: str | None = None, session=None):
    """The membership a session user's event socket acts through: the organisation named by slug or id
    (validated against the user's memberships), else the session's remembered one, else the only one.
    Raises PermissionDeniedError / InvalidInput like resolve_membership."""
    remembered = session.get(SESSION_KEY) if session is not None else None
    membership = resolve_membership(user, requested, default_organization_id=remembered)
    if not role_allows(membership.role, Action.VIEW):
        raise PermissionDeniedError(
            _("Your role (%(role)s) may not see the organisation's events.") % {"role": membership.get_role_display()},
            code="role_forbids",
        )
    return membership


# --- Publishing in bulk ---------------------------------------------------------------------------------------


def publish_many(organization, event_type: str, payloads: list[dict], *, user_ids=None) -> int:
    """`publish()` for a batch: one event per payload, written in the caller's transaction by one COPY (on
    PostgreSQL; `maintenance_site.bulk.insert_rows`) and delivered after commit by a single dispatch, like
    `publish()`. `user_ids`, when given, holds per payload the id of the user the event concerns (or None).
    Returns how many events it published."""
    if not EVENT_TYPE.match(event_type):
        raise ValueError(f"Event type {event_type!r} must look like 'work-order:created'.")
    if user_ids is not None and len(user_ids) != len(payloads):
        raise ValueError("publish_many: give one user id (or None) per payload.")
    if not payloads:
        return 0
    correlation_id = get_correlation_id()
    correlation_id = correlation_id if correlation_id != "-" else ""
    organization_id = getattr(organization, "pk", organization)
    encode = DjangoJSONEncoder().encode
    users = user_ids if user_ids is not None else [None] * len(payloads)
    rows = [
        (organization_id, event_type, encode(payload or {}), user_id, correlation_id)
        for payload, user_id in zip(payloads, users, strict=True)
    ]
    insert_rows(Event, ["organization_id", "type", "payload", "user_id", "correlation_id"], rows, with_ids=False)
    schedule_dispatch()
    return len(rows)


def _push_after_commit(user_id) -> None:
    if user_id is not None:
        transaction.on_commit(lambda: notify_membership_changed(user_id), robust=True)


def membership_saved(sender, instance, **kwargs) -> None:
    """Signal receiver (events/apps.py): a membership saved or deleted; its user's sockets re-check after commit."""
    _push_after_commit(instance.user_id)


def user_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    """Signal receiver (events/apps.py): a user saved (deactivated, say); their sockets re-check after commit. A
    login (only last_login) or a new user (no sockets yet) is not worth a message."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    _push_after_commit(instance.pk)
