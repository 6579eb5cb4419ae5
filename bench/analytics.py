"""Benchmark: each `/api/v1/analytics/*` endpoint on the shared dataset, side by side with its floor in one run.

    DATABASE_URL=postgres://…/maint_bench1m python bench/analytics.py [--repeat 7] [--json FILE]

For the big organisation of `bench/dataset.py` (300,000 work orders at 1M) over one year (the dataset's last year,
local days), it measures in-process (the median of --repeat calls after a warm-up) the endpoint through Django's
test client with an API key, and its floor: the same figures computed by hand-written SQL (psycopg, one statement
per figure, aggregates only, results left in Python) in the same run. It prints the table with the issue's target:
each endpoint ≤ 2× its floor and ≤ 500 ms. `--json FILE` also writes the figures.

With the daily rollups on (the default; `--no-rollups` computes every figure live) it first runs their refresh as
the beat task would (the first one rolls up the organisation's whole history; both refreshes are timed) and checks
that the overview, the trends and the breakdowns read from the rollups (costs and device performance by asset type,
PM compliance by month, SLA by priority) are those computed live, figure for figure. An endpoint whose floor finds
no data at all is reported as such (its ratio compares the request's fixed cost with an empty aggregate). The floor
stays the hand-written SQL over the raw rows: the rollups are what the platform maintains to beat it.

The floor's SQL is what a person would write for each figure with the same definitions
(`maintenance_site.analytics.definitions`): the downtime cut at the period's bounds, scheduled when the order that
caused it is planned work; a trend by month joins the months (generate_series) instead of one filtered aggregate
per bucket.
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
os.environ.update({"THROTTLE_ORGANIZATION_RATE": "10000000/min", "THROTTLE_PRINCIPAL_RATE": "10000000/min"})
os.environ.setdefault("LOG_LEVEL", "WARNING")

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench import dataset  # noqa: E402  (sets Django up)
from maintenance_site import progress  # noqa: E402
from maintenance_site.analytics import rollups  # noqa: E402
from maintenance_site.analytics.definitions import PLANNED_TYPES, REACTIVE_TYPES, REWORK_DAYS  # noqa: E402
from maintenance_site.analytics.periods import local_midnight  # noqa: E402
from maintenance_site.tenancy import services as tenancy_services  # noqa: E402
from maintenance_site.tenancy.models import Organization, OrganizationAPIKey  # noqa: E402

TARGET_RATIO, TARGET_MS = 2.0, 500.0
LAST_DAY = (dataset.END - timedelta(days=1)).date()
FIRST_DAY = LAST_DAY - timedelta(days=364)


def median_ms(call, repeat: int) -> float:
    for _ in range(2):  # warm-up: caches, plans
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# --- the floor: one hand-written statement per figure --------------------------------------------------------------

PLANNED = "(" + ", ".join(f"'{t}'" for t in PLANNED_TYPES) + ")"
REACTIVE = "(" + ", ".join(f"'{t}'" for t in REACTIVE_TYPES) + ")"

DOWNTIME = f"""
SELECT {{group}} AS g,
  SUM(EXTRACT(EPOCH FROM LEAST(COALESCE(d.ended_at, %(now)s), %(end)s) - GREATEST(d.started_at, %(start)s)))
    FILTER (WHERE w.type IN {PLANNED}) AS scheduled,
  SUM(EXTRACT(EPOCH FROM LEAST(COALESCE(d.ended_at, %(now)s), %(end)s) - GREATEST(d.started_at, %(start)s)))
    FILTER (WHERE w.type IS NULL OR w.type NOT IN {PLANNED}) AS unscheduled,
  COUNT(*) FILTER (WHERE (w.type IS NULL OR w.type NOT IN {PLANNED}) AND d.started_at >= %(start)s) AS failures,
  AVG(EXTRACT(EPOCH FROM d.ended_at - d.started_at))
    FILTER (WHERE (w.type IS NULL OR w.type NOT IN {PLANNED}) AND d.ended_at >= %(start)s AND d.ended_at < %(end)s)
