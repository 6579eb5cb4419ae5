"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, then our handler: the middleware in one thread hop

from maintenance_site.ops.asgi_handler import SyncChainASGIHandler, freeze_startup_objects  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from maintenance_site.ops import telemetry  # noqa: E402

telemetry.setup()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from maintenance_site.events.routing import SessionAuthWhenCookie, websocket_urlpatterns  # noqa: E402
from maintenance_site.events.socketio_server import asgi_app as socketio_app  # noqa: E402

channels_application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The consumer checks the Origin itself for cookie (session) logins; ticket logins from native
        # clients carry no Origin, so no blanket origin validator here. The session login only for sockets that
        # carry the session cookie (a ticket's socket needs none of it).
        "websocket": SessionAuthWhenCookie(URLRouter(websocket_urlpatterns)),
    }
)
# /socket.io/ for the seed's Socket.IO clients (maintenance_site/events/socketio_server.py); the rest as before.
application = socketio_app(channels_application)
freeze_startup_objects()  # last: what startup loaded is never walked by a full collection
