"""Reliability figures from an asset's failure history: what counts as a failure, MTBF, and the next-failure
window. The one definition of MTBF in the code base (the analytics KPI registry should call `mtbf_hours`, not
define another).

A failure is a corrective or emergency work order on the asset (its creation time is when the failure was
reported)."""

import math
from datetime import datetime, timedelta

from workorders.models import WorkOrder

FAILURE_TYPES = (WorkOrder.Type.CORRECTIVE, WorkOrder.Type.EMERGENCY)


def failure_times(asset_ids, since: datetime) -> dict[int, list[datetime]]:
    """The failures of each asset since `since`, oldest first: one query whatever the number of assets."""
    times: dict[int, list[datetime]] = {}
    rows = (
        WorkOrder.objects.filter(asset_id__in=list(asset_ids), type__in=FAILURE_TYPES, created_at__gte=since)
        .order_by("asset_id", "created_at")
        .values_list("asset_id", "created_at")
    )
    for asset_id, created_at in rows:
        times.setdefault(asset_id, []).append(created_at)
    return times


def mtbf_hours(failures: int, period_hours: float) -> float | None:
    """Mean time between failures over a period: the period's hours divided by its failures (None without any)."""
    if failures <= 0 or period_hours <= 0:
        return None
    return period_hours / failures


def next_failure_window(times: list[datetime], now: datetime, *, trend_factor: float = 1.0) -> dict | None:
    """When the next failure may come, from the intervals between the asset's failures (at least two failures):
    the last failure plus the mean interval (the MTBF of that span) times `trend_factor` (below 1 when the current
    trend — open anomalies, failing diagnostics — brings it forward), ± one standard deviation, never before now.
    Confidence grows with the number of intervals and falls with their spread. None when history is too short."""
    if len(times) < 2:
        return None
    intervals = [(b - a).total_seconds() / 3600 for a, b in zip(times, times[1:], strict=False)]
    mean = sum(intervals) / len(intervals)
    spread = math.sqrt(sum((x - mean) ** 2 for x in intervals) / len(intervals))
    expected = times[-1] + timedelta(hours=mean * trend_factor)
    start = max(now, expected - timedelta(hours=spread))
    end = max(start, expected + timedelta(hours=spread))
    variation = spread / mean if mean else 1.0
    if len(intervals) >= 4 and variation <= 0.5:
        confidence = "high"
    elif len(intervals) >= 2 and variation <= 1.0:
        confidence = "medium"
    else:
        confidence = "low"
    return {
        "expected_at": max(now, expected),
        "earliest": start,
        "latest": end,
        "mtbf_hours": round(mean, 1),
        "trend_factor": trend_factor,
        "confidence": confidence,
        "method": (
            f"Mean time between the last {len(times)} failures (MTBF {mean:.0f} h) after the latest failure, "
            f"× {trend_factor:g} for the current trend, ± one standard deviation ({spread:.0f} h)."
        ),
    }
