"""The only writers of webhook subscriptions and deliveries, and the delivery job.

Deliveries are fed from the event outbox, never from inside a change: `fan_out()` reads each active subscription's
organisation's numbered events after the subscription's cursor (`last_sequence`) and writes one delivery row per
matching event (unique per subscription and event, so running twice or on two machines writes each once); the
dispatcher's `events_dispatched` hook queues the job right after events are numbered and beat runs it every
WEBHOOK_SWEEP_INTERVAL seconds. An event of a rolled-back change never exists, so it is never sent.

`claim_due()` takes due deliveries per subscription under the subscription's row lock (`FOR UPDATE SKIP LOCKED`: a
second worker skips a subscription being claimed), at most WEBHOOK_MAX_IN_FLIGHT in flight per subscription, by a
conditional UPDATE to `sending`. The job then POSTs them (in WEBHOOK_WORKER_THREADS threads) and records each
outcome if it still holds the claim. A worker that dies mid-send leaves its claims `sending`: after
WEBHOOK_CLAIM_LEASE_SECONDS they are due again (at-least-once; receivers de-duplicate by `webhook-id`).
"""

import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from maintenance_site import audit
from maintenance_site.errors import InvalidInput
from maintenance_site.events.models import Event, EventSequence
from maintenance_site.events.types import matches, validate_patterns
from maintenance_site.notifications.kinds import register_kind
from maintenance_site.notifications.models import Channel
from maintenance_site.notifications.services import notify
from maintenance_site.security import outbound as targets
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.roles import Role
from maintenance_site.validation import validated
from maintenance_site.webhooks import crypto, tasks  # tasks call these services, these queue tasks
from maintenance_site.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
SUBSCRIPTION_FIELDS = ("url", "description", "event_types", "is_active")
FAN_OUT_BATCH = 5000
REPLAY_MAX = 10_000
RETRY_DELAY_CAP_SECONDS = 3600
TEST_EVENT_TYPE = "webhook:test"

register_kind("webhook:disabled", "Webhook subscription disabled", [Channel.EMAIL])


# --- subscriptions -----------------------------------------------------------------------------------------


def check_target(url: str) -> None:
    """Refuse a URL the platform must not send to (InvalidInput keyed by `url`): see `targets`."""
    try:
        targets.resolve_target(url)
    except targets.TargetRefused as exc:
        raise InvalidInput(f"This URL cannot receive webhooks: {exc}", fields={"url": [str(exc)]}) from None


def clean_event_types(event_types) -> list[str]:
    try:
        return validate_patterns(event_types)
    except ValueError as exc:
        raise InvalidInput(str(exc), fields={"event_types": [str(exc)]}) from None


def _current_sequence(organization_id: int) -> int:
    return (
        EventSequence.objects.filter(organization_id=organization_id).values_list("last_sequence", flat=True).first()
        or 0
    )


