"""The event socket served by daphne itself (maintenance_site.ops.webserver, as docker-compose runs it) on the real
Redis channel layer: what the process's fan-out writes straight to daphne's protocols (consumers._daphne_protocol,
each frame encoded for the wire once) reaches every socket in order, without duplicates, a batch's gap filled from
the database, nothing of another organisation; a socket that went does not stop the others."""

import asyncio
import json
import os
from pathlib import Path

import aiohttp
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from maintenance_site.events import services
from maintenance_site.events.models import Event
from tests.events.support import WAIT, publish_committed
from tests.web_process import database_url, web_process

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SOCKETS = 20


@pytest.fixture
def daphne(tmp_path):
    """The web server on this test's database and Redis namespace (tests/settings.py): its port."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path / "daphne.log"
    with web_process(env, log_path, timeout=60) as port:
        yield port
    output = log_path.read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]


async def _sequences(ws, count: int) -> list[int]:
    got = []
    while len(got) < count:
        message = await ws.receive(timeout=WAIT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        assert data["type"] == "event", data
        got.append(data["event"]["sequence"])
    return got


async def _nothing_more(ws, timeout: float = 0.3) -> bool:
    try:
        message = await ws.receive(timeout=timeout)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected {message}")


def test_daphne_sends_each_socket_every_event_in_order(daphne, technician_a, org_a, org_b, manager_b):
    tickets = [services.issue_websocket_ticket(technician_a, org_a)["ticket"] for _ in range(SOCKETS)]
    other = services.issue_websocket_ticket(manager_b, org_b)["ticket"]
    url = f"ws://127.0.0.1:{daphne}/ws/events/?ticket="

    async def scenario():
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(url + ticket) for ticket in tickets]
            stranger = await session.ws_connect(url + other)
            await asyncio.sleep(0.3)  # every socket live (its connect read the last sequence)
            for count in (1, 3, 1, 4):  # one event, then batches (one message per dispatch)
                await database_sync_to_async(publish_committed)(org_a, count)
            for ws in sockets:
                assert await _sequences(ws, 9) == list(range(1, 10))
            # One socket goes; the others go on.
            await sockets.pop().close()
            await database_sync_to_async(publish_committed)(org_a, 2)
            for ws in sockets:
                assert await _sequences(ws, 2) == [10, 11]
            # A batch with a hole, and a duplicate: the hole comes from the database, in order, once.
            messages = await database_sync_to_async(
                lambda: [e.as_message() for e in Event.objects.filter(organization=org_a).order_by("sequence")]
            )()
            frames = [(m["sequence"], services.event_frame(m)) for m in messages]
            layer = get_channel_layer()
            group = services.organization_group(org_a.pk)
            await layer.group_send(group, services.batch_message(org_a.pk, [frames[10], frames[10]]))
            assert await _nothing_more(sockets[0])  # #11 again: dropped
            deliver_many, services.deliver_many = services.deliver_many, lambda events: {}
            try:
                await database_sync_to_async(publish_committed)(org_a, 3)  # #12-#14: numbered, not sent
            finally:
                services.deliver_many = deliver_many
            messages = await database_sync_to_async(
                lambda: [e.as_message() for e in Event.objects.filter(organization=org_a).order_by("sequence")]
            )()
            last = messages[-1]
            await layer.group_send(group, services.batch_message(org_a.pk, [(14, services.event_frame(last))]))
            for ws in sockets:
                assert await _sequences(ws, 3) == [12, 13, 14]
                assert await _nothing_more(ws, 0.05)
            assert await _nothing_more(stranger)
            for ws in [*sockets, stranger]:
                await ws.close()

    async_to_sync(scenario)()
