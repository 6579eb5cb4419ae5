"""The active organisation of a browser session (admin and technician view).

The API does not rely on this: Bearer and Api-Key users are only known inside DRF, where the
permission class resolves the organisation itself.
"""

from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from maintenance_site.errors import DomainError
from maintenance_site.tenancy.services import memberships_of, resolve_membership

SESSION_KEY = "active_organization_id"


def session_membership(request):
    """The membership the session acts through: the one chosen with the switcher, else the first."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    try:
        return resolve_membership(user, default_organization_id=chosen)
    except DomainError:
        return memberships_of(user).order_by("organization__name").first()


class ActiveOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: session_membership(request))
        request.organization = SimpleLazyObject(lambda: request.membership.organization if request.membership else None)
        return self.get_response(request)


class BackOfficeTimeZoneMiddleware:
    """The back office shows dates in the active organisation's time zone (maintenance_site.formats): activated for
    the admin's requests only. The API keeps answering in UTC with offsets, and the technician's view converts
    explicitly."""

    PREFIX = "/admin/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        organization = getattr(request, "organization", None) if request.path_info.startswith(self.PREFIX) else None
        if not organization:
            return self.get_response(request)
        with timezone.override(organization.zone):
            return self.get_response(request)
