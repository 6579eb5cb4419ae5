"""Socket.IO in the embedded run (issue 25): no Redis, so the server itself polls the database for newly numbered
events of the organisations it has clients for (`socketio_server._poll`) and emits them to their rooms. A client
receives its organisation's events in order, each once, and another organisation's client receives nothing."""

import time

import pytest
import socketio

from maintenance_site.events import services, socketio_server
from tests.events.support import serving
from tests.events.support import socketio_client as connect
from workorders import services as work_orders

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _nothing_else(scope, receive, send):  # the Django/Channels app does not matter here
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def embedded_url(settings):
    """A Socket.IO server built as the embedded run builds it: REDIS_URL unset (no Redis manager: it polls)."""
    settings.REDIS_URL = ""
    settings.EVENTS_POLL_INTERVAL = 0.1
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    application = socketio_server.asgi_app(_nothing_else)
    assert application.engineio_server.manager.__class__ is socketio.AsyncManager  # not the Redis one
    with serving(application) as url:
        yield url


def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_without_redis_the_server_polls_and_each_room_gets_its_own_events(
    embedded_url, org_a, org_b, manager_a, manager_b
):
    work_orders.create_work_order(org_a, title="Before anyone listened", actor=manager_a)
    services.number_pending_events()
    mine, theirs = [], []
    client_a = connect(embedded_url, manager_a, org_a, mine)
    client_b = connect(embedded_url, manager_b, org_b, theirs)
    try:
        first = work_orders.create_work_order(org_a, title="Socket.IO, embedded", actor=manager_a)
        services.number_pending_events()  # numbered in the database: nothing is pushed to the server
        wait_for(lambda: mine)
        second = work_orders.create_work_order(org_a, title="And another", actor=manager_a)
        work_orders.create_work_order(org_b, title="Organisation B's own", actor=manager_b)
        services.number_pending_events()
        wait_for(lambda: len(mine) >= 2 and theirs)
        time.sleep(0.5)  # a few more polling rounds: nothing is sent twice
    finally:
        client_a.disconnect()
        client_b.disconnect()
    # the event from before the connection is not replayed; the others arrive once each, in sequence order
    assert [(event, data["payload"]["id"]) for event, data in mine] == [
        ("work-order:created", first.pk),
        ("work-order:created", second.pk),
    ]
    assert mine[1][1]["sequence"] == mine[0][1]["sequence"] + 1
    assert {data["organization"] for _, data in mine} == {org_a.pk}
    assert [(event, data["organization"]) for event, data in theirs] == [("work-order:created", org_b.pk)]


def test_without_redis_a_bad_ticket_is_refused(embedded_url):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(embedded_url, auth={"ticket": "nope"}, transports=["websocket"], wait_timeout=10)
