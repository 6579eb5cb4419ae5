"""The site's URLs plus two views the ops tests need: one logs, one publishes a Celery task, as any view might."""

import logging

from django.http import HttpResponse
from django.urls import path
from kombu import Connection

from maintenance_site.ops.tasks import beat_heartbeat
from maintenance_site.urls import urlpatterns as site_urlpatterns

logger = logging.getLogger("tests.ops")

MEMORY_BROKER = "memory://"
TEST_QUEUE = "ops-tests"


def log_something(request):
    logger.warning("inside the request")
    return HttpResponse("logged")


def publish_task(request):
    """Publishes for real, to kombu's in-process memory broker, so the test can read the message."""
    with Connection(MEMORY_BROKER) as connection:
        beat_heartbeat.apply_async(connection=connection, queue=TEST_QUEUE)
    return HttpResponse("published")


urlpatterns = [
    *site_urlpatterns,
    path("ops-tests/log", log_something, name="ops-tests-log"),
    path("ops-tests/publish", publish_task, name="ops-tests-publish"),
]
