"""Login lockouts on every way in with a password: the admin, the technician's view, `/accounts/login/` and the
API's token endpoint.

django-axes (its database handler, so lockouts keep working while the cache is down) counts failed sign-ins per
(username, client address) and refuses that pair for AXES_COOLOFF_TIME after AXES_FAILURE_LIMIT failures, even
with the right password; a successful sign-in clears the pair's count. The client address is
`addresses.client_ip` (TRUSTED_PROXY_COUNT), so a client cannot reset its count by inventing an
`X-Forwarded-For` header. Every failed sign-in and every lockout is logged here.

What a locked-out person sees: the API answers 429 in its JSON error envelope; the admin and the technician's
view show their own login page again with the reason, also with status 429; both say how long to wait.
"""

import logging
import math

from asgiref.sync import sync_to_async
from axes.helpers import get_lockout_response
from axes.middleware import AxesMiddleware
from axes.signals import user_locked_out
from axes.utils import reset as reset_attempts
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView

from maintenance_site.security.addresses import client_ip

logger = logging.getLogger("maintenance_site.logins")

LOCKED_STATUS = 429
LOCKED_CODE = "locked_out"


def cool_off_seconds() -> int:
    cool_off = settings.AXES_COOLOFF_TIME
    return int(cool_off.total_seconds()) if cool_off else 0


def lockout_message(username: str | None) -> str:
    """The sentence a locked-out person reads: who, why, how long, and who can lift it sooner."""
    minutes = math.ceil(cool_off_seconds() / 60)
    who = f"“{username}”" if username else "this account"
    wait = f"Wait {minutes} minute{'s' if minutes != 1 else ''} and try again" if minutes else "Try again later"
    return (
        f"Too many failed sign-ins for {who} from your address, so signing in is blocked for now. "
        f"{wait}, or ask an administrator to unlock the account."
    )


def _username(request, credentials) -> str:
    value = (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD)
    if value is None:
        data = getattr(request, "data", None) or request.POST
        value = data.get(settings.AXES_USERNAME_FORM_FIELD, "") if hasattr(data, "get") else ""
    return str(value or "")[:150]


def _with_retry_after(response):
    if cool_off_seconds():
        response["Retry-After"] = str(cool_off_seconds())
    return response


def api_lockout_body(username: str) -> dict:
    return {"error": {"status": LOCKED_STATUS, "code": LOCKED_CODE, "message": lockout_message(username)}}


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the page or JSON a locked-out sign-in gets instead of the login view's answer.

    A login page (a TemplateResponse carrying the login form) is shown again with the lockout as the form's error,
    so the person stays on the page they know; anything else gets a short page of its own.
    """
    username = _username(request, credentials)
    if request.path.startswith("/api/"):
        return _with_retry_after(JsonResponse(api_lockout_body(username), status=LOCKED_STATUS))
    message = lockout_message(username)
    form = None
    if isinstance(original_response, TemplateResponse):
        form = (original_response.context_data or {}).get("form")
    if form is not None and hasattr(form, "cleaned_data"):
        form.errors.clear()  # "wrong password" would be misleading: the password was not even checked
        form.add_error(None, message)
        original_response.content = original_response.rendered_content
        original_response.status_code = LOCKED_STATUS
        return _with_retry_after(original_response)
    return _with_retry_after(render(request, "security/locked_out.html", {"message": message}, status=LOCKED_STATUS))


class LoginLockoutMiddleware(AxesMiddleware):
    """axes' middleware, whose async path (the one daphne takes) hands the lockout callable the credentials in
    place of the view's response: here the callable gets the response on both paths."""

    async def __acall__(self, request):
        response = await self.get_response(request)
        if settings.AXES_ENABLED and getattr(request, "axes_locked_out", None):
            credentials = getattr(request, "axes_credentials", None)
            response = await sync_to_async(get_lockout_response, thread_sensitive=True)(request, response, credentials)
        return response


class TokenObtainView(TokenObtainPairView):
    """`POST /api/v1/auth/token/` with a username and password: an access and a refresh token.

    Locked like every other sign-in: after too many failures for a username from one address the answer is a 429
    saying how long to wait, even for the right password; a success clears that count.
    """

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        except AuthenticationFailed:
            # axes flags the request it was given: DRF's request, not the HttpRequest its middleware looks at
            if getattr(request, "axes_locked_out", False):
                username = _username(request, None)
                headers = {"Retry-After": str(cool_off_seconds())} if cool_off_seconds() else None
                return Response(api_lockout_body(username), status=LOCKED_STATUS, headers=headers)
            raise
        if settings.AXES_RESET_ON_SUCCESS:
            # What axes does for a session sign-in (user_logged_in), without creating a session for a token client.
            reset_attempts(ip=client_ip(request), username=serializer.user.get_username())
        return Response(serializer.validated_data, status=200)


@receiver(user_login_failed, dispatch_uid="maintenance_site.logins.failed")
def log_failed_login(sender, credentials, request=None, **kwargs):
    """One warning per failed sign-in: who, from where, on which path, and how far from a lockout."""
    if request is None:
        logger.warning("Failed sign-in for %r (not through a web request).", (credentials or {}).get("username"))
        return
    failures = getattr(request, "axes_failures_since_start", None)
    logger.warning(
        "Failed sign-in for %r from %s on %s (failure %s; locked at %s).",
        _username(request, credentials),
        client_ip(request) or "an unknown address",
        request.path,
        failures if failures is not None else "?",
        settings.AXES_FAILURE_LIMIT,
    )


@receiver(user_locked_out, dispatch_uid="maintenance_site.logins.locked")
def log_lockout(sender, request, username, ip_address, **kwargs):
    logger.warning(
        "Sign-in locked for %r from %s on %s for %s seconds after repeated failures.",
        username,
        ip_address,
        getattr(request, "path", "?"),
        cool_off_seconds(),
    )
