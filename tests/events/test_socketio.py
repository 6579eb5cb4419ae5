"""Socket.IO for seed 004's clients (issue 25): the python-socketio client connects with a ticket, receives
`work-order:created` in its organisation's room, and another organisation's client receives nothing."""

import time

import pytest
import socketio

from maintenance_site.events import services
from tests.events.support import serving
from tests.events.support import socketio_client as connect
from workorders import services as work_orders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def server_url(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from maintenance_site.asgi import application

    with serving(application) as url:
        yield url


def test_a_ticket_client_receives_its_organisations_events_only(server_url, org_a, org_b, manager_a, manager_b):
    mine, theirs = [], []
    client_a = connect(server_url, manager_a, org_a, mine)
    client_b = connect(server_url, manager_b, org_b, theirs)
    time.sleep(0.5)  # the server's Redis listener subscribed
    try:
        order = work_orders.create_work_order(org_a, title="Socket.IO", actor=manager_a)
        services.dispatch()
        deadline = time.monotonic() + 10
        while not mine and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        client_a.disconnect()
        client_b.disconnect()
    assert [event for event, _ in mine] == ["work-order:created"]
    assert mine[0][1]["payload"]["id"] == order.pk and mine[0][1]["organization"] == org_a.pk
    assert theirs == []


def test_a_used_or_missing_ticket_is_refused(server_url, org_a, manager_a):
    ticket = services.issue_websocket_ticket(manager_a, org_a)["ticket"]
    first = socketio.Client(reconnection=False)
    first.connect(server_url, auth={"ticket": ticket}, transports=["websocket"], wait_timeout=10)
    first.disconnect()
    for auth in ({"ticket": ticket}, {}):
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(server_url, auth=auth, transports=["websocket"], wait_timeout=10)
