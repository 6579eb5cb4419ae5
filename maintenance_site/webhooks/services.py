"""The only writers of webhook subscriptions and deliveries, and the delivery job.

Deliveries are fed from the event outbox, never from inside a change: `fan_out()` reads each active subscription's
organisation's numbered events after the subscription's cursor (`last_sequence`) and writes one delivery row per
matching event (unique per subscription and event, so running twice or on two machines writes each once); the
dispatcher's `events_dispatched` hook queues the job right after events are numbered and beat runs it every
WEBHOOK_SWEEP_INTERVAL seconds. An event of a rolled-back change never exists, so it is never sent.

`claim_due()` takes due deliveries in one transaction under the row locks of the subscriptions that have some (a
second job waits for them rather than skipping: skipping is how two jobs once left a subscription to the next run),
at most WEBHOOK_MAX_IN_FLIGHT in flight per subscription, by a conditional UPDATE to `sending`. The job holds up to
WEBHOOK_CLAIM_BATCH claims and POSTs them WEBHOOK_CONCURRENCY at a time (`security.outbound.Sender`: asyncio and
aiohttp in a thread, connections kept alive, each new one SSRF-checked and pinned; a queued POST's timeout starts
with its turn, and one whose claim's lease is nearly over is not sent), refills in batches and records outcomes in
bulk, each only if it still holds the claim. A worker that dies mid-send leaves its claims `sending`: after
WEBHOOK_CLAIM_LEASE_SECONDS they are due again (at-least-once; receivers de-duplicate by `webhook-id`). In a clean
run a delivery is POSTed twice only after a failed attempt (a timeout after the receiver read the body).
"""

import json
import logging
import random
import time
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
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
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import Role
from maintenance_site.validation import validated
from maintenance_site.webhooks import crypto, tasks  # tasks call these services, these queue tasks
from maintenance_site.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
SUBSCRIPTION_FIELDS = ("url", "description", "event_types", "is_active")
FAN_OUT_BATCH = 1000  # events per organisation and fan-out (x its subscriptions: rows in one transaction)
REPLAY_MAX = 10_000
RETRY_DELAY_CAP_SECONDS = 3600
TEST_EVENT_TYPE = "webhook:test"
FAN_OUT_EVERY = 0.25  # seconds: how often a busy job looks for newly numbered events

register_kind("webhook:disabled", "Webhook subscription disabled", [Channel.EMAIL])


# --- subscriptions -----------------------------------------------------------------------------------------


def check_target(url: str) -> None:
    """Refuse a URL the platform must not send to (InvalidInput keyed by `url`): see `targets`."""
    try:
        targets.resolve_target(url)
    except targets.TargetRefused as exc:
        raise InvalidInput(
            _("This URL cannot receive webhooks: %(reason)s") % {"reason": exc}, fields={"url": [str(exc)]}
        ) from None


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
        raise InvalidInput(_("The grace period is 0 to 720 hours."), fields={"grace_hours": [_("0 to 720.")]})
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


_REPLAY_RESET = {"sent_at": None, "latency_ms": None, "response_body": ""}  # a replayed success went to the log


