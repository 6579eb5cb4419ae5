"""Sending one notification through one outside channel: e-mail, a Slack-compatible webhook, SMS, push.

A sender returns when the channel accepted the message, raises `DeliverySkipped` when the recipient cannot
be reached that way (no e-mail address, no phone number, channel not configured) and `DeliveryFailed` when
the channel refused or could not be reached. Senders run in a Celery task, never inside a caller's
transaction, and never put a secret (webhook URL, API key) into an error message.
"""

import json
import re
import smtplib
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import translation
from django.utils.translation import gettext, ngettext

from maintenance_site.i18n import language_for
from maintenance_site.notifications.models import Channel, Notification, NotificationProfile
from maintenance_site.security import encryption
from maintenance_site.security.outbound import TargetRefused, resolve_target
from maintenance_site.tenancy.models import Membership
from maintenance_site.tenancy.roles import BACK_OFFICE_ROLES

# HTTP statuses worth trying again; any other 4xx says the request itself is wrong.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
SMS_MAX_LENGTH = 480  # three concatenated SMS segments


class DeliveryFailed(Exception):
    """The channel refused the message or could not be reached. `permanent` failures (a 4xx such as a
    revoked webhook) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class DeliverySkipped(Exception):
    """The recipient cannot be reached on this channel; nothing was sent and nothing will be retried."""


def post_json(url: str, payload: dict, *, bearer: str = "") -> int:
    """POST `payload` as JSON; return the 2xx status or raise DeliveryFailed (with the host, never the URL)."""
    host = urlsplit(url).hostname or "the endpoint"
    headers = {"Content-Type": "application/json", "User-Agent": "maintenance-platform-notifications"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(  # noqa: S310 - settings only accept http(s) URLs
        url, data=json.dumps(payload, cls=DjangoJSONEncoder).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.NOTIFICATION_HTTP_TIMEOUT) as response:  # noqa: S310
            response.read(1024)
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        permanent = 400 <= exc.code < 500 and exc.code not in RETRYABLE_CLIENT_ERRORS
        raise DeliveryFailed(
            f"{host} answered HTTP {exc.code}{': ' + detail if detail else ''}", permanent=permanent
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, DNS, timeout, TLS, bad URL
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{host} could not be reached: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"{host} answered HTTP {status}")
    return status


ADMIN_WORK_ORDER = re.compile(r"^/admin/workorders/workorder/(\d+)/")


def recipient_link(notification: Notification) -> str:
    """The notification's link as an absolute address (PUBLIC_BASE_URL) to a page its recipient can open: an admin
    page for back-office staff; for anyone else (technicians) the order in the technician's view, or their work
    list, instead of an admin page they cannot enter."""
    url = notification.url
    if not url:
        return ""
    if url.startswith("/admin/") and not _works_in_back_office(notification):
        found = ADMIN_WORK_ORDER.match(url)
        url = f"/t/orders/{found[1]}/" if found else "/t/"
    if url.startswith("/"):
        url = settings.PUBLIC_BASE_URL.rstrip("/") + url
    return url


def _works_in_back_office(notification: Notification) -> bool:
    user = notification.recipient
    if user.is_superuser:
        return True
    if not user.is_staff:
        return False
    return Membership.objects.filter(
        user=user, organization_id=notification.organization_id, is_active=True, role__in=list(BACK_OFFICE_ROLES)
    ).exists()


def plain_text(notification: Notification) -> str:
    lines = [notification.title, "", notification.body]
    link = recipient_link(notification)
    if link:
        lines += ["", link]
    return "\n".join(lines)


def send_email(notification: Notification) -> None:
    address = notification.recipient.email
    if not address:
        raise DeliverySkipped("The recipient has no e-mail address.")
    try:
        send_mail(
            subject=f"[{notification.organization.name}] {notification.title}",
            message=plain_text(notification),
            from_email=None,  # DEFAULT_FROM_EMAIL
            recipient_list=[address],
            connection=get_connection(timeout=settings.NOTIFICATION_HTTP_TIMEOUT),
        )
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"The mail server refused or could not be reached: {exc}") from None


def send_digest_email(notifications: list[Notification]) -> None:
    """One e-mail with several notifications of one person in one organisation (their daily digest)."""
    first = notifications[0]
    address = first.recipient.email
    if not address:
        raise DeliverySkipped("The recipient has no e-mail address.")
    sections = [plain_text(notification) for notification in notifications]
    with translation.override(language_for(first.recipient, first.organization)):
        count = len(notifications)
        subject = ngettext("%(count)s notification(s) today", "%(count)s notification(s) today", count) % {
            "count": count
        }
    try:
        send_mail(
            subject=f"[{first.organization.name}] {subject}",
            message="\n\n---\n\n".join(sections),
            from_email=None,
            recipient_list=[address],
            connection=get_connection(timeout=settings.NOTIFICATION_HTTP_TIMEOUT),
        )
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"The mail server refused or could not be reached: {exc}") from None


def send_slack(notification: Notification) -> None:
    if not settings.SLACK_WEBHOOK_URL:
        raise DeliverySkipped("SLACK_WEBHOOK_URL is not set.")
    text = f"*[{notification.organization.name}] {notification.title}*\n{notification.body}"
    if notification.url:
        text += f"\n{notification.url}"
    post_json(settings.SLACK_WEBHOOK_URL, {"text": text})


def send_sms(notification: Notification) -> None:
    if not settings.SMS_API_URL:
        raise DeliverySkipped("SMS_API_URL is not set.")
    phone = (
        NotificationProfile.objects.filter(user_id=notification.recipient_id)
        .values_list("phone_number", flat=True)
        .first()
    )
    if not phone:
        raise DeliverySkipped("The recipient has no phone number in their notification preferences.")
    message = f"{notification.title}: {notification.body}"
    if len(message) > SMS_MAX_LENGTH:
        message = message[: SMS_MAX_LENGTH - 1] + "…"
    post_json(settings.SMS_API_URL, {"to": phone, "message": message}, bearer=settings.SMS_API_KEY)


def send_push(notification: Notification) -> None:
    """The push service knows the recipient's devices by their user id."""
    if not settings.PUSH_SERVICE_URL:
        raise DeliverySkipped("PUSH_SERVICE_URL is not set.")
    payload = {
        "user": str(notification.recipient_id),
        "organization": notification.organization.slug,
        "notification": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
    }
    post_json(settings.PUSH_SERVICE_URL, payload, bearer=settings.PUSH_API_KEY)


