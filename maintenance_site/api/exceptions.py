"""One JSON error format for the whole API:

    {"error": {"status": 409, "code": "invalid_transition", "message": "…", "fields": {"title": ["…"]}}}

`message` is a sentence a person can act on; `fields` says, per field, what was wrong.
"""

import logging
import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from maintenance_site.errors import DomainError
from maintenance_site.ops.http_errors import describe_refusal


class IdempotentReplay(Exception):
    """Raised when a request repeats an Idempotency-Key whose first response is stored."""

    def __init__(self, record):
        self.record = record


def _flatten(detail, prefix=""):
    """Yield (field, [messages]) pairs from DRF's nested error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            yield from _flatten(value, name)
    elif isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        yield prefix, [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if item:
                yield from _flatten(item, f"{prefix}[{index}]" if prefix else str(index))
    else:
        yield prefix, [str(detail)]


def _summary(fields: dict[str, list[str]]) -> str:
    parts = []
    for field, messages in fields.items():
        text = " ".join(messages)
        parts.append(text if field in ("", "non_field_errors") else f"{field}: {text}")
    return "; ".join(parts)


def error_response(status_code: int, code: str, message: str, fields=None, headers=None, **extra) -> Response:
    body = {"status": status_code, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return Response({"error": body}, status=status_code, headers=headers)


_KEPT_HEADERS = ("WWW-Authenticate", "Retry-After", "Allow")
logger = logging.getLogger("django.request")


def _server_error(exc, context) -> Response:
    """Anything a view did not expect: logged with its traceback (as Django logs a 500), the transaction
    rolled back, and the client gets the envelope, never an HTML page (even with DEBUG on)."""
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    logger.error(
        "Internal Server Error: %s",
        getattr(django_request, "path", "?"),
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"status_code": 500, "request": django_request},
    )
    set_rollback()
    # The test client re-raises what this signal carries, so tests still see the original exception.
    if sys.exc_info()[1] is exc:
        got_request_exception.send(sender=None, request=django_request)
    message = _("Something went wrong on our side; it has been logged. Try again, and tell us if it persists.")
    extra = {}
    correlation_id = getattr(django_request, "correlation_id", None)
    if correlation_id:
        extra["correlation_id"] = correlation_id
    return error_response(500, "server_error", message, **extra)


def exception_handler(exc, context):
    if isinstance(exc, IdempotentReplay):
        record = exc.record
        headers = dict(record.response_headers or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(record.response_body, status=record.status_code, headers=headers)
    if isinstance(exc, DomainError):
        return error_response(exc.status_code, exc.code, exc.message, exc.fields or None, **exc.extra)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return error_response(400, "invalid", _summary(fields), fields)
    if isinstance(exc, Http404):
        message = str(exc) if str(exc) and "matches the given query" not in str(exc) else _("Not found.")
        return error_response(404, "not_found", message)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, SuspiciousOperation):  # a body too large, too many fields: Django's refusals
        return error_response(*describe_refusal(exc))

    response = drf_exception_handler(exc, context)
    if response is None:
        return _server_error(exc, context)
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    if isinstance(exc, exceptions.ValidationError):
        fields = dict(_flatten(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}))
        message = _("The request is invalid — %(problems)s") % {"problems": _summary(fields)}
        return error_response(status.HTTP_400_BAD_REQUEST, "invalid", message, fields, headers=headers)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(detail, dict):
        # simplejwt puts its sentence under "detail" and the reasons under "messages"
        message = str(detail.get("detail") or _summary(dict(_flatten(detail))))
        reasons = [str(m.get("message")) for m in detail.get("messages", []) if isinstance(m, dict)]
        if reasons:
            message = "; ".join(reasons) + (
                ". " + _("Get a new access token from /api/v1/auth/token/refresh/ (or log in again).")
            )
        code = code.get("detail", code.get("code", "error")) if isinstance(code, dict) else code
    else:
        message = str(detail)
    if isinstance(exc, exceptions.Throttled) and exc.wait:
        message = _("Too many requests; try again in %(seconds)s seconds.") % {"seconds": int(exc.wait) + 1}
    return error_response(response.status_code, str(code), message, headers=headers)