@audit.attributed
@transaction.atomic
def replay_delivery(delivery: WebhookDelivery, *, actor) -> WebhookDelivery:
    """Send one delivery again, with the same `webhook-id` (a fresh round of retries). One being sent is left."""
    now = timezone.now()
    replayable = WebhookDelivery.objects.select_for_update(of=("self",)).filter(_REPLAYABLE, pk=delivery.pk)
    _log_successes(replayable)
    replayable.update(
        status=Status.PENDING, next_attempt_at=now, first_attempt_at=None, updated_at=now, **_REPLAY_RESET
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
    replayable = WebhookDelivery.objects.select_for_update(of=("self",)).filter(
        _REPLAYABLE, subscription=subscription, event_id__in=[pk for pk, _, _ in wanted]
    )
    _log_successes(replayable)
    replayed = replayable.update(
        status=Status.PENDING, next_attempt_at=now, first_attempt_at=None, updated_at=now, **_REPLAY_RESET
    )
    schedule_delivery()
    return {"replayed": replayed, "last_sequence": last, "has_more": len(events) == REPLAY_MAX}


def _log_successes(deliveries) -> None:
    """Before a replay: the success each of `deliveries` keeps becomes an attempt row (locked: none changes until
    the replay's update), so that the log still shows it once the next success takes its place."""
    succeeded = list(with_sent_payload(deliveries.filter(status=Status.SUCCEEDED, sent_at__isnull=False)))
    if not succeeded:
        return
    logged = WebhookAttempt.objects.bulk_create([success_attempt(delivery) for delivery in succeeded])
    # attempted_at is set on insert (auto_now_add): the success's own time, in one statement
    WebhookAttempt.objects.filter(pk__in=[attempt.pk for attempt in logged]).update(
        attempted_at=Subquery(WebhookDelivery.objects.filter(pk=OuterRef("delivery_id")).values("succeeded_at")[:1])
    )


def success_attempt(delivery: WebhookDelivery) -> WebhookAttempt | None:
    """The successful attempt a delivery keeps on its row, as an (unsaved) attempt: its answer as recorded, the
    request rebuilt from the event (the body and headers are deterministic but for the timestamp, stored as
    `sent_at`; the signature is never logged). None if it has none (not succeeded, or succeeded before the success
    was kept on the row: then it is an attempt row). Reads `event` and `subscription.organization`."""
    if delivery.status != Status.SUCCEEDED or delivery.sent_at is None:
        return None
    body = ""
    if delivery.event_id is not None or delivery.payload is not None:  # not an event pruned since
        event = delivery.event
        text = getattr(delivery, "payload_text", None)  # `with_sent_payload`: the JSON text the job spliced in
        body = _body_text(
            delivery.event_type,
            event.created_at if event else delivery.created_at,
            delivery.subscription.organization.slug,
            delivery.sequence,
            _RawJSON(text) if text is not None else (event.payload if event else delivery.payload),
        )
    return WebhookAttempt(
        organization_id=delivery.organization_id,
        delivery=delivery,
        attempted_at=delivery.succeeded_at,
        request_headers=_log_headers(_headers(f"msg_{delivery.message_id.hex}", body, [], delivery.sent_at)),
        request_body=body[:2000],
        status_code=delivery.last_status_code,
        response_body=delivery.response_body,
        latency_ms=delivery.latency_ms or 0,
    )


def with_sent_payload(deliveries):
    """`deliveries` with what `success_attempt` needs to rebuild a body byte for byte: on PostgreSQL the job splices
    the payload's jsonb text into the body (never parsed), so the text is read the same way (`payload_text`)."""
    deliveries = deliveries.select_related("event", "subscription__organization")
    if connection.vendor != "postgresql":
        return deliveries
    return deliveries.annotate(
        payload_text=Coalesce(Cast("event__payload", output_field=TextField()), Cast("payload", TextField()))
    )


def attempt_log(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    """Every attempt of a delivery, newest first: its attempt rows (failures, and successes a replay logged) and the
    success it keeps (`success_attempt`, id None). Uses `attempt_log` as prefetched."""
    attempts = list(delivery.attempt_log.all())
    success = success_attempt(delivery)
    if success is not None:
        attempts.append(success)
    return sorted(
        attempts, key=lambda attempt: (attempt.attempted_at, attempt.pk is None, attempt.pk or 0), reverse=True
    )


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


def _behind() -> list[int]:
    """The active subscriptions whose organisation has numbered events past their cursor (one query)."""
    latest = EventSequence.objects.filter(organization_id=OuterRef("organization_id")).values("last_sequence")[:1]
    return list(
        WebhookSubscription.objects.filter(is_active=True, last_sequence__lt=Subquery(latest))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


_FAN_OUT_LOCK = 0x5748_464F  # pg advisory lock key ("WHFO"): one fan-out at a time, across jobs and machines


def fan_out(batch: int = FAN_OUT_BATCH, *, wait: bool = True) -> int:
    """Write the deliveries of newly numbered events for the active subscriptions that are behind; returns how many.
    One transaction for all of them, a few statements whatever their number (their row locks in id order, the events
    once per organisation, the rows in one insert, the cursors in one update). Safe to run twice or at once: a second
    job waits for the locks, then reads the moved cursors (a locked row is re-read after the wait), and (subscription,
    event) is unique. `wait=False` (the busy job's periodic look) returns 0 at once when another job is fanning out
    on PostgreSQL: that one writes the rows, and a job never stops without a waiting fan-out."""
    behind = _behind()
    if not behind:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if wait:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FAN_OUT_LOCK])
                else:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FAN_OUT_LOCK])
                    if not cursor.fetchone()[0]:
                        return 0
        subscriptions = list(
            WebhookSubscription.objects.select_for_update()
            .filter(pk__in=behind, is_active=True)
            .order_by("pk")
            .only("pk", "organization_id", "event_types", "last_sequence")
        )
        by_organization: dict[int, list[WebhookSubscription]] = {}
        for subscription in subscriptions:
            by_organization.setdefault(subscription.organization_id, []).append(subscription)
        now = timezone.now()
        rows, moved, plan = [], [], []
        for organization_id, group in by_organization.items():
            events = list(
                Event.objects.filter(
                    organization_id=organization_id,
                    sequence__gt=min(subscription.last_sequence for subscription in group),
                )
                .order_by("sequence")
                .values_list("pk", "sequence", "type")[:batch]
            )
            if not events:
                continue
            for subscription in group:
                mine = [event for event in events if event[1] > subscription.last_sequence]
                if not mine:
                    continue
                types = sorted({type_ for _, _, type_ in mine if _wanted(subscription, type_)})
                if types:
                    plan.append(
                        {
                            "id": subscription.pk,
                            "organization_id": organization_id,
                            "after": subscription.last_sequence,
                            "upto": mine[-1][1],
                            "types": types,
                        }
                    )
                    if connection.vendor != "postgresql":
                        rows += [
                            WebhookDelivery(
                                organization_id=organization_id,
                                subscription_id=subscription.pk,
                                event_id=pk,
                                event_type=type_,
                                sequence=sequence,
                                next_attempt_at=now,
                            )
                            for pk, sequence, type_ in mine
                            if type_ in types
                        ]
                subscription.last_sequence = mine[-1][1]
                moved.append(subscription)
        if connection.vendor == "postgresql":
            written = _insert_deliveries(plan, now)
        else:
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
            written = len(rows)
        if moved:
            WebhookSubscription.objects.bulk_update(moved, ["last_sequence"])
    return written


