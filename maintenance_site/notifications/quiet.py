"""When a person's non-urgent news may reach them: quiet hours and the daily digest, in their time zone.

Local times become instants by `maintenance_site.recurrence`'s rule (a time in the spring-forward gap moves forward
by the gap; a repeated time counts at its first occurrence).
"""

import datetime
import zoneinfo

from maintenance_site.recurrence import to_utc


def zone_of(profile, organization) -> zoneinfo.ZoneInfo:
    name = (profile.time_zone if profile is not None else "") or organization.time_zone
    return zoneinfo.ZoneInfo(name)


def _at(day: datetime.date, at: datetime.time, zone) -> datetime.datetime:
    return to_utc(datetime.datetime.combine(day, at), zone)


def quiet_until(profile, zone, now: datetime.datetime) -> datetime.datetime | None:
    """The end of the quiet hours `now` falls in (an aware instant), or None outside them / without any."""
    if profile is None or profile.quiet_hours_start is None or profile.quiet_hours_end is None:
        return None
    start, end = profile.quiet_hours_start, profile.quiet_hours_end
    if start == end:
        return None
    local = now.astimezone(zone)
    today = local.date()
    for day in (today - datetime.timedelta(days=1), today):
        begins = _at(day, start, zone)
        ends = _at(day if end > start else day + datetime.timedelta(days=1), end, zone)
        if begins <= now < ends:
            return ends
    return None


def next_digest(profile, zone, now: datetime.datetime) -> datetime.datetime:
    """The next digest time after `now`."""
    local = now.astimezone(zone)
    today = _at(local.date(), profile.digest_time, zone)
    return today if today > now else _at(local.date() + datetime.timedelta(days=1), profile.digest_time, zone)
