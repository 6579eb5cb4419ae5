"""Asset health's charts: server-rendered SVG for the technician's phone (no script, readable offline from the
cache), and the back office's asset-health page, drawn by the admin theme's chart component (Chart.js inside
django-unfold: the admin's one chart approach, as `maintenance_site.dashboard`)."""

import json
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from assets.telemetry.models import Anomaly, Grain, MetricDefinition, Series, TelemetryRollup
from maintenance_site import formats
from maintenance_site.dashboard import PRIMARY, SECONDARY
from workorders.health.models import AssetHealth, DiagnosticResult, HealthSnapshot

WIDTH, HEIGHT = 200, 48


def sparkline(values: list[float], low: float = 0.0, high: float = 100.0) -> str:
    """The `points` of an SVG polyline drawing `values` left to right on a WIDTH × HEIGHT box, `low` at the
    bottom and `high` at the top ("" with fewer than two values)."""
    if len(values) < 2:
        return ""
    span = (high - low) or 1.0
    step = WIDTH / (len(values) - 1)
    return " ".join(
        f"{n * step:.1f},{HEIGHT - (min(max(v, low), high) - low) / span * HEIGHT:.1f}" for n, v in enumerate(values)
    )


def asset_panel(asset, days: int = 30) -> dict:
    """What the technician's asset page shows of health: the stored score and risk, the open anomalies (at most
    five, newest first) and the score's trend as sparkline points. Three queries."""
    health = AssetHealth.objects.filter(asset=asset).first()
    anomalies = list(
        Anomaly.objects.filter(asset=asset, status__in=(Anomaly.Status.OPEN, Anomaly.Status.ACKNOWLEDGED)).order_by(
            "-started_at", "-id"
        )[:5]
    )
    scores = list(
        HealthSnapshot.objects.filter(asset=asset, computed_at__gte=timezone.now() - timedelta(days=days))
        .order_by("-computed_at")
        .values_list("score", flat=True)[:200]
    )
    scores.reverse()
    return {"health": health, "anomalies": anomalies, "points": sparkline(scores), "width": WIDTH, "height": HEIGHT}


# --- the back office: charts drawn by the theme's chart component ------------------------------------------------

RANGES = (7, 30, 90, 365)  # the ranges the asset-health page offers, in days
DEFAULT_RANGE = 30
RISK_LIMITS = (("Low ≥ 80", 80, "#16a34a"), ("Medium ≥ 60", 60, "#f59e0b"), ("High ≥ 40", 40, "#dc2626"))
LIMIT_COLOURS = {"warning": "#f59e0b", "critical": "#dc2626"}
SEVERITY_COLOURS = {"critical": "#dc2626", "warning": "#f59e0b"}


def _limit(label: str, value: float, count: int, colour: str) -> dict:
    """A limit as a flat dashed line across the chart (a dataset of `count` equal points)."""
    return {
        "label": label,
        "data": [value] * count,
        "borderColor": colour,
        "borderDash": [6, 4],
        "borderWidth": 1,
        "pointRadius": 0,
        "fill": False,
    }


def _chart(labels: list[str], datasets: list[dict], options: dict | None = None) -> dict:
    """A chart for the theme's component; the time axis shows a few unrotated labels, readable on a phone."""
    options = options or {}
    scales = options.setdefault("scales", {})
    scales.setdefault("x", {})["ticks"] = {"maxRotation": 0, "autoSkip": True, "maxTicksLimit": 4}
    return {
        "data": json.dumps({"labels": labels, "datasets": datasets}),
        "options": json.dumps(options),
        "points": len(labels),
    }