_FAN_OUT_SQL = """
INSERT INTO {delivery} (organization_id, subscription_id, event_id, event_type, sequence, payload, message_id, status,
                        attempts, next_attempt_at, last_error, response_body, created_at, updated_at)
SELECT e.organization_id, s.id, e.id, e.type, e.sequence, NULL, gen_random_uuid(), 'pending', 0, %(now)s, '', '',
       %(now)s, %(now)s
  FROM json_to_recordset(%(plan)s::json)
       AS s(id bigint, organization_id bigint, after bigint, upto bigint, types text[])
  JOIN {event} e ON e.organization_id = s.organization_id AND e.sequence > s.after AND e.sequence <= s.upto
                AND e.type = ANY(s.types)
 ORDER BY s.id, e.sequence
ON CONFLICT DO NOTHING
"""


def _insert_deliveries(plan: list[dict], now) -> int:
    """PostgreSQL: each planned subscription's deliveries (its events after `after` up to `upto` of its `types`)
    written by one INSERT … SELECT, the message ids drawn by the database: no row passes through Python."""
    if not plan:
        return 0
    quote = connection.ops.quote_name
    sql = _FAN_OUT_SQL.format(delivery=quote(WebhookDelivery._meta.db_table), event=quote(Event._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, {"plan": json.dumps(plan), "now": now})
        return cursor.rowcount


def _due(now) -> Q:
    lease = now - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, claimed_at__lt=lease)


