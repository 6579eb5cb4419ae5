"""Webhooks: an organisation's subscriptions, one delivery row per (subscription, event), and the log of attempts."""

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.events.models import Event
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet


class WebhookSubscription(TenantModel):
    """An integrator's endpoint that receives the organisation's events of some types, signed per Standard
    Webhooks with the subscription's `whsec_` secret (stored encrypted, shown once). `last_sequence` is how far the
    fan-out has read the organisation's outbox for it; `failing_since` is when its deliveries started failing
    without a success since (the subscription is disabled once that is WEBHOOK_DISABLE_AFTER_DAYS old)."""

    url = models.URLField(max_length=2000, help_text=_("Where the events are POSTed (https recommended)."))
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, help_text=_("Event types or wildcards, e.g. [“work-order:*”, “sla:violation”]; “*” for all.")
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    # Fernet tokens (maintenance_site.webhooks.crypto); never shown, never in history.
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_prefix = models.CharField(max_length=16, editable=False, help_text=_("The start of the secret, to tell it."))
    last_sequence = models.BigIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    history = history(excluded_fields=["secret_encrypted", "previous_secret_encrypted", "last_sequence"])

    class Meta:
        ordering = ["organization", "id"]
        indexes = [
            # the fan-out and the claim: WHERE is_active ORDER BY id
            models.Index(fields=["id"], condition=models.Q(is_active=True), name="webhooks_sub_active_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.event_types)})"


class WebhookDeliveryQuerySet(TenantQuerySet):
    def for_subscription(self, subscription):
        return self.filter(subscription=subscription)


class WebhookDelivery(TenantModel):
    """One event to send to one subscription, sent until the receiver answers 2xx (at-least-once).

    Status transitions, each a conditional UPDATE so that two workers never send the same attempt:
    pending → sending (claimed, `claimed_at` set) → succeeded | pending (a retry at `next_attempt_at`) | failed
    (retries exhausted, 410 Gone, subscription disabled); sending → sending (the claim of a dead worker taken
    over after WEBHOOK_CLAIM_LEASE_SECONDS); succeeded | failed → pending (a replay: the same `message_id`).

    A successful attempt is kept on the row itself (`last_status_code`, `sent_at`, `latency_ms`, `response_body`,
    written by the same UPDATE that marks it succeeded), not as a WebhookAttempt: attempt rows are the failed ones
    (and a success a replay moved out of the way). `services.attempt_log()` shows both, newest first. Each status
    change rewrites the row into every index, so the table has only the indexes its queries use.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    # No index of their own: webhooks_delivery_log_idx starts with subscription, webhooks_delivery_unique_event with
    # event (what SET_NULL looks up when events are pruned).
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.ForeignKey(Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False)
    event_type = models.CharField(max_length=64)
    sequence = models.BigIntegerField(null=True, blank=True, help_text=_("The event's sequence in the organisation."))
    payload = models.JSONField(
        null=True, blank=True, encoder=DjangoJSONEncoder, help_text=_("Only for test events (others read the event).")
    )
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # the successful attempt (the failed ones are WebhookAttempt rows)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text=_("The successful attempt's webhook-timestamp (when it was signed).")
    )
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text=_("The successful attempt's latency."))
    response_body = models.TextField(blank=True, help_text=_("The start of the receiver's answer to it."))

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            # event first: also the index of the event foreign key (SET_NULL when events are pruned)
            models.UniqueConstraint(
                fields=["event", "subscription"],
                condition=models.Q(event__isnull=False),
                name="webhooks_delivery_unique_event",
            ),
        ]
        indexes = [
            # the claim: WHERE subscription_id = ? AND status = 'pending' AND next_attempt_at <= ?
            # ORDER BY next_attempt_at
            models.Index(
                fields=["subscription", "next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhooks_delivery_due_idx",
            ),
            # the claim, per subscription: its deliveries in flight (WHERE subscription_id = ? AND status = 'sending'
            # AND claimed_at >= lease) and a dead worker's claims (... AND claimed_at < lease)
            models.Index(
                fields=["subscription", "claimed_at"],
                condition=models.Q(status="sending"),
                name="webhooks_delivery_inflight_idx",
            ),
            # the delivery log: WHERE subscription_id = ? ORDER BY id DESC (and the subscription foreign key's index)
            models.Index(fields=["subscription", "-id"], name="webhooks_delivery_log_idx"),
            # retention: WHERE created_at < ?
            models.Index(fields=["created_at"], name="webhooks_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.sequence or '-'} → subscription {self.subscription_id}: {self.status}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what was sent, what came back, how long it took. Append-only (its own audit)."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField(blank=True, help_text=_("The start of the body sent."))
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text=_("The start of the receiver's answer."))
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # a delivery's attempts: WHERE delivery_id = ? ORDER BY id DESC (the FK index serves it)
            # retention: WHERE attempted_at < ?
            models.Index(fields=["attempted_at"], name="webhooks_attempt_at_idx"),
        ]

    def __str__(self) -> str:
        return f"attempt on delivery {self.delivery_id}: {self.status_code or self.error[:40]}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
