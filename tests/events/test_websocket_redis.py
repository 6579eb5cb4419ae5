"""The event socket on the real Redis channel layer, configured as settings.py configures it (events/layer.py):
idle sockets outlive the layer's blocking wait, a mass disconnect leaves the groups empty, one event reaches a
crowd of sockets in order and nothing reaches another organisation's. 200 sockets at most (the 1,000-socket run
is bench/websocket_fanout.py)."""

import asyncio
import json
import threading
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from maintenance_site.events import services
from maintenance_site.events.consumers import CatchUpReads, EventStreamConsumer, LocalFanout
from maintenance_site.events.layer import LongLivedRedisChannelLayer
from maintenance_site.tenancy.models import Membership
from tests.events.support import (
    WAIT,
    apublish,
    connected,
    expect_close,
    expect_refusal,
    next_event,
    session_cookie,
    socket,
)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

MASS = 200
DOWN = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def redis_layer(settings):
    """The project's channel layer (its settings.py options) under a prefix of this test's own."""
    config = dict(django_settings.CHANNEL_LAYERS["default"]["CONFIG"])
    assert django_settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("LongLivedRedisChannelLayer")
    config["prefix"] = f"test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": {**django_settings.CHANNEL_LAYERS["default"], "CONFIG": config}}
    settings.EVENTS_POLL_INTERVAL = 30
    yield config


def run(scenario):
    async_to_sync(scenario)()


async def _members(layer, group: str) -> int:
    connection = layer.connection(layer.consistent_hash(group))
    return await connection.zcard(layer._group_key(group))


async def _open(count: int, cookie: str, path: str = "/ws/events/") -> list:
    sockets = []
    for start in range(0, count, 50):
        sockets += await asyncio.gather(
            *(connected(socket(path, cookie=cookie)) for _ in range(start, min(count, start + 50)))
        )
    return sockets


def test_the_layer_refuses_a_read_timeout_not_above_its_blocking_wait():
    with pytest.raises(ValueError, match="must be above its blocking wait"):
        LongLivedRedisChannelLayer(hosts=[django_settings.REDIS_URL], socket_timeout=5, brpop_timeout=5)


def test_idle_sockets_outlive_three_blocking_waits(manager_a, org_a, redis_layer):
    """Nothing happens for 3× the layer's blocking wait (15 s with the settings' 5 s): no socket is closed, and
    the next event reaches every one of them."""
    cookie = session_cookie(manager_a)

    async def scenario():
        layer = get_channel_layer()
        assert layer.pool_options["socket_timeout"] > layer.brpop_timeout
        try:
            sockets = await _open(20, cookie)
            await asyncio.sleep(3 * layer.brpop_timeout + 0.5)
            for ws in sockets:
                assert await ws.receive_nothing(timeout=0.01), "an idle socket was closed or sent something"
            await apublish(org_a, 1)
            for ws in sockets:
                assert (await next_event(ws))["sequence"] == 1
            await asyncio.gather(*(ws.disconnect(timeout=WAIT) for ws in sockets))
        finally:
            await layer.flush()

    run(scenario)


def test_a_crowd_receives_in_order_and_a_mass_disconnect_leaves_the_groups_empty(
    manager_a, manager_b, org_a, org_b, redis_layer, settings
):
    """200 sockets of one organisation on a pool of 8 connections: three events reach each in order, once, the
    other organisation's socket gets nothing; all 200 close at once and both groups are empty (no
    MaxConnectionsError: the pool waits for a free connection)."""
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["max_connections"] = 8
    cookie, other = session_cookie(manager_a), session_cookie(manager_b)
    org_group, user_group = services.organization_group(org_a.pk), services.user_group(manager_a.pk)

    async def scenario():
        layer = get_channel_layer()
        try:
            sockets = await _open(MASS, cookie)
            stranger = await connected(socket(cookie=other))
            # one member per web process (its channel of the group), the sockets registered in the process
            assert await _members(layer, org_group) == 1
            assert await _members(layer, user_group) == 1
            assert len(LocalFanout.current(layer).members[org_group]) == MASS
            await apublish(org_a, 3, user=manager_a)  # both groups: each socket drops the second copy
            for ws in sockets:
                assert [(await next_event(ws))["sequence"] for _ in range(3)] == [1, 2, 3]
            assert await stranger.receive_nothing(timeout=0.2)
            assert all([await ws.receive_nothing(timeout=0.001) for ws in sockets])

            await asyncio.gather(*(ws.disconnect(timeout=WAIT) for ws in sockets))
            assert await _members(layer, org_group) == 0
            assert await _members(layer, user_group) == 0
            assert await _members(layer, services.organization_group(org_b.pk)) == 1
            await stranger.disconnect()
        finally:
            await layer.flush()

    run(scenario)


