"""The iCalendar (.ics) feed of an organisation's upcoming preventive work, at a secret, revocable URL
(`CalendarFeed`), for calendar apps that cannot log in. Built from the forecast with the `icalendar` library."""

from datetime import timedelta

from django.http import Http404, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from icalendar import Calendar, Event

from maintenance_site.errors import NotFound
from scheduling.preventive import reports, services

FEED_DAYS = 90
DEFAULT_DURATION = timedelta(hours=1)


def calendar_for(organization, *, days: int = FEED_DAYS, now=None) -> bytes:
    """The organisation's preventive occurrences over the next `days` days as an iCalendar document. Each event's
    UID is stable (schedule, asset, due time), so calendar apps update events instead of duplicating them."""
    now = now or timezone.now()
    plan = reports.forecast(organization, days=days, now=now)
    calendar = Calendar()
    calendar.add("prodid", "-//Maintenance platform//Preventive maintenance//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{organization.name}: preventive maintenance")
    calendar.add("x-wr-timezone", organization.time_zone)
    for occurrence in plan["occurrences"]:
        due = occurrence["due_at"]
        event = Event()
        event.add(
            "uid", f"pm-{occurrence['schedule']}-{occurrence['asset'] or 0}-{due:%Y%m%dT%H%M%SZ}@{organization.slug}"
        )
        event.add("dtstamp", now)
        event.add("dtstart", due)
        minutes = occurrence["estimated_minutes"]
        event.add("dtend", due + (timedelta(minutes=minutes) if minutes else DEFAULT_DURATION))
        summary = occurrence["title"]
        if occurrence["asset_code"] and occurrence["asset_code"] not in summary:
            summary += f" ({occurrence['asset_code']})"
        event.add("summary", summary)
        lines = [
            f"Preventive schedule: {occurrence['schedule_name']}",
            f"Local time: {occurrence['local_due']} ({occurrence['time_zone']})",
        ]
        if occurrence["asset_name"]:
            lines.append(f"Asset: {occurrence['asset_code']} {occurrence['asset_name']}")
        for part in occurrence["parts"]:
            lines.append(f"Part: {part['quantity']} × {part['sku']}")
        if occurrence["generated"]:
            lines.append("The work order is already created.")
        event.add("description", "\n".join(lines))
        event.add("categories", ["Preventive maintenance"])
        calendar.add_component(event)
    return calendar.to_ical()


def feed_url(request, token: str) -> str:
    """The absolute URL of a feed's token (shown once, when the feed is created)."""
    try:
        path = reverse("preventive-calendar-feed", args=[token])
    except NoReverseMatch:
        path = f"/preventive/calendar/{token}.ics"
    return request.build_absolute_uri(path)


@require_GET
def calendar_feed(request, token: str):
    """`GET /preventive/calendar/<token>.ics`: no login, the token is the key; unknown or revoked → 404."""
    try:
        feed = services.calendar_feed_for_token(token)
    except NotFound:
        raise Http404(_("No such calendar feed.")) from None
    response = HttpResponse(calendar_for(feed.organization), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{feed.organization.slug}-preventive.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
