"""Publishing and dispatching events (the transactional outbox).

`publish()` only inserts a row in the caller's transaction: an event of a rolled-back change never
exists. After commit one dispatcher numbers the new events per organisation, in the order it sees them
committed, then delivers them to the organisation's Channels group, the concerned user's group and, when
Redis is configured, the `maintenance:<type>` pub/sub channel. A periodic sweep repeats both steps for
whatever a failed or missed dispatch left behind, so an outage delays events but loses none.
"""

import hashlib
import json
import logging
import re
import secrets
import time
from datetime import timedelta
from urllib.parse import urlparse

import redis
import socketio
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from maintenance_site import hooks
from maintenance_site.bulk import insert_rows
from maintenance_site.errors import InvalidInput, PermissionDeniedError, ServiceUnavailable
from maintenance_site.events import tasks  # tasks call these services, and these services queue tasks
from maintenance_site.events.models import Event, EventSequence
from maintenance_site.ops.correlation import get_correlation_id
from maintenance_site.tenancy.middleware import SESSION_KEY
from maintenance_site.tenancy.models import Membership
from maintenance_site.tenancy.roles import Action, role_allows
from maintenance_site.tenancy.services import resolve_membership

logger = logging.getLogger(__name__)

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")
NUMBERING_BATCH = 5000


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


def deliver(event: Event) -> None:
    """Send one numbered event to its listeners. Raises when a transport fails."""
    message = event.as_message()
    layer = get_channel_layer()
    if layer is not None:
        channel_message = {"type": "event.message", "event": message}
        async_to_sync(layer.group_send)(organization_group(event.organization_id), channel_message)
        if event.user_id:
            async_to_sync(layer.group_send)(user_group(event.user_id), channel_message)
    client = _redis()
    if client is not None:
        client.publish(f"maintenance:{event.type}", json.dumps(message, cls=DjangoJSONEncoder))
        emit_to_socketio(json.loads(json.dumps(message, cls=DjangoJSONEncoder)))


def deliver_numbered_events(*, older_than: timedelta | None = None, limit: int = 1000) -> tuple[int, int]:
    """Deliver numbered, undelivered events in sequence order. Returns (delivered, failed)."""
    queryset = Event.objects.numbered().undelivered().order_by("organization_id", "sequence")
    if older_than is not None:
        queryset = queryset.filter(numbered_at__lt=timezone.now() - older_than)
    delivered, failed = [], 0
    for event in queryset.select_related(None)[:limit]:
        try:
            deliver(event)
        except Exception as exc:  # any transport failure: keep the event for the sweep
            failed += 1
            logger.warning("event %s (#%s) not delivered: %s", event.type, event.sequence, exc)
            Event.objects.filter(pk=event.pk).update(
                delivery_attempts=F("delivery_attempts") + 1, last_error=str(exc)[:1000]
            )
            continue
        delivered.append(event.pk)
    if delivered:
        Event.objects.filter(pk__in=delivered).update(
            dispatched_at=timezone.now(), delivery_attempts=F("delivery_attempts") + 1, last_error=""
        )
    return len(delivered), failed


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
        message = f"“{value}” is not a sequence number: give the last sequence you received, a whole number ≥ 0."
        raise InvalidInput(message, fields={field: ["A whole number ≥ 0."]})
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
        message = f"“{value}” is not a page size: ask for 1 to {CATCH_UP_MAX_LIMIT} events."
        raise InvalidInput(message, fields={field: [f"A whole number from 1 to {CATCH_UP_MAX_LIMIT}."]})
    return number


def events_after(organization_id: int, after: int, limit: int) -> tuple[list[dict], bool]:
    """The organisation's numbered events with a sequence above `after`, in order, at most `limit`, as
    messages; and whether more follow. Served by the (organization, sequence) unique index."""
    rows = list(
        Event.objects.filter(organization_id=organization_id, sequence__gt=after).order_by("sequence")[: limit + 1]
    )
    return [event.as_message() for event in rows[:limit]], len(rows) > limit


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
            "Live events are unavailable right now (the shared cache is unreachable): catch up with "
            "GET /api/v1/events/?after=<sequence> and ask for a ticket again in a minute.",
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


def redeem_websocket_ticket(ticket: str):
    """Use up a ticket: the membership it was issued for if the ticket is valid, unexpired, not used
    before and the membership still allows viewing; else None. A ticket works once, even when two
    connections present it at the same moment (only one cache delete succeeds)."""
    if not ticket or len(ticket) > 200:
        return None
    key = _ticket_cache_key(ticket)
    value = cache.get(key)
    if not isinstance(value, dict) or not cache.delete(key):
        return None
    if value.get("expires_at", 0) <= _ticket_clock():
        return None
    if not may_receive_events(value["user_id"], value["organization_id"]):
        return None
    return active_membership(value["user_id"], value["organization_id"])


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
            f"Your role ({membership.get_role_display()}) may not see the organisation's events.",
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
