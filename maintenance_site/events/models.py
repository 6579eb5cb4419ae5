from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from maintenance_site.tenancy.models import Organization


class EventQuerySet(models.QuerySet):
    def for_tenant(self, organization):
        return self.filter(organization=organization)

    def numbered(self):
        return self.filter(sequence__isnull=False)

    def unnumbered(self):
        return self.filter(sequence__isnull=True)

    def undelivered(self):
        return self.filter(dispatched_at__isnull=True)


class Event(models.Model):
    """Something that happened in an organisation (`work-order:completed`, `inventory:low-stock`, …),
    written in the same transaction as the change it reports. The dispatcher gives it the organisation's
    next sequence number when it first sees it committed, then delivers it; clients catch up by sequence.
    Append-only: it is its own audit."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The user the event concerns, who also gets it on their own channel."),
    )
    sequence = models.BigIntegerField(null=True, blank=True, editable=False)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    numbered_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    delivery_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "sequence"], name="events_event_unique_sequence"),
        ]
        indexes = [
            # catch-up: WHERE organization_id = ? AND sequence > ? ORDER BY sequence (served by the unique index)
            # numbering: WHERE sequence IS NULL ORDER BY id
            models.Index(fields=["id"], condition=models.Q(sequence__isnull=True), name="events_unnumbered_idx"),
            # the sweep: WHERE dispatched_at IS NULL
            models.Index(
                fields=["created_at"], condition=models.Q(dispatched_at__isnull=True), name="events_undelivered_idx"
            ),
            # retention cleanup: WHERE created_at < ?
            models.Index(fields=["created_at"], name="events_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence or '?'} {self.type}"

    def as_message(self) -> dict:
        """The event as clients receive it (websocket, Redis pub/sub, catch-up API)."""
        return {
            "sequence": self.sequence,
            "type": self.type,
            "organization": self.organization_id,
            "user": self.user_id,
            "payload": self.payload,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "correlation_id": self.correlation_id,
        }


class EventSequence(models.Model):
    """The last sequence number given to an organisation's events; its row lock serialises numbering."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_sequence = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.last_sequence}"


# --- The platform stream ---------------------------------------------------------------------------------------


class PlatformEvent(models.Model):
    """Something that happened to the platform itself, not to an organisation (`scenario:activated`,
    `scenario:run-finished`, `platform:resources-sampled`): written in the same transaction as the change, numbered
    after commit in one platform-wide sequence, delivered only to the superusers' socket group
    (`maintenance_site/events/platform.py`). It has no organisation on purpose: the tenant dispatcher, the catch-up
    API, Socket.IO and webhooks read `Event` only, so nothing here can reach a tenant. Append-only: its own audit."""

    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    sequence = models.BigIntegerField(null=True, blank=True, editable=False)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    numbered_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    delivery_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["sequence"]
        constraints = [
            models.UniqueConstraint(fields=["sequence"], name="events_platformevent_unique_sequence"),
        ]
        indexes = [
            # catch-up: WHERE sequence > ? ORDER BY sequence (served by the unique constraint's index)
            # numbering: WHERE sequence IS NULL ORDER BY id
            models.Index(fields=["id"], condition=models.Q(sequence__isnull=True), name="events_platform_unnumb_idx"),
            # delivery and the sweep: WHERE dispatched_at IS NULL AND sequence IS NOT NULL ORDER BY sequence
            models.Index(
                fields=["sequence"],
                condition=models.Q(dispatched_at__isnull=True),
                name="events_platform_undeliv_idx",
            ),
            # retention: WHERE created_at < ?
            models.Index(fields=["created_at"], name="events_platform_created_idx"),
        ]

    def __str__(self) -> str:
        return f"platform #{self.sequence or '?'} {self.type}"

    def as_message(self) -> dict:
        """The event as the superusers' socket receives it."""
        return {
            "scope": "platform",
            "sequence": self.sequence,
            "type": self.type,
            "payload": self.payload,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "correlation_id": self.correlation_id,
        }


class PlatformEventSequence(models.Model):
    """The last sequence number of the platform stream (one row); its lock serialises numbering."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    last_sequence = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"platform: {self.last_sequence}"
