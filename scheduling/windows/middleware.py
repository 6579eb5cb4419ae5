"""`MaintenanceModeMiddleware`: the technician view's half of maintenance mode.

Place it after `maintenance_site.tenancy.middleware.ActiveOrganizationMiddleware` (itself after
AuthenticationMiddleware): it needs the session's user and organisation. While the organisation (or the
platform) is in maintenance mode, writes under /t/ get a 503 with `Retry-After` (seconds until the expected
end; none when an operator switched the mode on without an end): a small page, or `{"error": {...}}` when the
client asks for JSON. Reads work; members whose role may bypass maintenance keep writing; signing in and
out and choosing the organisation (/t/login/, /t/logout/, /t/organization/) are never refused.

The API (/api/) is gated inside DRF by `scheduling.windows.permissions.NotInMaintenanceMode`, where token users are
known. Login, the public problem reports (/report/) and the admin (which shows a banner) are never refused.
"""

from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from maintenance_site.tenancy.middleware import session_membership
from scheduling.windows.mode import may_bypass, mode_state

GATED_PREFIXES = ("/t/",)
# Signing in and out and choosing the organisation keep working.
EXEMPT_PREFIXES = ("/t/login/", "/t/logout/", "/t/organization/")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _membership(request):
    membership = getattr(request, "membership", None)
    if membership is None and hasattr(request, "session"):
        membership = session_membership(request)
    return membership if membership else None


def maintenance_response(request, state) -> HttpResponse:
    """The 503 for a refused write: JSON for API-like clients, else a small page."""
    retry_after = state.retry_after()
    wants_json = (
        "application/json" in request.headers.get("Accept", "")
        or request.content_type == "application/json"
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )
    if wants_json:
        body = {
            "error": {
                "status": 503,
                "code": "maintenance_mode",
                "message": state.message(),
                "expected_end": state.expected_end,
            }
        }
        response = JsonResponse(body, status=503)
    else:
        page = render_to_string("scheduling/maintenance_503.html", {"state": state, "retry_after": retry_after})
        response = HttpResponse(page, status=503)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


class MaintenanceModeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method in UNSAFE_METHODS
            and request.path.startswith(GATED_PREFIXES)
            and not request.path.startswith(EXEMPT_PREFIXES)
        ):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                membership = _membership(request)
                organization = membership.organization if membership is not None else None
                state = mode_state(organization)
                if state.active and not may_bypass(user, membership, state):
                    return maintenance_response(request, state)
        return self.get_response(request)
