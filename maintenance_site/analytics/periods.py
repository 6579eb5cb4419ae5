"""Periods in the organisation's local days, their buckets (day, week, month), and the scope of a question.

A period [from, to] is whole local days in the organisation's time zone: from local midnight of `from` to local
midnight after `to`, converted to UTC (so a DST day is 23 or 25 hours long). Buckets are local days, ISO weeks
(Monday first) or calendar months, cut at the period's bounds; a bucket is named by the local date it starts on
(the first bucket keeps the name of its whole week or month), the same date SQL's `date_trunc` in that time zone
gives, so a provider may group in SQL and the names match.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils.translation import gettext as _

from maintenance_site.errors import InvalidInput

INTERVALS = ("day", "week", "month")
MAX_BUCKETS = 400  # a trend's points: a year by day, eight years by week, thirty by month
MAX_DAYS = 366 * 20  # twenty years: anything longer is a typing mistake
DEFAULT_DAYS = 30
EARLIEST, LATEST = date(1970, 1, 1), date(2199, 12, 31)  # the dates a period may name (no overflow at either end)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment of local midnight starting `day` (midnight exists in every zone the platform knows)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Scope:
    """What a figure is about: an organisation, a period [start, end) in UTC made of its local days, and filters
    (location subtree ids, asset type, asset, team). `now` caps what is still going on."""

    organization: object
    first_day: date
    last_day: date
    now: datetime
    location_ids: tuple | None = None
    asset_type_id: int | None = None
    asset_id: int | None = None
    team_id: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.organization.time_zone)

    @property
    def start(self) -> datetime:
        return local_midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.last_day + timedelta(days=1), self.zone)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def previous(self) -> "Scope":
        """The period of the same length just before this one (a tile's comparison)."""
        days = timedelta(days=self.days)
        return Scope(
            self.organization,
            self.first_day - days,
            self.first_day - timedelta(days=1),
            self.now,
            self.location_ids,
            self.asset_type_id,
            self.asset_id,
            self.team_id,
        )

    def filters(self) -> dict:
        return {
            "location": list(self.location_ids) if self.location_ids is not None else None,
            "asset_type": self.asset_type_id,
            "asset": self.asset_id,
            "team": self.team_id,
        }


def period(organization, first_day: date | None, last_day: date | None, now: datetime) -> tuple[date, date]:
    """The period's days: both given, or `DEFAULT_DAYS` ending today (local), or starting on `first_day`. A 400
    that says what to ask instead when `from` is after `to` or the period is absurdly long."""
    for name, day in (("from", first_day), ("to", last_day)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput(
                _("Give %(name)s between %(earliest)s and %(latest)s.")
                % {"name": name, "earliest": EARLIEST, "latest": LATEST},
                fields={name: [_("Between %(earliest)s and %(latest)s.") % {"earliest": EARLIEST, "latest": LATEST}]},
            )
    today = now.astimezone(ZoneInfo(organization.time_zone)).date()
    if last_day is None:
        last_day = today if first_day is None else max(first_day, min(today, first_day + timedelta(days=364)))
    if first_day is None:
        first_day = last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise InvalidInput(
            _("“from” (%(first)s) is after “to” (%(last)s): give from ≤ to, both local dates (YYYY-MM-DD).")
            % {"first": first_day, "last": last_day},
            fields={"from": [_("After “to”.")]},
        )
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise InvalidInput(
            _("A period is at most %(years)s years; ask for a shorter one.") % {"years": MAX_DAYS // 366},
            fields={"to": [_("Period too long.")]},
        )
    return first_day, last_day


def bucket_start(day: date, interval: str) -> date:
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(day: date, interval: str) -> date:
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def bucket_count(first_day: date, last_day: date, interval: str) -> int:
    if interval == "day":
        return (last_day - first_day).days + 1
    if interval == "week":
        return (bucket_start(last_day, "week") - bucket_start(first_day, "week")).days // 7 + 1
    return (last_day.year - first_day.year) * 12 + last_day.month - first_day.month + 1


def check_interval(first_day: date, last_day: date, interval: str) -> None:
    """A 400 for an unknown interval or too many buckets, saying what to ask instead."""
    if interval not in INTERVALS:
        raise InvalidInput(
            _("“%(interval)s” is not an interval; use one of %(intervals)s.")
            % {"interval": interval, "intervals": ", ".join(INTERVALS)},
            fields={"interval": [_("One of %(choices)s.") % {"choices": ", ".join(INTERVALS)}]},
        )
    count = bucket_count(first_day, last_day, interval)
    if count > MAX_BUCKETS:
        wider = [i for i in INTERVALS if bucket_count(first_day, last_day, i) <= MAX_BUCKETS]
        numbers = {"count": count, "interval": interval, "limit": MAX_BUCKETS}
        if wider:
            message = _("That is %(count)s points by %(interval)s; a trend has at most %(limit)s: ask by %(wider)s.")
            numbers["wider"] = wider[0]
        else:
            message = _(
                "That is %(count)s points by %(interval)s; a trend has at most %(limit)s: ask for a shorter period."
            )
        raise InvalidInput(
            message % numbers,
            fields={"interval": [_("Too many points (%(count)s > %(limit)s).") % numbers]},
        )


@dataclass(frozen=True)
class Bucket:
    """One point of a trend: its name (the local date its day, week or month starts) and its UTC bounds, cut at
    the period's bounds."""

    key: date
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def buckets(scope: Scope, interval: str | None) -> list[Bucket]:
    """The period's buckets by `interval`; None: the whole period as one bucket named None."""
    if interval is None:
        return [Bucket(None, scope.start, scope.end)]
    zone, out, day = scope.zone, [], scope.first_day
    while day <= scope.last_day:
        following = _next(bucket_start(day, interval), interval)
        last = min(following - timedelta(days=1), scope.last_day)
        out.append(
            Bucket(bucket_start(day, interval), local_midnight(day, zone), local_midnight(last + timedelta(1), zone))
        )
        day = following
    return out


def scope_q(
    scope: Scope,
    *,
    asset: str | None = None,
    asset_type: str | None = None,
    location: str | None = None,
    team: str | None = None,
):
    """The scope's filters as a Q over a model's field paths (None: the filter does not apply to that model)."""
    q = Q()
    if asset and scope.asset_id is not None:
        q &= Q(**{asset: scope.asset_id})
    if asset_type and scope.asset_type_id is not None:
        q &= Q(**{asset_type: scope.asset_type_id})
    if location and scope.location_ids is not None:
        q &= Q(**{f"{location}__in": scope.location_ids})
    if team and scope.team_id is not None:
        q &= Q(**{team: scope.team_id})
    return q


def trunc(field_name: str, interval: str, zone: ZoneInfo):
    """SQL truncation of a moment to its local day, ISO week or month: the bucket keys of `buckets`."""
    return {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}[interval](field_name, tzinfo=zone)


def bucket_key(value, zone: ZoneInfo) -> date:
    """The bucket key (a local date) of what `trunc` returned."""
    if isinstance(value, datetime):
        return value.astimezone(zone).date() if value.tzinfo else value.date()
    return value