def admin_charts(asset, days: int = DEFAULT_RANGE, now=None) -> dict:
    """What the back office's asset-health page draws with the theme's chart component (Chart.js inside
    django-unfold, the admin's one chart approach, as `maintenance_site.dashboard`): the health score over the last
    `days` with the risk levels' limits drawn, the anomalies that started each day by severity, and each metric's
    mean, minimum and maximum per day (per hour over 7 days or less) with its warning and critical limits; and the
    open anomalies and the latest diagnostic results beside them. Seven queries whatever the range and history."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    zone = timezone.get_current_timezone()

    snapshots = list(
        HealthSnapshot.objects.filter(asset=asset, computed_at__gte=since, computed_at__lte=now)
        .order_by("computed_at")
        .values_list("computed_at", "score", "risk")
    )
    labels = [formats.date_time(moment, zone) for moment, _, _ in snapshots]
    score = {
        "label": "Health score",
        "data": [value for _, value, _ in snapshots],
        "borderColor": PRIMARY,
        "backgroundColor": PRIMARY,
        "tension": 0.2,
    }
    health = _chart(
        labels,
        [score, *(_limit(label, value, len(labels), colour) for label, value, colour in RISK_LIMITS)],
        {"scales": {"y": {"min": 0, "max": 100}}},
    )
    health["risks"] = [risk for _, _, risk in snapshots]

    day_keys = [(since + timedelta(days=n)).astimezone(zone).date() for n in range(days + 1)]
    counts = {(day, severity): 0 for day in day_keys for severity in SEVERITY_COLOURS}
    for started_at, severity in Anomaly.objects.filter(asset=asset, started_at__gte=since).values_list(
        "started_at", "severity"
    ):
        key = (started_at.astimezone(zone).date(), severity)
        if key in counts:
            counts[key] += 1
    anomalies = _chart(
        [formats.date(day) for day in day_keys],
        [
            {
                "label": severity.capitalize(),
                "data": [counts[(day, severity)] for day in day_keys],
                "backgroundColor": c,
            }
            for severity, c in SEVERITY_COLOURS.items()
        ],
        {"scales": {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}}}},
    )

    series = list(Series.objects.filter(asset=asset).order_by("metric"))
    grain = Grain.HOUR if days <= 7 else Grain.DAY
    rollups: dict[int, list] = {}
    for row in (
        TelemetryRollup.objects.filter(series_id__in=[s.pk for s in series], grain=grain, bucket__gte=since)
        .order_by("series_id", "bucket")
        .values_list("series_id", "bucket", "count", "total", "minimum", "maximum")
    ):
        rollups.setdefault(row[0], []).append(row[1:])
    definitions = {}
    for definition in MetricDefinition.objects.filter(
        organization_id=asset.organization_id, metric__in=[s.metric for s in series]
    ).filter(
        Q(asset=asset)
        | Q(asset_type_id=asset.asset_type_id, asset__isnull=True)
        | Q(asset__isnull=True, asset_type__isnull=True)
    ):
        rank = 0 if definition.asset_id else 1 if definition.asset_type_id else 2
        if definition.metric not in definitions or rank < definitions[definition.metric][0]:
            definitions[definition.metric] = (rank, definition)
    metrics = []
    for s in series:
        rows = rollups.get(s.pk, [])
        show = (lambda b: formats.date_time(b, zone)) if grain == Grain.HOUR else (lambda b: formats.date(b))
        labels = [show(bucket) for bucket, *_ in rows]
        datasets = [
            {
                "label": "Mean",
                "data": [round(total / count, 3) if count else None for _, count, total, _, _ in rows],
                "borderColor": PRIMARY,
                "backgroundColor": PRIMARY,
                "tension": 0.2,
            },
            {"label": "Minimum", "data": [low for *_, low, _ in rows], "borderColor": SECONDARY, "pointRadius": 0},
            {"label": "Maximum", "data": [high for *_, high in rows], "borderColor": SECONDARY, "pointRadius": 0},
        ]
        definition = definitions.get(s.metric, (None, None))[1]
        if definition is not None:
            for level in ("warning", "critical"):
                for side in ("low", "high"):
                    value = getattr(definition, f"{level}_{side}")
                    if value is not None:
                        datasets.append(
                            _limit(f"{level.capitalize()} {side} {value:g}", value, len(labels), LIMIT_COLOURS[level])
                        )
        chart = _chart(labels, datasets)
        chart.update(metric=s.metric, unit=s.unit, key=f"metric-{s.pk}")
        metrics.append(chart)

    open_anomalies = list(
        Anomaly.objects.filter(asset=asset, status__in=(Anomaly.Status.OPEN, Anomaly.Status.ACKNOWLEDGED)).order_by(
            "-started_at", "-id"
        )[:20]
    )
    diagnostics = list(DiagnosticResult.objects.filter(asset=asset).order_by("-created_at", "-id")[:20])
    return {
        "days": days,
        "ranges": RANGES,
        "health": health,
        "anomalies": anomalies,
        "metrics": metrics,
        "open_anomalies": open_anomalies,
        "diagnostics": diagnostics,
    }
