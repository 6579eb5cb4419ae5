from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from maintenance_site.tenancy.middleware import SESSION_KEY
from maintenance_site.tenancy.roles import BACK_OFFICE_ROLES
from maintenance_site.tenancy.services import memberships_of


@login_required
@require_POST
def switch_organization(request):
    """Remember which of the user's organisations this session works in."""
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        return HttpResponseBadRequest(gettext("Choose an organisation."))
    if not memberships_of(request.user).filter(organization_id=organization_id).exists():
        return HttpResponseBadRequest(gettext("You are not a member of that organisation."))
    request.session[SESSION_KEY] = organization_id
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)


def works_in_back_office(user, membership) -> bool:
    """Staff of the back office: a superuser, or staff whose active membership is a back-office role."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return bool(user.is_staff and membership and membership.role in BACK_OFFICE_ROLES)


def home(request):
    """The root URL sends each person to their place: signed out, the one sign-in page (which comes back here);
    back-office staff to the admin (its home is the manager's dashboard); everyone else (technicians) to the
    technician's view."""
    if not request.user.is_authenticated:
        return redirect_to_login("/", settings.LOGIN_URL)
    if works_in_back_office(request.user, getattr(request, "membership", None) or None):
        return redirect("admin:index")
    return redirect("technician:my-work")


class BackOfficeSignInForm(AdminAuthenticationForm):
    """The admin's sign-in: a technician (or anyone without back-office access) who typed a right password is told
    where their work is, instead of being told the password is wrong."""

    def confirm_login_allowed(self, user):
        if not user.is_active:
            return super().confirm_login_allowed(user)
        if not user.is_staff:
            raise ValidationError(
                gettext(
                    "This is the back office, for managers, planners and storekeepers. Your work is in the "
                    "technician's view: sign in at /t/login/ (on your phone too)."
                ),
                code="not_back_office",
            )
