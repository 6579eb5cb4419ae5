"""Authenticated file downloads: attachments are stored outside any public URL and served only to
members of the organisation they belong to (the active one of the session); anyone else gets a 404,
never a hint that the file exists."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from maintenance_site.tenancy.roles import Action, role_allows
from workorders.models import Attachment

URL_NAME = "attachment-file"


def attachment_url(attachment: Attachment) -> str | None:
    """The download address of an attachment, or None while the URL is not mounted."""
    try:
        return reverse(URL_NAME, args=[attachment.token])
    except NoReverseMatch:
        return None


def _visible_attachments(request):
    attachments = Attachment.objects.all()
    if request.user.is_superuser:
        return attachments
    membership = getattr(request, "membership", None)
    if not membership or not role_allows(membership.role, Action.VIEW):
        return attachments.none()
    return attachments.filter(organization_id=membership.organization_id)


@require_safe
@login_required
def download_attachment(request, token: str):
    """Stream an attachment of the active organisation (a work order's or a work request's)."""
    attachment = _visible_attachments(request).filter(token=token).first()
    if attachment is None or not attachment.file:
        raise Http404(_("No such attachment."))
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404(_("The attachment's file is missing.")) from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.original_name or "attachment",
        content_type=attachment.content_type or "application/octet-stream",
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