@audit.attributed
@transaction.atomic
def create_subscription(
    organization, *, actor, url: str, event_types, description: str = "", is_active: bool = True
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (`whsec_…`), which is returned here only: it is stored
    encrypted and never shown again (rotate it to get a new one). It receives events published from now on."""
    check_target(url)
    secret = crypto.new_secret()
    subscription = WebhookSubscription(
        organization=organization,
        url=url,
        description=description,
        event_types=clean_event_types(event_types),
        is_active=is_active,
        secret_encrypted=crypto.encrypt(secret),
        secret_prefix=secret[:12],
        last_sequence=_current_sequence(organization.pk),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    validated(subscription).save()
    return subscription, secret


@audit.attributed
@transaction.atomic
def update_subscription(subscription: WebhookSubscription, *, actor, **changes) -> WebhookSubscription:
    """Change the URL, event types, description or active flag. Re-activating starts from the events published
    from then on (replay what was missed with `replay_since`) and forgets the failure streak."""
    unknown = set(changes) - set(SUBSCRIPTION_FIELDS)
    if unknown:
        raise TypeError(f"update_subscription() got unknown fields {sorted(unknown)}")
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    if "url" in changes and changes["url"] != subscription.url:
        check_target(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = clean_event_types(changes["event_types"])
    reactivated = changes.get("is_active") and not subscription.is_active
    for name, value in changes.items():
        setattr(subscription, name, value)
    if reactivated:
        subscription.failing_since = None
        subscription.disabled_reason = ""
        subscription.last_sequence = _current_sequence(subscription.organization_id)
    validated(subscription).save()
    return subscription


@audit.attributed
@transaction.atomic
def delete_subscription(subscription: WebhookSubscription, *, actor) -> None:
    """Remove a subscription with its delivery log."""
    WebhookSubscription.objects.filter(pk=subscription.pk).delete()


@audit.attributed
@transaction.atomic
def rotate_secret(subscription: WebhookSubscription, *, actor, grace_hours: float | None = None):
    """A new signing secret (returned once). During the grace period (WEBHOOK_SECRET_GRACE_HOURS by default)
    every delivery carries two signatures, one per secret, so the receiver can switch at its own pace."""
    grace = settings.WEBHOOK_SECRET_GRACE_HOURS if grace_hours is None else grace_hours
    if not 0 <= grace <= 24 * 30:
        raise InvalidInput("The grace period is 0 to 720 hours.", fields={"grace_hours": ["0 to 720."]})
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    secret = crypto.new_secret()
    if grace > 0:
        subscription.previous_secret_encrypted = subscription.secret_encrypted
        subscription.previous_secret_expires_at = timezone.now() + timedelta(hours=grace)
    else:
        subscription.previous_secret_encrypted = ""
        subscription.previous_secret_expires_at = None
    subscription.secret_encrypted = crypto.encrypt(secret)
    subscription.secret_prefix = secret[:12]
    subscription.save()
    return subscription, secret


def signing_secrets(subscription: WebhookSubscription, now=None) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its grace period."""
    now = now or timezone.now()
    secrets = [crypto.decrypt(subscription.secret_encrypted)]
    if subscription.previous_secret_encrypted and (subscription.previous_secret_expires_at or now) > now:
        secrets.append(crypto.decrypt(subscription.previous_secret_encrypted))
    return secrets


# --- test events and replays -------------------------------------------------------------------------------


@audit.attributed
@transaction.atomic
def send_test_event(subscription: WebhookSubscription, *, actor) -> WebhookDelivery:
    """Queue a `webhook:test` delivery to the subscription (also when its types do not include it)."""
    delivery = WebhookDelivery.objects.create(
        organization_id=subscription.organization_id,
        subscription=subscription,
        event_type=TEST_EVENT_TYPE,
        payload={"message": "A test event: your endpoint receives and verifies webhooks."},
        next_attempt_at=timezone.now(),
    )
    schedule_delivery()
    return delivery


_REPLAYABLE = Q(status__in=[Status.SUCCEEDED, Status.FAILED, Status.PENDING])


@audit.attributed
@transaction.atomic
def replay_delivery(delivery: WebhookDelivery, *, actor) -> WebhookDelivery:
    """Send one delivery again, with the same `webhook-id` (a fresh round of retries). One being sent is left."""
    now = timezone.now()
    WebhookDelivery.objects.filter(_REPLAYABLE, pk=delivery.pk).update(
        status=Status.PENDING, next_attempt_at=now, first_attempt_at=None, updated_at=now
    )
    schedule_delivery()
    return WebhookDelivery.objects.get(pk=delivery.pk)


@audit.attributed
@transaction.atomic
def replay_since(subscription: WebhookSubscription, *, actor, after: int) -> dict:
    """Send again every event of the subscription's types with a sequence above `after` (at most REPLAY_MAX;
    the answer's `last_sequence` says where to continue). Deliveries already made are re-sent with their own
    `webhook-id`; events fanned out before the subscription existed or while it was off get a delivery now."""
    now = timezone.now()
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    events = list(
        Event.objects.filter(
            organization_id=subscription.organization_id,
            sequence__gt=after,
            sequence__lte=max(subscription.last_sequence, after),
        )
        .order_by("sequence")
        .values_list("pk", "sequence", "type")[:REPLAY_MAX]
    )
    wanted = [(pk, sequence, type_) for pk, sequence, type_ in events if _wanted(subscription, type_)]
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                organization_id=subscription.organization_id,
                subscription=subscription,
                event_id=pk,
                event_type=type_,
                sequence=sequence,
                next_attempt_at=now,
            )
            for pk, sequence, type_ in wanted
        ],
        ignore_conflicts=True,
    )
    last = events[-1][1] if events else after
    replayed = WebhookDelivery.objects.filter(
        _REPLAYABLE, subscription=subscription, event_id__in=[pk for pk, _, _ in wanted]
    ).update(status=Status.PENDING, next_attempt_at=now, first_attempt_at=None, updated_at=now)
    schedule_delivery()
    return {"replayed": replayed, "last_sequence": last, "has_more": len(events) == REPLAY_MAX}


