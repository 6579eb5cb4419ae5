"""Websocket routes (mounted by maintenance_site/asgi.py)."""

from django.urls import re_path

from maintenance_site.events.consumers import EventStreamConsumer
from maintenance_site.events.platform_consumer import PlatformEventConsumer

websocket_urlpatterns: list = [
    re_path(r"^ws/events/?$", EventStreamConsumer.as_asgi(), name="ws-events"),
    # platform administrators only: scenarios, their runs, resource samples (maintenance_site/events/platform.py)
    re_path(r"^ws/platform/?$", PlatformEventConsumer.as_asgi(), name="ws-platform"),
]