FROM assets_downtime d
JOIN assets_asset a ON a.id = d.asset_id
LEFT JOIN workorders_downtimelink l ON l.downtime_id = d.id
LEFT JOIN workorders_workorder w ON w.id = l.caused_by_id
WHERE d.organization_id = %(org)s AND d.started_at < %(end)s AND (d.ended_at IS NULL OR d.ended_at > %(start)s)
GROUP BY 1
"""
ASSETS = """
SELECT {group} AS g, COUNT(*) FROM assets_asset a
WHERE a.organization_id = %(org)s AND a.status <> 'retired' AND a.created_at < %(end)s GROUP BY 1
"""
DOWNTIME_BY_MONTH = f"""
WITH months AS (
  SELECT m AS start, LEAST(m + INTERVAL '1 month', %(end)s) AS "end"
  FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - INTERVAL '1 second', INTERVAL '1 month') m
)
SELECT months.start,
  SUM(EXTRACT(EPOCH FROM LEAST(COALESCE(d.ended_at, %(now)s), months."end") - GREATEST(d.started_at, months.start)))
    FILTER (WHERE w.type IN {PLANNED}),
  SUM(EXTRACT(EPOCH FROM LEAST(COALESCE(d.ended_at, %(now)s), months."end") - GREATEST(d.started_at, months.start)))
    FILTER (WHERE w.type IS NULL OR w.type NOT IN {PLANNED}),
  AVG(EXTRACT(EPOCH FROM d.ended_at - d.started_at)) FILTER (WHERE (w.type IS NULL OR w.type NOT IN {PLANNED})
    AND d.ended_at >= months.start AND d.ended_at < months."end")
FROM months JOIN assets_downtime d ON d.started_at < months."end" AND COALESCE(d.ended_at, %(now)s) > months.start
LEFT JOIN workorders_downtimelink l ON l.downtime_id = d.id
LEFT JOIN workorders_workorder w ON w.id = l.caused_by_id
WHERE d.organization_id = %(org)s
GROUP BY 1
"""
WORK = f"""
SELECT COUNT(*), COUNT(*) FILTER (WHERE type IN {PLANNED}), COUNT(*) FILTER (WHERE type IN {REACTIVE}),
  COUNT(*) FILTER (WHERE type IN {REACTIVE} AND EXISTS (SELECT 1 FROM workorders_workorder f
    WHERE f.parent_id = w.id AND f.created_at <= w.completed_at + INTERVAL '{REWORK_DAYS} days')),
  SUM(estimated_minutes)
FROM workorders_workorder w
WHERE organization_id = %(org)s AND status IN ('completed', 'verified')
  AND completed_at >= %(start)s AND completed_at < %(end)s
"""
WRENCH = """
SELECT SUM(t.minutes) FROM workorders_timeentry t JOIN workorders_workorder w ON w.id = t.work_order_id
WHERE w.organization_id = %(org)s AND w.status IN ('completed', 'verified') AND w.estimated_minutes IS NOT NULL
  AND w.completed_at >= %(start)s AND w.completed_at < %(end)s AND t.minutes IS NOT NULL
"""
BACKLOG = """
SELECT COUNT(*), SUM(estimated_minutes), AVG(%(at)s - created_at) FROM workorders_workorder
WHERE organization_id = %(org)s AND created_at < %(at)s
  AND (completed_at IS NULL OR completed_at >= %(at)s) AND (cancelled_at IS NULL OR cancelled_at >= %(at)s)
"""
SLA = """
SELECT COUNT(*) FILTER (WHERE c.response_state = 'met'), COUNT(*) FILTER (WHERE c.response_state = 'breached'),
  COUNT(*) FILTER (WHERE c.resolution_state = 'met'), COUNT(*) FILTER (WHERE c.resolution_state = 'breached')
