"""Permission classes that resolve the organisation inside DRF and apply the role table."""

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from maintenance_site.api.authentication import membership_of
from maintenance_site.i18n import activate_for_request
from maintenance_site.tenancy.middleware import SESSION_KEY
from maintenance_site.tenancy.models import OrganizationAPIKey
from maintenance_site.tenancy.roles import Action, role_allows
from maintenance_site.tenancy.services import resolve_membership

ORGANIZATION_HEADER = "X-Organization"


def resolve_request_tenant(request):
    """Set `request.organization` and `request.membership` from the authenticated principal.

    An API key is bound to its organisation; a user names one with the X-Organization header or, in a
    browser session, with the switcher. Always validated against the user's memberships.
    """
    if getattr(request, "_tenant_resolved", False):
        return request.membership
    requested = request.headers.get(ORGANIZATION_HEADER)
    api_key = request.auth if isinstance(request.auth, OrganizationAPIKey) else None
    if api_key is not None:
        requested = str(api_key.organization_id)  # a key acts in its own organisation only
    session = getattr(request._request, "session", None)
    remembered = session.get(SESSION_KEY) if session is not None else None
    # A key's membership came with the key (one query); a user's, or a key without one, is resolved (and refused).
    membership = membership_of(api_key) if api_key is not None else None
    if membership is None:
        membership = resolve_membership(request.user, requested, default_organization_id=remembered)
    for target in (request, request._request):
        target.membership = membership
        target.organization = membership.organization
    request._tenant_resolved = True
    # A Bearer or Api-Key user is known only now: speak their language (maintenance_site.i18n) from here on; an API
    # key's service user chose none (its client's Accept-Language, else the organisation's: no query per request).
    activate_for_request(request, personal=api_key is None)
    return membership


def required_action(request, view) -> Action | None:
    if not hasattr(view, request.method.lower()):
        return None  # a method the view does not handle: DRF answers 405 once the checks pass
    per_action = getattr(view, "action_permissions", {})
    action_name = getattr(view, "action", None)
    if action_name in per_action:
        return per_action[action_name]
    if request.method in permissions.SAFE_METHODS:
        return Action.VIEW
    write_action = getattr(view, "write_action", None)
    if write_action is None:
        raise ImproperlyConfigured(f"{type(view).__name__} must set write_action or action_permissions.")
    return write_action


class RolePermission(permissions.BasePermission):
    """Authenticated, a member of the active organisation, and allowed by the role table."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        membership = resolve_request_tenant(request)  # a DomainError becomes its 400/403 response
        action = required_action(request, view)
        if action is None:
            return True
        if (
            isinstance(request.auth, OrganizationAPIKey)
            and request.auth.is_read_only
            and request.method not in permissions.SAFE_METHODS
        ):
            raise PermissionDenied(_("This API key is read-only; use a read-write key to make changes."))
        if not role_allows(membership.role, action):
            raise PermissionDenied(
                _("Your role (%(role)s) may not %(action)s.")
                % {"role": membership.get_role_display(), "action": action.label},
                code="role_forbids",
            )
        return True