# --- the delivery job ----------------------------------------------------------------------------------------


def _start_delivery():
    tasks.deliver_webhooks.delay()


def schedule_delivery() -> None:
    """Run the delivery job after the current transaction commits (a broker outage only delays it until beat's
    next run)."""
    transaction.on_commit(_start_delivery, robust=True)


def on_events_dispatched(numbered: int, delivered: int) -> None:
    """The `events_dispatched` hook: queue the delivery job; never raises (beat runs it anyway)."""
    if not numbered:
        return
    try:
        _start_delivery()
    except Exception:  # broker down: the periodic run picks the events up
        logger.warning("could not queue the webhook delivery job", exc_info=True)


def _wanted(subscription: WebhookSubscription, event_type: str) -> bool:
    return any(matches(pattern, event_type) for pattern in subscription.event_types)


def fan_out(batch: int = FAN_OUT_BATCH) -> int:
    """Write the deliveries of newly numbered events for each active subscription; returns how many. Safe to
    run twice or at once: a subscription being fanned out elsewhere is skipped, and (subscription, event) is
    unique."""
    written = 0
    for subscription_id in (
        WebhookSubscription.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    ):
        with transaction.atomic():
            subscription = (
                WebhookSubscription.objects.select_for_update(skip_locked=True)
                .filter(pk=subscription_id, is_active=True)
                .only("pk", "organization_id", "event_types", "last_sequence")
                .first()
            )
            if subscription is None:
                continue
            events = list(
                Event.objects.filter(
                    organization_id=subscription.organization_id, sequence__gt=subscription.last_sequence
                )
                .order_by("sequence")
                .values_list("pk", "sequence", "type")[:batch]
            )
            if not events:
                continue
            now = timezone.now()
            rows = [
                WebhookDelivery(
                    organization_id=subscription.organization_id,
                    subscription_id=subscription.pk,
                    event_id=pk,
                    event_type=type_,
                    sequence=sequence,
                    next_attempt_at=now,
                )
                for pk, sequence, type_ in events
                if _wanted(subscription, type_)
            ]
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
            WebhookSubscription.objects.filter(pk=subscription.pk).update(last_sequence=events[-1][1])
            written += len(rows)
    return written


def _due(now) -> Q:
    lease = now - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, claimed_at__lt=lease)


def claim_due(limit: int = 200) -> list[tuple[int, datetime]]:
    """Claim due deliveries, at most WEBHOOK_MAX_IN_FLIGHT per subscription in flight: [(delivery id, claim
    time)]. Each subscription is claimed under its row lock, skipped when another worker holds it."""
    claimed: list[tuple[int, datetime]] = []
    cap = settings.WEBHOOK_MAX_IN_FLIGHT
    for subscription_id in (
        WebhookSubscription.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    ):
        if len(claimed) >= limit:
            break
        with transaction.atomic():
            locked = (
                WebhookSubscription.objects.select_for_update(skip_locked=True)
                .filter(pk=subscription_id, is_active=True)
                .values_list("pk", flat=True)
            )
            if not list(locked):
                continue
            now = timezone.now()
            lease = now - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
            in_flight = WebhookDelivery.objects.filter(
                subscription_id=subscription_id, status=Status.SENDING, claimed_at__gte=lease
            ).count()
            room = min(cap - in_flight, limit - len(claimed))
            if room <= 0:
                continue
            ids = list(
                WebhookDelivery.objects.filter(_due(now), subscription_id=subscription_id)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:room]
            )
            if not ids:
                continue
            WebhookDelivery.objects.filter(_due(now), pk__in=ids).update(
                status=Status.SENDING,
                claimed_at=now,
                attempts=F("attempts") + 1,
                first_attempt_at=Coalesce("first_attempt_at", now),
                updated_at=now,
            )
            claimed += [(pk, now) for pk in ids]
    return claimed