FROM sla_slaclock c JOIN workorders_workorder w ON w.id = c.work_order_id
WHERE c.organization_id = %(org)s AND c.started_at >= %(start)s AND c.started_at < %(end)s AND w.status <> 'cancelled'
"""
PM = """
SELECT COUNT(*) FILTER (WHERE o.status = 'created'),
  COUNT(*) FILTER (WHERE o.status = 'created' AND w.status IN ('completed', 'verified')
    AND w.completed_at <= o.due_at + INTERVAL '24 hours'),
  COUNT(*) FILTER (WHERE o.status = 'skipped'),
  COUNT(*) FILTER (WHERE o.status = 'created' AND w.status IN ('open', 'assigned', 'in_progress', 'on_hold')
    AND o.due_at >= %(now)s - INTERVAL '24 hours')
FROM scheduling_preventiveoccurrence o LEFT JOIN workorders_workorder w ON w.id = o.work_order_id
WHERE o.organization_id = %(org)s AND o.due_at >= %(start)s AND o.due_at < %(end)s
"""
LABOUR = """
SELECT {group}, SUM(t.minutes * t.hourly_rate / 60) FROM workorders_timeentry t {join}
WHERE t.organization_id = %(org)s AND t.minutes IS NOT NULL
  AND COALESCE(t.started_at, t.created_at) >= %(start)s AND COALESCE(t.started_at, t.created_at) < %(end)s GROUP BY 1
"""
EXTERNAL = """
SELECT {group}, SUM(c.amount) FROM workorders_costline c {join}
WHERE c.organization_id = %(org)s AND c.created_at >= %(start)s AND c.created_at < %(end)s GROUP BY 1
"""
PARTS = """
SELECT {group}, SUM(-m.quantity * m.unit_cost) FROM inventory_stockmovement m {join}
WHERE m.organization_id = %(org)s AND m.kind IN ('issue', 'return') AND m.work_order_id IS NOT NULL
  AND m.created_at >= %(start)s AND m.created_at < %(end)s GROUP BY 1
"""
COMMITTED = """
SELECT SUM((l.quantity - l.received_quantity) * l.unit_price) FROM inventory_purchaseorderline l
JOIN inventory_purchaseorder p ON p.id = l.purchase_order_id
WHERE l.organization_id = %(org)s AND p.status IN ('ordered', 'partly_received')
"""
PARETO = f"""
SELECT w.cause_code_id, COUNT(*) FROM workorders_workorder w
WHERE w.organization_id = %(org)s AND w.status IN ('completed', 'verified') AND w.type IN {REACTIVE}
  AND w.completed_at >= %(start)s AND w.completed_at < %(end)s GROUP BY 1 ORDER BY 2 DESC LIMIT 20
"""
PM_BY_MONTH = PM.replace("SELECT ", "SELECT date_trunc('month', o.due_at AT TIME ZONE %(zone)s), ", 1) + " GROUP BY 1"
SLA_BY_PRIORITY = """
SELECT w.priority,
  COUNT(*) FILTER (WHERE c.response_state = 'met'), COUNT(*) FILTER (WHERE c.response_state = 'breached'),
  AVG(c.response_seconds), percentile_disc(0.9) WITHIN GROUP (ORDER BY c.response_seconds),
  COUNT(*) FILTER (WHERE c.resolution_state = 'met'), COUNT(*) FILTER (WHERE c.resolution_state = 'breached'),
  AVG(c.resolution_seconds), percentile_disc(0.9) WITHIN GROUP (ORDER BY c.resolution_seconds)
