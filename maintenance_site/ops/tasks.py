import logging

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from maintenance_site.ops.models import Heartbeat

logger = logging.getLogger(__name__)


def record_heartbeat(component: str) -> None:
    now = timezone.now()
    updated = Heartbeat.objects.filter(component=component).update(last_seen_at=now, beats=F("beats") + 1)
    if not updated:
        Heartbeat.objects.get_or_create(component=component, defaults={"last_seen_at": now, "beats": 1})


@shared_task(ignore_result=True)
def beat_heartbeat() -> None:
    """Runs on every beat tick: its row's age tells whether beat and a worker are alive."""
    record_heartbeat("beat")
    logger.info("beat heartbeat recorded")