def message_body(delivery: WebhookDelivery) -> str:
    """The JSON body: type, timestamp, the organisation's sequence number and the event's payload as `data`.
    Above WEBHOOK_MAX_BODY_BYTES the data is left out (`truncated`): fetch the event by its sequence number."""
    event = delivery.event
    body = {
        "type": delivery.event_type,
        "timestamp": (event.created_at if event else delivery.created_at).isoformat(),
        "organization": delivery.subscription.organization.slug,
        "sequence": delivery.sequence,
        "data": event.payload if event else (delivery.payload or {}),
    }
    text = json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))
    if len(text.encode()) > settings.WEBHOOK_MAX_BODY_BYTES:
        body["data"] = {"truncated": True, "fetch": f"/api/v1/events/?after={(delivery.sequence or 1) - 1}&limit=1"}
        text = json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))
    return text


def signed_headers(delivery: WebhookDelivery, body: str, now: datetime | None = None) -> dict:
    """Standard Webhooks headers: `webhook-id` (the same on every attempt and replay), `webhook-timestamp`
    (seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256>`, space-separated during a rotation)."""
    now = (now or timezone.now()).astimezone(UTC).replace(microsecond=0)
    message_id = f"msg_{delivery.message_id.hex}"
    signatures = [Webhook(secret).sign(message_id, now, body) for secret in signing_secrets(delivery.subscription, now)]
    return {
        "Content-Type": "application/json",
        "User-Agent": "maintenance-platform-webhooks",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: WEBHOOK_RETRY_BASE_SECONDS doubled per attempt, capped at an hour,
    with jitter (between half and all of it) so that receivers coming back are not hit all at once."""
    delay = min(RETRY_DELAY_CAP_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return random.uniform(delay / 2, delay)


def _send_one(prepared: tuple[int, datetime, str, str, dict]):
    delivery_id, claimed_at, url, body, headers = prepared
    return delivery_id, claimed_at, body, headers, targets.post(url, body.encode(), headers)


def send_claimed(claims: list[tuple[int, datetime]]) -> dict:
    """POST the claimed deliveries and record each outcome. Returns counts by result."""
    counts = {"succeeded": 0, "retrying": 0, "failed": 0}
    if not claims:
        return counts
    claimed_at = dict(claims)
    deliveries = {
        delivery.pk: delivery
        for delivery in WebhookDelivery.objects.select_related("subscription__organization", "event").filter(
            pk__in=list(claimed_at)
        )
    }
    prepared = []
    for pk, delivery in deliveries.items():
        if delivery.event_id is None and delivery.payload is None:
            _record(delivery, claimed_at[pk], None, "", {}, None, counts, error="The event expired before delivery.")
            continue
        body = message_body(delivery)
        prepared.append((pk, claimed_at[pk], delivery.subscription.url, body, signed_headers(delivery, body)))
    threads = max(1, min(settings.WEBHOOK_WORKER_THREADS, len(prepared)))
    successes = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for delivery_id, claim, body, headers, result in pool.map(_send_one, prepared):
            if result.status_code is not None and 200 <= result.status_code < 300:
                successes.append((deliveries[delivery_id], claim, body, headers, result))
            else:
                _record(deliveries[delivery_id], claim, result, body, headers, result.status_code, counts)
    _record_successes(successes, counts)
    return counts


def _attempt(delivery, body, headers, result, error="") -> WebhookAttempt:
    return WebhookAttempt(
        organization_id=delivery.organization_id,
        delivery=delivery,
        request_headers={k: v for k, v in headers.items() if k != "webhook-signature"},
        request_body=body[:2000],
        status_code=result.status_code if result else None,
        response_body=result.response_excerpt[:2000] if result else "",
        latency_ms=result.latency_ms if result else 0,
        error=error or (result.error if result else ""),
    )


def _record_successes(successes, counts) -> None:
    """The 2xx answers of one batch, in a few queries whatever its size: the attempts in one INSERT, the deliveries
    marked succeeded per (claim, status code) if their claim still holds, the subscriptions' failure streaks ended."""
    if not successes:
        return
    now = timezone.now()
    WebhookAttempt.objects.bulk_create(
        [_attempt(delivery, body, headers, result) for delivery, _, body, headers, result in successes]
    )
    groups: dict[tuple, list[int]] = {}
    for delivery, claim, _, _, result in successes:
        groups.setdefault((claim, result.status_code), []).append(delivery.pk)
    for (claim, status_code), ids in groups.items():
        counts["succeeded"] += WebhookDelivery.objects.filter(
            pk__in=ids, status=Status.SENDING, claimed_at=claim
        ).update(status=Status.SUCCEEDED, succeeded_at=now, last_status_code=status_code, last_error="", updated_at=now)
    subscriptions = {delivery.subscription_id for delivery, *_ in successes}
    WebhookSubscription.objects.filter(pk__in=subscriptions, failing_since__isnull=False).update(failing_since=None)


def _record(delivery, claimed_at, result, body, headers, status_code, counts, error="") -> None:
    now = timezone.now()
    error = error or (result.error if result else "")
    _attempt(delivery, body, headers, result, error).save()
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, claimed_at=claimed_at)
    subscription = delivery.subscription
    if status_code is not None and 200 <= status_code < 300:
        mine.update(
            status=Status.SUCCEEDED, succeeded_at=now, last_status_code=status_code, last_error="", updated_at=now
        )
        WebhookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=False).update(failing_since=None)
        counts["succeeded"] += 1
        return
    why = error or f"HTTP {status_code}"
    if status_code == 410:
        mine.update(status=Status.FAILED, last_status_code=status_code, last_error=why, updated_at=now)
        disable_subscription(subscription, "The receiver answered 410 Gone: it asked not to be sent webhooks again.")
        counts["failed"] += 1
        return
    started = delivery.first_attempt_at or claimed_at
    if now - started >= timedelta(hours=settings.WEBHOOK_RETRY_HOURS):
        mine.update(
            status=Status.FAILED,
            last_status_code=status_code,
            last_error=f"{why} (gave up after {delivery.attempts} attempts)",
            updated_at=now,
        )
        counts["failed"] += 1
    else:
        mine.update(
            status=Status.PENDING,
            next_attempt_at=now + timedelta(seconds=retry_delay(delivery.attempts)),
            last_status_code=status_code,
            last_error=why,
            updated_at=now,
        )
        counts["retrying"] += 1
    WebhookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(failing_since=now)
    failing_since = WebhookSubscription.objects.values_list("failing_since", flat=True).get(pk=subscription.pk)
    if failing_since and now - failing_since >= timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS):
        disable_subscription(
            subscription,
            f"Every delivery failed for {settings.WEBHOOK_DISABLE_AFTER_DAYS} days (last: {why[:120]}).",
        )


