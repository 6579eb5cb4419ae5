"""Server-rendered charts for the technician's phone: SVG with no script, readable offline from the cache."""

from datetime import timedelta

from django.utils import timezone

from assets.telemetry.models import Anomaly
from workorders.health.models import AssetHealth, HealthSnapshot

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
