"""Web Push (RFC 8030, payload encryption RFC 8291, VAPID RFC 8292) to the members' phones, through pywebpush.

The VAPID key pair identifies this server to the push services: WEBPUSH_VAPID_PRIVATE_KEY (a PEM) when set,
otherwise a P-256 key generated once into VAR_DIR (like SECRET_KEY in the embedded run). The browser subscribes
with the public key (`application_server_key()`); `send_webpush` encrypts the notification for each of the
recipient's devices. A push service that cannot be reached or refuses is a DeliveryFailed (retried with
backoff by the delivery task); a device it says is gone (404, 410) is forgotten; nothing here raises anything
else, so a push outage never breaks the request or the task that notifies.
"""

import base64
import functools
import json
import logging

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from maintenance_site.env import read_or_create_secret
from maintenance_site.notifications.models import Notification, WebPushSubscription
from maintenance_site.notifications.senders import DeliveryFailed, DeliverySkipped

logger = logging.getLogger(__name__)
GONE = (404, 410)


def _new_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@functools.cache
def _private_key_pem(configured: str, path: str) -> str:
    return configured.strip() or read_or_create_secret(settings.WEBPUSH_VAPID_PRIVATE_KEY_FILE, _new_private_key_pem)


def private_key_pem() -> str:
    return _private_key_pem(settings.WEBPUSH_VAPID_PRIVATE_KEY, str(settings.WEBPUSH_VAPID_PRIVATE_KEY_FILE))


def application_server_key() -> str:
    """The VAPID public key as the browser's PushManager.subscribe() takes it: the uncompressed P-256 point,
    base64url without padding."""
    key = serialization.load_pem_private_key(private_key_pem().encode(), password=None)
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def payload_of(notification: Notification) -> dict:
    """What the service worker shows (`push` event in sw.js): title, body, where a tap leads, the kind."""
    data = notification.data or {}
    url = notification.url
    if not url and data.get("work_order"):
        url = f"/t/orders/{data['work_order']}/"
    return {
        "title": notification.title,
        "body": notification.body,
        "url": url or "/t/",
        "kind": notification.kind,
        "tag": f"{notification.kind}:{data.get('work_order', notification.pk)}",
        "notification": notification.pk,
    }


def _vapid() -> Vapid02:
    return Vapid02.from_pem(private_key_pem().encode())


def send_webpush(notification: Notification) -> None:
    """Send to every device of the recipient in the notification's organisation. Skipped when they have none;
    failed (retried) when no device could be reached; devices that are gone are deleted."""
    devices = list(
        WebPushSubscription.objects.filter(
            organization_id=notification.organization_id, user_id=notification.recipient_id
        )
    )
    if not devices:
        raise DeliverySkipped("The recipient has no phone subscribed to Web Push.")
    data = json.dumps(payload_of(notification))
    vapid = _vapid()
    sent, errors = 0, []
    for device in devices:
        info = {"endpoint": device.endpoint, "keys": {"p256dh": device.p256dh, "auth": device.auth}}
        try:
            webpush(
                info,
                data=data,
                vapid_private_key=vapid,
                vapid_claims={"sub": settings.WEBPUSH_VAPID_SUBJECT},
                ttl=settings.WEBPUSH_TTL_SECONDS,
                timeout=settings.NOTIFICATION_HTTP_TIMEOUT,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in GONE:
                device.delete()
                continue
            errors.append(f"push service answered {status}" if status else "push service could not be reached")
            WebPushSubscription.objects.filter(pk=device.pk).update(last_error=errors[-1][:500])
        except requests.RequestException as exc:  # refused, DNS, timeout, TLS
            errors.append("push service could not be reached")
            logger.info("web push to device %s failed: %s", device.pk, exc)
            WebPushSubscription.objects.filter(pk=device.pk).update(last_error=errors[-1])
        except Exception as exc:  # noqa: BLE001 - bad keys, TLS, DNS...: a failed delivery, never a crash
            errors.append(f"could not send: {type(exc).__name__}")
            logger.info("web push to device %s failed: %s", device.pk, exc)
            WebPushSubscription.objects.filter(pk=device.pk).update(last_error=errors[-1][:500])
        else:
            sent += 1
            WebPushSubscription.objects.filter(pk=device.pk).update(last_sent_at=timezone.now(), last_error="")
    if not sent and errors:
        raise DeliveryFailed("; ".join(sorted(set(errors))))
    if not sent:
        raise DeliverySkipped("Every subscribed phone has unsubscribed.")
