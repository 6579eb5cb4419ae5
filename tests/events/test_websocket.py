"""The event socket `/ws/events/` through the real ASGI stack (origin check, session, auth)."""

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings

from maintenance_site.events import services
from maintenance_site.events.consumers import Batched, EventStreamConsumer
from maintenance_site.events.models import Event
from maintenance_site.ops import metrics
from maintenance_site.tenancy.models import Membership
from tests.events.support import (
    WAIT,
    apublish,
    connected,
    expect_close,
    expect_refusal,
    next_event,
    per_event,
    sequences,
    session_cookie,
    socket,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    """The embedded mode by default; the Redis test switches to channels_redis itself."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    settings.EVENTS_POLL_INTERVAL = 0.05
    yield


@pytest.fixture
def no_live_delivery(monkeypatch):
    """The dispatcher runs in another process (the Celery worker): its channel layer cannot reach
    this process's sockets, so only the database can bring events here."""
    monkeypatch.setattr(services, "deliver_many", per_event(lambda event: None))


def run(scenario):
    async_to_sync(scenario)()


def test_a_session_user_gets_events_live(manager_a, org_a):
    cookie = session_cookie(manager_a)

    async def scenario():
        ws = await connected(socket(cookie=cookie))
        await apublish(org_a, 2)
        first, second = await next_event(ws), await next_event(ws)
        assert (first["sequence"], second["sequence"]) == (1, 2)
        assert first["type"] == "work-order:created"
        assert first["organization"] == org_a.pk
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
        assert await ws.receive_nothing(timeout=0.2)  # nothing twice (org group, then polling)
        await ws.disconnect()

    run(scenario)


def test_an_event_published_the_moment_the_socket_is_accepted_is_not_lost(manager_a, org_a, monkeypatch):
    """The client may publish as soon as the handshake answers: the socket's starting point is read before that."""
    cookie = session_cookie(manager_a)
    accept = EventStreamConsumer.accept

    async def accept_then_publish(self, *args, **kwargs):
        await accept(self, *args, **kwargs)
        if self.organization_id == org_a.pk:
            await apublish(org_a, 2)  # committed and dispatched before connect() goes on

    monkeypatch.setattr(EventStreamConsumer, "accept", accept_then_publish)

    async def scenario():
        ws = await connected(socket(cookie=cookie))
        assert await sequences(ws, 2) == [1, 2]
        await ws.disconnect()

    run(scenario)


def test_without_after_the_stream_starts_now(manager_a, org_a, no_live_delivery):
    cookie = session_cookie(manager_a)

    async def scenario():
        await apublish(org_a, 3)
        await database_sync_to_async(services.number_pending_events)()
        ws = await connected(socket(cookie=cookie))
        assert await ws.receive_nothing(timeout=0.2)
        await apublish(org_a, 1)
        assert (await next_event(ws))["sequence"] == 4
        await ws.disconnect()

    run(scenario)


def test_a_client_catches_up_with_after(manager_a, org_a, no_live_delivery):
    cookie = session_cookie(manager_a)

    async def scenario():
        await apublish(org_a, 5)
        ws = await connected(socket("/ws/events/?after=2", cookie=cookie))
        assert await sequences(ws, 3) == [3, 4, 5]
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    run(scenario)


def test_catch_up_message_and_bad_messages(manager_a, org_a, no_live_delivery, settings):
    settings.EVENTS_POLL_INTERVAL = 30  # only the client's request brings events
    cookie = session_cookie(manager_a)

    async def scenario():
        ws = await connected(socket("/ws/events/?after=0", cookie=cookie))
        await apublish(org_a, 3)
        assert await ws.receive_nothing(timeout=0.2)
        await ws.send_json_to({"type": "catch-up", "after": 1})
        assert await sequences(ws, 2) == [2, 3]
        await ws.send_json_to({"type": "catch-up", "after": 0})  # never resent on this connection
        assert await ws.receive_nothing(timeout=0.2)
        await ws.send_json_to({"type": "catch-up", "after": "x"})
        assert (await ws.receive_json_from())["type"] == "error"
        await ws.send_to(text_data="not json")
        assert (await ws.receive_json_from())["code"] == "invalid_message"
        await ws.send_json_to({"type": "subscribe"})
        assert (await ws.receive_json_from())["code"] == "unknown_type"
        await ws.disconnect()

    run(scenario)


def test_the_in_memory_layer_polls_what_a_worker_numbered(manager_a, org_a, monkeypatch):
    # publish() only inserts; nothing is dispatched in this process.
    monkeypatch.setattr(services, "_start_dispatch", lambda: None)
    cookie = session_cookie(manager_a)

    async def scenario():
        ws = await connected(socket(cookie=cookie))
        await apublish(org_a, 2)
        assert await ws.receive_nothing(timeout=0.2)  # committed but not numbered: not yet an event
        numbered = await database_sync_to_async(services.number_pending_events)()  # the worker
        assert numbered == 2
        assert await sequences(ws, 2) == [1, 2]
        await ws.disconnect()

    run(scenario)


def test_duplicates_are_dropped_and_gaps_filled(manager_a, org_a, no_live_delivery, settings):
    settings.EVENTS_POLL_INTERVAL = 30  # only the channel layer brings events
    cookie = session_cookie(manager_a)
    group = services.organization_group(org_a.pk)

    async def scenario():
        layer = get_channel_layer()
        ws = await connected(socket(cookie=cookie))
        await apublish(org_a, 3)
        messages = await database_sync_to_async(lambda: [e.as_message() for e in Event.objects.order_by("sequence")])()
        # Only #3 arrives live: #1 and #2 come from the database first.
        await layer.group_send(group, {"type": "event.message", "event": messages[2]})
        assert await sequences(ws, 3) == [1, 2, 3]
        for message in (messages[2], messages[0]):
            await layer.group_send(group, {"type": "event.message", "event": message})
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    run(scenario)


def test_a_batch_is_sent_in_order_without_duplicates_and_gaps_filled(manager_a, org_a, no_live_delivery, settings):
    settings.EVENTS_POLL_INTERVAL = 30  # only the channel layer brings events
    cookie = session_cookie(manager_a)
    group = services.organization_group(org_a.pk)

    async def scenario():
        layer = get_channel_layer()
        ws = await connected(socket(cookie=cookie))
        await apublish(org_a, 5)
        messages = await database_sync_to_async(lambda: [e.as_message() for e in Event.objects.order_by("sequence")])()
        frames = [(m["sequence"], services.event_frame(m)) for m in messages]
        # #1 and #2 arrive, #3 is missing from the batch: the database fills the gap (up to #5, all committed);
        # #4 and #2 again are dropped.
        await layer.group_send(group, services.batch_message(org_a.pk, [frames[0], frames[1], frames[3], frames[1]]))
        assert await sequences(ws, 5) == [1, 2, 3, 4, 5]
        await layer.group_send(group, services.batch_message(org_a.pk, [frames[2], frames[4]]))
        await layer.group_send(group, services.batch_message(org_a.pk + 1000, [frames[4]]))  # another organisation
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    run(scenario)


def test_one_dispatch_sends_one_message_per_group(org_a, org_b, manager_a):
    events = [
        Event(pk=1, organization_id=org_a.pk, sequence=1, type="t:a", payload={}),
        Event(pk=2, organization_id=org_a.pk, sequence=2, type="t:a", payload={}, user_id=manager_a.pk),
        Event(pk=3, organization_id=org_b.pk, sequence=1, type="t:a", payload={}, user_id=manager_a.pk),
        Event(pk=4, organization_id=org_a.pk, sequence=3, type="t:a", payload={}),
    ]
    sends = services._channel_sends([(event, event.as_message()) for event in events])
    org_group, user_group = services.organization_group(org_a.pk), services.user_group(manager_a.pk)
    by_group = [(group, ids, message["type"]) for ids, group, message in sends]
    assert by_group == [
        (org_group, [1, 2, 4], "event.batch"),
        (user_group, [2], "event.message"),
        (user_group, [3], "event.message"),
        (services.organization_group(org_b.pk), [3], "event.message"),
    ]
    assert [sequence for sequence, _ in sends[0][2]["events"]] == [1, 2, 3]


def test_another_organisations_socket_receives_nothing(manager_a, manager_b, member_of_both, org_a, org_b):
    cookies = session_cookie(manager_a), session_cookie(manager_b), session_cookie(member_of_both)

    async def scenario():
        ws_a = await connected(socket(cookie=cookies[0]))
        ws_b = await connected(socket(cookie=cookies[1]))
        # In B, but the event of A concerns them: it reaches their user group, not this socket.
        ws_both_in_b = await connected(socket("/ws/events/?organization=org-b", cookie=cookies[2]))
        await apublish(org_a, 1, user=member_of_both)
        assert (await next_event(ws_a))["user"] == member_of_both.pk
        assert await ws_b.receive_nothing(timeout=0.3)
        assert await ws_both_in_b.receive_nothing(timeout=0.05)
        for ws in (ws_a, ws_b, ws_both_in_b):
            await ws.disconnect()

    run(scenario)


def test_the_organisation_is_chosen_and_checked(member_of_both, manager_b, org_a, org_b):
    plain, remembered = session_cookie(member_of_both), session_cookie(member_of_both, org_b)
    stranger = session_cookie(manager_b)

    async def scenario():
        await expect_refusal(socket(cookie=plain), 4400, "organization_required")
        await expect_refusal(socket("/ws/events/?organization=org-a", cookie=stranger), 4403, "not_a_member")
        await expect_refusal(socket("/ws/events/?after=-3", cookie=plain), 4400)

        by_slug = await connected(socket("/ws/events/?organization=org-a", cookie=plain))
        from_session = await connected(socket(cookie=remembered))
        await apublish(org_b, 1)
        assert (await next_event(from_session))["organization"] == org_b.pk
        assert await by_slug.receive_nothing(timeout=0.2)
        await apublish(org_a, 1)
        assert (await next_event(by_slug))["organization"] == org_a.pk
        await by_slug.disconnect()
        await from_session.disconnect()

    run(scenario)


def test_unauthenticated_and_foreign_origins_are_refused(manager_a, org_a, settings):
    cookie = session_cookie(manager_a)

    async def scenario():
        await expect_refusal(socket(), 4401, "not_authenticated")
        await expect_refusal(socket(cookie="not-a-session"), 4401, "not_authenticated")
        # a foreign page may not ride on the session cookie: the consumer refuses it
        await expect_refusal(socket(cookie=cookie, origin=b"https://evil.example"), 4403, "origin_forbidden")

    run(scenario)
    # A page of ALLOWED_ORIGINS passes the consumer's own check.
    settings.ALLOWED_ORIGINS = ["https://app.example.com"]
    assert services.websocket_origin_allowed("https://app.example.com")
    assert services.websocket_origin_allowed("http://localhost:8000")
    assert not services.websocket_origin_allowed("https://evil.example")
    assert not services.websocket_origin_allowed(None)


def test_a_ticket_opens_one_socket_once(api, technician_a, org_a):
    client = api(technician_a, org_a)
    ticket = client.post("/api/v1/events/ticket").json()["ticket"]
    second_ticket = client.post("/api/v1/events/ticket").json()["ticket"]

    async def scenario():
        ws = await connected(socket(f"/ws/events/?ticket={ticket}&after=0"))  # no cookie
        await apublish(org_a, 1)
        assert (await next_event(ws))["sequence"] == 1
        await expect_refusal(socket(f"/ws/events/?ticket={ticket}"), 4401, "invalid_ticket")
        await expect_refusal(socket(f"/ws/events/?ticket={second_ticket}&organization=org-b"), 4403)
        await ws.disconnect()

    run(scenario)


def test_an_expired_ticket_is_refused(api, manager_a, org_a, monkeypatch):
    ticket = api(manager_a, org_a).post("/api/v1/events/ticket").json()["ticket"]
    now = services._ticket_clock()
    monkeypatch.setattr(services, "_ticket_clock", lambda: now + 61)

    async def scenario():
        await expect_refusal(socket(f"/ws/events/?ticket={ticket}"), 4401, "invalid_ticket")

    run(scenario)


def test_a_membership_ended_through_the_orm_closes_the_socket_at_once(manager_a, technician_a, org_a, settings):
    """The push: saving the membership tells the user's sockets, which re-check once; no periodic check here."""
    settings.EVENTS_PERMISSION_RECHECK_SECONDS = 3600
    settings.EVENTS_POLL_INTERVAL = 30
    cookie = session_cookie(technician_a)

    def end_membership():
        membership = Membership.objects.get(user=technician_a, organization=org_a)
        membership.is_active = False
        membership.save()  # what tenancy.services.update_membership does

    async def scenario():
        ws = await connected(socket(cookie=cookie))
        await apublish(org_a, 1)
        assert (await next_event(ws))["sequence"] == 1
        await database_sync_to_async(end_membership)()
        error = await ws.receive_json_from(timeout=WAIT)
        assert (error["type"], error["code"]) == ("error", "membership_ended")
        await expect_close(ws, 4403)
        await ws.disconnect()

    run(scenario)


def test_a_membership_ended_behind_the_orms_back_closes_within_the_recheck_bound(
    manager_a, technician_a, org_a, settings
):
    """The safety net: a bulk update sends no signal; the process's one-query re-check closes the socket within
    EVENTS_PERMISSION_RECHECK_SECONDS, while the manager's socket stays open."""
    settings.EVENTS_PERMISSION_RECHECK_SECONDS = 0.3
    settings.EVENTS_POLL_INTERVAL = 30
    cookies = session_cookie(technician_a), session_cookie(manager_a)

    async def scenario():
        ws, kept = await connected(socket(cookie=cookies[0])), await connected(socket(cookie=cookies[1]))
        await database_sync_to_async(
            lambda: Membership.objects.filter(user=technician_a, organization=org_a).update(is_active=False)
        )()
        started = time.monotonic()
        error = await ws.receive_json_from(timeout=WAIT)
        assert error["code"] == "membership_ended"
        await expect_close(ws, 4403)
        assert time.monotonic() - started < WAIT
        await apublish(org_a, 1)
        assert (await next_event(kept))["sequence"] == 1
        await ws.disconnect()
        await kept.disconnect()

    run(scenario)


def test_events_are_sent_without_a_permission_query(manager_a, org_a, settings, monkeypatch):
    """No database access on the per-message path: 20 live events, no membership query and no event read."""
    settings.EVENTS_PERMISSION_RECHECK_SECONDS = 0  # even with the re-check at its tightest, it is not per event
    settings.EVENTS_POLL_INTERVAL = 30
    cookie = session_cookie(manager_a)
    calls = []
    for name in ("may_receive_events", "events_after", "active_membership"):
        original = getattr(services, name)
        monkeypatch.setattr(services, name, lambda *a, _n=name, _o=original: calls.append(_n) or _o(*a))

    async def scenario():
        ws = await connected(socket(cookie=cookie))
        calls.clear()
        await apublish(org_a, 20)
        assert await sequences(ws, 20) == list(range(1, 21))
        assert calls == []
        await ws.disconnect()

    run(scenario)


def test_groups_are_joined_again(manager_a, org_a, settings):
    settings.EVENTS_GROUP_REJOIN_SECONDS = 0.1
    settings.EVENTS_POLL_INTERVAL = 30
    cookie = session_cookie(manager_a)
    group = services.organization_group(org_a.pk)

    async def scenario():
        layer = get_channel_layer()
        ws = await connected(socket(cookie=cookie))
        assert layer.groups.get(group)
        layer.groups.clear()  # what group_expiry (or a Redis restart) does
        await wait_until(lambda: layer.groups.get(group))
        event = {"sequence": 1, "type": "test:ping", "organization": org_a.pk, "user": None, "payload": {}}
        await layer.group_send(group, {"type": "event.message", "event": event})
        assert (await next_event(ws))["type"] == "test:ping"
        await ws.disconnect()

    run(scenario)


def test_metrics_count_open_sockets(manager_a, org_a, monkeypatch):
    changes = []
    monkeypatch.setattr(metrics, "websockets_changed", changes.append)
    cookie = session_cookie(manager_a)

    async def scenario():
        ws = await connected(socket(cookie=cookie))
        await wait_until(lambda: changes == [1])  # recorded off the event loop
        await ws.disconnect()
        await wait_until(lambda: changes == [1, -1])
        await expect_refusal(socket(), 4401)  # a refused socket was never open
        await asyncio.sleep(0.2)
        assert changes == [1, -1]

    run(scenario)


@pytest.mark.redis
def test_a_dispatched_event_arrives_through_redis(manager_a, org_a, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [django_settings.REDIS_URL], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }
    settings.EVENTS_POLL_INTERVAL = 0.01  # would show if the consumer polled: it must not, with Redis
    cookie = session_cookie(manager_a)

    async def scenario():
        layer = get_channel_layer()
        try:
            ws = await connected(socket(cookie=cookie))
            polls = []
            original = services.events_after
            services.events_after = lambda *args: polls.append(args) or original(*args)
            try:
                await apublish(org_a, 2)  # commit → dispatch → channels_redis group_send
                assert await sequences(ws, 2) == [1, 2]
                await asyncio.sleep(0.05)
                assert polls == []  # live, not from the database
            finally:
                services.events_after = original
            await ws.disconnect()
        finally:
            await layer.flush()

    run(scenario)
    assert Event.objects.filter(dispatched_at__isnull=False).count() == 2


def test_calls_made_together_are_served_by_one_batch_and_share_its_failure():
    """consumers.Batched (the handshakes' claims, joins and membership reads): the calls made while a batch is
    under way make the next one; each caller gets its own result, and a failed batch fails each of its callers."""
    runs = []

    async def work(items):
        runs.append(list(items))
        if "boom" in items:
            raise ValueError("boom")
        return [item * 2 for item in items]

    batched = Batched(work)

    async def scenario():
        assert await asyncio.gather(*(batched(n) for n in range(5))) == [0, 2, 4, 6, 8]
        results = await asyncio.gather(batched("boom"), batched("x"), return_exceptions=True)
        assert [type(result) for result in results] == [ValueError, ValueError]
        first = asyncio.ensure_future(batched(1))
        await asyncio.sleep(0)  # the first batch is under way: the next calls wait for it, then go together
        assert await asyncio.gather(first, batched(2), batched(3)) == [2, 4, 6]

    run(scenario)
    assert runs == [[0, 1, 2, 3, 4], ["boom", "x"], [1], [2, 3]]
