"""Benchmark: telemetry ingest through the service path against a raw COPY of the same rows into the same table, in
the same run; then range queries over a large table.

    DATABASE_URL=postgres://… python bench/telemetry_ingest.py [--points 200000] [--batch 5000] [--series 100]
        [--query-points 100000] [--keep]

1. Ingest. An organisation with `--series` assets of one type, and a metric definition for the type (limits, rate,
   flat line; the statistical detectors on): detection runs on every point. The same `--points` rows
   (series × moments, one point per series every 10 s, values a noisy sine) go in twice, batch by batch
   (`--batch`, each batch its own transaction):
   - the floor: a binary COPY of (series_id, ts, value) straight into `iot_device_metrics`, for a second set of
     series (another organisation), nothing else;
   - the service: `assets.telemetry.services.ingest_points` (validation by position, series locks, the insert with
     its hourly and daily rollups, detection, the ingest log), from the dicts an API client sends.
   The floor runs again after the service, so that a change in the machine's load shows; the ratio is the service
   rate over the mean of the two floors.
2. Queries. `--series` series with `--query-points` points each, spread over 30 days, loaded by COPY (with their
   rollups rebuilt from them): the 30-day hourly-bucket query of one series (`queries.series_window`, what
   `GET /iot/devices/{id}/metrics?bucket=hour` runs), the same through the API's view, and for comparison the same
   buckets computed from the raw points. Median of 20 runs each, warm.
Everything it made is deleted at the end (unless --keep). Prints the load average with the figures.
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from assets.models import Asset, AssetType  # noqa: E402
from assets.telemetry import queries, services, storage  # noqa: E402
from assets.telemetry.models import Anomaly, IngestBatch, MetricDefinition, Series, TelemetrySettings  # noqa: E402
from maintenance_site import progress  # noqa: E402
from maintenance_site.events import services as event_services  # noqa: E402
from maintenance_site.events.models import Event  # noqa: E402
from maintenance_site.tenancy import SYSTEM  # noqa: E402
from maintenance_site.tenancy import services as tenancy_services  # noqa: E402
from maintenance_site.tenancy.models import Membership, Organization  # noqa: E402
from maintenance_site.tenancy.roles import Role  # noqa: E402

STEP = timedelta(seconds=10)


def organisation(tag: str, series: int, *, define: bool):
    organization = tenancy_services.create_organization(name=f"Bench telemetry {tag}", slug=f"bench-tel-{tag}")
    TelemetrySettings.objects.create(organization=organization, notify=TelemetrySettings.Notify.NONE)
    kind = AssetType.objects.create(organization=organization, name="Pump")
    assets = Asset.objects.bulk_create(
        [Asset(organization=organization, code=f"P-{n:05d}", name=f"Pump {n}", asset_type=kind) for n in range(series)]
    )
    if define:
        services.create_definition(
            organization,
            actor=SYSTEM,
            metric="temperature",
            asset_type=kind,
            unit="°C",
            warning_high=90,
            critical_high=95,
            max_rate_per_minute=30,
            flatline_minutes=60,
        )
    made = Series.objects.bulk_create(
        [Series(organization=organization, asset=asset, metric="temperature", unit="°C") for asset in assets]
    )
    return organization, assets, [s.pk for s in made]


def moments(start: datetime, count: int, step: timedelta = STEP):
    return [start + n * step for n in range(count)]


def value(n: int, k: int, rng: random.Random) -> float:
    return round(60 + 5 * math.sin(n / 360 + k) + rng.gauss(0, 0.3), 3)


def copy_rows(rows) -> None:
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {storage.TABLE} (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["bigint", "timestamptz", "float8"])
        for row in rows:
            copy.write_row(row)


def floor(series_ids, start, per_series_batch, batches, rng) -> tuple[float, int]:
    """COPY the rows batch by batch, each its own transaction; returns (seconds, rows)."""
    total, elapsed = 0, 0.0
    for b in range(batches):
        times = moments(start + b * per_series_batch * STEP, per_series_batch)
        rows = [(sid, ts, value(n, k, rng)) for n, ts in enumerate(times) for k, sid in enumerate(series_ids)]
        began = time.perf_counter()
        with transaction.atomic():
            copy_rows(rows)
        elapsed += time.perf_counter() - began
        total += len(rows)
    return elapsed, total


def service(organization, assets, start, per_series_batch, batches, rng) -> tuple[float, int, int]:
    total, elapsed, stored = 0, 0.0, 0
    with progress.bars() as bars, bars.step("service path (batches)", total=batches) as step:
        for b in range(batches):
            times = moments(start + b * per_series_batch * STEP, per_series_batch)
            points = [
                {"asset_id": asset.pk, "metric": "temperature", "ts": ts.isoformat(), "value": value(n, k, rng)}
                for n, ts in enumerate(times)
                for k, asset in enumerate(assets)
            ]
            began = time.perf_counter()
            result = services.ingest_points(organization, points, actor=SYSTEM)
            elapsed += time.perf_counter() - began
            total += len(points)
            stored += result.stored
            step.advance()
    return elapsed, total, stored


def timed(function, runs=20) -> float:
    function()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


def query_bench(series: int, points_per_series: int) -> dict:
    organization, assets, series_ids = organisation(f"q{int(time.time())}", series, define=False)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    spacing = timedelta(days=30) / points_per_series
    storage.ensure_partitions(since=storage.month_start(start))
    rng = random.Random(7)
    loaded = time.perf_counter()
    chunk = max(1, 200_000 // points_per_series) if points_per_series < 200_000 else 1
    with progress.bars() as bars, bars.step("COPY the query dataset (series)", total=series) as step:
        for first in range(0, series, chunk):
            ids = series_ids[first : first + chunk]
            with transaction.atomic():
                copy_rows(
                    (sid, start + n * spacing, value(n, k, rng))
                    for k, sid in enumerate(ids)
                    for n in range(points_per_series)
                )
            step.advance(len(ids))
    load_seconds = time.perf_counter() - loaded
    began = time.perf_counter()
    with transaction.atomic():
        storage.rebuild_rollups(series_ids, start, end)
    rollup_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {storage.TABLE}")
        cursor.execute(f"ANALYZE {storage.ROLLUPS}")
    target = series_ids[len(series_ids) // 2]
    asset = assets[len(series_ids) // 2]

    def hourly():
        window = queries.series_window(target, start, end, "hour")
        assert len(window.rows) == 720, len(window.rows)

    user = get_user_model().objects.create_user(f"bench-{organization.slug}")
    tenancy_services.add_member(organization, user, Role.VIEWER)
    client = APIClient()
    client.force_authenticate(user)
    params = {"metric": "temperature", "from": start.isoformat(), "to": end.isoformat(), "bucket": "hour"}

    def through_api():
        response = client.get(f"/api/v1/iot/devices/{asset.pk}/metrics", params)
        assert response.status_code == 200, response.content[:300]

    def from_raw():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT date_trunc('hour', ts, 'UTC') b, min(value), avg(value), max(value), count(*) "  # noqa: S608
                f"FROM {storage.TABLE} WHERE series_id = %s AND ts >= %s AND ts < %s GROUP BY b ORDER BY b",
                [target, start, end],
            )
            return cursor.fetchall()

    figures = {
        "rows": series * points_per_series,
        "load_seconds": load_seconds,
        "rollup_seconds": rollup_seconds,
        "hourly_ms": timed(hourly),
        "raw_hourly_ms": timed(from_raw, runs=5),
    }
    figures["api_ms"] = timed(through_api)
    figures["user"] = user
    figures["organization"] = organization
    figures["series_ids"] = series_ids
    return figures


def clean_up(organizations, series_ids, users) -> None:
    storage.delete_series_data(series_ids)
    for organization in organizations:
        with transaction.atomic():
            Anomaly.objects.filter(organization=organization).delete()
            IngestBatch.objects.filter(organization=organization).delete()
            Event.objects.filter(organization=organization).delete()
            Series.objects.filter(organization=organization).delete()
            MetricDefinition.history.filter(organization=organization).delete()
            MetricDefinition.objects.filter(organization=organization).delete()
            TelemetrySettings.objects.filter(organization=organization).delete()
            Asset.objects.filter(organization=organization).delete()
            AssetType.objects.filter(organization=organization).delete()
            Membership.objects.filter(organization=organization).delete()
            Organization.objects.filter(pk=organization.pk).delete()
    for user in users:
        user.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--query-points", type=int, default=100_000, help="points per series for the query test")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("The benchmark runs on PostgreSQL (DATABASE_URL=postgres://…).")
    event_services._start_dispatch = lambda: None  # the after-commit dispatch is not ingest's work

    per_series_batch = args.batch // args.series
    batches = args.points // (per_series_batch * args.series)
    tag = str(int(time.time()))
    floor_org, _, floor_ids = organisation(f"floor{tag}", args.series, define=False)
    org, assets, service_ids = organisation(f"svc{tag}", args.series, define=True)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=24)
    storage.ensure_partitions(since=storage.month_start(start))
    rng = random.Random(19)
    print(f"load average {os.getloadavg()[0]:.2f}; {batches} batches of {per_series_batch * args.series} points")
    floor_1 = floor(floor_ids, start, per_series_batch, batches // 2, rng)
    service_seconds, service_points, stored = service(org, assets, start, per_series_batch, batches, rng)
    floor_2 = floor(floor_ids, start + batches * per_series_batch * STEP, per_series_batch, batches // 2, rng)
    floor_rate = (floor_1[1] + floor_2[1]) / (floor_1[0] + floor_2[0])
    service_rate = service_points / service_seconds
    anomalies = Anomaly.objects.filter(organization=org).count()
    print(f"COPY floor, before:  {floor_1[1] / floor_1[0]:>10,.0f} points/s ({floor_1[1]:,} points)")
    print(
        f"service path:        {service_rate:>10,.0f} points/s ({service_points:,} points, {stored:,} stored, "
        f"{anomalies} anomalies)"
    )
    print(f"COPY floor, after:   {floor_2[1] / floor_2[0]:>10,.0f} points/s ({floor_2[1]:,} points)")
    print(f"service / floor:     {service_rate / floor_rate:>10.0%}   (target ≥ 30%)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    organizations, series_ids, users = [floor_org, org], floor_ids + service_ids, []
    if not args.skip_queries:
        figures = query_bench(args.series, args.query_points)
        organizations.append(figures.pop("organization"))
        users.append(figures.pop("user"))
        series_ids += figures.pop("series_ids")
        print(
            f"query dataset: {figures['rows']:,} points in {args.series} series, COPY {figures['load_seconds']:.0f} s, "
            f"rollups rebuilt in {figures['rollup_seconds']:.0f} s"
        )
        print(f"30-day hourly buckets of one series, from the rollups: {figures['hourly_ms']:.1f} ms (target < 50 ms)")
        print(f"  the same through the API (GET …/metrics?bucket=hour): {figures['api_ms']:.1f} ms")
        print(f"  the same computed from the raw points:             {figures['raw_hourly_ms']:.1f} ms")
        print(f"load average {os.getloadavg()[0]:.2f}")
    if not args.keep:
        clean_up(organizations, series_ids, users)


if __name__ == "__main__":
    main()
