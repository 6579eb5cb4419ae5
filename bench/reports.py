"""Benchmark: the reports on the shared dataset, end to end as the Celery task runs them (content, format, file,
checksum), against the issue's target: the yearly performance report of the big organisation (300,000 work orders
at 1M) in ≤ 30 s, PDF included, on the 2-core machine.

    DATABASE_URL=postgres://…/maint_bench1m python bench/reports.py [--repeat 3] [--json FILE]

For `bench-big` over the dataset's last year (local days) it times `maintenance_site.reports.services.generate` —
the path the task takes — for the performance, quality and status reports as PDF (the median of --repeat runs after
one warm-up), and the audit report of the last month as CSV (its PDF would be over the 50,000-change limit), with
each report's query count and file size. The floor is the analytics endpoints' own time (bench/analytics.py): a
report adds its sections and its formatting on top of the same aggregates. The reports it writes are deleted after.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LOG_LEVEL", "WARNING")

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench import dataset  # noqa: E402  (sets Django up)
from maintenance_site import progress  # noqa: E402
from maintenance_site.reports import services  # noqa: E402
from maintenance_site.reports.models import GeneratedReport  # noqa: E402
from maintenance_site.tenancy import SYSTEM  # noqa: E402
from maintenance_site.tenancy.models import Organization  # noqa: E402

TARGET_SECONDS = 30.0
LAST_DAY = (dataset.END - timedelta(days=1)).date()
FIRST_DAY = LAST_DAY - timedelta(days=364)
CASES = [
    ("performance", "pdf", FIRST_DAY),
    ("quality", "pdf", FIRST_DAY),
    ("status", "pdf", FIRST_DAY),
    ("audit", "csv", LAST_DAY - timedelta(days=29)),
]


def run(org, kind: str, fmt: str, first_day) -> tuple[float, int, GeneratedReport]:
    report = services.request_report(org, actor=SYSTEM, kind=kind, format=fmt, first_day=first_day, last_day=LAST_DAY)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        report = services.generate(report.pk)
    seconds = time.perf_counter() - started
    if report.status != GeneratedReport.Status.DONE:
        raise SystemExit(f"{kind} report failed: {report.error}")
    return seconds, len(captured), report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per report, after a warm-up (default 3)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL=postgres://… to a database built by bench/dataset.py.")
    data = dataset.load()
    if data is None:
        raise SystemExit("No dataset here: build one with bench/dataset.py first.")
    org = Organization.objects.get(pk=data.big.id)
    figures = {
        "dataset_orders": data.orders,
        "organisation_orders": data.big.orders,
        "to": str(LAST_DAY),
        "reports": {},
    }
    made = []
    try:
        with progress.bars() as bars, bars.step("reports", total=len(CASES) * (args.repeat + 1)) as step:
            for kind, fmt, first_day in CASES:
                samples = []
                for index in range(args.repeat + 1):
                    seconds, queries, report = run(org, kind, fmt, first_day)
                    made.append(report)
                    if index:  # the first run warms caches and plans
                        samples.append(seconds)
                    step.advance()
                figures["reports"][f"{kind} ({fmt})"] = {
                    "from": str(first_day),
                    "seconds": round(statistics.median(samples), 2),
                    "queries": queries,
                    "bytes": report.size,
                    "rows": report.rows,
                }
    finally:
        for report in made:
            for stored in (report.file, report.csv_file):
                if stored:
                    stored.delete(save=False)
        GeneratedReport.objects.filter(pk__in=[r.pk for r in made]).delete()
    print(
        f"\n{data.big.orders:,} work orders in the organisation ({data.orders:,} in the dataset), to {LAST_DAY}; "
        f"target: the yearly performance PDF ≤ {TARGET_SECONDS:g} s\n"
    )
    print(f"{'report':<22} {'from':>11} {'seconds':>9} {'queries':>8} {'rows':>8} {'bytes':>10}")
    for name, row in figures["reports"].items():
        timing = f"{row['seconds']:>9.2f} {row['queries']:>8} {row['rows']:>8} {row['bytes']:>10,}"
        print(f"{name:<22} {row['from']:>11} {timing}")
    met = figures["reports"]["performance (pdf)"]["seconds"] <= TARGET_SECONDS
    print(f"\nyearly performance report: {'met' if met else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