_CLAIM_SQL = """
WITH wanted AS (
    SELECT locked.id AS subscription_id, GREATEST(0, LEAST(%(share)s, %(cap)s - (
        SELECT count(*) FROM {delivery} f
         WHERE f.subscription_id = locked.id AND f.status = 'sending' AND f.claimed_at >= %(lease)s
    ))) AS quota
    FROM unnest(%(locked)s::bigint[]) AS locked(id)
), picked AS (
    SELECT due.id FROM wanted CROSS JOIN LATERAL (
        (SELECT d.id FROM {delivery} d
          WHERE d.subscription_id = wanted.subscription_id AND d.status = 'sending' AND d.claimed_at < %(lease)s
          LIMIT wanted.quota)
        UNION ALL
        (SELECT d.id FROM {delivery} d
          WHERE d.subscription_id = wanted.subscription_id AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
          ORDER BY d.next_attempt_at LIMIT wanted.quota)
        LIMIT wanted.quota
    ) AS due
    LIMIT %(limit)s
), claimed AS (
    UPDATE {delivery} d
       SET status = 'sending', claimed_at = %(now)s, attempts = d.attempts + 1,
           first_attempt_at = COALESCE(d.first_attempt_at, %(now)s), updated_at = %(now)s
      FROM picked
     WHERE d.id = picked.id
       AND ((d.status = 'pending' AND d.next_attempt_at <= %(now)s)
            OR (d.status = 'sending' AND d.claimed_at < %(lease)s))
    RETURNING d.id, d.organization_id, d.subscription_id, d.event_id, d.event_type, d.sequence, d.message_id,
              d.payload, d.created_at
)
SELECT claimed.*, e.payload, e.created_at, s.url, o.slug, s.secret_encrypted, s.previous_secret_encrypted,
       s.previous_secret_expires_at
  FROM claimed
  JOIN {subscription} s ON s.id = claimed.subscription_id
  JOIN {organization} o ON o.id = s.organization_id
  LEFT JOIN {event} e ON e.id = claimed.event_id
"""

_ROW_KEYS = (
    "pk",
    "organization_id",
    "subscription_id",
    "event_id",
    "event_type",
    "sequence",
    "message_id",
    "payload",
    "created_at",
    "event__payload",
    "event__created_at",
    "url",
    "slug",
    "secret_encrypted",
    "previous_secret_encrypted",
    "previous_secret_expires_at",
)


