"""The platform stream: events about the platform itself, for platform administrators (superusers) only.

Scenarios, their runs and the machine's resource samples belong to no organisation, while the outbox
(`services.publish`) belongs to one: its events reach the organisation's members, its Socket.IO room, Redis
pub/sub and its webhooks. Platform events therefore have their own table (`PlatformEvent`, no organisation
column) rather than a nullable organisation on `Event`: every reader of `Event` (numbering per organisation,
catch-up, webhooks fan-out, Socket.IO, retention) stays as it is, and no query of a tenant can ever see a row
that has no tenant, instead of every one of them needing an `organization IS NOT NULL` it could forget.

The same outbox rules apply: `publish_platform()` inserts the row in the caller's transaction (a rolled-back
change publishes nothing); after commit one dispatch numbers the committed events in the order it sees them
(one platform-wide sequence, its row locked while numbering, so numbers are gap-free) and sends them to one
Channels group, `platform`, which only the superusers' socket `/ws/platform/` joins
(`platform_consumer.PlatformEventConsumer`, which checks the user is still an active superuser as it sends).
Nothing else: no Redis pub/sub, no Socket.IO room, no webhook. The event sweep repeats what a failed dispatch
left (`core: platform event sweep`), and the board catches up by sequence (`?after=`) after a reconnect.

Types (`PLATFORM_EVENT_TYPES`): `scenario:activated`, `scenario:deactivated`, `scenario:updated` (an active
scenario's timer changed), `scenario:run-started`, `scenario:run-finished` and `platform:resources-sampled`.
"""

import json
import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from maintenance_site.events import tasks  # the dispatch task calls back here
from maintenance_site.events.models import PlatformEvent, PlatformEventSequence
from maintenance_site.events.types import EVENT_TYPE
from maintenance_site.ops.correlation import get_correlation_id

logger = logging.getLogger(__name__)

PLATFORM_GROUP = "platform"
NUMBERING_BATCH = 5000
CATCH_UP_BATCH = 1000

PLATFORM_EVENT_TYPES = {
    "scenario:activated": "A maintenance scenario was switched on",
    "scenario:deactivated": "A maintenance scenario was switched off",
    "scenario:updated": "An active scenario's timer changed",
    "scenario:run-started": "A scenario run started",
    "scenario:run-finished": "A scenario run finished (succeeded, failed, timed out, cancelled or skipped)",
    "platform:resources-sampled": "The machine's CPU, memory, disk and load were sampled",
}


def publish_platform(event_type: str, payload: dict | None = None) -> PlatformEvent:
    """Record a platform event in the current transaction; it is delivered to superusers after commit."""
    if not EVENT_TYPE.match(event_type):
        raise ValueError(f"Event type {event_type!r} must look like 'scenario:activated'.")
    correlation_id = get_correlation_id()
    event = PlatformEvent.objects.create(
        type=event_type,
        payload=json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder)),
        correlation_id=correlation_id if correlation_id != "-" else "",
    )
    schedule_dispatch()
    return event


def _start_dispatch():
    tasks.dispatch_platform_events.delay()


def schedule_dispatch() -> None:
    """One dispatch after the current transaction commits, however many platform events it holds. If the broker
    is down the request is lost and the event sweep delivers them."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(func is _start_dispatch for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_start_dispatch, robust=True)


def number_pending() -> int:
    """Give committed, unnumbered platform events the next numbers, in id order, under the sequence row's lock (so
    two dispatchers take turns and numbers have no gaps)."""
    if not PlatformEvent.objects.filter(sequence__isnull=True).exists():
        return 0
    PlatformEventSequence.objects.get_or_create(pk=1)
    with transaction.atomic():
        sequence = PlatformEventSequence.objects.select_for_update().get(pk=1)
        pending = list(PlatformEvent.objects.filter(sequence__isnull=True).order_by("id")[:NUMBERING_BATCH])
        if not pending:
            return 0
        now = timezone.now()
        last = sequence.last_sequence
        for event in pending:
            last += 1
            event.sequence = last
            event.numbered_at = now
        PlatformEvent.objects.bulk_update(pending, ["sequence", "numbered_at"])
        sequence.last_sequence = last
        sequence.save(update_fields=["last_sequence"])
    return len(pending)


def deliver(event: PlatformEvent) -> None:
    """Send one numbered platform event to the superusers' group, and nowhere else. Raises when the layer fails."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = json.loads(json.dumps(event.as_message(), cls=DjangoJSONEncoder))
    async_to_sync(layer.group_send)(PLATFORM_GROUP, {"type": "platform.event", "event": message})


def deliver_numbered(*, limit: int = 1000) -> tuple[int, int]:
    """Deliver numbered, undelivered platform events in sequence order. Returns (delivered, failed)."""
    delivered, failed = [], 0
    for event in PlatformEvent.objects.filter(sequence__isnull=False, dispatched_at__isnull=True).order_by("sequence")[
        :limit
    ]:
        try:
            deliver(event)
        except Exception as exc:  # any transport failure: the sweep tries again
            failed += 1
            logger.warning("platform event %s (#%s) not delivered: %s", event.type, event.sequence, exc)
            PlatformEvent.objects.filter(pk=event.pk).update(
                delivery_attempts=F("delivery_attempts") + 1, last_error=str(exc)[:1000]
            )
            continue
        delivered.append(event.pk)
    if delivered:
        PlatformEvent.objects.filter(pk__in=delivered).update(
            dispatched_at=timezone.now(), delivery_attempts=F("delivery_attempts") + 1, last_error=""
        )
    return len(delivered), failed


def dispatch() -> dict:
    """Number what is committed, then deliver it: the after-commit task and the sweep (the same task) run this."""
    numbered = number_pending()
    delivered, failed = deliver_numbered()
    return {"numbered": numbered, "delivered": delivered, "failed": failed}


def prune(retention_days: int | None = None) -> int:
    """Delete delivered platform events older than EVENTS_RETENTION_DAYS."""
    days = retention_days if retention_days is not None else settings.EVENTS_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = PlatformEvent.objects.filter(created_at__lt=cutoff, dispatched_at__isnull=False).delete()
    return deleted


def events_after(after: int, limit: int = CATCH_UP_BATCH) -> tuple[list[dict], bool]:
    """Numbered platform events with a sequence above `after`, in order, at most `limit`; and whether more follow."""
    rows = list(PlatformEvent.objects.filter(sequence__gt=after).order_by("sequence")[: limit + 1])
    return [event.as_message() for event in rows[:limit]], len(rows) > limit


def last_sequence() -> int:
    """The platform stream's highest sequence number (0 before the first event)."""
    highest = (
        PlatformEvent.objects.filter(sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    return highest or 0


def may_receive(user_id: int) -> bool:
    """Whether the user may (still) receive platform events: an active superuser."""
    return get_user_model().objects.filter(pk=user_id, is_active=True, is_superuser=True).exists()
