from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from maintenance_site.tenancy.middleware import SESSION_KEY
from maintenance_site.tenancy.services import memberships_of


@login_required
@require_POST
def switch_organization(request):
    """Remember which of the user's organisations this session works in."""
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        return HttpResponseBadRequest("Choose an organisation.")
    if not memberships_of(request.user).filter(organization_id=organization_id).exists():
        return HttpResponseBadRequest("You are not a member of that organisation.")
    request.session[SESSION_KEY] = organization_id
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)
