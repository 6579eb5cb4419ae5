"""Benchmark: the scenario board's resource history and the platform stream (issue 28).

    DATABASE_URL=postgres://…/maint_x [REDIS_URL=redis://…] python bench/scenario_board.py [--repeat 5]

Inside one transaction that is rolled back at the end (nothing stays), it fills a full retention of samples for one
host (RESOURCE_SAMPLE_RETENTION_HOURS at RESOURCE_SAMPLE_INTERVAL: 10,080 rows with the defaults) and measures, as
the median of --repeat runs after a warm-up:

- `usage_history("7d")` (the board's widest window: the host, its week of rows, averaged into 120 points) against
  its floor, the bare `SELECT` of the same rows with psycopg's cursor (what any chart must at least read);
- `sample_resources()` for a new slot (the core job: the measurement, the insert, the event, the retention delete);
- the platform stream's dispatch: numbering and sending one event to the `platform` group (the after-commit task).

Targets: the 7-day history under 100 ms; the dispatch under 20 ms.
"""

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import dataset  # noqa: E402,F401  (sets Django up)
from maintenance_site.events import platform  # noqa: E402
from scenarios import resources  # noqa: E402
from scenarios.models import ResourceSample  # noqa: E402


class Rollback(Exception):
    pass


def timed(function, repeat: int) -> float:
    function()  # warm-up
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    interval = settings.RESOURCE_SAMPLE_INTERVAL
    count = settings.RESOURCE_SAMPLE_RETENTION_HOURS * 3600 // interval
    now = timezone.now()
    figures = {}
    try:
        with transaction.atomic():
            ResourceSample.objects.bulk_create(
                (
                    ResourceSample(
                        host="bench-host",
                        slot=resources.slot_of(now - timedelta(seconds=interval * index)),
                        sampled_at=now,
                        cpu_percent=float(index % 100),
                        memory_percent=50.0,
                        disk_percent=40.0,
                        load_1=1.0,
                    )
                    for index in range(count)
                ),
                batch_size=5000,
            )
            table = ResourceSample._meta.db_table

            def floor():
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT slot, cpu_percent, memory_percent, disk_percent, load_1 FROM {table} "  # noqa: S608
                        "WHERE host = %s AND slot >= %s ORDER BY slot",
                        ["bench-host", now - timedelta(days=7)],
                    )
                    cursor.fetchall()

            figures["rows"] = count
            figures["history_7d_ms"] = timed(lambda: resources.usage_history("7d", now=now), args.repeat)
            figures["floor_ms"] = timed(floor, args.repeat)
            moments = iter(now + timedelta(seconds=interval * (step + 1)) for step in range(args.repeat + 1))
            figures["sample_ms"] = timed(lambda: resources.sample_resources(next(moments)), args.repeat)

            def dispatch_one():
                platform.publish_platform("platform:resources-sampled", {"bench": True})
                platform.dispatch()

            figures["dispatch_ms"] = timed(dispatch_one, args.repeat)
            raise Rollback
    except Rollback:
        pass
    ratio = figures["history_7d_ms"] / figures["floor_ms"] if figures["floor_ms"] else float("nan")
    print(
        f"{figures['rows']:,} samples · 7-day history {figures['history_7d_ms']:.1f} ms "
        f"(floor {figures['floor_ms']:.1f} ms, ×{ratio:.1f}; target < 100 ms) · "
        f"one sample {figures['sample_ms']:.1f} ms · one platform event numbered and sent "
        f"{figures['dispatch_ms']:.1f} ms (target < 20 ms)"
    )


if __name__ == "__main__":
    main()
