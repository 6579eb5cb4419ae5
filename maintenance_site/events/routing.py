"""Websocket routes (mounted by maintenance_site/asgi.py), behind the session login only where there is a session."""

from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.urls import re_path

from maintenance_site.events.consumers import EventStreamConsumer
from maintenance_site.events.platform_consumer import PlatformEventConsumer

websocket_urlpatterns: list = [
    re_path(r"^ws/events/?$", EventStreamConsumer.as_asgi(), name="ws-events"),
    # platform administrators only: scenarios, their runs, resource samples (maintenance_site/events/platform.py)
    re_path(r"^ws/platform/?$", PlatformEventConsumer.as_asgi(), name="ws-platform"),
]


class SessionAuthWhenCookie:
    """Channels' AuthMiddlewareStack (cookies, session, user) for a socket that carries the session cookie; a socket
    without one gets the AnonymousUser the stack would have found, without it. The stack costs a trip through
    asgiref's single sync thread per handshake (get_user) and wraps every send: for the phones connecting with a
    ticket and no cookie, a third of the event loop's time while a thousand sockets connect at once."""

    def __init__(self, inner):
        self.inner = inner
        self.with_session = AuthMiddlewareStack(inner)

    async def __call__(self, scope, receive, send):
        if self.has_session_cookie(scope):
            return await self.with_session(scope, receive, send)
        return await self.inner({**scope, "user": AnonymousUser()}, receive, send)

    @staticmethod
    def has_session_cookie(scope) -> bool:
        for header, value in scope.get("headers", ()):
            if header == b"cookie" and settings.SESSION_COOKIE_NAME in parse_cookie(value.decode("latin1")):
                return True
        return False
