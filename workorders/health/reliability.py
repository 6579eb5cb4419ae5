"""Reliability figures from an asset's failure history for asset health: its failures, its MTBF and the next-failure
window. Nothing is defined here: a failure and MTBF are the analytics definitions
(`maintenance_site.analytics.definitions`: a failure is an unscheduled downtime, MTBF is up hours ÷ failures,
`definitions.mtbf_hours`), computed by the same provider as `/analytics/device-performance`
(`workorders.analytics.downtime_kpis`), so the two can never disagree.

`FAILURE_TYPES` names the reactive work (corrective, emergency) the health score's `failures` term counts; that
term is reactive work, not the MTBF's failures."""

import math
from datetime import datetime, timedelta

from maintenance_site.analytics import services as analytics
from maintenance_site.analytics.definitions import REACTIVE_TYPES
from workorders import analytics as work_analytics

FAILURE_TYPES = REACTIVE_TYPES
WINDOW_DAYS = 365  # the history a prediction reads: the last 365 local days, today included


def window(organization, now: datetime):
    """The analytics scope of a prediction: the organisation's last WINDOW_DAYS local days up to now."""
    today = now.astimezone(organization.zone).date()
    return analytics.scope_for(organization, first_day=today - timedelta(days=WINDOW_DAYS - 1), last_day=today, now=now)


def failure_history(organization, now: datetime) -> tuple[dict[int, list[datetime]], dict[int, float | None]]:
    """Per asset of the organisation, over `window`: its failures (start times, oldest first) and its MTBF in
    hours, the `mtbf` KPI of device performance per asset. Three queries whatever the number of assets."""
    scope = window(organization, now)
    times = work_analytics.failure_starts(organization, scope.start, min(scope.end, now))
    mtbf = work_analytics.downtime_kpis(scope, frozenset({"mtbf"}), group_by="asset")["mtbf"]
    return times, mtbf


def next_failure_window(
    times: list[datetime], now: datetime, *, mtbf_hours: float | None, trend_factor: float = 1.0
) -> dict | None:
    """When the next failure may come: the last failure plus the asset's MTBF (the analytics KPI over the window)
    times `trend_factor` (below 1 when the current trend — open anomalies, failing diagnostics — brings it
    forward), ± one standard deviation of the intervals between its failures, never before now. Confidence grows
    with the number of intervals and falls with their spread. None with fewer than two failures (no spread to
    speak of) or no MTBF."""
    if len(times) < 2 or not mtbf_hours:
        return None
    intervals = [(b - a).total_seconds() / 3600 for a, b in zip(times, times[1:], strict=False)]
    mean = sum(intervals) / len(intervals)
    spread = math.sqrt(sum((x - mean) ** 2 for x in intervals) / len(intervals))
    expected = times[-1] + timedelta(hours=mtbf_hours * trend_factor)
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
        "mtbf_hours": round(mtbf_hours, 1),
        "trend_factor": trend_factor,
        "confidence": confidence,
        "method": (
            f"MTBF over the last {WINDOW_DAYS} days ({mtbf_hours:.0f} h: up hours ÷ {len(times)} failures, the "
            f"analytics definition) after the latest failure, × {trend_factor:g} for the current trend, ± one "
            f"standard deviation of the intervals between failures ({spread:.0f} h)."
        ),
    }