def chat_payload(notification: Notification, kind: str) -> dict:
    """The message for one kind of chat webhook: Slack's `text`, a Teams Workflows Adaptive Card (the retired
    Office 365 connectors' MessageCard is not used), or the notification as plain JSON."""
    organization = notification.organization
    if kind == "slack":
        text = f"*[{organization.name}] {notification.title}*\n{notification.body}"
        return {"text": text + (f"\n{notification.url}" if notification.url else "")}
    if kind == "teams":
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": f"[{organization.name}] {notification.title}",
                    "weight": "Bolder",
                    "wrap": True,
                },
                {"type": "TextBlock", "text": notification.body, "wrap": True},
            ],
        }
        if notification.url:
            with translation.override(language_for(None, organization)):  # a shared channel: the organisation's
                card["actions"] = [{"type": "Action.OpenUrl", "title": gettext("Open"), "url": notification.url}]
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    return {
        "organization": organization.slug,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "data": notification.data,
        "created_at": notification.created_at,
    }


def send_chat(notification: Notification, chat_channel) -> None:
    """Post to one of the organisation's chat channels (its URL decrypted, checked again against SSRF)."""
    if chat_channel is None or not chat_channel.is_active:
        raise DeliverySkipped("The chat channel was removed or switched off.")
    url = encryption.decrypt(chat_channel.url_encrypted)
    try:
        resolve_target(url)
    except TargetRefused as exc:
        raise DeliveryFailed(f"The chat channel's URL is refused: {exc}", permanent=True) from None
    post_json(url, chat_payload(notification, chat_channel.kind))


SENDERS = {
    Channel.EMAIL: send_email,
    Channel.SLACK: send_slack,
    Channel.SMS: send_sms,
    Channel.PUSH: send_push,
}
