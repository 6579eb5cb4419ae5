"""The live event stream, `/ws/events/`.

Connect as the session user (the page's Origin must be one of ALLOWED_HOSTS or ALLOWED_ORIGINS) or with
`?ticket=` from `POST /api/v1/events/ticket` (single use). `?organization=<slug or id>` picks the
organisation, else the session's remembered one, else the only one. `?after=<sequence>` first replays
what was missed from the database, then the stream continues live.

Server → client: `{"type": "event", "event": {...}}` (Event.as_message()), strictly increasing sequence per
connection, without gaps when the events are still kept; `{"type": "pong"}`; `{"type": "error", "code",
"message"}` (followed by a close when fatal). Client → server: `{"type": "ping"}`, `{"type": "catch-up",
"after": <sequence>}`.

Close codes: 4400 bad request (bad `after`, organisation not named while the user has several),
4401 not authenticated (no session user, bad or used ticket), 4403 not allowed (origin, not a member,
membership ended while connected).

Live events come through the channel layer (groups `org.<id>` and `user.<id>`). A message whose sequence
skips ahead makes the consumer fetch the gap from the database first, and every EVENTS_GROUP_REJOIN_SECONDS
it re-joins its groups (they expire in channels_redis) and checks the database for anything a dropped
message hid. With the in-memory layer (embedded mode) the Celery worker is another process and cannot
reach these sockets, so the consumer polls the database every EVENTS_POLL_INTERVAL seconds instead.
"""

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.conf import settings
from redis.exceptions import RedisError

from maintenance_site.errors import DomainError
from maintenance_site.events import services
from maintenance_site.ops import metrics

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the server cannot take the connection now (Redis unreachable)

CATCH_UP_BATCH = services.CATCH_UP_MAX_LIMIT


def _setting(name: str, minimum: float) -> float:
    """A websocket timing from settings.py, never below `minimum` (a busy loop would hog the event loop)."""
    return max(minimum, float(getattr(settings, name)))


