"""Reading telemetry: a series' points or buckets over a range (never more than TELEMETRY_MAX_POINTS_PER_RESPONSE),
an asset's series with their newest values, and anomalies. What the API serves, and what asset health and
diagnostics build on (`asset_series`, `latest_values`, `recent_anomalies`, `open_anomaly_counts`, `series_stats`).

Buckets: `raw` points; `minute` buckets computed from the raw points; `hour` and `day` read from the rollups
(UTC-aligned; a range starts at the bucket holding `from`). `auto` takes the finest that fits: raw when the
rollups count few enough points, else minute, hour or day."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, Max, Min, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils.translation import gettext

from assets.telemetry.models import Anomaly, Grain, Series, TelemetryPoint, TelemetryRollup

BUCKETS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
CHOICES = ("auto", "raw", "minute", "hour", "day")


class TooManyPoints(Exception):
    """The range holds more than a response may carry at this bucket; `suggestion` says what to ask instead."""

    def __init__(self, message: str, suggestion: str):
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


def cap() -> int:
    return settings.TELEMETRY_MAX_POINTS_PER_RESPONSE


def _floor(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def buckets_in(start: datetime, end: datetime, bucket: str) -> int:
    """How many buckets of this size the range touches."""
    return int((end - _floor(start, bucket)) / BUCKETS[bucket]) + 1


def coarser_than(start: datetime, end: datetime, bucket: str | None) -> str | None:
    """The finest bucket coarser than `bucket` (None: than raw) that fits the range in one response."""
    order = ["minute", "hour", "day"]
    for candidate in order[order.index(bucket) + 1 :] if bucket else order:
        if buckets_in(start, end, candidate) <= cap():
            return candidate
    return None


def _counted(series_id: int, start: datetime, end: datetime) -> int:
    """Points in the range as the hourly rollups count them (whole hours: an upper bound). One query."""
    total = TelemetryRollup.objects.filter(
        series_id=series_id, grain=Grain.HOUR, bucket__gte=_floor(start, "hour"), bucket__lt=end
    ).aggregate(points=Sum("count"))["points"]
    return total or 0


@dataclass
class Window:
    bucket: str
    rows: list[dict]


def choose_bucket(series_id: int, start: datetime, end: datetime, bucket: str) -> str:
    """The bucket a request gets: `auto` resolved; a bucket whose response would be too large refused with what to
    ask instead."""
    if bucket == "auto":
        if _counted(series_id, start, end) <= cap():
            return "raw"
        chosen = coarser_than(start, end, None)
        if chosen is None:
            raise TooManyPoints(
                gettext("Even daily buckets exceed %(limit)s for this range.") % {"limit": cap()},
                gettext("a shorter range"),
            )
        return chosen
    if bucket != "raw" and buckets_in(start, end, bucket) > cap():
        better = coarser_than(start, end, bucket)
        raise TooManyPoints(
            gettext("%(count)s %(bucket)s buckets exceed the %(limit)s a response may hold.")
            % {"count": buckets_in(start, end, bucket), "bucket": bucket, "limit": cap()},
            f"bucket={better}" if better else gettext("a shorter range"),
        )
    return bucket


def series_window(series_id: int, start: datetime, end: datetime, bucket: str) -> Window:
    """The series' points (`raw`) or buckets in [start, end), oldest first; at most `cap()` rows, else TooManyPoints
    naming the bucket to ask for."""
    bucket = choose_bucket(series_id, start, end, bucket)
    if bucket == "raw":
        rows = list(
            TelemetryPoint.objects.filter(series_id=series_id, ts__gte=start, ts__lt=end)
            .order_by("ts")
            .values("ts", "value")[: cap() + 1]
        )
        if len(rows) > cap():
            better = coarser_than(start, end, None)
            raise TooManyPoints(
                gettext("More than %(limit)s points in this range.") % {"limit": cap()},
                f"bucket={better}" if better else gettext("a shorter range"),
            )
        return Window("raw", rows)
    if bucket == "minute":
        rows = list(
            TelemetryPoint.objects.filter(series_id=series_id, ts__gte=start, ts__lt=end)
            .annotate(bucket=TruncMinute("ts", tzinfo=UTC))
            .values("bucket")
            .annotate(min=Min("value"), avg=Avg("value"), max=Max("value"), count=Count("ts"))
            .order_by("bucket")
        )
        return Window("minute", [{"ts": r.pop("bucket"), **r} for r in rows])
    grain = Grain.HOUR if bucket == "hour" else Grain.DAY
    rows = [
        {"ts": b, "min": lo, "avg": total / count if count else None, "max": hi, "count": count}
        for b, lo, hi, total, count in TelemetryRollup.objects.filter(
            series_id=series_id, grain=grain, bucket__gte=_floor(start, bucket), bucket__lt=end
        )
        .order_by("bucket")
        .values_list("bucket", "minimum", "maximum", "total", "count")
    ]
    return Window(bucket, rows)


# --- for the asset's pages, the API and asset health ----------------------------------------------------------


def asset_series(asset) -> list[Series]:
    """The asset's series (metric, unit, first and newest point), by metric."""
    return list(Series.objects.filter(asset=asset).order_by("metric"))


def latest_values(asset_ids) -> dict[int, dict[str, tuple]]:
    """Per asset id, per metric: (newest time, newest value, unit). One query."""
    found: dict[int, dict[str, tuple]] = {}
    for asset_id, metric, ts, value, unit in Series.objects.filter(asset_id__in=list(asset_ids)).values_list(
        "asset_id", "metric", "last_ts", "last_value", "unit"
    ):
        found.setdefault(asset_id, {})[metric] = (ts, value, unit)
    return found


def series_stats(series_id: int, start: datetime, end: datetime) -> dict:
    """Count, mean, minimum and maximum of a series over [start, end) from its hourly rollups (whole hours)."""
    rows = TelemetryRollup.objects.filter(
        series_id=series_id, grain=Grain.HOUR, bucket__gte=_floor(start, "hour"), bucket__lt=end
    ).values_list("count", "total", "minimum", "maximum")
    count = sum(r[0] for r in rows)
    if not count:
        return {"count": 0, "mean": None, "min": None, "max": None}
    return {
        "count": count,
        "mean": sum(r[1] for r in rows) / count,
        "min": min(r[2] for r in rows),
        "max": max(r[3] for r in rows),
    }


def recent_anomalies(organization, *, asset=None, since: datetime | None = None, limit: int = 50) -> list[Anomaly]:
    """The organisation's (or one asset's) anomalies, newest first, with their asset loaded."""
    queryset = Anomaly.objects.for_tenant(organization).select_related("asset")
    if asset is not None:
        queryset = queryset.filter(asset=asset)
    if since is not None:
        queryset = queryset.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=since))
    return list(queryset.order_by("-started_at", "-id")[:limit])


def open_anomaly_counts(asset_ids) -> dict[int, dict[str, int]]:
    """Per asset id, the number of anomalies not resolved, by severity. One query."""
    counts: dict[int, dict[str, int]] = {}
    for asset_id, severity, n in (
        Anomaly.objects.filter(asset_id__in=list(asset_ids))
        .exclude(status=Anomaly.Status.RESOLVED)
        .values_list("asset_id", "severity")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts.setdefault(asset_id, {})[severity] = n
    return counts