def test_group_expiry_follows_the_rejoin_interval():
    """A socket that died without its group_discard stops re-joining and leaves by group_expiry: 5 re-join
    intervals, not a day."""
    config = django_settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert config["group_expiry"] == 5 * django_settings.EVENTS_GROUP_REJOIN_SECONDS


def test_ticket_sockets_connect_in_batches_and_a_ticket_works_once(technician_a, org_a, redis_layer, monkeypatch):
    """The connect path of phones: 30 sockets open at once with tickets, claimed on Redis and checked (membership and
    last sequence together, no separate last-sequence read) together: a few batched queries, not one per socket;
    both groups joined; a used ticket is refused; events then reach every socket."""
    tickets = [services.issue_websocket_ticket(technician_a, org_a)["ticket"] for _ in range(31)]
    calls = []
    names = ("websocket_ticket_memberships", "websocket_ticket_membership", "last_sequence", "last_sequences")
    for name in (*names, "redeem_websocket_ticket", "active_membership", "aclaim_websocket_ticket"):
        original = getattr(services, name)
        monkeypatch.setattr(services, name, lambda *a, _n=name, _o=original: calls.append(_n) or _o(*a))
    org_group, user_group = services.organization_group(org_a.pk), services.user_group(technician_a.pk)

    async def scenario():
        layer = get_channel_layer()
        try:
            sockets = await asyncio.gather(*(connected(socket(f"/ws/events/?ticket={t}")) for t in tickets[:30]))
            assert set(calls) == {"websocket_ticket_memberships"}
            assert len(calls) < 10, calls  # batched (one per socket would be 30)
            assert await _members(layer, org_group) == 1
            assert await _members(layer, user_group) == 1
            await expect_refusal(socket(f"/ws/events/?ticket={tickets[0]}"), 4401, "invalid_ticket")
            await apublish(org_a, 2)
            for ws in sockets:
                assert [(await next_event(ws))["sequence"] for _ in range(2)] == [1, 2]
            await asyncio.gather(*(ws.disconnect(timeout=WAIT) for ws in sockets))
            assert await _members(layer, org_group) == 0
        finally:
            await layer.flush()

    run(scenario)


def test_a_ticket_whose_membership_ended_is_refused_and_leaves_no_group_member(technician_a, org_a, redis_layer):
    """The socket joins its groups before the membership query; refused, it leaves them again."""
    ticket = services.issue_websocket_ticket(technician_a, org_a)["ticket"]
    Membership.objects.filter(user=technician_a, organization=org_a).update(is_active=False)  # behind the ORM

    async def scenario():
        layer = get_channel_layer()
        try:
            await expect_refusal(socket(f"/ws/events/?ticket={ticket}"), 4401, "invalid_ticket")
            assert await _members(layer, services.organization_group(org_a.pk)) == 0
            assert await _members(layer, services.user_group(technician_a.pk)) == 0
        finally:
            await layer.flush()

    run(scenario)


