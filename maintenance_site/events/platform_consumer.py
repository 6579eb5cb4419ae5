"""The platform stream's socket, `/ws/platform/`: platform administrators (active superusers) only.

Session login only (the board's page; its Origin must be one of ALLOWED_HOSTS or ALLOWED_ORIGINS): a platform
administrator need not belong to any organisation, so this socket is apart from `/ws/events/`, which acts
through a membership. `?after=<sequence>` first replays the platform events missed since then.

Server → client: `{"type": "event", "event": {...}}` (PlatformEvent.as_message(), `scope: "platform"`), strictly
increasing sequence; `{"type": "pong"}`; `{"type": "error", "code", "message"}` before a close. Client → server:
`{"type": "ping"}`. Close codes as on `/ws/events/`: 4400 bad `after`, 4401 not signed in, 4403 not a platform
administrator (also when the user stops being one while connected: checked before sending, at most every
EVENTS_PERMISSION_RECHECK_SECONDS) or a foreign origin.

Live events come through the `platform` group, which only this consumer joins, after it has checked the user.
A sequence that skips ahead makes it read the gap from the database first; every EVENTS_GROUP_REJOIN_SECONDS it
re-joins the group and reads the database for anything a dropped message hid; with the in-memory channel layer
(embedded mode: the worker that dispatches cannot reach this process) it polls the database every
EVENTS_POLL_INTERVAL seconds instead.
"""

import asyncio
import contextlib
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
from maintenance_site.events import platform, services

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN_LATER = 1013


def _seconds(name: str, minimum: float) -> float:
    return max(minimum, float(getattr(settings, name)))


class PlatformEventConsumer(AsyncJsonWebsocketConsumer):
    user_id = None
    last_sent = 0
    joined = False
    embedded = False
    _closed = False
    _task = None

    async def connect(self):
        self._lock = asyncio.Lock()
        query = {key: values[-1] for key, values in parse_qs(self.scope.get("query_string", b"").decode()).items()}
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED, "not_authenticated", "Sign in to the back office first.")
            return
        if not services.websocket_origin_allowed(self._origin()):
            await self._refuse(CLOSE_FORBIDDEN, "origin_forbidden", "This page's origin may not use your session.")
            return
        if not await database_sync_to_async(platform.may_receive)(user.pk):
            await self._refuse(
                CLOSE_FORBIDDEN, "platform_only", "Platform events are for platform administrators (superusers) only."
            )
            return
        try:
            after = services.parse_sequence_number(query.get("after"), "after", default=None)
        except DomainError as exc:
            await self._refuse(CLOSE_BAD_REQUEST, exc.code, exc.message)
            return
        self.user_id = user.pk
        self.embedded = self.channel_layer is None or isinstance(self.channel_layer, InMemoryChannelLayer)
        try:
            await self._join()  # before reading the database: nothing falls between the two
        except (RedisError, OSError) as exc:
            logger.warning("platform socket refused: the channel layer is unreachable (%s)", exc)
            await self._refuse(CLOSE_TRY_AGAIN_LATER, "events_unavailable", "Live events are unavailable right now.")
            return
        await self.accept()
        self._allowed_until = time.monotonic() + _seconds("EVENTS_PERMISSION_RECHECK_SECONDS", 0.0)
        async with self._lock:
            if after is None:
                self.last_sent = await database_sync_to_async(platform.last_sequence)()
            else:
                self.last_sent = after
                await self._send_from_database()
        self._task = asyncio.create_task(self._maintain())

    def _origin(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"origin":
                return value.decode("latin1")
        return None

    async def _refuse(self, close_code: int, code: str, message: str):
        # Accept first: a close before the handshake reaches browsers as a bare 1006, without the code.
        self._closed = True
        await self.accept()
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    async def _join(self):
        if self.channel_layer is not None:
            await self.channel_layer.group_add(platform.PLATFORM_GROUP, self.channel_name)
            self.joined = True

    async def disconnect(self, code):
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.joined and self.channel_layer is not None:
            await self.channel_layer.group_discard(platform.PLATFORM_GROUP, self.channel_name)
            self.joined = False

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data) if text_data else None
        except ValueError:  # not JSON: answered below, the socket stays open
            content = None
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        if self._closed:
            return
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "code": "unknown_type", "message": 'Send {"type": "ping"}.'})

    async def platform_event(self, message):
        """A platform event from the channel layer (platform.deliver)."""
        event = message.get("event") or {}
        sequence = event.get("sequence")
        if self._closed or not isinstance(sequence, int):
            return
        async with self._lock:
            if sequence <= self.last_sent:
                return
            if sequence > self.last_sent + 1 and not await self._send_from_database():
                return
            await self._send([event])

    async def _send_from_database(self) -> bool:
        """Send every kept platform event after last_sent. Call with the lock held. False once closed."""
        while not self._closed:
            events, more = await database_sync_to_async(platform.events_after)(self.last_sent)
            if not await self._send(events):
                return False
            if not more:
                return True
        return False

    async def _send(self, events: list[dict]) -> bool:
        for event in events:
            sequence = event.get("sequence")
            if not isinstance(sequence, int) or sequence <= self.last_sent:
                continue
            if not await self._still_allowed():
                return False
            await self.send_json({"type": "event", "event": event})
            self.last_sent = sequence
        return not self._closed

    async def _still_allowed(self) -> bool:
        """Whether the user is still an active superuser (checked at most every few seconds); closes with 4403
        when not."""
        if self._closed:
            return False
        now = time.monotonic()
        if now < self._allowed_until:
            return True
        if not await database_sync_to_async(platform.may_receive)(self.user_id):
            self._closed = True
            await self.send_json(
                {"type": "error", "code": "platform_only", "message": "You are no longer a platform administrator."}
            )
            await self.close(code=CLOSE_FORBIDDEN)
            return False
        self._allowed_until = now + _seconds("EVENTS_PERMISSION_RECHECK_SECONDS", 0.0)
        return True

    async def _maintain(self):
        """Background: re-join the group now and then and read the database for anything missed; in embedded
        mode, poll the database."""
        poll = _seconds("EVENTS_POLL_INTERVAL", 0.01)
        rejoin_every = _seconds("EVENTS_GROUP_REJOIN_SECONDS", 0.05)
        next_rejoin = time.monotonic() + rejoin_every
        while not self._closed:
            wait = next_rejoin - time.monotonic()
            if self.embedded:
                wait = min(wait, poll)
            await asyncio.sleep(max(wait, 0.0))
            try:
                rejoin = time.monotonic() >= next_rejoin
                if rejoin:
                    await self._join()
                    next_rejoin = time.monotonic() + rejoin_every
                async with self._lock:
                    if not await self._still_allowed():
                        return
                    if self.embedded or rejoin:
                        await self._send_from_database()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or layer hiccup: try again next round
                logger.warning("platform socket: background round failed", exc_info=True)
