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
membership ended while connected), 1013 try again later (the channel layer's Redis is unreachable).

Live events come through the channel layer (groups `org.<id>` and `user.<id>`, plus whatever `groups_for()`
adds), once per web process: the process's own channel of each group is the group's only member from this process,
and `LocalFanout` hands each message to the process's sockets of that group (one Redis message per event and
process, not one naming every socket; no wake-up of each socket's Channels dispatch loop). An event that follows
what a socket sent is sent at once from the group's reader; anything else (a gap, another type, a socket busy or
still connecting) waits in the socket's inbox for its own task, in order. The dispatcher encodes each event's
frame once and sends one message per group and dispatch (services.batch_message; channel_message for a single
event); the consumer sends those texts as they are, and its per-message path touches neither the database nor
asgiref's sync thread (`dispatch` skips Channels' close-old-connections hop: what needs the database goes through
database_sync_to_async, which closes old connections itself). A message whose sequence skips ahead makes the
consumer fetch the gap from the database first, and every EVENTS_GROUP_REJOIN_SECONDS each socket re-joins its
groups (the process's channel of each: one pipeline for the sockets re-joining together; they expire in
channels-redis after group_expiry, 5 times that, so a process that died without its group_discard leaves them) and
checks the database for anything a dropped message hid. With the in-memory layer (embedded mode) the Celery worker
is another process and cannot reach these sockets, so the consumer polls the database every EVENTS_POLL_INTERVAL
seconds instead.

Connecting with a ticket costs one Redis GETDEL (the claim), one pipeline (both groups) and one query in one trip to
a thread (membership and last sequence together): see `connect`. The handshakes a web process serves at the same
moment share them (`Batched`: one GETDEL pipeline, one ZADD per group naming all their channels, one membership
query per batch; closes likewise share one ZREM per group), and a socket without the session cookie skips Channels'
session and user lookup (routing.SessionAuthWhenCookie). Reads from the database (a gap, a re-join check,
`?after=`, `catch-up`) are shared by the sockets of the process that ask for the same at the same moment
(`CatchUpReads`: one query, each frame encoded once). Leaving the groups runs in a task of its own, so that a
consumer the server kills before its disconnect has finished still leaves them.