def test_a_ticket_socket_closes_try_again_later_when_the_tickets_redis_is_down(technician_a, org_a, redis_layer):
    """Redis (the shared cache holding the tickets) unreachable at the handshake: a clean close with 1013 and how to
    catch up, not a server error."""
    ticket = services.issue_websocket_ticket(technician_a, org_a)["ticket"]

    async def scenario():
        layer = get_channel_layer()
        try:
            unreachable = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DOWN}}
            with override_settings(CACHES=unreachable):
                message = await expect_refusal(socket(f"/ws/events/?ticket={ticket}"), 1013, "events_unavailable")
            assert "/api/v1/events/?after=" in message["message"]
        finally:
            await layer.flush()

    run(scenario)


def test_sockets_catching_up_together_share_one_read(org_a, redis_layer, monkeypatch):
    """Sockets of one process asking for the same events at the same moment (a re-join check, a gap, a reconnect
    with the same `after`) make one query; a read that has already begun is not joined."""
    gate, calls = threading.Event(), []
    original = services.events_after

    def events_after(*args):
        calls.append(args)
        gate.wait(WAIT)
        return original(*args)

    monkeypatch.setattr(services, "events_after", events_after)
    services.publish_many(org_a, "test:ping", [{}] * 3)
    services.dispatch()

    async def scenario():
        reads = CatchUpReads.current()
        together = asyncio.gather(*(reads.frames_after(org_a.pk, 1) for _ in range(50)))
        while not calls:
            await asyncio.sleep(0.01)
        later = asyncio.ensure_future(reads.frames_after(org_a.pk, 1))  # the first read is running: not joined
        await asyncio.sleep(0.05)
        gate.set()
        results = await together
        assert [sequence for sequence, _ in (await later)[0]] == [2, 3]
        return results

    results = async_to_sync(scenario)()
    assert len(calls) == 2
    assert all(result == results[0] for result in results)
    assert [sequence for sequence, _ in results[0][0]] == [2, 3]
    assert json.loads(results[0][0][0][1])["event"]["sequence"] == 2


def test_a_socket_killed_by_the_server_before_its_disconnect_still_leaves_its_groups(manager_a, org_a, redis_layer):
    """daphne kills an application instance that has not ended 10 s after its client went (a busy process taking a
    thousand closes at once): 20 consumers cancelled without a disconnect leave both groups anyway."""
    cookie = session_cookie(manager_a)
    org_group, user_group = services.organization_group(org_a.pk), services.user_group(manager_a.pk)

    async def scenario():
        layer = get_channel_layer()
        try:
            sockets = await _open(20, cookie)
            assert await _members(layer, org_group) == 1
            for ws in sockets:
                ws.future.cancel()  # what daphne's application_checker does
            await asyncio.gather(*(ws.wait() for ws in sockets), return_exceptions=True)
            for _ in range(int(WAIT / 0.05)):
                if await _members(layer, org_group) == 0 and await _members(layer, user_group) == 0:
                    break
                await asyncio.sleep(0.05)
            assert (await _members(layer, org_group), await _members(layer, user_group)) == (0, 0)
        finally:
            await layer.flush()

    run(scenario)


def test_an_open_socket_closes_try_again_later_when_the_layers_redis_fails(manager_a, org_a, redis_layer):
    """The process's reader of the channel layer (layer.receive) fails, Redis gone: every socket waiting on it closes
    with 1013, no server error (1011)."""
    cookie = session_cookie(manager_a)

    async def scenario():
        layer = get_channel_layer()
        try:
            sockets = await _open(3, cookie)

            async def unreachable(channel):
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

            layer.receive_single = unreachable
            reader = layer._reader  # the reader under way still has its connection: end it, as a dropped one would
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            another = asyncio.ensure_future(layer.receive(await layer.new_channel()))  # starts a reader, which fails
            for ws in sockets:
                assert await ws.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": 1013}
            with pytest.raises(RedisConnectionError):
                await another
        finally:
            del layer.receive_single
            await layer.flush()

    run(scenario)


def _count_redis_messages(layer) -> list:
    """Wrap the layer's read from Redis: the list it returns holds (channels named, message type) per message read."""
    read = []
    original = layer.receive_single

    async def receive_single(channel):
        names, message = await original(channel)
        read.append((names if isinstance(names, list) else [names], message.get("type")))
        return names, message

    layer.receive_single = receive_single
    return read


