"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")
django_asgi_app = get_asgi_application()

from maintenance_site.ops import telemetry  # noqa: E402

telemetry.setup()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set

from channels.auth import AuthMiddlewareStack  # noqa: E402,I001
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from maintenance_site.events.routing import websocket_urlpatterns  # noqa: E402

from maintenance_site.events.socketio_server import asgi_app as socketio_app  # noqa: E402

channels_application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The consumer checks the Origin itself for cookie (session) logins; ticket logins from native
        # clients carry no Origin, so no blanket origin validator here.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
# /socket.io/ for the seed's Socket.IO clients (maintenance_site/events/socketio_server.py); the rest as before.
application = socketio_app(channels_application)
