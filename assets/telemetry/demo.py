"""Demo telemetry: metric definitions for pumps and the compressor, and a month of readings every 15 minutes for
three assets, through the ingest service. Cooling water pump 2 (PMP-002) drifts towards failure: its bearing
warms up over the last week until it crosses its warning and then its critical limit, so the demo shows anomalies."""

import math
import random
from datetime import timedelta

from django.utils import timezone

from assets.models import Asset, AssetType
from assets.telemetry import services
from assets.telemetry.models import MetricDefinition, Series
from maintenance_site.tenancy import SYSTEM

DAYS = 30
STEP = timedelta(minutes=15)


def _definitions(organization) -> None:
    pump = AssetType.objects.filter(organization=organization, name="Pump").first()
    compressor = AssetType.objects.filter(organization=organization, name="Compressor").first()
    specs = [
        (
            pump,
            "bearing_temperature",
            "Bearing temperature",
            "°C",
            {
                "warning_high": 75,
                "critical_high": 85,
                "sensor_min": -40,
                "sensor_max": 200,
                "max_rate_per_minute": 2,
                "flatline_minutes": 240,
            },
        ),
        (
            pump,
            "vibration",
            "Vibration velocity (RMS)",
            "mm/s",
            {"warning_high": 7.1, "critical_high": 11, "sensor_min": 0, "sensor_max": 50},
        ),
        (
            compressor,
            "discharge_pressure",
            "Discharge pressure",
            "bar",
            {"warning_low": 6, "critical_low": 5, "warning_high": 9.5, "critical_high": 10},
        ),
    ]
    for asset_type, metric, label, unit, limits in specs:
        if asset_type is None or MetricDefinition.objects.filter(asset_type=asset_type, metric=metric).exists():
            continue
        services.create_definition(
            organization,
            actor=SYSTEM,
            asset_type=asset_type,
            metric=metric,
            label=label,
            unit=unit,
            warmup_points=200,  # two days of points: the baseline has seen a daily cycle before judging
            clear_after_minutes=120,
            **limits,
        )


def _points(asset, now, rng: random.Random, failing: bool) -> list[dict]:
    points = []
    start = now - timedelta(days=DAYS)
    count = int(timedelta(days=DAYS) / STEP)
    for n in range(count):
        ts = start + n * STEP
        daily = math.sin(2 * math.pi * (ts.hour + ts.minute / 60) / 24)
        temperature = 58 + 3 * daily + rng.gauss(0, 0.6)
        vibration = 2.8 + 0.2 * daily + rng.gauss(0, 0.15)
        if failing:
            days_left = (now - ts) / timedelta(days=1)
            if days_left < 7:
                wear = (7 - days_left) / 7
                temperature += 30 * wear**2
                vibration += 9 * wear**3
        iso = ts.isoformat()
        points.append(
            {"asset_id": asset.pk, "metric": "bearing_temperature", "ts": iso, "value": round(temperature, 2)}
        )
        points.append({"asset_id": asset.pk, "metric": "vibration", "ts": iso, "value": round(vibration, 3)})
    return points


def _pressure(asset, now, rng: random.Random) -> list[dict]:
    start = now - timedelta(days=DAYS)
    count = int(timedelta(days=DAYS) / STEP)
    return [
        {
            "asset_id": asset.pk,
            "metric": "discharge_pressure",
            "ts": (start + n * STEP).isoformat(),
            "value": round(7.5 + rng.gauss(0, 0.1), 3),
            "unit": "bar",
        }
        for n in range(count)
    ]


def seed(organization, users):
    _definitions(organization)
    assets = {
        a.code: a for a in Asset.objects.filter(organization=organization, code__in=["PMP-001", "PMP-002", "CMP-001"])
    }
    if not assets or Series.objects.filter(organization=organization).exists():
        return
    now = timezone.now().replace(second=0, microsecond=0)
    rng = random.Random(19)
    points = []
    if "PMP-001" in assets:
        points += _points(assets["PMP-001"], now, rng, failing=False)
    if "PMP-002" in assets:
        points += _points(assets["PMP-002"], now, rng, failing=True)
    if "CMP-001" in assets:
        points += _pressure(assets["CMP-001"], now, rng)
    points.sort(key=lambda point: point["ts"])
    for first in range(0, len(points), services.MAX_POINTS):
        services.ingest_points(organization, points[first : first + services.MAX_POINTS], actor=SYSTEM)