def _lock_due_subscriptions(now) -> list[int]:
    """Lock the active subscriptions that have due deliveries, in id order, waiting for a job that holds one."""
    lease = now - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    mine = WebhookDelivery.objects.filter(subscription_id=OuterRef("pk"))
    pending = mine.filter(status=Status.PENDING, next_attempt_at__lte=now)  # webhooks_delivery_due_idx
    abandoned = mine.filter(status=Status.SENDING, claimed_at__lt=lease)  # webhooks_delivery_sending_idx
    return list(
        WebhookSubscription.objects.select_for_update()
        .filter(Exists(pending) | Exists(abandoned), is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _claim(limit: int) -> tuple[list[dict], datetime | None]:
    """Claim up to `limit` due deliveries, at most WEBHOOK_MAX_IN_FLIGHT per subscription in flight, in one
    transaction whatever the number of subscriptions: lock the subscriptions that have due deliveries (in id order,
    waiting for a job that holds one: a job never passes over a subscription another is claiming, so two jobs never
    leave work to a later run), then, in a statement that starts after the locks are held (so it sees the other job's
    committed claims), count each one's deliveries in flight, pick its due ones (an even share of `limit` each, so
    none waits behind the others), mark them `sending` with this claim's time and return them with their event and
    subscription. Returns (rows, claim time); on PostgreSQL two statements, elsewhere a few per subscription."""
    with transaction.atomic():
        now = timezone.now()
        lease = now - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
        locked = _lock_due_subscriptions(now)
        if not locked:
            return [], None
        share = max(1, -(-limit // len(locked)))
        if connection.vendor == "postgresql":
            quote = connection.ops.quote_name
            sql = _CLAIM_SQL.format(
                delivery=quote(WebhookDelivery._meta.db_table),
                subscription=quote(WebhookSubscription._meta.db_table),
                organization=quote(Organization._meta.db_table),
                event=quote(Event._meta.db_table),
            )
            params = {
                "locked": locked,
                "share": share,
                "cap": settings.WEBHOOK_MAX_IN_FLIGHT,
                "lease": lease,
                "now": now,
                "limit": limit,
            }
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = [dict(zip(_ROW_KEYS, row, strict=True)) for row in cursor.fetchall()]
            for row in rows:  # jsonb arrives as its text: spliced into the body as it is
                for key in ("payload", "event__payload"):
                    if isinstance(row[key], str):
                        row[key] = _RawJSON(row[key])
            return rows, now
        ids = _claim_portable(locked, share, limit, now, lease)
    return _claimed_rows(ids), now


def _claim_portable(locked: list[int], share: int, limit: int, now, lease) -> list[int]:
    """`_claim`'s picking and marking with the ORM, a query per subscription (SQLite: the embedded run)."""
    in_flight = dict(
        WebhookDelivery.objects.filter(subscription_id__in=locked, status=Status.SENDING, claimed_at__gte=lease)
        .values("subscription_id")
        .annotate(n=Count("pk"))
        .values_list("subscription_id", "n")
    )
    ids: list[int] = []
    for subscription_id in locked:
        quota = min(share, settings.WEBHOOK_MAX_IN_FLIGHT - in_flight.get(subscription_id, 0), limit - len(ids))
        if quota > 0:
            ids += (
                WebhookDelivery.objects.filter(_due(now), subscription_id=subscription_id)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:quota]
            )
    WebhookDelivery.objects.filter(_due(now), pk__in=ids).update(
        status=Status.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
        first_attempt_at=Coalesce("first_attempt_at", now),
        updated_at=now,
    )
    return ids


def _claimed_rows(ids) -> list[dict]:
    """The deliveries `ids` with what sending them needs (their event, subscription and organisation's slug)."""
    fields = dict(zip(_ROW_KEYS, _ROW_KEYS, strict=True))
    fields.update(
        url="subscription__url",
        slug="subscription__organization__slug",
        secret_encrypted="subscription__secret_encrypted",
        previous_secret_encrypted="subscription__previous_secret_encrypted",
        previous_secret_expires_at="subscription__previous_secret_expires_at",
    )
    rows = WebhookDelivery.objects.filter(pk__in=list(ids)).values(*fields.values())
    return [{key: row[field] for key, field in fields.items()} for row in rows]


def claim_due(limit: int = 200) -> list[tuple[int, datetime]]:
    """Claim due deliveries (see `_claim`): [(delivery id, claim time)]."""
    rows, now = _claim(limit)
    return [(row["pk"], now) for row in rows]


class _RawJSON(str):
    """A payload still in its JSON text, as the database returned it."""


def _body_text(event_type, timestamp, slug, sequence, data) -> str:
    """The body's JSON text; `data` is the payload, or its JSON text as stored (spliced in, not parsed again)."""
    head = json.dumps(
        {"type": event_type, "timestamp": timestamp.isoformat(), "organization": slug, "sequence": sequence},
        separators=(",", ":"),
    )
    data_text = data if isinstance(data, _RawJSON) else json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
    text = f'{head[:-1]},"data":{data_text}}}'
    if len(text) > settings.WEBHOOK_MAX_BODY_BYTES // 4 and len(text.encode()) > settings.WEBHOOK_MAX_BODY_BYTES:
        fetch = {"truncated": True, "fetch": f"/api/v1/events/?after={(sequence or 1) - 1}&limit=1"}
        text = f'{head[:-1]},"data":{json.dumps(fetch, separators=(",", ":"))}}}'
    return text


def message_body(delivery: WebhookDelivery) -> str:
    """The JSON body: type, timestamp, the organisation's sequence number and the event's payload as `data`.
    Above WEBHOOK_MAX_BODY_BYTES the data is left out (`truncated`): fetch the event by its sequence number."""
    event = delivery.event
    return _body_text(
        delivery.event_type,
        event.created_at if event else delivery.created_at,
        delivery.subscription.organization.slug,
        delivery.sequence,
        event.payload if event else (delivery.payload or {}),
    )


def _headers(message_id: str, body: str, signers, now: datetime) -> dict:
    return {
        "Content-Type": "application/json",
        "User-Agent": "maintenance-platform-webhooks",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signer.sign(message_id, now, body) for signer in signers),
    }


def signed_headers(delivery: WebhookDelivery, body: str, now: datetime | None = None) -> dict:
    """Standard Webhooks headers: `webhook-id` (the same on every attempt and replay), `webhook-timestamp`
    (seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256>`, space-separated during a rotation)."""
    now = (now or timezone.now()).astimezone(UTC).replace(microsecond=0)
    signers = [Webhook(secret) for secret in signing_secrets(delivery.subscription, now)]
    return _headers(f"msg_{delivery.message_id.hex}", body, signers, now)


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: WEBHOOK_RETRY_BASE_SECONDS doubled per attempt, capped at an hour,
    with jitter (between half and all of it) so that receivers coming back are not hit all at once."""
    delay = min(RETRY_DELAY_CAP_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return random.uniform(delay / 2, delay)


@dataclass
class _Sending:
    """One POST on its way: what the log and the outcome need."""

    delivery_id: int
    organization_id: int
    subscription_id: int
    claimed_at: datetime
    body: str
    headers: dict
    sent_at: datetime  # the webhook-timestamp signed


class _Run:
    """One run of the delivery job: a Sender (connections kept alive, WEBHOOK_CONCURRENCY POSTs at once), the
    deliveries on their way, and the signers of the subscriptions met (their secrets decrypted once per run). The
    database is used only from the caller's thread."""

    def __init__(self):
        self._sender = None  # started with the first POST: a run with nothing due starts no thread
        self.in_flight: dict = {}  # future -> _Sending
        self.counts = {"succeeded": 0, "retrying": 0, "failed": 0}
        self._signers: dict[str, Webhook] = {}

    @property
    def sender(self) -> targets.Sender:
        if self._sender is None:
            self._sender = targets.Sender(settings.WEBHOOK_CONCURRENCY)
        return self._sender

    def close(self):
        if self._sender is not None:
            self._sender.close()

    def _signer(self, encrypted: str) -> Webhook:
        signer = self._signers.get(encrypted)
        if signer is None:
            signer = self._signers[encrypted] = Webhook(crypto.decrypt(encrypted))
        return signer

    def start(self, claims: list[tuple[int, datetime]]) -> int:
        """Start the POSTs of claimed deliveries given as (id, claim time)."""
        claimed_at = dict(claims)
        return sum(self.start_rows([row], claimed_at[row["pk"]]) for row in _claimed_rows(claimed_at))

    def start_rows(self, rows: list[dict], claimed_at: datetime) -> int:
        """Sign each claimed delivery's body and start its POST. Returns how many started."""
        now = timezone.now().astimezone(UTC).replace(microsecond=0)
        posts, sendings = [], []
        for row in rows:
            if row["event_id"] is None and row["payload"] is None:
                self._expired(row, claimed_at)
                continue
            event_known = row["event_id"] is not None
            body = _body_text(
                row["event_type"],
                row["event__created_at"] if event_known else row["created_at"],
                row["slug"],
                row["sequence"],
                row["event__payload"] if event_known else (row["payload"] or {}),
            )
            signers = [self._signer(row["secret_encrypted"])]
            if row["previous_secret_encrypted"] and (row["previous_secret_expires_at"] or now) > now:
                signers.append(self._signer(row["previous_secret_encrypted"]))
            headers = _headers(f"msg_{row['message_id'].hex}", body, signers, now)
            posts.append((row["url"], body.encode(), headers))
            sendings.append(
                _Sending(row["pk"], row["organization_id"], row["subscription_id"], claimed_at, body, headers, now)
            )
        if posts:
            # A POST still waiting for a connection when the claim's lease is about to run out is not sent (another
            # job may claim it then): a claim is never sent on after it could have been taken over.
            not_after = time.monotonic() + settings.WEBHOOK_CLAIM_LEASE_SECONDS - settings.WEBHOOK_TIMEOUT - 5
            for future, sending in zip(self.sender.submit_many(posts, not_after), sendings, strict=True):
                self.in_flight[future] = sending
        return len(posts)

    def _expired(self, row, claimed_at) -> None:
        """An event pruned before its delivery was sent: nothing to send, ever."""
        WebhookAttempt.objects.create(organization_id=row["organization_id"], delivery_id=row["pk"], error=EXPIRED)
        self.counts["failed"] += WebhookDelivery.objects.filter(
            pk=row["pk"], status=Status.SENDING, claimed_at=claimed_at
        ).update(status=Status.FAILED, last_error=EXPIRED, updated_at=timezone.now())

    def wait_finished(self, count: int, timeout: float) -> None:
        """Until `count` POSTs have finished (or all of them), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [future for future in self.in_flight if not future.done()]
            remaining = deadline - time.monotonic()
            if not pending or len(self.in_flight) - len(pending) >= count or remaining <= 0:
                return
            wait_for(pending, timeout=remaining, return_when=FIRST_COMPLETED)

    def wait(self, timeout: float | None) -> None:
        if self.in_flight:
            wait_for(list(self.in_flight), timeout=timeout, return_when=FIRST_COMPLETED)

    def record_finished(self) -> int:
        """Record every finished POST: the 2xx answers together (see `_record_successes`), the others one by one."""
        finished = [future for future in self.in_flight if future.done()]
        successes = []
        for future in finished:
            sending = self.in_flight.pop(future)
            result = future.result()
            if result.status_code is not None and 200 <= result.status_code < 300:
                successes.append((sending, result))
            else:
                delivery = WebhookDelivery.objects.select_related("subscription").get(pk=sending.delivery_id)
                _record(
                    delivery, sending.claimed_at, result, sending.body, sending.headers, result.status_code, self.counts
                )
        _record_successes(successes, self.counts)
        return len(finished)


def send_claimed(claims: list[tuple[int, datetime]]) -> dict:
    """POST the claimed deliveries and record each outcome (only where the claim still holds). Returns counts."""
    run = _Run()
    try:
        run.start(claims)
        while run.in_flight:
            run.wait(None)
            run.record_finished()
    finally:
        run.close()
    return run.counts


EXPIRED = "The event expired before delivery."


def _log_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k != "webhook-signature"}


def _attempt(delivery, body, headers, result, error="") -> WebhookAttempt:
    return WebhookAttempt(
        organization_id=delivery.organization_id,
        delivery=delivery,
        request_headers=_log_headers(headers),
        request_body=body[:2000],
        status_code=result.status_code if result else None,
        response_body=result.response_excerpt[:2000] if result else "",
        latency_ms=result.latency_ms if result else 0,
        error=error or (result.error if result else ""),
    )


_RECORD_SUCCESSES_SQL = """
WITH done AS (
    SELECT * FROM json_to_recordset(%(rows)s::json)
        AS t(id bigint, claimed_at timestamptz, sent_at timestamptz, code int, latency int, excerpt text,
             organization_id bigint)
      CROSS JOIN (SELECT 'sending'::varchar AS expected_status) AS sending
), marked AS (
    UPDATE {delivery} d
       SET status = 'succeeded', succeeded_at = %(now)s, last_status_code = done.code, last_error = '',
           sent_at = done.sent_at, latency_ms = done.latency, response_body = done.excerpt, updated_at = %(now)s
      FROM done
     WHERE d.id = ANY(%(ids)s) AND d.id = done.id AND d.claimed_at = done.claimed_at
       AND d.status = done.expected_status  -- (not a literal: the partial indexes' statistics lag behind the churn)
    RETURNING d.id
), recovered AS (
    UPDATE {subscription} SET failing_since = NULL WHERE id = ANY(%(subscriptions)s) AND failing_since IS NOT NULL
)
SELECT id FROM marked
"""


def _success_attempt(sending: _Sending, result) -> WebhookAttempt:
    """The log row of a success that is not the delivery's own (its claim had been taken over)."""
    return WebhookAttempt(
        organization_id=sending.organization_id,
        delivery_id=sending.delivery_id,
        request_headers=_log_headers(sending.headers),
        request_body=sending.body[:2000],
        status_code=result.status_code,
        response_body=result.response_excerpt[:2000],
        latency_ms=result.latency_ms,
    )


def _record_successes(successes: list[tuple[_Sending, object]], counts) -> None:
    """The 2xx answers of one batch, in one statement on PostgreSQL whatever its size (a few queries elsewhere): the
    deliveries marked succeeded with their answer if their claim still holds (no attempt row: the delivery keeps its
    success), the subscriptions' failure streaks ended. A success whose claim was taken over (by then another job's)
    is only logged, as an attempt row."""
    if not successes:
        return
    now = timezone.now()
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        sql = _RECORD_SUCCESSES_SQL.format(
            delivery=quote(WebhookDelivery._meta.db_table),
            subscription=quote(WebhookSubscription._meta.db_table),
        )
        # The rows as one JSON document: one string for the driver to quote, where text arrays cost a regex
        # substitution per element with psycopg's client-side binding (80,000 for the bench's 10,000 deliveries).
        rows = [
            {
                "id": sending.delivery_id,
                "claimed_at": sending.claimed_at.isoformat(),
                "sent_at": sending.sent_at.isoformat(),
                "code": result.status_code,
                "latency": result.latency_ms,
                "excerpt": result.response_excerpt[:2000],
                "organization_id": sending.organization_id,
            }
            for sending, result in successes
        ]
        params = {
            "rows": json.dumps(rows),
            "ids": [sending.delivery_id for sending, _ in successes],
            "subscriptions": list({sending.subscription_id for sending, _ in successes}),
            "now": now,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            marked = {row[0] for row in cursor.fetchall()}
        counts["succeeded"] += len(marked)
        stale = [(sending, result) for sending, result in successes if sending.delivery_id not in marked]
        if stale:
            WebhookAttempt.objects.bulk_create([_success_attempt(sending, result) for sending, result in stale])
        return
    for sending, result in successes:
        marked = WebhookDelivery.objects.filter(
            pk=sending.delivery_id, status=Status.SENDING, claimed_at=sending.claimed_at
        ).update(
            status=Status.SUCCEEDED,
            succeeded_at=now,
            last_status_code=result.status_code,
            last_error="",
            sent_at=sending.sent_at,
            latency_ms=result.latency_ms,
            response_body=result.response_excerpt[:2000],
            updated_at=now,
        )
        counts["succeeded"] += marked
        if not marked:
            _success_attempt(sending, result).save()
    subscriptions = {sending.subscription_id for sending, _ in successes}
    WebhookSubscription.objects.filter(pk__in=subscriptions, failing_since__isnull=False).update(failing_since=None)


def _record(delivery, claimed_at, result, body, headers, status_code, counts, error="") -> None:
    """A failed attempt (not 2xx: see `_record_successes`): logged, then a retry, or the delivery failed."""
    now = timezone.now()
    error = error or (result.error if result else "")
    _attempt(delivery, body, headers, result, error).save()
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, claimed_at=claimed_at)
    subscription = delivery.subscription
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


def deliver_due(*, seconds: float | None = None, batch: int | None = None) -> dict:
    """The job: fan out, then keep up to WEBHOOK_CLAIM_BATCH deliveries claimed (claimed in batches, posted
    WEBHOOK_CONCURRENCY at a time over kept-alive connections, their outcomes recorded in bulk as they come back),
    fanning out newly numbered events every FAN_OUT_EVERY seconds (skipped while another job fans out), until nothing
    is due and nothing is on its way, or `seconds` (WEBHOOK_JOB_SECONDS) passed (then it stops claiming and waits for
    what it sent).

    Two jobs at once: each claims under the subscriptions' row locks, waiting (never skipping) for the other, so a
    job that finds nothing to claim has nothing left to do but what the other holds in flight, which the other
    records and follows with a claim of its own before it can stop. One pass of concurrent jobs sends everything due
    exactly once (a retry that is not yet due waits for its time)."""
    budget = settings.WEBHOOK_JOB_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + budget
    concurrency = batch or settings.WEBHOOK_CLAIM_BATCH  # claimed at once; the Sender POSTs WEBHOOK_CONCURRENCY of them
    refill = max(1, concurrency // 2)  # a claim when half the slots are free: fewer, larger statements
    totals = {"fanned_out": fan_out(), "succeeded": 0, "retrying": 0, "failed": 0}
    last_fan_out = time.monotonic()
    run = _Run()
    settle = 0  # POSTs to see finished before the next claim
    try:
        while True:
            if time.monotonic() >= deadline:
                if not run.in_flight:
                    break
                run.wait(0.5)
                run.record_finished()
                continue
            run.wait_finished(settle, timeout=0.5)
            run.record_finished()
            if time.monotonic() - last_fan_out >= FAN_OUT_EVERY:
                totals["fanned_out"] += fan_out(wait=False)
                last_fan_out = time.monotonic()
            room = concurrency - len(run.in_flight)
            rows, claimed_at = _claim(room) if room > 0 else ([], None)
            started = run.start_rows(rows, claimed_at)
            if not started and not run.in_flight:
                fanned = fan_out()  # events numbered while this job ran
                last_fan_out = time.monotonic()
                totals["fanned_out"] += fanned
                if fanned:
                    continue
                break
            # Full: claim again when half the slots are free. Short (the subscriptions' caps, or little due): when half
            # of what is on its way came back, so that an idle claim does not spin.
            settle = refill if len(rows) >= room else max(1, len(run.in_flight) // 2)
    finally:
        run.close()
    for key, value in run.counts.items():
        totals[key] += value
    return totals


def prune_log(days: int | None = None) -> int:
    """Forget finished deliveries (and their attempts) older than WEBHOOK_LOG_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_LOG_DAYS if days is None else days)
    deleted, _ = WebhookDelivery.objects.filter(
        created_at__lt=cutoff, status__in=[Status.SUCCEEDED, Status.FAILED]
    ).delete()
    return deleted