FROM sla_slaclock c JOIN workorders_workorder w ON w.id = c.work_order_id
WHERE c.organization_id = %(org)s AND c.started_at >= %(start)s AND c.started_at < %(end)s AND w.status <> 'cancelled'
GROUP BY GROUPING SETS ((w.priority), ())
"""
BY_MONTH = "date_trunc('month', {column} AT TIME ZONE %(zone)s)"


def floor(db: psycopg.Connection, statements: list[tuple[str, dict]]) -> int:
    """Run the statements; how many of them found data (a row with a value that is not NULL or 0)."""
    found = 0
    with db.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            found += any(value not in (None, 0) for row in rows for value in row)
    return found


def floors(params: dict, previous: dict) -> dict:
    """Per endpoint, the hand-written statements computing its figures."""
    by_type = {"group": "a.asset_type_id"}
    whole = {"group": "1"}
    wo_join = "JOIN workorders_workorder w ON w.id = {alias}.work_order_id"

    def costs(p, group="1", join=""):
        return [
            (LABOUR.format(group=group, join=join.format(alias="t")), p),
            (EXTERNAL.format(group=group, join=join.format(alias="c")), p),
            (PARTS.format(group=group, join=join.format(alias="m")), p),
        ]

    def overview(p):
        at = {**p, "at": min(p["end"], p["now"])}
        return [
            (DOWNTIME.format(**whole), p),
            (ASSETS.format(**whole), p),
            (WORK, p),
            (WRENCH, p),
            (BACKLOG, at),
            (SLA, p),
            (PM, p),
            *costs(p),
        ]

    return {
        "overview": overview(params) + overview(previous),
        "trends (availability, mttr, total cost by month)": [
            (DOWNTIME_BY_MONTH, params),
            (ASSETS.format(**whole), params),
            (LABOUR.format(group=BY_MONTH.format(column="COALESCE(t.started_at, t.created_at)"), join=""), params),
            (EXTERNAL.format(group=BY_MONTH.format(column="c.created_at"), join=""), params),
            (PARTS.format(group=BY_MONTH.format(column="m.created_at"), join=""), params),
        ],
        "costs by category, with budgets": [*costs(params), (COMMITTED, params)],
        "costs by asset type": [
            *costs(params, group="a.asset_type_id", join=wo_join + " LEFT JOIN assets_asset a ON a.id = w.asset_id"),
            (COMMITTED, params),
        ],
        "device-performance by asset type": [
            (DOWNTIME.format(**by_type), params),
            (ASSETS.format(**by_type), params),
            (DOWNTIME.format(**whole), params),
            (ASSETS.format(**whole), params),
            (PARETO, params),
            (PARETO.replace("cause_code_id", "problem_code_id"), params),
        ],
        "pm-compliance by month": [(PM_BY_MONTH, params)],
        "sla by priority": [(SLA_BY_PRIORITY, params)],
    }


ENDPOINTS = {
    "overview": "/api/v1/analytics/overview/",
    "trends (availability, mttr, total cost by month)": "/api/v1/analytics/trends/?kpi=availability,mttr,total_cost"
    "&interval=month",
    "costs by category, with budgets": "/api/v1/analytics/costs/",
    "costs by asset type": "/api/v1/analytics/costs/?group_by=asset_type",
    "device-performance by asset type": "/api/v1/analytics/device-performance/?group_by=asset_type",
    "pm-compliance by month": "/api/v1/analytics/pm-compliance/?group_by=period&interval=month",
    "sla by priority": "/api/v1/analytics/sla/?group_by=priority",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="calls per figure, after a warm-up (default 7)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--no-rollups", action="store_true", help="compute every figure live (ANALYTICS_ROLLUPS off; default: on)"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL=postgres://… to a database built by bench/dataset.py.")
    data = dataset.load()
    if data is None:
        raise SystemExit("No dataset here: build one with bench/dataset.py first.")
    org = Organization.objects.get(pk=data.big.id)
    zone = org.zone
    now = dataset.END
    params = {
        "org": org.pk,
        "start": local_midnight(FIRST_DAY, zone),
        "end": local_midnight(LAST_DAY + timedelta(days=1), zone),
        "now": now,
        "zone": org.time_zone,
    }
    days = (LAST_DAY - FIRST_DAY).days + 1
    previous = {
        **params,
        "start": local_midnight(FIRST_DAY - timedelta(days=days), zone),
        "end": params["start"],
    }
    statements = floors(params, previous)
    api_key, key = tenancy_services.create_api_key(org, name="analytics benchmark")
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Api-Key {key}")
    floor_db = psycopg.connect(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1), autocommit=True)
    period = f"from={FIRST_DAY}&to={LAST_DAY}"
    figures = {
        "dataset_orders": data.orders,
        "organisation_orders": data.big.orders,
        "from": str(FIRST_DAY),
        "to": str(LAST_DAY),
        "endpoints": {},
    }
    if args.no_rollups:
        settings.ANALYTICS_ROLLUPS = False
    else:
        # The beat task's refresh, as it would have run: the first one rolls up the organisation's whole history.
        started = time.perf_counter()
        refreshed = rollups.refresh(org)
        figures["rollup_refresh"] = {"seconds": round(time.perf_counter() - started, 2), **refreshed}
        started = time.perf_counter()
        again = rollups.refresh(org)
        figures["rollup_refresh_again"] = {"seconds": round(time.perf_counter() - started, 2), **again}
        # The overview and the trends from the rollups are those computed live (every figure of every provider).
        figures["equal_to_live"] = {}
        for name in (
            "overview",
            "trends (availability, mttr, total cost by month)",
            "costs by asset type",
            "device-performance by asset type",
            "pm-compliance by month",
            "sla by priority",
        ):
            url = ENDPOINTS[name]
            path = f"{url}{'&' if '?' in url else '?'}{period}"
            from_rollups = client.get(path).json()
            settings.ANALYTICS_ROLLUPS = False
            computed_live = client.get(path).json()
            settings.ANALYTICS_ROLLUPS = True
            figures["equal_to_live"][name] = from_rollups == computed_live
            if from_rollups != computed_live:
                print(f"{name} from the rollups differs from live:", from_rollups, computed_live)
    try:
        with progress.bars() as bars, bars.step("endpoints", total=len(ENDPOINTS)) as step:
            for name, url in ENDPOINTS.items():
                path = f"{url}{'&' if '?' in url else '?'}{period}"

                def call(path=path):
                    response = client.get(path)
                    if response.status_code != 200:
                        raise SystemExit(f"GET {path}: {response.status_code} {response.content[:500]!r}")

                figures["endpoints"][name] = {
                    "platform_ms": median_ms(call, args.repeat),
                    "floor_ms": median_ms(lambda s=statements[name]: floor(floor_db, s), args.repeat),
                    "floor_statements": len(statements[name]),
                    "floor_statements_with_data": floor(floor_db, statements[name]),
                }
                step.advance()
    finally:
        floor_db.close()
        tenancy_services.revoke_api_key(api_key)
        OrganizationAPIKey.objects.filter(pk=api_key.pk).update(name="analytics benchmark (done)")
    print(
        f"\n{data.big.orders:,} work orders in the organisation ({data.orders:,} in the dataset), "
        f"{FIRST_DAY} – {LAST_DAY}; target ≤ {TARGET_RATIO:g}× the floor and ≤ {TARGET_MS:g} ms\n"
    )
    if "rollup_refresh" in figures:
        print(f"rollups: first refresh {figures['rollup_refresh']}, again {figures['rollup_refresh_again']}")
        print(f"from the rollups equal to live: {figures['equal_to_live']}\n")
    print(f"{'endpoint':<52} {'platform':>10} {'floor':>10} {'ratio':>7}  target")
    for name, row in figures["endpoints"].items():
        ratio = row["platform_ms"] / row["floor_ms"] if row["floor_ms"] else float("inf")
        row["ratio"] = round(ratio, 2)
        met = ratio <= TARGET_RATIO and row["platform_ms"] <= TARGET_MS
        verdict = "met" if met else "MISSED"
        if not row["floor_statements_with_data"]:
            # The dataset has nothing for these figures (no PM occurrences in a dataset built before
            # bench/dataset.py made them): the floor is an empty aggregate and the ratio measures request overhead.
            verdict = f"no data: {verdict} against an empty floor, not a measurement"
        print(f"{name:<52} {row['platform_ms']:>8.1f}ms {row['floor_ms']:>8.1f}ms {ratio:>6.2f}×  {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
