"""Notifications to people: the in-app list, one delivery row per channel, and each person's choices."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet, validate_time_zone


class Channel(models.TextChoices):
    """How a notification reaches its recipient. `in_app` is always on: it is the Notification itself."""

    IN_APP = "in_app", _("In-app")
    EMAIL = "email", _("E-mail")
    SLACK = "slack", _("Slack")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push")
    WEBPUSH = "webpush", _("Web Push (the technician's phone)")
    CHAT = "chat", _("Organisation chat channel")  # a ChatChannel of the organisation (routed by kind, not chosen)


class NotificationQuerySet(TenantQuerySet):
    def for_recipient(self, user):
        return self.filter(recipient=user)

    def unread(self):
        return self.filter(read_at__isnull=True)


class Notification(TenantModel):
    """Something a person of the organisation should know (an SLA violated, stock running low, a work order
    assigned to them), as they see it in their in-app list. Append-only apart from the read mark, so it is
    its own audit."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=64, help_text=_("What happened, e.g. sla:violation (see the kind registry)."))
    title = models.CharField(max_length=200)
    body = models.TextField()
    url = models.CharField(max_length=500, blank=True, help_text=_("Where the recipient can act on it."))
    data = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder, help_text=_("The rest of the caller's context.")
    )
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the recipient's list (cursor pages): WHERE organization_id = ? AND recipient_id = ?
            # ORDER BY created_at DESC, id DESC
            models.Index(fields=["organization", "recipient", "created_at", "id"], name="notif_recipient_list_id_idx"),
            # the back office's list of the organisation's notifications (every recipient's):
            # WHERE organization_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["organization", "created_at", "id"], name="notif_org_created_id_idx"),
            # unread count and ?unread=true: ... AND read_at IS NULL
            models.Index(
                fields=["organization", "recipient"],
                condition=models.Q(read_at__isnull=True),
                name="notif_recipient_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationDelivery(TenantModel):
    """One notification sent (or to be sent) through one channel, with the outcome of each attempt.

    Status transitions, each a conditional UPDATE so a task that runs twice never sends twice:
    pending → sending (claimed by a task) → sent | failed | skipped;
    failed → sending (automatic retry while attempts < NOTIFICATION_MAX_ATTEMPTS);
    failed → pending (the admin's "retry" action, a fresh round of attempts);
    sending → sending (claim taken over when its lease expired: the worker died mid-send);
    pending → sent directly for in_app, whose claim and event are one transaction.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    chat_channel = models.ForeignKey(
        "ChatChannel", on_delete=models.CASCADE, null=True, blank=True, related_name="+", help_text=_("For `chat`.")
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text=_("Held until then: the recipient's quiet hours, or their daily digest.")
    )
    digest = models.BooleanField(default=False, help_text=_("Goes out in the recipient's daily digest e-mail."))

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("notification deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"],
                condition=models.Q(chat_channel__isnull=True),
                name="notifications_delivery_unique_channel",
            ),
            models.UniqueConstraint(
                fields=["notification", "chat_channel"],
                condition=models.Q(chat_channel__isnull=False),
                name="notifications_delivery_unique_chat",
            ),
        ]
        indexes = [
            # admin list: WHERE organization_id = ? AND status = ? ORDER BY id DESC
            models.Index(fields=["organization", "status"], name="notif_delivery_org_status_idx"),
            # the sweep: WHERE (status = 'pending' AND updated_at < ?) OR (status = 'sending' AND claimed_at < ?)
            models.Index(
                fields=["status", "updated_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="notif_delivery_unfinished_idx",
            ),
            # the digest job: WHERE digest AND status = 'pending' AND not_before <= ?
            models.Index(
                fields=["not_before"],
                condition=models.Q(digest=True, status="pending"),
                name="notif_delivery_digest_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} of notification {self.notification_id}: {self.status}"


def validate_channels(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(gettext("Give the channels as a list of names, e.g. [“in_app”, “email”]."))
    unknown = sorted(set(value) - set(Channel.values))
    if unknown:
        raise ValidationError(
            gettext("Unknown channel(s) %(unknown)s; choose from %(choices)s.")
            % {"unknown": ", ".join(unknown), "choices": ", ".join(Channel.values)}
        )


class NotificationPreference(TenantModel):
    """Which channels a member wants for one kind of notification in one organisation (in_app always
    included). Without a row the kind's default channels apply."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=64)
    channels = models.JSONField(default=list, validators=[validate_channels])

    history = history()

    class Meta:
        ordering = ["organization", "user", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "kind"], name="notifications_preference_unique_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} / {self.kind}: {', '.join(self.channels)}"


class NotificationProfile(models.Model):
    """A person's contact details for notifications outside the platform (the SMS number), the same in
    every organisation they belong to."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_profile")
    phone_number = models.CharField(
        max_length=16,
        blank=True,
        validators=[
            RegexValidator(r"^\+[1-9]\d{6,14}$", "Write the number in international form, e.g. +4915112345678.")
        ],
        help_text=_("For SMS, in international form (E.164)."),
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("For quiet hours and the digest; empty: the organisation's time zone."),
    )
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text=_("From then, non-urgent news waits…"))
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text=_("…until then (may be past midnight)."))
    daily_digest = models.BooleanField(
        default=False, help_text=_("Non-urgent e-mails come as one digest a day instead of one by one.")
    )
    digest_time = models.TimeField(default=datetime.time(8, 0), help_text=_("When the digest is sent (local time)."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | models.Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="notifications_profile_quiet_hours_both_or_none",
            ),
        ]

    def __str__(self) -> str:
        return f"notification profile of {self.user_id}"


class WebPushSubscription(TenantModel):
    """One device (a phone's browser) of a member that receives Web Push notifications (the `webpush` channel):
    the push service's endpoint and the keys the browser gave for encrypting to it. A subscription the push
    service says is gone (404/410) is deleted when a notification meets it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webpush_subscriptions")
    endpoint = models.URLField(max_length=1000, help_text=_("The push service's URL for this device."))
    p256dh = models.CharField(max_length=200, help_text=_("The device's public key (base64url)."))
    auth = models.CharField(max_length=100, help_text=_("The device's authentication secret (base64url)."))
    user_agent = models.CharField(max_length=300, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "endpoint"], name="notifications_webpush_unique_endpoint"),
        ]
        indexes = [
            # the sender: WHERE organization_id = ? AND user_id = ?
            models.Index(fields=["organization", "user"], name="notif_webpush_user_idx"),
        ]

    def __str__(self) -> str:
        return f"web push device of {self.user_id}: {self.endpoint[:60]}"


class ChatChannel(TenantModel):
    """One of the organisation's chat channels (a Slack incoming webhook, a Microsoft Teams Workflows webhook, or a
    generic JSON webhook) and the notification kinds routed to it. When an organisation has chat channels, its
    notifications go to those whose kinds match (once per notify, not per recipient); without any, the platform's
    SLACK_WEBHOOK_URL stays the default for the people who chose Slack. The URL is a credential: stored encrypted
    (maintenance_site.security.encryption), never shown whole again."""

    class Kind(models.TextChoices):
        SLACK = "slack", _("Slack incoming webhook")
        TEAMS = "teams", _("Microsoft Teams (Workflows webhook, Adaptive Card)")
        WEBHOOK = "webhook", _("Generic JSON webhook")

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    url_encrypted = models.TextField(editable=False)
    url_hint = models.CharField(
        max_length=120, editable=False, help_text=_("The URL's host and the start of its path.")
    )
    kinds = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Notification kinds or wildcards routed here (“sla:*”, “inventory:low-stock”); “*” for all."),
    )
    is_active = models.BooleanField(default=True)

    history = history(excluded_fields=["url_encrypted"])

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="notifications_chatchannel_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"
