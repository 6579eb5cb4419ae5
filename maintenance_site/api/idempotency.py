"""`Idempotency-Key` on POST: the first response is stored; a retry with the same key and the same
request gets it back (with `Idempotent-Replayed: true`) and does nothing again."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site.api.exceptions import IdempotentReplay
from maintenance_site.api.models import IdempotencyRecord
from maintenance_site.errors import Conflict, InvalidInput, Unprocessable
from maintenance_site.tenancy.models import OrganizationAPIKey

HEADER = "Idempotency-Key"
# A claim whose request never finished (the process died) can be taken over after this long.
ABANDONED_AFTER = timedelta(minutes=5)
REPLAYED_HEADERS = ("Location", "ETag")


def _principal(request) -> str:
    if isinstance(request.auth, OrganizationAPIKey):
        return f"key:{request.auth.prefix}"
    return f"user:{request.user.pk}"


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.get_full_path().encode())
    digest.update(request._request.body)
    return digest.hexdigest()


def claim(request) -> IdempotencyRecord | None:
    """Claim the request's key, or raise: a replay, a key in flight (409), a key reused (422)."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or not key:
        return None
    if len(key) > 255:
        raise InvalidInput(_("The Idempotency-Key header is longer than 255 characters."))
    organization = request.organization
    principal = _principal(request)
    fingerprint = _fingerprint(request)
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                organization=organization, principal=principal, key=key, request_fingerprint=fingerprint
            )
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(organization=organization, principal=principal, key=key)
    if record.request_fingerprint != fingerprint:
        raise Unprocessable(
            _("This Idempotency-Key was already used for a different request; use a new key for a new request."),
            code="idempotency_key_reused",
        )
    if record.status_code is not None:
        raise IdempotentReplay(record)
    if record.created_at > timezone.now() - ABANDONED_AFTER:
        raise Conflict(
            _("A request with this Idempotency-Key is still being processed; retry in a moment."),
            code="idempotency_in_progress",
        )
    # Abandoned claim: take it over.
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now())
    return record


def complete(record: IdempotencyRecord, response) -> None:
    """Store the response, or release the claim after a server error so the client can retry."""
    if response.status_code >= 500:
        record.delete()
        return
    record.status_code = response.status_code
    record.response_body = getattr(response, "data", None)
    record.response_headers = {h: response[h] for h in REPLAYED_HEADERS if response.has_header(h)}
    record.completed_at = timezone.now()
    record.save(update_fields=["status_code", "response_body", "response_headers", "completed_at"])


def release(record: IdempotencyRecord) -> None:
    record.delete()


def prune_expired() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
