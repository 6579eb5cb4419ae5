"""Helpers for the event tests: session cookies, websocket communicators, waiting with a deadline.

A deadline here bounds the wait for something that must arrive (it returns as soon as it does), so it is
generous: a busy test machine must not fail the suite. Checks that nothing arrives use short waits of their own.
"""

import asyncio
import contextlib
import socket as sockets
import threading
import time

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django.test import Client

from maintenance_site.events import services
from maintenance_site.tenancy.middleware import SESSION_KEY

ORIGIN = b"http://localhost"
WAIT = 10.0  # seconds


def session_cookie(user, organization=None) -> str:
    """A logged-in session for `user` (optionally with a remembered organisation): the cookie value."""
    client = Client()
    client.force_login(user)
    if organization is not None:
        session = client.session
        session[SESSION_KEY] = organization.pk
        session.save()
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def socket(path: str = "/ws/events/", *, cookie: str | None = None, origin: bytes | None = ORIGIN):
    from maintenance_site.asgi import application

    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(communicator):
    ok, _ = await communicator.connect(timeout=WAIT)
    assert ok, "the socket was not accepted"
    return communicator


async def expect_refusal(communicator, close_code: int, error_code: str | None = None):
    """The consumer accepts, says why in an error message, then closes with `close_code`."""
    ok, code = await communicator.connect(timeout=WAIT)
    assert ok, f"closed before the handshake (code {code})"
    message = await communicator.receive_json_from(timeout=WAIT)
    assert message["type"] == "error"
    if error_code is not None:
        assert message["code"] == error_code, message
    await expect_close(communicator, close_code)
    return message


async def expect_close(communicator, close_code: int, timeout: float = WAIT):
    output = await communicator.receive_output(timeout=timeout)
    assert output["type"] == "websocket.close", output
    assert output.get("code") == close_code, output


async def next_event(communicator, timeout: float = WAIT) -> dict:
    message = await communicator.receive_json_from(timeout=timeout)
    assert message["type"] == "event", message
    return message["event"]


async def sequences(communicator, count: int, timeout: float = WAIT) -> list[int]:
    return [(await next_event(communicator, timeout))["sequence"] for _ in range(count)]


def publish_committed(organization, count: int = 1, event_type: str = "work-order:created", user=None):
    """Publish `count` events in one committed transaction (the after-commit dispatch runs eagerly)."""
    with transaction.atomic():
        return [services.publish(organization, event_type, {"n": n}, user=user).pk for n in range(count)]


apublish = database_sync_to_async(publish_committed)


async def wait_until(predicate, timeout: float = WAIT, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(interval)


def per_event(transport):
    """A stand-in for services.deliver_many calling `transport(event)` for each event (the dispatcher's batch,
    one event at a time); an exception marks that event failed, as a transport failure does."""

    def deliver_many(events):
        failures = {}
        for event in events:
            try:
                transport(event)
            except Exception as exc:  # noqa: BLE001
                failures[event.pk] = exc
        return failures

    return deliver_many


@contextlib.contextmanager
def serving(application):
    """`application` served by uvicorn in a thread on a free local port: yields its base URL, stops it after."""
    import uvicorn

    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def socketio_client(url, user, organization, received: list):
    """A python-socketio client connected with a fresh ticket over the websocket transport; every event it gets is
    appended to `received` as (event, data)."""
    import socketio

    ticket = services.issue_websocket_ticket(user, organization)["ticket"]
    client = socketio.Client(reconnection=False)

    @client.on("*")
    def anything(event, data):
        received.append((event, data))

    client.connect(url, auth={"ticket": ticket}, transports=["websocket"], wait_timeout=10)
    return client