Permission: no check per event. Saving or deleting a membership (or deactivating a user) pushes
`membership.changed` to the user's group after commit, and each of that user's sockets re-checks once (closes
4403 when it may no longer see the organisation). As a safety net for changes made behind the ORM's back, each web
process re-checks all its open sockets in one query every EVENTS_PERMISSION_RECHECK_SECONDS (`PermissionWatch`):
the bound for such a change.
"""

import asyncio
import collections
import contextlib
import functools
import json
import logging
import pprint
import random
import sys
import time
import weakref
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
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
_LEAVING: "set[asyncio.Task]" = set()  # sockets' group leaving still under way (EventStreamConsumer._forget)


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


class PermissionWatch:
    """The safety net of the permission check, one per event loop (web process): every
    EVENTS_PERMISSION_RECHECK_SECONDS it asks the database, in one query, which of its open sockets' (user,
    organisation) pairs may still receive events, and closes the others (4403). Revocations made through the ORM
    reach the sockets at once anyway (`membership.changed`); this bounds the ones made behind its back."""

    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PermissionWatch]" = weakref.WeakKeyDictionary()

    def __init__(self):
        self.sockets: set[EventStreamConsumer] = set()
        self.task: asyncio.Task | None = None

    @classmethod
    def current(cls) -> "PermissionWatch":
        loop = asyncio.get_running_loop()
        watch = cls._by_loop.get(loop)
        if watch is None:
            watch = cls._by_loop[loop] = cls()
        return watch

    def add(self, consumer: "EventStreamConsumer") -> None:
        self.sockets.add(consumer)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, consumer: "EventStreamConsumer") -> None:
        self.sockets.discard(consumer)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(_setting("EVENTS_PERMISSION_RECHECK_SECONDS", 0.05))
            await self.check()

    async def check(self) -> int:
        """One round: close the sockets whose membership no longer allows events. Returns how many closed."""
        sockets = [consumer for consumer in self.sockets if not consumer._closed]
        if not sockets:
            return 0
        pairs = {(consumer.user_id, consumer.organization_id) for consumer in sockets}
        try:
            allowed = await database_sync_to_async(services.pairs_allowed_to_receive)(pairs)
        except Exception:  # the database is busy or down: next round
            logger.warning("event sockets: the permission re-check failed", exc_info=True)
            return 0
        closed = 0
        for consumer in sockets:
            if (consumer.user_id, consumer.organization_id) not in allowed:
                await consumer.membership_ended()
                closed += 1
        return closed


class CatchUpReads:
    """Reads of an organisation's events after a sequence from the database, one set per event loop (web process),
    shared by the sockets that ask for the same (organisation, sequence) before the read has begun: a thousand
    sockets re-checking after their re-join, or filling the same gap, or reconnecting with the same `after`, make
    one query and encode each frame once, instead of one each. A read already running is never joined (it may have
    started before what the asker must see was committed): the asker starts another."""

    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CatchUpReads]" = weakref.WeakKeyDictionary()

    def __init__(self):
        self.pending: dict[tuple[int, int], _Read] = {}

    @classmethod
    def current(cls) -> "CatchUpReads":
        loop = asyncio.get_running_loop()
        reads = cls._by_loop.get(loop)
        if reads is None:
            reads = cls._by_loop[loop] = cls()
        return reads

    async def frames_after(self, organization_id: int, after: int) -> tuple[list[tuple[int, str]], bool]:
        """services.event_frames_after(organization_id, after, CATCH_UP_BATCH), read once for all who ask now."""
        key = (organization_id, after)
        read = self.pending.get(key)
        if read is None or read.started:
            read = self.pending[key] = _Read()
            read.future = asyncio.ensure_future(self._run(key, read))
        return await asyncio.shield(read.future)  # a socket closing does not cancel the others' read

    async def _run(self, key: tuple[int, int], read: "_Read"):
        def work():
            read.started = True  # before the query: whoever finds it unset is still covered by it
            return services.event_frames_after(key[0], key[1], CATCH_UP_BATCH)

        try:
            return await database_sync_to_async(work, thread_sensitive=False)()
        finally:
            if self.pending.get(key) is read:
                del self.pending[key]


class _Read:
    """One read of CatchUpReads: whether its query has begun, and its result."""

    started = False
    future: asyncio.Future


class Batched:
    """A per-event-loop micro-batch: calls of `await batched(item)` made while the previous batch is under way (or in
    the same turn of the loop) are served by one call of `run(items)`, a coroutine function returning one result
    per item in order. A thousand handshakes at once thus make a few Redis pipelines and a few queries instead of a
    thousand of each, and only one batch of a kind runs at a time per web process. A failure of `run` is raised to
    every caller of that batch; a caller that went away (cancelled) before its batch began is left out of it."""

    def __init__(self, run):
        self.run = run
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _BatchState] = weakref.WeakKeyDictionary()

    async def __call__(self, item):
        loop = asyncio.get_running_loop()
        state = self._by_loop.get(loop)
        if state is None:
            state = self._by_loop[loop] = _BatchState()
        future = loop.create_future()
        state.pending.append((item, future))
        if state.task is None:
            state.task = loop.create_task(self._drain(state))
        return await future

    async def _drain(self, state: "_BatchState") -> None:
        batch: list = []
        try:
            while state.pending:
                batch, state.pending = [(item, f) for item, f in state.pending if not f.done()], []
                if not batch:
                    continue
                try:
                    results = await self.run([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 (each caller gets it)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                batch = []
        finally:
            state.task = None
            for _, future in batch + state.pending:  # cancelled mid-batch (the loop is closing): nobody waits forever
                if not future.done():
                    future.cancel()
            state.pending = []


class _BatchState:
    def __init__(self):
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.task: asyncio.Task | None = None


async def _claim_tickets(tickets):
    return await services.aclaim_websocket_tickets(tickets)


async def _ticket_memberships(pairs):
    found = await database_sync_to_async(services.websocket_ticket_memberships, thread_sensitive=False)(pairs)
    return [found[pair] for pair in pairs]


async def _last_sequences(organization_ids):
    found = await database_sync_to_async(services.last_sequences, thread_sensitive=False)(organization_ids)
    return [found[organization_id] for organization_id in organization_ids]


async def _add_to_groups(items):
    """items: (layer, [(groups, channel), …]); one group_add_channels per layer (there is one in practice)."""
    await _per_layer(items, "group_add_channels")
    return [None] * len(items)


async def _discard_from_groups(items):
    await _per_layer(items, "group_discard_channels")
    return [None] * len(items)


async def _per_layer(items, method: str) -> None:
    by_layer: dict[int, tuple[object, dict]] = {}
    for layer, memberships in items:
        found = by_layer.setdefault(id(layer), (layer, {}))[1]
        for groups, channel in memberships:  # the same channel's re-joins made together: once
            found.setdefault(channel, set()).update(groups)
    for layer, memberships in by_layer.values():
        await getattr(layer, method)([(tuple(groups), channel) for channel, groups in memberships.items()])


claim_ticket = Batched(_claim_tickets)  # a ticket → (user id, organisation id) or None
ticket_membership = Batched(_ticket_memberships)  # (user id, organisation id) → (membership or None, last sequence)
last_sequence = Batched(_last_sequences)  # organisation id → its last sequence
join_groups = Batched(_add_to_groups)  # (layer, [(groups, channel), …]) → None, once joined
leave_groups = Batched(_discard_from_groups)  # (layer, [(groups, channel), …]) → None, once left


class SocketGauge:
    """The open-socket metric (metrics.websocket_opened / websocket_closed, a counter in the shared cache), one per
    event loop, kept off the loop: a socket opening or closing only adds to `pending`, and one task hands the net
    change to a thread (a blocking cache round trip per socket used to sit in every handshake and every close)."""

    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketGauge]" = weakref.WeakKeyDictionary()

    def __init__(self):
        self.pending = 0
        self.task: asyncio.Task | None = None

    @classmethod
    def current(cls) -> "SocketGauge":
        loop = asyncio.get_running_loop()
        gauge = cls._by_loop.get(loop)
        if gauge is None:
            gauge = cls._by_loop[loop] = cls()
        return gauge

    def adjust(self, delta: int) -> None:
        self.pending += delta
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending:
            delta, self.pending = self.pending, 0
            await asyncio.to_thread(metrics.websockets_changed, delta)  # one cache round trip for all of them


class LocalFanout:
    """One group membership per web process (event loop) and group, fanned out in the process: the sockets of a
    group are registered here (`join`), and for each group with a socket the process puts ONE channel of its own
    in the channel-layer group (`<process channel>.<group>`), read by one task that hands each message to every
    registered socket of that group (EventStreamConsumer._deliver). One event to a thousand sockets of a process is
    thus one Redis message naming one channel (channels-redis put one naming all thousand channels, read, decoded
    and queued to each of them, and every socket's consumer woke up through Channels' dispatch loop with an
    asyncio.wait per message).

    A channel per group, not one per process: a message does not say which group it was sent to, so the channel
    tells, and a socket can only ever be handed its own groups' messages (tenant isolation does not rest on the
    consumer's organisation check alone). The membership is refreshed by the sockets' re-joins (a ZADD of the group
    channel, shared by all sockets re-joining together: `join_groups`), so it expires from the group
    (group_expiry) once the process stops re-joining; it is left (`leave`) when the process's last socket of that
    group goes, and a socket joining meanwhile waits for that leaving to finish before its own ZADD (never a ZREM
    after it). A failed read (Redis down) closes that group's sockets with 1013."""

    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LocalFanout]]" = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, layer):
        self.layer = layer
        self.base: str | None = None  # this process's channel name; a group's channel is `<base>.<group>`
        self.members: dict[str, set[EventStreamConsumer]] = {}
        self.readers: dict[str, asyncio.Task] = {}
        self.leaving: dict[str, asyncio.Task] = {}
        self.received: dict[str, int] = {}  # messages read per group (tests, metrics)

    @classmethod
    def current(cls, layer) -> "LocalFanout":
        loop = asyncio.get_running_loop()
        by_layer = cls._by_loop.get(loop)
        if by_layer is None:
            by_layer = cls._by_loop[loop] = {}
        fanout = by_layer.get(id(layer))
        if fanout is None or fanout.layer is not layer:
            fanout = by_layer[id(layer)] = cls(layer)
        return fanout

    def channel(self, group: str) -> str:
        return f"{self.base}.{group}"

    async def join(self, consumer: "EventStreamConsumer", groups) -> None:
        """Register `consumer` for `groups` and put (or keep) this process's channel in each group; returns once
        the channel-layer membership is in place (the caller reads the database after this)."""
        if consumer._closed:
            return
        if self.base is None:
            self.base = await self.layer.new_channel()
        for group in groups:
            self.members.setdefault(group, set()).add(consumer)
            reader = self.readers.get(group)
            if reader is None or reader.done():
                self.readers[group] = asyncio.get_running_loop().create_task(self._read(group))
        leaving = [self.leaving[group] for group in groups if group in self.leaving]
        if leaving:  # this group's ZREM must reach Redis before the ZADD below
            await asyncio.gather(*(asyncio.shield(task) for task in leaving), return_exceptions=True)
        if hasattr(self.layer, "group_add_channels"):  # with every socket joining now: one pipeline
            await join_groups((self.layer, [((group,), self.channel(group)) for group in groups]))
        else:
            await asyncio.gather(*(self.layer.group_add(group, self.channel(group)) for group in groups))
        # The socket may have gone while this ZADD waited for a leaving: leave again what has nobody now.
        await self.leave([group for group in groups if not self.members.get(group)])

    def forget(self, consumer: "EventStreamConsumer", groups) -> None:
        """Unregister `consumer` (at once: nothing more is handed to it); `leave` then leaves the emptied groups."""
        for group in groups:
            members = self.members.get(group)
            if members is not None:
                members.discard(consumer)

    async def leave(self, groups) -> None:
        """Take this process's channel out of the groups that still have no socket here (one at a time per group:
        a socket joining meanwhile waits for it), and stop their readers."""
        while True:  # a leaving under way first: what it left, a join may have brought back meanwhile
            pending = {self.leaving[group] for group in groups if group in self.leaving}
            if not pending:
                break
            await asyncio.gather(*(asyncio.shield(task) for task in pending), return_exceptions=True)
        groups = [group for group in groups if not self.members.get(group)]
        if not groups:
            return
        task = asyncio.get_running_loop().create_task(self._leave(groups))
        for group in groups:
            self.leaving[group] = task
        await asyncio.shield(task)  # cancelled here, the leaving goes on

    async def _leave(self, groups: list[str]) -> None:
        try:
            groups = [group for group in groups if not self.members.get(group)]  # a socket may have joined since
            for group in groups:
                self.members.pop(group, None)
                reader = self.readers.pop(group, None)
                if reader is not None:
                    reader.cancel()
            if hasattr(self.layer, "group_discard_channels"):
                await leave_groups((self.layer, [((group,), self.channel(group)) for group in groups]))
            else:
                await asyncio.gather(*(self.layer.group_discard(group, self.channel(group)) for group in groups))
        finally:
            for group in groups:
                if self.leaving.get(group) is asyncio.current_task():
                    del self.leaving[group]

    async def _read(self, group: str) -> None:
        """The group's reader: each message, in order, to every socket of this process in the group."""
        channel = self.channel(group)
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (Redis down: this group's sockets close 1013)
                logger.warning("event sockets: reading group %s failed (%s: %s)", group, type(exc).__name__, exc)
                for consumer in list(self.members.get(group, ())):
                    await consumer._close_try_again_later()
                return
            self.received[group] = self.received.get(group, 0) + 1
            for consumer in list(self.members.get(group, ())):
                try:
                    if not consumer._deliver_now(message):
                        await consumer._deliver(message)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one socket's failure (its client went) is not the others'
                    logger.warning("event socket: delivering a message failed", exc_info=True)


class _Formatted:
    """pprint.pformat(value), computed only when the log line is written."""

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return pprint.pformat(self.value)

    def __format__(self, spec):
        return format(str(self), spec)


def _unformatted(value, *args, **kwargs):
    """autobahn's hltype / hlval (a coloured name or value for its debug lines, built with click at every handshake,
    close and frame sent, logged or not): the value itself, formatted by the log line if it is ever written."""
    return value


def _autobahn_pformat(value, *args, **kwargs):
    """autobahn formats its whole configuration with pformat for a debug line at every handshake, logged or not
    (a tenth of the event loop's time while a thousand sockets connect): for that line, format only when logged.
    Its other uses (a __str__ that must return text) get pformat itself."""
    if sys._getframe(1).f_code.co_name == "_connectionMade" and not args and not kwargs:
        return _Formatted(value)
    return pprint.pformat(value, *args, **kwargs)


try:
    from autobahn.websocket import protocol as _autobahn_protocol
    from autobahn.websocket.protocol import PreparedMessage
except ImportError:  # not served by daphne
    PreparedMessage = None
else:
    _autobahn_protocol.pformat = _autobahn_pformat
    _autobahn_protocol.hltype = _unformatted
    _autobahn_protocol.hlval = _unformatted


_WIRE_FRAMES: "dict[str, object]" = {}  # frame text → autobahn PreparedMessage, the latest first out
_WIRE_FRAMES_KEPT = 2048


def _wire_frame(text: str):
    """The websocket frame of `text` as autobahn writes it (PreparedMessage: header and payload in one bytes
    object, its API for sending one message to many clients), built once per process for all the sockets sent it:
    the same text object reaches every socket of a group (one channel-layer message, one catch-up read)."""
    frame = _WIRE_FRAMES.get(text)
    if frame is None:
        if len(_WIRE_FRAMES) >= _WIRE_FRAMES_KEPT:
            del _WIRE_FRAMES[next(iter(_WIRE_FRAMES))]
        frame = _WIRE_FRAMES[text] = PreparedMessage(text.encode(), False, False, False)
    return frame


def _write_now(protocol, frames: list) -> None:
    """autobahn's sendPreparedMessage of each frame, but onto the socket at once, in one send, when nothing waits
    in Twisted's buffer of this connection (the usual case): Twisted's `write` only buffers, registers the socket
    with the event loop, and sends from a writable callback that unregisters it again; three trips through the
    reactor per write and socket. What the kernel does not take goes through `write` after it, in order; so does
    everything when the connection has data waiting, TLS, compression or is closing."""
    transport = protocol.transport
    if (
        protocol._perMessageCompress is None
        and not protocol.send_queue
        and getattr(transport, "TLS", True) is False
        and getattr(transport, "connected", False)
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport._tempDataBuffer
        and transport.offset == len(transport.dataBuffer)
    ):
        data = frames[0].payloadHybi if len(frames) == 1 else b"".join(frame.payloadHybi for frame in frames)
        sent = transport.writeSomeData(data)  # bytes sent, or ConnectionLost: `write` below lets Twisted see it
        if isinstance(sent, int):
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)
        return
    for frame in frames:
        protocol.sendPreparedMessage(frame)


