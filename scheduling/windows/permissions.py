"""`NotInMaintenanceMode`: the API's half of maintenance mode (token and API-key users are only known
inside DRF, so the API is gated here rather than in a Django middleware).

Listed after RolePermission in REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"], so the organisation is already
resolved and the role already checked. While the request's organisation (or the platform) is in maintenance
mode, writes (POST, PUT, PATCH, DELETE) get a 503 `{"error": {...}}` with `Retry-After` (seconds until the
expected end; absent when an operator switched the mode on without an end). Reads keep working, and so do
members whose role may `bypass_maintenance` (superusers only during a platform maintenance), and the views
that leave maintenance mode: those with `allowed_during_maintenance = True`, or whose current action is in
`allowed_during_maintenance_actions`.
"""

from django.utils.translation import gettext_lazy
from rest_framework import permissions, status
from rest_framework.exceptions import APIException

from maintenance_site.api.permissions import resolve_request_tenant
from scheduling.windows.mode import ModeState, may_bypass, mode_state


class MaintenanceModeActive(APIException):
    """503 while in maintenance mode. DRF's handler turns `wait` into the Retry-After header, which the
    project's exception handler keeps."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "maintenance_mode"
    default_detail = gettext_lazy("The platform is in maintenance mode: changes are refused until it ends.")

    def __init__(self, state: ModeState):
        super().__init__(detail=state.message(), code=self.default_code)
        self.wait = state.retry_after()
        self.state = state


def exempt(view) -> bool:
    if getattr(view, "allowed_during_maintenance", False):
        return True
    return getattr(view, "action", None) in getattr(view, "allowed_during_maintenance_actions", ())


class NotInMaintenanceMode(permissions.BasePermission):
    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS or exempt(view):
            return True
        if not (request.user and request.user.is_authenticated):
            return True  # authentication and the role table answer first
        membership = resolve_request_tenant(request)
        state = mode_state(membership.organization)
        if not state.active or may_bypass(request.user, membership, state):
            return True
        raise MaintenanceModeActive(state)