@transaction.atomic
def disable_subscription(subscription: WebhookSubscription, reason: str) -> bool:
    """Switch a failing subscription off (once) and tell the organisation's managers. Returns whether it did."""
    with audit.acting_as(SYSTEM):
        locked = WebhookSubscription.objects.select_for_update().filter(pk=subscription.pk, is_active=True).first()
        if locked is None:
            return False
        locked.is_active = False
        locked.disabled_reason = reason[:300]
        locked.save(update_fields=["is_active", "disabled_reason", "updated_at"])
        notify(
            locked.organization,
            Role.MANAGER,
            "webhook:disabled",
            {
                "title": "A webhook subscription was disabled",
                "body": f"Webhooks to {locked.url} are no longer sent. {reason} Fix the receiver, then re-activate "
                "the subscription and replay what it missed.",
                "subscription": locked.pk,
            },
        )
    return True


def deliver_due(*, seconds: float | None = None, batch: int = 200) -> dict:
    """The job: fan out, then claim and send until nothing is due or `seconds` (WEBHOOK_JOB_SECONDS) passed."""
    budget = settings.WEBHOOK_JOB_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + budget
    totals = {"fanned_out": fan_out(), "succeeded": 0, "retrying": 0, "failed": 0}
    while time.monotonic() < deadline:
        claims = claim_due(batch)
        if not claims:
            break
        for key, value in send_claimed(claims).items():
            totals[key] += value
    return totals


def prune_log(days: int | None = None) -> int:
    """Forget finished deliveries (and their attempts) older than WEBHOOK_LOG_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_LOG_DAYS if days is None else days)
    deleted, _ = WebhookDelivery.objects.filter(
        created_at__lt=cutoff, status__in=[Status.SUCCEEDED, Status.FAILED]
    ).delete()
    return deleted