def _daphne_protocol(send) -> "tuple[object, object] | None":
    """(daphne's server, this socket's autobahn protocol) when `send` is daphne's own (`functools.partial(
    Server.handle_reply, protocol)`, no middleware in between), else None. The fan-out then writes each event's
    frame, encoded for the wire once for all the process's sockets (autobahn's PreparedMessage, its API for
    broadcast), to the protocol itself: daphne's send costs a coroutine, its checks, an encode and autobahn's
    framing per frame and socket, the larger part of the server's time at 50,000 frames/s."""
    # Looked up, not imported: importing daphne.server installs Twisted's reactor; when daphne serves, it is loaded.
    server_module = sys.modules.get("daphne.server")
    if server_module is None or PreparedMessage is None:
        return None
    if not isinstance(send, functools.partial) or len(send.args) != 1 or send.keywords:
        return None
    if getattr(send.func, "__func__", None) is not server_module.Server.handle_reply:
        return None
    protocol = send.args[0]
    if not hasattr(protocol, "sendPreparedMessage"):
        return None
    return send.func.__self__, protocol


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
    _watch = None
    _leaving = None
    _fanout: LocalFanout | None = None
    _live = False  # connect has set last_sent: what the process's fan-out hands over may be sent
    _inbox: "collections.deque | None" = None  # handed over while not live, or behind a message under way
    _drainer: asyncio.Task | None = None
    _direct: "tuple[object, object] | None" = None  # (daphne's server, this socket's protocol): _daphne_protocol

    async def dispatch(self, message):
        """Channels' dispatch without its per-message trip through asgiref's sync thread (close_old_connections):
        the handlers here reach the database only through database_sync_to_async, which does that itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        """Channels' websocket_disconnect (this consumer has no class-level `groups`) without its trip through
        asgiref's single sync thread (aclose_old_connections): a thousand closes at once queued there one after
        another. What touched the database went through database_sync_to_async, which closes old connections."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def __call__(self, scope, receive, send):
        self._direct = _daphne_protocol(send) if settings.EVENTS_DAPHNE_DIRECT_WRITES else None
        await self._serve(scope, receive, send)

    async def _send_text(self, text: str) -> None:
        """send(text_data=text) straight to the server (the hot path: one call per frame and socket, without the two
        wrappers of Channels' send): written to daphne's protocol itself when it serves this socket."""
        if self._write_direct([text]) is False:
            await self.base_send({"type": "websocket.send", "text": text})

    # --- connecting --------------------------------------------------------------------------------
    def groups_for(self, user_id: int, organization_id: int) -> tuple[str, ...]:
        """The channel-layer groups this socket joins: its organisation's and its user's. Extra groups (say, a
        platform group for superusers) are added here; what is sent to them must be a message type handled below
        (`event.message` with the organisation and sequence of the event, or a type of its own). Called before the
        membership is read from the database (a ticket's socket joins first, then checks): decide on the ids."""
        return (services.organization_group(organization_id), services.user_group(user_id))

    async def connect(self):
        """Authenticate, join the groups, then read the database (nothing falls between the two), then accept.

        With a ticket (phones, native clients): a GETDEL on the cache's Redis claims it (services.
        aclaim_websocket_tickets, no thread), a pipeline joins both groups (layer.group_add_channels), and one query
        in one trip to a thread checks the membership and reads the last sequence (services.
        websocket_ticket_memberships), each shared with the handshakes under way at the same moment (`Batched`); a
        membership that no longer allows it leaves the groups again and is refused. With the session cookie: the
        membership (a trip to a thread), the groups, then the last sequence (batched as well)."""
        self._lock = asyncio.Lock()
        self._inbox = collections.deque()
        self.embedded = self.channel_layer is None or isinstance(self.channel_layer, InMemoryChannelLayer)
        query = {key: values[-1] for key, values in parse_qs(self.scope.get("query_string", b"").decode()).items()}
        last = None
        try:
            if query.get("ticket"):
                membership, last = await self._ticket_membership(query)
            else:
                membership = await self._session_membership(query)
                await self._join(membership.user_id, membership.organization_id)
            after = self._after(query)
            if after is None and last is None:
                # Before the accept: a client may publish as soon as it is connected, and an event numbered between
                # the accept and this read would be taken as already sent (its group message waits behind connect).
                last = await last_sequence(self.organization_id)
        except Rejected as rejection:
            await self._leave_groups()
            self.group_names = ()
            await self._reject(rejection)
            return
        except (RedisError, OSError) as exc:  # the channel layer's (or the tickets') Redis is down: no live events
            logger.warning("event socket refused: Redis is unreachable (%s: %s)", type(exc).__name__, exc)
            if self._fanout is not None:  # what was joined expires (group_expiry): Redis is down
                self._fanout.forget(self, self.group_names)
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
        SocketGauge.current().adjust(1)
        self._watch = PermissionWatch.current()
        self._watch.add(self)
        if after is not None:
            self.last_sent = after
            await self._catch_up()
        else:
            self.last_sent = last
        self._go_live()
        self._task = asyncio.create_task(self._maintain())

    @staticmethod
    def _after(query: dict) -> int | None:
        try:
            return services.parse_sequence_number(query.get("after"), "after", default=None)
        except DomainError as exc:
            raise Rejected(CLOSE_BAD_REQUEST, exc.code, exc.message) from None

    async def _join(self, user_id: int, organization_id: int) -> None:
        """Remember who this socket is and join its groups (before the database is read)."""
        self.user_id = user_id
        self.organization_id = organization_id
        self.group_names = tuple(self.groups_for(user_id, organization_id))
        await self._join_groups()

    async def _ticket_membership(self, query: dict):
        """(membership, last sequence) of a `?ticket=` connection, or Rejected; joined to its groups on success."""
        invalid = Rejected(
            CLOSE_UNAUTHENTICATED,
            "invalid_ticket",
            "This ticket is unknown, used or expired: get a new one from POST /api/v1/events/ticket.",
        )
        claim = await claim_ticket(query["ticket"])
        if claim is None:
            raise invalid
        self._after(query)  # a bad `after` is refused before anything else is done
        await self._join(*claim)
        # Off the process's single ORM thread, and batched with the handshakes under way at the same moment: a
        # thousand of them make a few queries, not one each.
        membership, last = await ticket_membership(claim)
        if membership is None:
            raise invalid
        requested = query.get("organization")
        if requested and requested not in (membership.organization.slug, str(membership.organization_id)):
            raise Rejected(CLOSE_FORBIDDEN, "not_a_member", "The ticket was issued for another organisation.")
        return membership, last

    async def _session_membership(self, query: dict):
        """The membership a session (cookie) connection acts through, or Rejected."""
        requested = query.get("organization")
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
        """Join (or re-join) every group through the process's fan-out (LocalFanout): this process's channel of
        each group is (again) a member, one pipeline for all the sockets joining at the moment."""
        if self.channel_layer is None or not self.group_names:
            return
        if self._fanout is None:
            self._fanout = LocalFanout.current(self.channel_layer)
        await self._fanout.join(self, self.group_names)

    # --- disconnecting -----------------------------------------------------------------------------
    async def _serve(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except (RedisError, OSError) as exc:
            # The channel layer's Redis went away under an open socket (its reader failed): close it cleanly with
            # 1013, as a handshake is refused then, instead of ending in a server error (1011).
            logger.warning("event socket closed: Redis is unreachable (%s: %s)", type(exc).__name__, exc)
            if self._opened and not self._closed:
                self._closed = True
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})
        finally:
            # The server may kill this instance before its disconnect has run or finished (daphne cancels one that has
            # not ended application_close_timeout seconds after its client went, as when a busy process takes a
            # thousand closes at once): the groups are still left, in a task of their own, so that no dead channel
            # stays in them until group_expiry.
            self._forget()

    async def disconnect(self, code):
        task = self._forget()
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("event socket: background task failed")
        if self._leaving is not None:
            await asyncio.shield(self._leaving)  # cancelled here, the leaving goes on

    def _forget(self) -> "asyncio.Task | None":
        """Stop everything this socket runs and start leaving its groups (once); returns the background task, cancelled
        but not yet awaited."""
        self._closed = True
        if self._watch is not None:
            self._watch.discard(self)
            self._watch = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        if self._fanout is not None:
            self._fanout.forget(self, self.group_names)  # nothing more is handed to this socket
        drainer, self._drainer = self._drainer, None
        if drainer is not None and drainer is not asyncio.current_task():
            drainer.cancel()
        if self._inbox:
            self._inbox.clear()
        if self._leaving is None and self.group_names and self.channel_layer is not None:
            self._leaving = asyncio.get_running_loop().create_task(self._leave_groups())
            _LEAVING.add(self._leaving)  # a reference until done: the consumer may be gone before it
            self._leaving.add_done_callback(_LEAVING.discard)
        if self._opened:
            self._opened = False
            SocketGauge.current().adjust(-1)
        return task

    async def _leave_groups(self):
        """Leave the process's fan-out; the process's channel leaves the groups this was its last socket of
        (group_discard, tried again on a Redis hiccup; what still fails leaves the group by group_expiry, since
        nobody re-joins it)."""
        fanout = self._fanout
        if fanout is None or not self.group_names:
            return
        fanout.forget(self, self.group_names)
        for attempt in range(3):
            try:
                await fanout.leave(self.group_names)
                return
            except Exception as exc:  # noqa: BLE001 (tried again, then left to group_expiry)
                if attempt == 2:
                    logger.warning("event socket: group_discard failed (%s); group_expiry removes it", exc)
                    return
            await asyncio.sleep(0.1 * (attempt + 1))

    # --- the process's fan-out (LocalFanout) hands this socket its groups' messages ------------------------
    def _deliver_now(self, message) -> bool:
        """`_deliver` without a coroutine, when it can be done at once: True when the message was handled (written
        to daphne's protocol directly, or nothing to send), False when `_deliver` must take it."""
        if self._closed:
            return True
        if self._direct is None or not (
            self._live and not self._inbox and self._drainer is None and not self._lock.locked()
        ):
            return False
        frames = self._following(message)
        if frames is None:
            return False
        if frames:
            written = self._write_direct([text for _, text in frames])
            if written is False:
                return False  # closing: through `_deliver`, whose send raises as daphne's always did
            self.last_sent = frames[-1][0]  # written, or gone (daphne's send does nothing then)
        return True

    def _write_direct(self, texts: list[str]) -> "bool | None":
        """Write frames to daphne's protocol of this socket (`_direct`), in one send, each encoded for the wire
        once per process (`_wire_frame`): True when written, None when daphne has dropped the connection (its send
        does nothing then), False when they must go through daphne's send (not served by daphne, or closing)."""
        if self._direct is None:
            return False
        server, protocol = self._direct
        details = server.connections.get(protocol)
        if details is None or details.get("disconnected"):
            return None
        if protocol.state != protocol.STATE_OPEN:
            return False
        _write_now(protocol, [_wire_frame(text) for text in texts])
        return True

    async def _deliver(self, message) -> None:
        """A message of one of this socket's groups, in the order the group's reader got them. Events that follow
        what was sent (the usual case) are sent at once, from the reader's task, under the socket's lock (free:
        checked first, so taken without waiting); anything else (a gap to fetch, another message type, or the
        socket busy or not yet live) waits in the inbox for this socket's own task, in order."""
        if self._closed:
            return
        if self._live and not self._inbox and self._drainer is None and not self._lock.locked():
            frames = self._following(message)
            if frames is not None:
                if frames:
                    async with self._lock:
                        for sequence, text in frames:
                            if self._closed:
                                return
                            await self._send_text(text)
                            self.last_sent = sequence
                return
        self._inbox.append(message)
        self._start_drainer()

    def _following(self, message) -> "list[tuple[int, str]] | None":
        """The frames of an event message that continue last_sent without a gap ([] when there is nothing for this
        socket: another organisation, duplicates), or None when the message needs the slow path (event.message /
        event.batch handlers: a gap, an event not yet encoded, another type)."""
        kind = message.get("type")
        if kind == "event.message":
            text, sequence = message.get("text"), message.get("sequence")
            if text is None or not isinstance(sequence, int):
                return None
            rows = [(sequence, text)]
        elif kind == "event.batch":
            rows = message.get("events")
            if not isinstance(rows, list):
                return None
        else:
            return None
        if message.get("organization") != self.organization_id:
            return []
        frames, expected = [], self.last_sent + 1
        for row in rows:
            if not isinstance(row, list | tuple) or len(row) != 2:
                return None
            sequence, text = row
            if not isinstance(sequence, int) or not isinstance(text, str):
                return None
            if sequence < expected:
                continue  # a duplicate (both groups, or already caught up)
            if sequence > expected:
                return None  # a gap: fetched from the database first
            frames.append((sequence, text))
            expected += 1
        return frames

    def _go_live(self) -> None:
        self._live = True
        self._start_drainer()

    def _start_drainer(self) -> None:
        if self._live and self._inbox and self._drainer is None and not self._closed:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """This socket's own task for what the fan-out could not send at once: each message through the handlers
        (event_message, event_batch, membership_changed…), in order."""
        try:
            while self._inbox and not self._closed:
                await self.dispatch(self._inbox.popleft())
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            logger.warning("event socket closed: Redis is unreachable (%s: %s)", type(exc).__name__, exc)
            await self._close_try_again_later()
        except Exception:
            logger.exception("event socket: handling a message failed")
            if not self._closed:
                self._closed = True
                await self.close(code=1011)
        finally:
            if self._drainer is asyncio.current_task():
                self._drainer = None

    async def _close_try_again_later(self) -> None:
        """Close with 1013 (the channel layer's Redis went away), once."""
        if self._opened and not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self.base_send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})

    async def _close_forbidden(self, code: str, message: str):
        if self._closed:
            return
        self._closed = True
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=CLOSE_FORBIDDEN)

    async def membership_ended(self):
        """Close this socket: its membership no longer allows receiving the organisation's events."""
        async with self._lock:
            await self._close_forbidden(
                "membership_ended", "You are no longer a member of this organisation, or may not see its events."
            )

    async def membership_changed(self, message):
        """A membership of this socket's user changed (services.notify_membership_changed): check it once."""
        if self._closed:
            return
        if not await database_sync_to_async(services.may_receive_events)(self.user_id, self.organization_id):
            await self.membership_ended()

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
        """An event from the channel layer (services.channel_message): its organisation, its sequence and the
        frame to send, encoded once by the dispatcher. A message carrying the event itself (`event`) is encoded
        here."""
        text = message.get("text")
        if text is None:
            event = message.get("event") or {}
            organization, sequence = event.get("organization"), event.get("sequence")
        else:
            organization, sequence = message.get("organization"), message.get("sequence")
        # The user's own group also carries their events of other organisations: not for this socket.
        if self._closed or organization != self.organization_id or not isinstance(sequence, int):
            return
        async with self._lock:
            if sequence <= self.last_sent:
                return  # a duplicate (both groups, or already caught up)
            # A gap: the missing events are committed (numbering is in commit order); fetch them first.
            if sequence > self.last_sent + 1 and not await self._send_from_database():
                return
            if sequence > self.last_sent and not self._closed:
                await self._send_text(text if text is not None else services.event_frame(event))
                self.last_sent = sequence

    async def event_batch(self, message):
        """Several events of one organisation from one dispatch (services.batch_message): `events` is a list of
        [sequence, frame] in sequence order, each frame sent as it is, under one lock (one wake-up per batch)."""
        rows = message.get("events")
        if self._closed or message.get("organization") != self.organization_id or not isinstance(rows, list):
            return
        async with self._lock:
            for sequence, text in rows:
                if self._closed:
                    return
                if not isinstance(sequence, int) or sequence <= self.last_sent:
                    continue  # a duplicate (both groups, or already caught up)
                if sequence > self.last_sent + 1 and not await self._send_from_database():
                    return
                if sequence > self.last_sent and not self._closed:
                    await self._send_text(text)
                    self.last_sent = sequence

    async def _catch_up(self):
        async with self._lock:
            await self._send_from_database()

    async def _send_from_database(self) -> bool:
        """Send every kept event after last_sent, in batches. Call with the lock held. False once closed. The reads
        are shared with this process's other sockets asking for the same at the same moment (CatchUpReads)."""
        reads = CatchUpReads.current()
        while not self._closed:
            frames, has_more = await reads.frames_after(self.organization_id, self.last_sent)
            newer = [(sequence, text) for sequence, text in frames if sequence > self.last_sent]
            if newer and not self._closed and self._write_direct([text for _, text in newer]) is not False:
                self.last_sent = newer[-1][0]  # all in one send (or gone: daphne's send does nothing then)
                frames = ()
            for sequence, text in frames:
                if sequence <= self.last_sent:
                    continue
                if self._closed:
                    return False
                await self._send_text(text)
                self.last_sent = sequence
            if self._closed:
                return False
            if not has_more:
                return True
        return False

    async def _maintain(self):
        """Background: re-join the groups now and then (and look in the database for anything missed);
        in embedded mode, poll the database for new events."""
        poll_interval = _setting("EVENTS_POLL_INTERVAL", 0.01)
        rejoin_interval = _setting("EVENTS_GROUP_REJOIN_SECONDS", 0.05)
        # Jittered (75–100 % of the interval): a thousand sockets opened together must not re-join and read the
        # database together every minute. group_expiry (5 intervals) stays well above the longest gap.
        next_rejoin = time.monotonic() + rejoin_interval * random.uniform(0.75, 1.0)  # noqa: S311
        while not self._closed:
            wait = next_rejoin - time.monotonic()
            if self.embedded:
                wait = min(wait, poll_interval)
            await asyncio.sleep(max(wait, 0.0))
            try:
                rejoin = time.monotonic() >= next_rejoin
                if rejoin:
                    await self._join_groups()
                    next_rejoin = time.monotonic() + rejoin_interval * random.uniform(0.75, 1.0)  # noqa: S311
                if self.embedded or rejoin:
                    async with self._lock:
                        await self._send_from_database()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or layer hiccup: try again next round
                logger.warning("event socket: background round failed", exc_info=True)
