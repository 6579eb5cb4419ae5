"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402,I001
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from maintenance_site.events.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The consumer checks the Origin itself for cookie (session) logins; ticket logins from native
        # clients carry no Origin, so no blanket origin validator here.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
