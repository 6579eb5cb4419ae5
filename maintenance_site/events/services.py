"""Publishing and dispatching events (the transactional outbox).

`publish()` only inserts a row in the caller's transaction: an event of a rolled-back change never
exists. After commit one dispatcher numbers the new events per organisation, in the order it sees them
committed, then delivers them to the organisation's Channels group, the concerned user's group and, when
Redis is configured, the `maintenance:<type>` pub/sub channel. A periodic sweep repeats both steps for
whatever a failed or missed dispatch left behind, so an outage delays events but loses none.
"""

import json
import logging
import re
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from maintenance_site.events.models import Event, EventSequence
from maintenance_site.ops.correlation import get_correlation_id

logger = logging.getLogger(__name__)

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")
NUMBERING_BATCH = 5000


def organization_group(organization_id: int) -> str:
    return f"org.{organization_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(organization, event_type: str, payload: dict | None = None, *, user=None) -> Event:
    """Record an event in the current transaction; it is delivered after commit.

    `event_type` uses the seeds' names, `area:what-happened` (`work-order:created`). `user` is the person
    the event concerns (an assignee), who also receives it on their own channel.
    """
    if not EVENT_TYPE.match(event_type):
        raise ValueError(f"Event type {event_type!r} must look like 'work-order:created'.")
    event = Event.objects.create(
        organization=organization,
        type=event_type,
        payload=json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder)),
        user=user,
        correlation_id=get_correlation_id() if get_correlation_id() != "-" else "",
    )
    schedule_dispatch()
    return event


def _start_dispatch():
    from maintenance_site.events.tasks import dispatch_events

    dispatch_events.delay()


def schedule_dispatch() -> None:
    """Ask for one dispatch after the current transaction commits (once, however many events it holds).

    If the broker is down the request is lost; the sweep delivers the events later.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(func is _start_dispatch for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_start_dispatch, robust=True)


def number_pending_events(*, organization_id: int | None = None) -> int:
    """Give committed, unnumbered events the next sequence numbers of their organisation.

    The organisation's EventSequence row is locked while numbering, so concurrent dispatchers take
    turns and numbers are gap-free; an event not yet committed is simply numbered by a later pass.
    """
    pending_orgs = Event.objects.unnumbered()
    if organization_id is not None:
        pending_orgs = pending_orgs.filter(organization_id=organization_id)
    numbered = 0
    for org_id in sorted(set(pending_orgs.values_list("organization_id", flat=True))):
        EventSequence.objects.get_or_create(organization_id=org_id)
        with transaction.atomic():
            sequence = EventSequence.objects.select_for_update().get(organization_id=org_id)
            pending = list(
                Event.objects.filter(organization_id=org_id, sequence__isnull=True).order_by("id")[:NUMBERING_BATCH]
            )
            if not pending:
                continue
            now = timezone.now()
            last = sequence.last_sequence
            for event in pending:
                last += 1
                event.sequence = last
                event.numbered_at = now
            Event.objects.bulk_update(pending, ["sequence", "numbered_at"])
            sequence.last_sequence = last
            sequence.save(update_fields=["last_sequence"])
            numbered += len(pending)
    return numbered


_redis_client = None


def _redis():
    global _redis_client
    if not settings.REDIS_URL:
        return None
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    return _redis_client


def deliver(event: Event) -> None:
    """Send one numbered event to its listeners. Raises when a transport fails."""
    message = event.as_message()
    layer = get_channel_layer()
    if layer is not None:
        channel_message = {"type": "event.message", "event": message}
        async_to_sync(layer.group_send)(organization_group(event.organization_id), channel_message)
        if event.user_id:
            async_to_sync(layer.group_send)(user_group(event.user_id), channel_message)
    client = _redis()
    if client is not None:
        client.publish(f"maintenance:{event.type}", json.dumps(message, cls=DjangoJSONEncoder))


def deliver_numbered_events(*, older_than: timedelta | None = None, limit: int = 1000) -> tuple[int, int]:
    """Deliver numbered, undelivered events in sequence order. Returns (delivered, failed)."""
    queryset = Event.objects.numbered().undelivered().order_by("organization_id", "sequence")
    if older_than is not None:
        queryset = queryset.filter(numbered_at__lt=timezone.now() - older_than)
    delivered, failed = [], 0
    for event in queryset.select_related(None)[:limit]:
        try:
            deliver(event)
        except Exception as exc:  # any transport failure: keep the event for the sweep
            failed += 1
            logger.warning("event %s (#%s) not delivered: %s", event.type, event.sequence, exc)
            Event.objects.filter(pk=event.pk).update(
                delivery_attempts=F("delivery_attempts") + 1, last_error=str(exc)[:1000]
            )
            continue
        delivered.append(event.pk)
    if delivered:
        Event.objects.filter(pk__in=delivered).update(
            dispatched_at=timezone.now(), delivery_attempts=F("delivery_attempts") + 1, last_error=""
        )
    return len(delivered), failed


def dispatch() -> dict:
    """Number what is committed, then deliver it: what the after-commit task runs."""
    numbered = number_pending_events()
    delivered, failed = deliver_numbered_events()
    return {"numbered": numbered, "delivered": delivered, "failed": failed}


def sweep() -> dict:
    """The periodic safety net: number and deliver whatever an earlier dispatch missed."""
    return dispatch()


def prune(retention_days: int | None = None) -> int:
    """Delete delivered events older than the retention (EVENTS_RETENTION_DAYS)."""
    days = retention_days if retention_days is not None else settings.EVENTS_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Event.objects.filter(created_at__lt=cutoff, dispatched_at__isnull=False).delete()
    return deleted


def outbox_lag_seconds() -> float:
    """Age of the oldest undelivered event (0 when the outbox is empty): the metric to alert on."""
    oldest = Event.objects.undelivered().order_by("created_at").values_list("created_at", flat=True).first()
    return (timezone.now() - oldest).total_seconds() if oldest else 0.0
