"""Socket.IO for clients written against seed 004: `/socket.io/`, beside the Channels websocket `/ws/events/`.

python-socketio's `AsyncServer` as an ASGI app (maintenance_site/asgi.py mounts it in front of Channels). A client
authenticates like on `/ws/events/`: a one-time ticket from `POST /api/v1/events/ticket/` (`auth={"ticket": …}` or
`?ticket=`), or the session cookie from a page whose Origin is allowed; `organization` (slug or id) picks the
organisation as on the socket. It joins one room per organisation (`org.<id>`) and receives every event of it under
the event's own name: the seed's `work-order:created`, `work-order:updated`, `work-order:completed`,
`inventory:low-stock`, `sla:violation`, `predictive:alert`, and the others of the registry, each with the message
`/ws/events/` sends (`sequence`, `type`, `payload`, …).

Fed by the outbox dispatcher, the same source as `/ws/events/`: in the full run (REDIS_URL) the dispatcher
publishes through a write-only `RedisManager` and every web process's `AsyncRedisManager` hands the event to its
own clients of the room, so several web processes share rooms. In the embedded run (no Redis) the server polls the
database for newly numbered events of the organisations it has clients for, every EVENTS_POLL_INTERVAL seconds.

Transport: websocket only (no long-polling), so no sticky sessions are needed behind a load balancer.
"""

import asyncio
import logging
from http.cookies import SimpleCookie
from importlib import import_module
from urllib.parse import parse_qs

import socketio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from maintenance_site.errors import DomainError
from maintenance_site.events import services

logger = logging.getLogger(__name__)
room = services.organization_group  # one room per organisation, named like its Channels group


def _client_manager():
    if settings.REDIS_URL:
        return socketio.AsyncRedisManager(settings.REDIS_URL, channel=settings.SOCKETIO_REDIS_CHANNEL)
    return None


def _membership_from_environ(environ: dict, auth) -> object:
    """The membership a connection acts through (sync: database), or raise ConnectionRefusedError."""
    query = {key: values[-1] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    auth = auth if isinstance(auth, dict) else {}
    ticket = auth.get("ticket") or query.get("ticket")
    requested = auth.get("organization") or query.get("organization")
    if ticket:
        membership = services.redeem_websocket_ticket(str(ticket))
        if membership is None:
            raise ConnectionRefusedError({"code": "invalid_ticket", "message": _("Unknown, used or expired ticket.")})
        if requested and str(requested) not in (membership.organization.slug, str(membership.organization_id)):
            raise ConnectionRefusedError(
                {"code": "not_a_member", "message": _("The ticket is for another organisation.")}
            )
        return membership
    cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        raise ConnectionRefusedError({"code": "not_authenticated", "message": _("Sign in or connect with a ticket.")})
    if not services.websocket_origin_allowed(environ.get("HTTP_ORIGIN")):
        raise ConnectionRefusedError({"code": "origin_forbidden", "message": _("Connect with a ticket instead.")})
    session = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
    user_id = session.get(AUTH_SESSION_KEY)
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None:
        raise ConnectionRefusedError({"code": "not_authenticated", "message": _("Sign in or connect with a ticket.")})
    try:
        return services.websocket_membership(user, requested, session)
    except DomainError as exc:
        raise ConnectionRefusedError({"code": exc.code, "message": exc.message}) from None


def create_server() -> socketio.AsyncServer:
    """The Socket.IO server (one per process)."""
    origins = list(settings.ALLOWED_ORIGINS) or []
    server = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=_client_manager(),
        cors_allowed_origins=origins,
        transports=["websocket"],
        logger=False,
        engineio_logger=False,
    )
    polled: dict[int, int] = {}  # embedded run: organisation id → last sequence relayed
    poller: list = []

    @server.event
    async def connect(sid, environ, auth=None):
        membership = await sync_to_async(_membership_from_environ, thread_sensitive=True)(environ, auth)
        organization_id = membership.organization_id
        await server.save_session(sid, {"user_id": membership.user_id, "organization_id": organization_id})
        await server.enter_room(sid, room(organization_id))
        if not settings.REDIS_URL:
            if organization_id not in polled:
                polled[organization_id] = await sync_to_async(services.last_sequence)(organization_id)
            if not poller:
                poller.append(asyncio.ensure_future(_poll(server, polled)))
        return True

    return server


async def _poll(server: socketio.AsyncServer, polled: dict[int, int]) -> None:
    """Embedded run: relay newly numbered events of the organisations with clients, from the database."""
    while True:
        await asyncio.sleep(settings.EVENTS_POLL_INTERVAL)
        for organization_id, after in list(polled.items()):
            try:
                events, _ = await sync_to_async(services.events_after)(organization_id, after, 500)
            except Exception:  # the database is busy: next round
                logger.warning("socket.io: could not read events", exc_info=True)
                continue
            for message in events:
                await server.emit(message["type"], message, room=room(organization_id))
                polled[organization_id] = message["sequence"]


def asgi_app(other_asgi_app):
    """`/socket.io/` served by Socket.IO, everything else by `other_asgi_app` (Django and Channels)."""
    return socketio.ASGIApp(create_server(), other_asgi_app=other_asgi_app, socketio_path="socket.io")