class Rejected(Exception):
    """Why a connection is refused: a close code, an error code and a sentence."""

    def __init__(self, close_code: int, code: str, message: str):
        super().__init__(message)
        self.close_code = close_code
        self.code = code
        self.message = message


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    # Defaults for connections refused before they got this far.
    user_id = None
    organization_id = None
    group_names: tuple[str, ...] = ()
    embedded = False
    last_sent = 0
    _opened = False
    _closed = False
    _task = None

    # --- connecting --------------------------------------------------------------------------------
    async def connect(self):
        self._lock = asyncio.Lock()
        query = {key: values[-1] for key, values in parse_qs(self.scope.get("query_string", b"").decode()).items()}
        try:
            membership = await self._authenticate(query)
            try:
                after = services.parse_sequence_number(query.get("after"), "after", default=None)
            except DomainError as exc:
                raise Rejected(CLOSE_BAD_REQUEST, exc.code, exc.message) from None
        except Rejected as rejection:
            await self._reject(rejection)
            return

        self.user_id = membership.user_id
        self.organization_id = membership.organization_id
        self.group_names = (
            services.organization_group(self.organization_id),
            services.user_group(self.user_id),
        )
        self.embedded = self.channel_layer is None or isinstance(self.channel_layer, InMemoryChannelLayer)
        try:
            await self._join_groups()  # before reading the database: nothing falls between the two
        except (RedisError, OSError) as exc:  # the channel layer's Redis is down: no live events to offer
            logger.warning("event socket refused: the channel layer is unreachable (%s: %s)", type(exc).__name__, exc)
            self.group_names = ()
            await self._reject(
                Rejected(
                    CLOSE_TRY_AGAIN_LATER,
                    "events_unavailable",
                    "Live events are unavailable right now: catch up with GET /api/v1/events/?after=<sequence> "
                    "and reconnect in a minute.",
                )
            )
            return
        await self.accept()
        self._opened = True
        metrics.websocket_opened()
        self._allowed_until = time.monotonic() + self._recheck_seconds()
        if after is None:
            self.last_sent = await database_sync_to_async(services.last_sequence)(self.organization_id)
        else:
            self.last_sent = after
            await self._catch_up()
        self._task = asyncio.create_task(self._maintain())

    async def _authenticate(self, query: dict):
        """The membership the connection acts through, or Rejected."""
        ticket = query.get("ticket")
        requested = query.get("organization")
        if ticket:
            membership = await database_sync_to_async(services.redeem_websocket_ticket)(ticket)
            if membership is None:
                raise Rejected(
                    CLOSE_UNAUTHENTICATED,
                    "invalid_ticket",
                    "This ticket is unknown, used or expired: get a new one from POST /api/v1/events/ticket.",
                )
            if requested and requested not in (membership.organization.slug, str(membership.organization_id)):
                raise Rejected(CLOSE_FORBIDDEN, "not_a_member", "The ticket was issued for another organisation.")
            return membership

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            raise Rejected(
                CLOSE_UNAUTHENTICATED,
                "not_authenticated",
                "Sign in first, or connect with a ticket from POST /api/v1/events/ticket.",
            )
        if not services.websocket_origin_allowed(self._origin()):
            raise Rejected(
                CLOSE_FORBIDDEN,
                "origin_forbidden",
                "This page's origin may not use your session: connect with a ticket instead.",
            )
        try:
            return await database_sync_to_async(services.websocket_membership)(
                user, requested, self.scope.get("session")
            )
        except DomainError as exc:
            close_code = CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_BAD_REQUEST
            raise Rejected(close_code, exc.code, exc.message) from None

    def _origin(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"origin":
                return value.decode("latin1")
        return None

    async def _reject(self, rejection: Rejected):
        # Accept first: a close before the handshake reaches browsers as a bare 1006, without the code.
        await self.accept()
        await self.send_json({"type": "error", "code": rejection.code, "message": rejection.message})
        await self.close(code=rejection.close_code)
        self._closed = True

    async def _join_groups(self):
        if self.channel_layer is None:
            return
        for group in self.group_names:
            await self.channel_layer.group_add(group, self.channel_name)

    # --- disconnecting -----------------------------------------------------------------------------
    async def disconnect(self, code):
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("event socket: background task failed")
        if self.channel_layer is not None:
            for group in self.group_names:
                await self.channel_layer.group_discard(group, self.channel_name)
        if self._opened:
            self._opened = False
            metrics.websocket_closed()

    async def _close_forbidden(self, code: str, message: str):
        if self._closed:
            return
        self._closed = True
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=CLOSE_FORBIDDEN)

    # --- client messages ---------------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data) if text_data else None
        except ValueError:
            content = None
        if not isinstance(content, dict):
            await self._client_error("invalid_message", 'Send JSON objects such as {"type": "ping"}.')
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        if self._closed:
            return
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "catch-up":
            try:
                after = services.parse_sequence_number(content.get("after"), "after", default=None)
            except DomainError as exc:
                await self._client_error(exc.code, exc.message)
                return
            if after is None:
                await self._client_error("invalid", 'Say after which sequence: {"type": "catch-up", "after": 41}.')
                return
            async with self._lock:
                # The client has everything up to `after`; never resend what this connection already sent.
                self.last_sent = max(self.last_sent, after)
                await self._send_from_database()
        else:
            await self._client_error("unknown_type", f"Unknown message type {kind!r}: use ping or catch-up.")

    async def _client_error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    # --- events ------------------------------------------------------------------------------------
    async def event_message(self, message):
        """An event from the channel layer (services.deliver)."""
        event = message.get("event") or {}
        sequence = event.get("sequence")
        # The user's own group also carries their events of other organisations: not for this socket.
        if self._closed or event.get("organization") != self.organization_id or not isinstance(sequence, int):
            return
        async with self._lock:
            if sequence <= self.last_sent:
                return  # a duplicate (both groups, or already caught up)
            # A gap: the missing events are committed (numbering is in commit order); fetch them first.
            if sequence > self.last_sent + 1 and not await self._send_from_database():
                return
            if sequence > self.last_sent:
                await self._send([event])

    async def _catch_up(self):
        async with self._lock:
            await self._send_from_database()

    async def _send_from_database(self) -> bool:
        """Send every kept event after last_sent, in batches. Call with the lock held. False once closed."""
        while not self._closed:
            events, has_more = await database_sync_to_async(services.events_after)(
                self.organization_id, self.last_sent, CATCH_UP_BATCH
            )
            if not await self._send(events):
                return False
            if not has_more:
                return True
        return False

    async def _send(self, events: list[dict]) -> bool:
        """Send events above last_sent, in order, re-checking permission. Call with the lock held."""
        for event in events:
            sequence = event.get("sequence")
            if sequence is None or sequence <= self.last_sent:
                continue
            if not await self._still_allowed():
                return False
            await self.send_json({"type": "event", "event": event})
            self.last_sent = sequence
        return not self._closed

    def _recheck_seconds(self) -> float:
        return _setting("EVENTS_PERMISSION_RECHECK_SECONDS", 0.0)

    async def _still_allowed(self) -> bool:
        """Whether the membership still allows receiving events; checked at most every few seconds.
        Closes the socket (4403) when it does not."""
        if self._closed:
            return False
        now = time.monotonic()
        if now < self._allowed_until:
            return True
        allowed = await database_sync_to_async(services.may_receive_events)(self.user_id, self.organization_id)
        if not allowed:
            await self._close_forbidden(
                "membership_ended", "You are no longer a member of this organisation, or may not see its events."
            )
            return False
        self._allowed_until = now + self._recheck_seconds()
        return True

    async def _maintain(self):
        """Background: re-join the groups now and then (and look in the database for anything missed);
        in embedded mode, poll the database for new events."""
        poll_interval = _setting("EVENTS_POLL_INTERVAL", 0.01)
        rejoin_interval = _setting("EVENTS_GROUP_REJOIN_SECONDS", 0.05)
        next_rejoin = time.monotonic() + rejoin_interval
        while not self._closed:
            wait = next_rejoin - time.monotonic()
            if self.embedded:
                wait = min(wait, poll_interval)
            await asyncio.sleep(max(wait, 0.0))
            try:
                rejoin = time.monotonic() >= next_rejoin
                if rejoin:
                    await self._join_groups()
                    next_rejoin = time.monotonic() + rejoin_interval
                async with self._lock:
                    if not await self._still_allowed():
                        return
                    if self.embedded or rejoin:
                        await self._send_from_database()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or layer hiccup: try again next round
                logger.warning("event socket: background round failed", exc_info=True)
