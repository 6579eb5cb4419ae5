from maintenance_site.tenancy.services import memberships_of


def active_organization(request):
    """The organisation switcher's data for templates (admin header, technician view)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    return {
        "active_membership": membership if membership else None,
        "switchable_memberships": lambda: list(memberships_of(user).order_by("organization__name")),
    }
