"""The iCalendar feed of an organisation's upcoming maintenance windows, at a secret address
(`/api/v1/maintenance/calendar/<token>.ics`, no login: calendar apps cannot log in). The token is the
organisation's WindowFeedToken; regenerating it retires every copy of the old address."""

from datetime import timedelta

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from icalendar import Calendar, Event

from scheduling.windows.models import MaintenanceWindow, WindowFeedToken
from scheduling.windows.scope import scope_label

FEED_DAYS = 180  # how far ahead the feed reaches
PRODUCT_ID = "-//Maintenance platform//Maintenance windows//EN"


def build_calendar(organization, *, host: str = "maintenance.local", now=None) -> bytes:
    """The organisation's scheduled and running windows (occurrences of series included) as iCalendar."""
    now = now or timezone.now()
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{organization.name}: maintenance windows")
    calendar.add("x-wr-timezone", organization.time_zone)
    windows = (
        MaintenanceWindow.objects.for_tenant(organization)
        .occurrences()
        .planned()
        .filter(ends_at__gt=now, starts_at__lt=now + timedelta(days=FEED_DAYS))
        .select_related("location")
        .prefetch_related("assets")
        .order_by("starts_at", "pk")
    )
    for window in windows:
        event = Event()
        event.add("uid", f"maintenance-window-{window.pk}@{host}")
        event.add("dtstamp", window.updated_at)
        event.add("last-modified", window.updated_at)
        event.add("dtstart", window.starts_at)
        event.add("dtend", window.ends_at)
        event.add("summary", f"Maintenance: {window.title}")
        event.add("categories", [window.get_maintenance_type_display()])
        event.add("status", "CONFIRMED")
        details = [window.description.strip()] if window.description.strip() else []
        details.append(f"Type: {window.get_maintenance_type_display()}")
        details.append(f"Scope: {scope_label(window)}")
        if window.scope == MaintenanceWindow.Scope.SYSTEM:
            details.append("Changes are refused while it runs (maintenance mode).")
        if window.emergency:
            details.append(f"Emergency: {window.emergency_reason}")
        event.add("description", "\n".join(details))
        if window.location_id:
            event.add("location", window.location.name)
        calendar.add_component(event)
    return calendar.to_ical()


@require_safe
def feed(request, token: str):
    feed_token = WindowFeedToken.objects.select_related("organization").filter(token=token).first()
    if feed_token is None:
        raise Http404(_("No calendar feed at this address (it may have been regenerated)."))
    body = build_calendar(feed_token.organization, host=request.get_host().split(":")[0] or "maintenance.local")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="maintenance-windows.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