def test_sockets_of_one_organisation_in_one_process_cost_one_redis_message_per_event(
    manager_a, technician_a, org_a, redis_layer
):
    """Three sockets of one organisation (two users) in one process: the organisation's group has one member, the
    process's channel, and each event is one Redis message naming that one channel, fanned out here to all three,
    in order, once."""
    org_group = services.organization_group(org_a.pk)
    cookies = [session_cookie(manager_a), session_cookie(manager_a), session_cookie(technician_a)]

    async def scenario():
        layer = get_channel_layer()
        try:
            read = _count_redis_messages(layer)  # before the process's reader starts (it calls it)
            sockets = [await connected(socket(cookie=cookie)) for cookie in cookies]
            assert await _members(layer, org_group) == 1
            fanout = LocalFanout.current(layer)
            assert len(fanout.members[org_group]) == 3
            await apublish(org_a, 1)
            for ws in sockets:
                assert (await next_event(ws))["sequence"] == 1
            await apublish(org_a, 2)
            for ws in sockets:
                assert [(await next_event(ws))["sequence"] for _ in range(2)] == [2, 3]
            assert all([await ws.receive_nothing(timeout=0.05) for ws in sockets])
            events = [(names, kind) for names, kind in read if kind.startswith("event.")]
            assert 2 <= len(events) <= 3, events  # one per dispatch (or event), each naming one channel:
            assert all(names == [fanout.channel(org_group)] for names, _ in events), events
            assert fanout.received[org_group] == 2
            await asyncio.gather(*(ws.disconnect(timeout=WAIT) for ws in sockets))
        finally:
            layer.__dict__.pop("receive_single", None)
            await layer.flush()

    run(scenario)


def test_organisations_sharing_a_process_stay_apart(manager_a, manager_b, org_a, org_b, redis_layer):
    """Sockets of two organisations in one process: each organisation's events reach only its own sockets."""
    cookie_a, cookie_b = session_cookie(manager_a), session_cookie(manager_b)

    async def scenario():
        layer = get_channel_layer()
        try:
            a = [await connected(socket(cookie=cookie_a)) for _ in range(2)]
            b = await connected(socket(cookie=cookie_b))
            fanout = LocalFanout.current(layer)
            assert len(fanout.members[services.organization_group(org_a.pk)]) == 2
            assert len(fanout.members[services.organization_group(org_b.pk)]) == 1
            await apublish(org_a, 2)
            await apublish(org_b, 1)
            for ws in a:
                events = [await next_event(ws) for _ in range(2)]
                assert [(e["organization"], e["sequence"]) for e in events] == [(org_a.pk, 1), (org_a.pk, 2)]
            event = await next_event(b)
            assert (event["organization"], event["sequence"]) == (org_b.pk, 1)
            assert all([await ws.receive_nothing(timeout=0.1) for ws in (*a, b)])
            await asyncio.gather(*(ws.disconnect(timeout=WAIT) for ws in (*a, b)))
        finally:
            await layer.flush()

    run(scenario)


def test_a_user_group_message_reaches_only_that_users_sockets(
    manager_a, technician_a, org_a, redis_layer, settings, monkeypatch
):
    """membership.changed sent to one user's group (a revocation) is handed to that user's sockets in the process
    and to no other's: the technician's two sockets re-check and close 4403, the manager's stays open."""
    settings.EVENTS_PERMISSION_RECHECK_SECONDS = 3600  # only the pushed message may close them
    checked = []
    original = EventStreamConsumer.membership_changed

    async def membership_changed(self, message):
        checked.append(self.user_id)
        await original(self, message)

    monkeypatch.setattr(EventStreamConsumer, "membership_changed", membership_changed)
    manager_cookie, technician_cookie = session_cookie(manager_a), session_cookie(technician_a)

    async def scenario():
        layer = get_channel_layer()
        try:
            manager = await connected(socket(cookie=manager_cookie))
            technicians = [await connected(socket(cookie=technician_cookie)) for _ in range(2)]
            await database_sync_to_async(
                lambda: Membership.objects.filter(user=technician_a, organization=org_a).update(is_active=False)
            )()
            await layer.group_send(services.user_group(technician_a.pk), {"type": "membership.changed"})
            for ws in technicians:
                assert (await ws.receive_json_from(timeout=WAIT))["code"] == "membership_ended"
                await expect_close(ws, 4403)
            assert await manager.receive_nothing(timeout=0.2)
            assert checked == [technician_a.pk, technician_a.pk]
            await manager.disconnect()
        finally:
            await layer.flush()

    run(scenario)


