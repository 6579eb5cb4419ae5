"""Websocket routes (mounted by maintenance_site/asgi.py)."""

from django.urls import re_path

from maintenance_site.events.consumers import EventStreamConsumer

websocket_urlpatterns: list = [
    re_path(r"^ws/events/?$", EventStreamConsumer.as_asgi(), name="ws-events"),
]