def test_the_process_leaves_a_group_when_its_last_socket_there_closes(manager_a, technician_a, org_a, redis_layer):
    """Two users' sockets share the organisation's group: the process's channel stays in it while one is open, and
    leaves it (and each user's group) with the last one; a socket opening afterwards joins it again."""
    org_group = services.organization_group(org_a.pk)
    manager_group, technician_group = services.user_group(manager_a.pk), services.user_group(technician_a.pk)
    manager_cookie, technician_cookie = session_cookie(manager_a), session_cookie(technician_a)

    async def scenario():
        layer = get_channel_layer()
        try:
            manager = await connected(socket(cookie=manager_cookie))
            technician = await connected(socket(cookie=technician_cookie))
            fanout = LocalFanout.current(layer)
            assert [await _members(layer, g) for g in (org_group, manager_group, technician_group)] == [1, 1, 1]
            await technician.disconnect(timeout=WAIT)
            assert [await _members(layer, g) for g in (org_group, manager_group, technician_group)] == [1, 1, 0]
            assert technician_group not in fanout.readers
            await manager.disconnect(timeout=WAIT)
            assert [await _members(layer, g) for g in (org_group, manager_group)] == [0, 0]
            assert fanout.members == {} and fanout.readers == {}
            again = await connected(socket(cookie=manager_cookie))
            assert await _members(layer, org_group) == 1
            await apublish(org_a, 1)
            assert (await next_event(again))["sequence"] == 1
            await again.disconnect(timeout=WAIT)
            assert await _members(layer, org_group) == 0
        finally:
            await layer.flush()

    run(scenario)


class _Receiver:
    """A stand-in for a socket's consumer in LocalFanout: what it is handed."""

    _closed = False

    def __init__(self):
        self.messages = []

    def _deliver_now(self, message):
        return False  # not written at once: handed to `_deliver`

    async def _deliver(self, message):
        self.messages.append(message)


def test_each_web_process_gets_the_groups_message_once(org_a, redis_layer):
    """Two web processes (two layers, each its own client prefix): each puts one channel in the group, and one
    group_send reaches each process once, handed to each of its registered sockets."""
    group = services.organization_group(org_a.pk)
    config = dict(redis_layer)

    async def scenario():
        processes = [LongLivedRedisChannelLayer(**config), LongLivedRedisChannelLayer(**config)]
        fanouts = [LocalFanout.current(layer) for layer in processes]
        receivers = [[_Receiver(), _Receiver()], [_Receiver()]]
        try:
            for fanout, theirs in zip(fanouts, receivers, strict=True):
                for receiver in theirs:
                    await fanout.join(receiver, (group,))
            assert await _members(processes[0], group) == 2
            await processes[0].group_send(group, {"type": "event.message", "organization": org_a.pk, "sequence": 1})
            for _ in range(int(WAIT / 0.02)):
                if all(r.messages for theirs in receivers for r in theirs):
                    break
                await asyncio.sleep(0.02)
            assert [[len(r.messages) for r in theirs] for theirs in receivers] == [[1, 1], [1]]
            assert [fanout.received[group] for fanout in fanouts] == [1, 1]
            for fanout, theirs in zip(fanouts, receivers, strict=True):
                for receiver in theirs:
                    fanout.forget(receiver, (group,))
                await fanout.leave((group,))
            assert await _members(processes[0], group) == 0
        finally:
            await processes[0].flush()

    run(scenario)
