"""The shared benchmark dataset: N work orders (default 1,000,000) in 10 organisations, one of them holding 30%,
with what the services would have left around them. Every benchmark of the project builds on it.

    DATABASE_URL=postgres://…/maint_bench1m python bench/dataset.py                 # 1,000,000 orders
    DATABASE_URL=postgres://…/maint_bench10k python bench/dataset.py --orders 10000

What it writes, per organisation, sized with its share of the orders (N / 50 assets in all: 20,000 at 1M):

- people: a manager, planner, storekeeper and viewer, technicians (60 in the big organisation, 15 elsewhere) in
  8 teams; locations (3 sites × 4 buildings × 5 areas), 12 asset types, 5 procedures of 4 steps, an office-hours
  calendar and three SLA policies, vendors, parts (N / 500 in all) stocked at 2 of 5 warehouses;
- assets (one "Run hours" meter each, 20 daily readings), each with its creation in history;
- work orders spread over three years, oldest mostly closed, the newest 8% mostly open; titles name the asset's
  code (so a search for one code finds that asset's ~50 orders); each with its history rows (created, and its
  last change), an SLA clock for high and critical work and 40% of the rest (breaches with their violation),
  a checklist of 3 steps on preventive and inspection work, comments on half, a time entry on completed work,
  cost lines on 10%, downtime (and its link) on orders that needed it, parts issued from the ledger on 30% of
  completed work (stock levels equal the ledger's sum), and the events the services publish (created, completed),
  numbered per organisation and delivered; a monthly preventive schedule per asset type, and a due occurrence
  behind each preventive and inspection order of an asset (due two days after the order was raised, so some are
  done late, some still open or overdue), and 5% more skipped without an order (PM compliance has data).

Rows are written with INSERT … SELECT over generate_series, in chunks (the progress bar advances per chunk), with
fixed pseudo-random choices (hashes of the row number): the same N gives the same data. Ends with VACUUM ANALYZE,
so the planner's estimates and index-only scans are what they would be on a live database.

The organisations are `bench-big` and `bench-01` … `bench-09`; `--replace` deletes them (and only them) first.
`load()` describes a built dataset to the benchmarks; `build()` is what the command runs.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from assets.models import AssetType, Location  # noqa: E402
from inventory.models import Part, StockLevel, StockLocation, Vendor  # noqa: E402
from maintenance_site import progress  # noqa: E402
from maintenance_site.tenancy.models import Membership, Organization, OrganizationCounter  # noqa: E402
from maintenance_site.tenancy.roles import Role  # noqa: E402
from scheduling.preventive.models import PreventiveSchedule  # noqa: E402
from sla.models import BusinessCalendar, SLAPolicy, WorkingHours  # noqa: E402
from workorders.models import Procedure, ProcedureItem, Team  # noqa: E402

User = get_user_model()

SLUG_PREFIX = "bench-"
BIG_SLUG = "bench-big"
ORGANISATIONS = 10
BIG_SHARE = 0.3
ORDERS_PER_ASSET = 50
ORDERS_PER_PART = 500
CHUNK = 50_000  # rows per statement: one step of the progress bar
END = datetime(2026, 6, 1, tzinfo=UTC)  # the newest order; the oldest is three years before
SPAN = timedelta(days=3 * 365)
READINGS_PER_METER = 20
ASSET_TYPES = [
    ("PMP", "Pump"),
    ("MTR", "Motor"),
    ("CMP", "Compressor"),
    ("CNV", "Conveyor"),
    ("CHL", "Chiller"),
    ("BLR", "Boiler"),
    ("FAN", "Fan"),
    ("VLV", "Valve"),
    ("GEN", "Generator"),
    ("PRS", "Press"),
    ("FLT", "Forklift"),
    ("AHU", "Air handler"),
]
VERBS = ["Replace", "Inspect", "Lubricate", "Repair", "Adjust", "Clean", "Calibrate", "Tighten", "Test", "Align"]
COMPONENTS = [
    "bearing",
    "seal",
    "belt",
    "filter",
    "coupling",
    "impeller",
    "gearbox",
    "valve seat",
    "sensor",
    "motor mount",
    "drive chain",
    "contactor",
    "hose",
    "gasket",
    "fan blade",
    "thermostat",
]
SYMPTOMS = [
    "unusual noise at start-up",
    "vibration above the alarm level",
    "leak under the housing",
    "temperature rising during the shift",
    "trips the breaker now and then",
    "output below the rated flow",
    "smell of burnt insulation",
    "intermittent fault code on the panel",
]
PROCEDURES = [
    "Monthly pump check",
    "Quarterly motor service",
    "Annual boiler inspection",
    "Filter change",
    "Safety walk",
]
STEPS = ["Isolate and lock out", "Check for leaks and wear", "Measure and record the reading", "Restore and test run"]


@dataclass
class OrgInfo:
    id: int
    slug: str
    orders: int
    assets: int
    first_order_id: int = 0
    first_asset_id: int = 0
    users: dict = field(default_factory=dict)


@dataclass
class Dataset:
    organisations: list[OrgInfo]

    @property
    def big(self) -> OrgInfo:
        return next(org for org in self.organisations if org.slug == BIG_SLUG)

    @property
    def orders(self) -> int:
        return sum(org.orders for org in self.organisations)


def sizes(orders: int, orders_per_asset: int = ORDERS_PER_ASSET) -> list[tuple[str, int, int]]:
    """(slug, orders, assets) per organisation: the big one holds BIG_SHARE, the others split the rest."""
    big = round(orders * BIG_SHARE)
    rest = orders - big
    others = [rest // (ORGANISATIONS - 1) + (1 if i < rest % (ORGANISATIONS - 1) else 0) for i in range(9)]
    counts = [(BIG_SLUG, big)] + [(f"{SLUG_PREFIX}{i + 1:02d}", n) for i, n in enumerate(others)]
    return [(slug, n, max(20, n // orders_per_asset)) for slug, n in counts]


def load() -> Dataset | None:
    """The dataset in this database (None when there is none): its organisations, their sizes and people."""
    organisations = []
    for org in Organization.objects.filter(slug__startswith=SLUG_PREFIX).order_by("pk"):
        orders = apps.get_model("workorders", "WorkOrder").objects.filter(organization=org)
        assets = apps.get_model("assets", "Asset").objects.filter(organization=org)
        info = OrgInfo(org.pk, org.slug, orders.count(), assets.count())
        for membership in Membership.objects.filter(organization=org).select_related("user"):
            info.users.setdefault(membership.role, []).append(membership.user.username)
        organisations.append(info)
    return Dataset(organisations) if organisations else None


# --- the small things, through the ORM ------------------------------------------------------------------------


def _people(org: Organization, index: int, technicians: int) -> dict:
    """Users and memberships (passwords unusable: benchmarks log in in-process or use an API key)."""
    prefix = f"b{index:02d}"
    specs = [(Role.MANAGER, "manager"), (Role.PLANNER, "planner"), (Role.STOREKEEPER, "storekeeper")]
    specs += [(Role.VIEWER, "viewer")] + [(Role.TECHNICIAN, f"tech{t:03d}") for t in range(technicians)]
    users = User.objects.bulk_create(
        [
            User(
                username=f"{prefix}-{name}",
                email=f"{prefix}-{name}@bench.example",
                first_name=name.capitalize(),
                last_name=f"Bench {index}",
                password="!unusable",  # noqa: S106
                is_staff=role in (Role.MANAGER, Role.PLANNER, Role.STOREKEEPER),
            )
            for role, name in specs
        ]
    )
    Membership.objects.bulk_create(
        [
            Membership(organization=org, user=user, role=role, hourly_rate=48 if role == Role.TECHNICIAN else None)
            for user, (role, _) in zip(users, specs, strict=True)
        ]
    )
    by_role: dict = {}
    for user, (role, _) in zip(users, specs, strict=True):
        by_role.setdefault(role, []).append(user.pk)
    return by_role


def _scaffold(org: Organization, people: dict, parts: int) -> dict:
    technicians = people[Role.TECHNICIAN]
    teams = Team.objects.bulk_create([Team(organization=org, name=f"Crew {t + 1}") for t in range(8)])
    Team.members.through.objects.bulk_create(
        [Team.members.through(team_id=teams[i % 8].pk, user_id=user) for i, user in enumerate(technicians)]
    )
    sites = Location.objects.bulk_create(
        [Location(organization=org, name=f"Site {s + 1}", kind=Location.Kind.SITE) for s in range(3)]
    )
    buildings = Location.objects.bulk_create(
        [
            Location(organization=org, name=f"Building {b + 1}", kind=Location.Kind.BUILDING, parent=site)
            for site in sites
            for b in range(4)
        ]
    )
    areas = Location.objects.bulk_create(
        [
            Location(organization=org, name=f"Area {a + 1}", kind=Location.Kind.AREA, parent=building)
            for building in buildings
            for a in range(5)
        ]
    )
    types = AssetType.objects.bulk_create([AssetType(organization=org, name=name) for _, name in ASSET_TYPES])
    procedures = Procedure.objects.bulk_create([Procedure(organization=org, name=name) for name in PROCEDURES])
    ProcedureItem.objects.bulk_create(
        [
            ProcedureItem(organization=org, procedure=procedure, position=p, text=text)
            for procedure in procedures
            for p, text in enumerate(STEPS)
        ]
    )
    calendar = BusinessCalendar.objects.create(organization=org, name="Office hours")
    WorkingHours.objects.bulk_create(
        [WorkingHours(organization=org, calendar=calendar, weekday=day, start="08:00", end="17:00") for day in range(5)]
    )
    policies = {
        priority: SLAPolicy.objects.create(
            organization=org,
            name=name,
            priority=priority,
            calendar=calendar,
            response_minutes=response,
            resolution_minutes=resolution,
        )
        for priority, name, response, resolution in [
            ("critical", "Critical work", 60, 240),
            ("high", "High priority", 240, 960),
            ("", "Standard", 480, 2880),
        ]
    }
    vendors = Vendor.objects.bulk_create([Vendor(organization=org, name=f"Vendor {v + 1}") for v in range(20)])
    part_rows = Part.objects.bulk_create(
        [
            Part(
                organization=org,
                sku=f"SKU-{p + 1:05d}",
                name=f"{COMPONENTS[p % len(COMPONENTS)].capitalize()} {p + 1}",
                category=ASSET_TYPES[p % len(ASSET_TYPES)][1],
                preferred_vendor=vendors[p % 20],
                reorder_point=5,
                reorder_quantity=20,
            )
            for p in range(parts)
        ],
        batch_size=2000,
    )
    stores = StockLocation.objects.bulk_create(
        [StockLocation(organization=org, name=f"Warehouse {w + 1}", site=sites[w % 3]) for w in range(5)]
    )
    StockLevel.objects.bulk_create(
        [
            StockLevel(organization=org, part=part, location=stores[(p + shift) % 5])
            for p, part in enumerate(part_rows)
            for shift in (0, 1)
        ],
        batch_size=4000,
    )
    OrganizationCounter.objects.create(organization=org, name="work-order", last_number=0)
    return {
        "planner": people[Role.PLANNER][0],
        "technicians": technicians,
        "teams": [t.pk for t in teams],
        "areas": [a.pk for a in areas],
        "types": [t.pk for t in types],
        "procedures": [p.pk for p in procedures],
        "calendar": calendar.pk,
        "policies": {k: (v.pk, v.response_minutes, v.resolution_minutes) for k, v in policies.items()},
        "parts": [p.pk for p in part_rows],
        "stores": [s.pk for s in stores],
        "pm_schedules": {
            t.pk: PreventiveSchedule.objects.create(
                organization=org,
                name=f"Monthly {t.name} service",
                title=f"Monthly {t.name} service",
                coverage=PreventiveSchedule.Coverage.ASSETS,
                asset_type=t,
                trigger=PreventiveSchedule.Trigger.INTERVAL,
                interval_count=1,
                interval_unit=PreventiveSchedule.IntervalUnit.MONTHS,
                start_date=(END - SPAN - timedelta(days=30)).date(),
                work_type="preventive",
            ).pk
            for t in types
        },
    }


# --- the large tables, in SQL ---------------------------------------------------------------------------------

# h(n, salt): a fixed pseudo-random number in 0 … 2^31-1 for row n (the same every run).
HASH_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.h(bigint, integer) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashint8($1 * 1000003 + $2)::bigint & 2147483647 $$
"""


def _array(values) -> str:
    return "ARRAY[" + ",".join(str(int(v)) for v in values) + "]::bigint[]"


def _text_array(values) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _pick(array_sql: str, expression: str) -> str:
    """An element of a SQL array chosen by a non-negative integer expression."""
    return f"({array_sql})[1 + ({expression}) % cardinality({array_sql})]"


PREFIXES = _text_array([prefix for prefix, _ in ASSET_TYPES])


def _asset_code(k: str) -> str:
    """The code of the organisation's k-th asset (1-based): type prefix and number, e.g. PMP-000123."""
    return f"({PREFIXES})[1 + ({k}) % {len(ASSET_TYPES)}] || '-' || lpad(({k})::text, 6, '0')"


def _run(cursor, sql: str, params=None) -> None:
    """Execute with parameters; the SQL's modulo operators (written ` % `) escaped for the driver."""
    cursor.execute(sql.replace(" % ", " %% "), params)


def _chunks(count: int, size: int = CHUNK):
    for lo in range(1, count + 1, size):
        yield lo, min(count, lo + size - 1)


def _next_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")  # noqa: S608
    return cursor.fetchone()[0]


def _reset_sequence(cursor, table: str) -> None:
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest(1, (SELECT max(id) FROM {table})))"  # noqa: S608
    )


def _assets(cursor, org: OrgInfo, s: dict, step) -> None:
    """Assets k = 1 … A with ids first_asset_id + k - 1; type, location and code follow from k."""
    areas, types = _array(s["areas"]), _array(s["types"])
    for lo, hi in _chunks(org.assets):
        _run(
            cursor,
            f"""
            INSERT INTO assets_asset (id, created_at, updated_at, code, name, criticality, status, manufacturer,
                model, serial_number, install_date, notes, public_token, organization_id, parent_id, asset_type_id,
                location_id)
            SELECT %(first)s + k - 1, %(start)s, %(start)s, {_asset_code("k")},
                ({_text_array([n for _, n in ASSET_TYPES])})[1 + k % {len(ASSET_TYPES)}] || ' ' || k,
                (ARRAY['low','medium','medium','high','critical'])[1 + pg_temp.h(k, 1) % 5],
                CASE WHEN pg_temp.h(k, 2) % 100 < 95 THEN 'operational' ELSE 'degraded' END,
                (ARRAY['Grundfos','Siemens','ABB','Atlas Copco','Carrier','Bosch'])[1 + pg_temp.h(k, 3) % 6],
                'M' || (pg_temp.h(k, 4) % 900 + 100), 'SN' || lpad((pg_temp.h(k, 5) % 100000000)::text, 8, '0'),
                date '2018-01-01' + (pg_temp.h(k, 6) % 2000)::int, '',
                substr(md5(%(org)s || '-asset-' || k), 1, 22), %(org)s, NULL,
                {_pick(types, "k")}, {_pick(areas, "pg_temp.h(k, 7)")}
            FROM generate_series(%(lo)s, %(hi)s) AS k
            """,
            {"first": org.first_asset_id, "start": END - SPAN - timedelta(days=30), "org": org.id, "lo": lo, "hi": hi},
        )
        step.advance(hi - lo + 1)


def _orders(cursor, org: OrgInfo, s: dict, step) -> None:
    """Work orders i = 1 … N of the organisation, id first_order_id + i - 1, created in order over SPAN."""
    technicians, teams = _array(s["technicians"]), _array(s["teams"])
    areas = _array(s["areas"])
    verbs, components, symptoms = _text_array(VERBS), _text_array(COMPONENTS), _text_array(SYMPTOMS)
    for lo, hi in _chunks(org.orders):
        _run(
            cursor,
            f"""
            INSERT INTO workorders_workorder (id, created_at, updated_at, number, title, description, type, priority,
                status, due_at, started_at, completed_at, verified_at, cancelled_at, estimated_minutes, source,
                needs_downtime, hold_reason, cancel_reason, completion_notes, failure_cause, remedy, asset_id,
                assignee_id, location_id, organization_id, parent_id, requested_by_id, team_id)
            SELECT id, created, updated, number, title, description, type, priority, status,
                created + (1 + pg_temp.h(n, 10) % 14) * interval '1 day', started, completed, NULL,
                CASE WHEN status = 'cancelled' THEN updated END,
                CASE WHEN pg_temp.h(n, 11) % 4 > 0 THEN 30 * (1 + pg_temp.h(n, 12) % 16) END,
                CASE WHEN type = 'preventive' THEN 'preventive'
                     WHEN pg_temp.h(n, 13) % 10 = 0 THEN 'request' ELSE 'manual' END,
                pg_temp.h(n, 14) % 100 < 5,
                CASE WHEN status = 'on_hold' THEN 'Waiting for parts' ELSE '' END,
                CASE WHEN status = 'cancelled' THEN 'Duplicate of another request' ELSE '' END,
                CASE WHEN completed IS NOT NULL THEN 'Done and tested; running normally.' ELSE '' END,
                CASE WHEN completed IS NOT NULL AND type = 'corrective' THEN 'WEAR' ELSE '' END,
                CASE WHEN completed IS NOT NULL AND type = 'corrective' THEN 'REPLACED' ELSE '' END,
                %(first_asset)s + k - 1,
                CASE WHEN status <> 'open' THEN {_pick(technicians, "pg_temp.h(n, 15)")} END,
                {_pick(areas, "pg_temp.h(k, 7)")}, %(org)s, NULL, %(planner)s,
                CASE WHEN pg_temp.h(n, 16) % 10 < 3 THEN {_pick(teams, "pg_temp.h(n, 17)")} END
            FROM (
                SELECT n, id, k, created, status, type, priority, number, title, description,
                    CASE WHEN status IN ('in_progress', 'on_hold', 'completed', 'verified')
                         THEN created + (10 + pg_temp.h(n, 20) % 180) * interval '1 minute' END AS started,
                    CASE WHEN status IN ('completed', 'verified')
                         THEN created + (200 + pg_temp.h(n, 21) % 1800) * interval '1 minute' END AS completed,
                    CASE WHEN status IN ('completed', 'verified', 'cancelled')
                         THEN created + (170 + pg_temp.h(n, 22) % 100) * interval '1 hour'
                         WHEN status = 'open' THEN created
                         ELSE created + (1 + pg_temp.h(n, 23) % 60) * interval '1 hour' END AS updated
                FROM (
                    SELECT n, %(first)s + n - 1 AS id, k,
                        %(start)s + (n - 1) * %(span)s / %(count)s + (pg_temp.h(n, 30) % 3600) * interval '1 second'
                            AS created,
                        CASE WHEN n <= %(count)s * 0.92 THEN
                            (ARRAY['completed','completed','completed','completed','completed','completed',
                                   'completed','completed','completed','completed','completed','completed',
                                   'completed','completed','completed','completed','completed','cancelled',
                                   'cancelled','on_hold','open','assigned','in_progress'])[1 + pg_temp.h(n, 31) % 23]
                        ELSE
                            (ARRAY['open','open','open','open','open','open','open','assigned','assigned',
                                   'assigned','assigned','assigned','in_progress','in_progress','in_progress',
                                   'in_progress','on_hold','on_hold','completed','completed'])
                                [1 + pg_temp.h(n, 32) % 20]
                        END AS status,
                        (ARRAY['corrective','corrective','corrective','corrective','corrective','corrective',
                               'corrective','corrective','corrective','preventive','preventive','preventive',
                               'preventive','preventive','preventive','inspection','inspection','routine',
                               'predictive','emergency'])[1 + pg_temp.h(n, 33) % 20] AS type,
                        (ARRAY['low','low','low','low','low','medium','medium','medium','medium','medium',
                               'medium','medium','medium','medium','high','high','high','high','critical',
                               'critical'])[1 + pg_temp.h(n, 34) % 20] AS priority,
                        'WO-' || lpad(n::text, 6, '0') AS number,
                        ({verbs})[1 + pg_temp.h(n, 35) % {len(VERBS)}] || ' '
                            || ({components})[1 + pg_temp.h(n, 36) % {len(COMPONENTS)}] || ' on '
                            || {_asset_code("k")} AS title,
                        'Operator reports ' || ({symptoms})[1 + pg_temp.h(n, 37) % {len(SYMPTOMS)}]
                            || '. Check the ' || ({components})[1 + pg_temp.h(n, 36) % {len(COMPONENTS)}]
                            || ' and the parts around it before restarting.' AS description
                    FROM (SELECT n, 1 + pg_temp.h(n, 38) % %(assets)s AS k
                          FROM generate_series(%(lo)s, %(hi)s) AS n) AS numbered
                ) AS chosen
            ) AS timed
            """,
            {
                "first": org.first_order_id,
                "first_asset": org.first_asset_id,
                "assets": org.assets,
                "count": org.orders,
                "start": END - SPAN,
                "span": SPAN,
                "org": org.id,
                "planner": s["planner"],
                "lo": lo,
                "hi": hi,
            },
        )
        step.advance(hi - lo + 1)
    _run(
        cursor,
        "UPDATE tenancy_organizationcounter SET last_number = %s WHERE organization_id = %s AND name = 'work-order'",
        [org.orders, org.id],
    )


WORK_ORDER_COLUMNS = (
    "id, created_at, updated_at, number, title, description, type, priority, status, due_at, started_at, "
    "completed_at, verified_at, cancelled_at, estimated_minutes, source, needs_downtime, hold_reason, cancel_reason, "
    "completion_notes, failure_cause, remedy, asset_id, assignee_id, location_id, organization_id, parent_id, "
    "requested_by_id, team_id"
)


def _order_range(org: OrgInfo):
    for lo, hi in _chunks(org.orders):
        yield org.first_order_id + lo - 1, org.first_order_id + hi - 1, hi - lo + 1


def _history(cursor, org: OrgInfo, step) -> None:
    """The order as created ('+', open) and, unless still open, as it is now ('~')."""
    for lo, hi, count in _order_range(org):
        _run(
            cursor,
            f"""
            INSERT INTO workorders_historicalworkorder ({WORK_ORDER_COLUMNS}, history_date, history_change_reason,
                history_type, history_user_id)
            SELECT id, created_at, created_at, number, title, description, type, priority, 'open', due_at, NULL,
                NULL, NULL, NULL, estimated_minutes, source, needs_downtime, '', '', '', '', '', asset_id, NULL,
                location_id, organization_id, parent_id, requested_by_id, team_id,
                created_at, NULL, '+', requested_by_id
            FROM workorders_workorder WHERE id BETWEEN %(lo)s AND %(hi)s
            UNION ALL
            SELECT {WORK_ORDER_COLUMNS}, updated_at, NULL, '~', coalesce(assignee_id, requested_by_id)
            FROM workorders_workorder WHERE id BETWEEN %(lo)s AND %(hi)s AND status <> 'open'
            """,
            {"lo": lo, "hi": hi},
        )
        step.advance(count)


def _clocks(cursor, org: OrgInfo, s: dict, step) -> None:
    """SLA clocks of high and critical work and 40% of the rest; breached ones get their violation."""
    policies = s["policies"]
    for lo, hi, count in _order_range(org):
        _run(
            cursor,
            """
            INSERT INTO sla_slaclock (created_at, updated_at, response_minutes, resolution_minutes, warning_percent,
                pause_statuses, started_at, paused_since, paused_seconds, stopped_at, response_due_at,
                response_warning_at, response_state, response_met_at, response_seconds, response_warned_at,
                response_breached_at, resolution_due_at, resolution_warning_at, resolution_state, resolution_met_at,
                resolution_seconds, resolution_warned_at, resolution_breached_at, calendar_id, organization_id,
                work_order_id, policy_id)
            SELECT created_at, updated_at, rmin, smin, 80, '["on_hold"]', created_at,
                CASE WHEN status = 'on_hold' THEN updated_at END, 0,
                coalesce(completed_at, cancelled_at),
                created_at + rmin * interval '1 minute', created_at + rmin * 0.8 * interval '1 minute',
                CASE WHEN started_at IS NULL THEN
                        CASE WHEN created_at + rmin * interval '1 minute' < %(now)s THEN 'breached' ELSE 'on_track' END
                     WHEN started_at <= created_at + rmin * interval '1 minute' THEN 'met' ELSE 'breached' END,
                started_at, extract(epoch FROM started_at - created_at)::int, NULL,
                CASE WHEN coalesce(started_at, %(now)s) > created_at + rmin * interval '1 minute'
                     THEN created_at + rmin * interval '1 minute' END,
                created_at + smin * interval '1 minute', created_at + smin * 0.8 * interval '1 minute',
                CASE WHEN completed_at IS NULL THEN
                        CASE WHEN status = 'cancelled' THEN 'met'
                             WHEN created_at + smin * interval '1 minute' < %(now)s THEN 'breached'
                             ELSE 'on_track' END
                     WHEN completed_at <= created_at + smin * interval '1 minute' THEN 'met' ELSE 'breached' END,
                completed_at, extract(epoch FROM completed_at - created_at)::int, NULL,
                CASE WHEN status <> 'cancelled'
                      AND coalesce(completed_at, %(now)s) > created_at + smin * interval '1 minute'
                     THEN created_at + smin * interval '1 minute' END,
                %(calendar)s, organization_id, id, policy
            FROM (
                SELECT w.*,
                    CASE priority WHEN 'critical' THEN %(c_id)s WHEN 'high' THEN %(h_id)s ELSE %(s_id)s END AS policy,
                    CASE priority WHEN 'critical' THEN %(c_r)s WHEN 'high' THEN %(h_r)s ELSE %(s_r)s END AS rmin,
                    CASE priority WHEN 'critical' THEN %(c_s)s WHEN 'high' THEN %(h_s)s ELSE %(s_s)s END AS smin
                FROM workorders_workorder w
                WHERE id BETWEEN %(lo)s AND %(hi)s
                  AND (priority IN ('high', 'critical') OR pg_temp.h(id, 40) % 100 < 40)
            ) AS covered
            """,
            {
                "lo": lo,
                "hi": hi,
                "now": END,
                "calendar": s["calendar"],
                **{f"{p[0]}_id": policies[k][0] for p, k in (("c", "critical"), ("h", "high"), ("s", ""))},
                **{f"{p[0]}_r": policies[k][1] for p, k in (("c", "critical"), ("h", "high"), ("s", ""))},
                **{f"{p[0]}_s": policies[k][2] for p, k in (("c", "critical"), ("h", "high"), ("s", ""))},
            },
        )
        _run(
            cursor,
            """
            INSERT INTO sla_slaviolation (created_at, updated_at, kind, level, priority, threshold_at, detected_at,
                late_seconds, escalations, clock_id, organization_id, policy_id, work_order_id)
            SELECT c.resolution_breached_at, c.resolution_breached_at, 'resolution', 'breach', w.priority,
                c.resolution_due_at, c.resolution_breached_at + interval '1 minute', 60, '[]', c.id,
                c.organization_id, c.policy_id, c.work_order_id
            FROM sla_slaclock c JOIN workorders_workorder w ON w.id = c.work_order_id
            WHERE c.work_order_id BETWEEN %(lo)s AND %(hi)s AND c.resolution_breached_at IS NOT NULL
            """,
            {"lo": lo, "hi": hi},
        )
        step.advance(count)


def _work_details(cursor, org: OrgInfo, s: dict, step) -> None:
    """Checklists, comments, time entries, cost lines, downtime and its link."""
    steps = _text_array(STEPS)
    for lo, hi, count in _order_range(org):
        params = {"lo": lo, "hi": hi, "planner": s["planner"]}
        _run(
            cursor,
            f"""
            INSERT INTO workorders_checklistitem (created_at, updated_at, position, text, kind, unit, required, done,
                passed, number_value, text_value, done_at, client_id, done_by_id, organization_id, follow_up_id,
                work_order_id)
            SELECT w.created_at, coalesce(w.completed_at, w.created_at), p, ({steps})[p + 1], 'tick', '', true,
                w.completed_at IS NOT NULL, NULL, NULL, '', w.completed_at, '',
                CASE WHEN w.completed_at IS NOT NULL THEN w.assignee_id END, w.organization_id, NULL, w.id
            FROM workorders_workorder w CROSS JOIN generate_series(0, 2) AS p
            WHERE w.id BETWEEN %(lo)s AND %(hi)s AND w.type IN ('preventive', 'inspection')
            """,
            params,
        )
        _run(
            cursor,
            """
            INSERT INTO workorders_comment (created_at, updated_at, body, client_id, author_id, organization_id,
                work_order_id)
            SELECT w.created_at + interval '2 hours', w.created_at + interval '2 hours',
                CASE WHEN pg_temp.h(w.id, 50) % 2 = 0 THEN 'Parts ordered, back on it tomorrow morning.'
                     ELSE 'Checked on site: needs a second person for the lift.' END,
                '', coalesce(w.assignee_id, w.requested_by_id), w.organization_id, w.id
            FROM workorders_workorder w
            WHERE w.id BETWEEN %(lo)s AND %(hi)s AND pg_temp.h(w.id, 51) % 2 = 0
            """,
            params,
        )
        _run(
            cursor,
            """
            INSERT INTO workorders_timeentry (created_at, updated_at, started_at, ended_at, minutes, hourly_rate, note,
                client_id, organization_id, technician_id, work_order_id, entered_by_id)
            SELECT w.completed_at, w.completed_at, w.completed_at - m * interval '1 minute', w.completed_at, m, 48, '',
                '', w.organization_id, w.assignee_id, w.id, w.assignee_id
            FROM (SELECT *, 15 * (1 + pg_temp.h(id, 52) % 16) AS m FROM workorders_workorder
                  WHERE id BETWEEN %(lo)s AND %(hi)s AND completed_at IS NOT NULL) AS w
            """,
            params,
        )
        _run(
            cursor,
            """
            INSERT INTO workorders_costline (created_at, updated_at, description, amount, added_by_id, organization_id,
                work_order_id)
            SELECT w.completed_at, w.completed_at, 'Contractor invoice', 50 + pg_temp.h(w.id, 53) % 950,
                %(planner)s, w.organization_id, w.id
            FROM workorders_workorder w
            WHERE w.id BETWEEN %(lo)s AND %(hi)s AND w.completed_at IS NOT NULL AND pg_temp.h(w.id, 54) % 10 = 0
            """,
            params,
        )
        _run(
            cursor,
            """
            WITH down AS (
                INSERT INTO assets_downtime (created_at, updated_at, started_at, ended_at, reason, asset_id,
                    organization_id)
                SELECT w.started_at, w.completed_at, w.started_at, w.completed_at, 'Planned: ' || w.number,
                    w.asset_id, w.organization_id
                FROM workorders_workorder w
                WHERE w.id BETWEEN %(lo)s AND %(hi)s AND w.needs_downtime AND w.completed_at IS NOT NULL
                RETURNING id, reason, organization_id, created_at, updated_at
            )
            INSERT INTO workorders_downtimelink (created_at, updated_at, caused_by_id, downtime_id, ended_by_id,
                organization_id)
            SELECT d.created_at, d.updated_at, w.id, d.id, w.id, d.organization_id
            FROM down d JOIN workorders_workorder w
              ON w.organization_id = d.organization_id AND w.number = substr(d.reason, 10)
            """,
            params,
        )
        step.advance(count)


def _stock(cursor, org: OrgInfo, s: dict, step) -> None:
    """A receipt per stock level, parts issued to 30% of completed work, levels equal to the ledger's sum."""
    _run(
        cursor,
        """
        INSERT INTO inventory_stockmovement (created_at, updated_at, kind, quantity, unit_cost, transfer_id, reason,
            client_id, location_id, organization_id, part_id, purchase_order_id, user_id, work_order_id)
        SELECT %(start)s, %(start)s, 'receipt', 100000, 12.5, NULL, 'Opening stock', '', location_id,
            organization_id, part_id, NULL, NULL, NULL
        FROM inventory_stocklevel WHERE organization_id = %(org)s
        """,
        {"org": org.id, "start": END - SPAN - timedelta(days=1)},
    )
    parts, stores = _array(s["parts"]), _array(s["stores"])
    for lo, hi, count in _order_range(org):
        # The i-th part is stocked first at store i % 5 (see _scaffold): the issue comes from there.
        _run(
            cursor,
            f"""
            INSERT INTO inventory_stockmovement (created_at, updated_at, kind, quantity, unit_cost, transfer_id,
                reason, client_id, location_id, organization_id, part_id, purchase_order_id, user_id, work_order_id)
            SELECT completed_at - interval '1 hour', completed_at - interval '1 hour', 'issue',
                -(1 + pg_temp.h(id, 60) % 3), 12.5, NULL, '', '', ({stores})[1 + p % 5], organization_id,
                ({parts})[1 + p], NULL, assignee_id, id
            FROM (SELECT *, pg_temp.h(id, 61) % cardinality({parts}) AS p FROM workorders_workorder
                  WHERE id BETWEEN %(lo)s AND %(hi)s AND completed_at IS NOT NULL AND pg_temp.h(id, 62) % 10 < 3) AS w
            """,
            {"lo": lo, "hi": hi},
        )
        step.advance(count)
    _run(
        cursor,
        """
        UPDATE inventory_stocklevel l SET on_hand = m.total, updated_at = m.last
        FROM (SELECT part_id, location_id, sum(quantity) AS total, max(created_at) AS last
              FROM inventory_stockmovement WHERE organization_id = %(org)s GROUP BY part_id, location_id) AS m
        WHERE l.part_id = m.part_id AND l.location_id = m.location_id
        """,
        {"org": org.id},
    )


def _events(cursor, org: OrgInfo, step) -> None:
    """`work-order:created` per order and `work-order:completed` per completed one, numbered and delivered."""
    _run(cursor, "SELECT coalesce(max(sequence), 0) FROM events_event WHERE organization_id = %s", [org.id])
    sequence = cursor.fetchone()[0]
    for lo, hi, count in _order_range(org):
        _run(
            cursor,
            """
            INSERT INTO events_event (type, payload, sequence, correlation_id, created_at, numbered_at, dispatched_at,
                delivery_attempts, last_error, organization_id, user_id)
            SELECT type, payload, %(after)s + row_number() OVER (ORDER BY at, id, type), '', at, at, at, 1, '',
                organization_id, user_id
            FROM (
                SELECT id, 'work-order:created' AS type, created_at AS at, organization_id, assignee_id AS user_id,
                    jsonb_build_object('id', id, 'number', number, 'title', title, 'status', 'open',
                        'priority', priority, 'type', type, 'asset', asset_id, 'assignee', NULL, 'team', team_id,
                        'due_at', due_at) AS payload
                FROM workorders_workorder WHERE id BETWEEN %(lo)s AND %(hi)s
                UNION ALL
                SELECT id, 'work-order:completed', completed_at, organization_id, assignee_id,
                    jsonb_build_object('id', id, 'number', number, 'title', title, 'status', 'completed',
                        'priority', priority, 'type', type, 'asset', asset_id, 'assignee', assignee_id,
                        'team', team_id, 'due_at', due_at)
                FROM workorders_workorder WHERE id BETWEEN %(lo)s AND %(hi)s AND completed_at IS NOT NULL
            ) AS happened
            """,
            {"lo": lo, "hi": hi, "after": sequence},
        )
        sequence += cursor.rowcount
        step.advance(count)
    _run(
        cursor,
        """
        INSERT INTO events_eventsequence (organization_id, last_sequence) VALUES (%s, %s)
        ON CONFLICT (organization_id) DO UPDATE SET last_sequence = excluded.last_sequence
        """,
        [org.id, sequence],
    )


def _meters_and_history(cursor, org: OrgInfo, step) -> None:
    """A "Run hours" meter per asset with READINGS_PER_METER daily readings, and each asset's creation in history."""
    lo, hi = org.first_asset_id, org.first_asset_id + org.assets - 1
    params = {"lo": lo, "hi": hi, "end": END, "readings": READINGS_PER_METER}
    _run(
        cursor,
        """
        INSERT INTO assets_historicalasset (id, created_at, updated_at, code, name, criticality, status, manufacturer,
            model, serial_number, install_date, notes, public_token, history_date, history_change_reason,
            history_type, asset_type_id, history_user_id, location_id, organization_id, parent_id)
        SELECT id, created_at, updated_at, code, name, criticality, status, manufacturer, model, serial_number,
            install_date, notes, public_token, created_at, NULL, '+', asset_type_id, NULL, location_id,
            organization_id, parent_id
        FROM assets_asset WHERE id BETWEEN %(lo)s AND %(hi)s
        """,
        params,
    )
    _run(
        cursor,
        """
        INSERT INTO assets_meter (created_at, updated_at, name, unit, kind, last_value, last_read_at, asset_id,
            organization_id)
        SELECT created_at, %(end)s, 'Run hours', 'h', 'cumulative', 1000 + (%(readings)s - 1) * 16, %(end)s, id,
            organization_id
        FROM assets_asset WHERE id BETWEEN %(lo)s AND %(hi)s
        """,
        params,
    )
    _run(
        cursor,
        """
        INSERT INTO assets_meterreading (created_at, updated_at, value, read_at, source, meter_id, organization_id,
            recorded_by_id)
        SELECT t, t, 1000 + d * 16, t, 'api', m.id, m.organization_id, NULL
        FROM assets_meter m CROSS JOIN generate_series(0, %(readings)s - 1) AS d
        CROSS JOIN LATERAL (SELECT %(end)s - (%(readings)s - 1 - d) * interval '1 day' AS t) AS moment
        WHERE m.asset_id BETWEEN %(lo)s AND %(hi)s
        """,
        params,
    )
    step.advance(org.assets)


BIG_TABLES = [
    "workorders_workorder",
    "workorders_historicalworkorder",
    "sla_slaclock",
    "sla_slaviolation",
    "workorders_checklistitem",
    "workorders_comment",
    "workorders_timeentry",
    "workorders_costline",
    "assets_downtime",
    "workorders_downtimelink",
    "inventory_stockmovement",
    "scheduling_preventiveoccurrence",
    "events_event",
    "assets_asset",
    "assets_historicalasset",
    "assets_meter",
    "assets_meterreading",
    # not big, but grown from a handful: unanalysed, the planner took ~40 people for ~240 (the lists' assignee join)
    "auth_user",
]


def replace(bars) -> None:
    """Delete the bench organisations and everything they own (foreign keys checked at commit)."""
    ids = list(Organization.objects.filter(slug__startswith=SLUG_PREFIX).values_list("pk", flat=True))
    if not ids:
        return
    with bars.step("deleting the previous dataset"), transaction.atomic(), connection.cursor() as cursor:
        _run(cursor, "SET CONSTRAINTS ALL DEFERRED")
        users = list(Membership.objects.filter(organization_id__in=ids).values_list("user_id", flat=True))
        for model in apps.get_models(include_auto_created=True):
            names = {f.attname for f in model._meta.concrete_fields}
            if "organization_id" in names and model is not Organization:
                table = connection.ops.quote_name(model._meta.db_table)
                _run(cursor, f"DELETE FROM {table} WHERE organization_id = ANY(%s)", [ids])  # noqa: S608
        _run(cursor, "DELETE FROM workorders_team_members WHERE user_id = ANY(%s)", [users])
        _run(cursor, "DELETE FROM tenancy_historicalmembership WHERE user_id = ANY(%s)", [users])
        Organization.history.filter(id__in=ids).delete()
        Organization.objects.filter(pk__in=ids).delete()
        User.objects.filter(pk__in=users).delete()


def _preventive(cursor, org: OrgInfo, s: dict, step) -> None:
    """PM occurrences: one per preventive or inspection order of an asset (its asset type's schedule, due two days
    after the order was raised), and a skipped one without an order for 5% of them (due a day later)."""
    schedules = s["pm_schedules"]
    cases = " ".join(f"WHEN {type_id} THEN {schedule_id}" for type_id, schedule_id in schedules.items())
    for lo, hi, count in _order_range(org):
        _run(
            cursor,
            f"""
            INSERT INTO scheduling_preventiveoccurrence (created_at, updated_at, target_key, due_at, status,
                skip_reason, note, missed_count, asset_id, organization_id, work_order_id, schedule_id)
            SELECT w.created_at, w.created_at, w.asset_id, w.created_at + interval '2 days', 'created', '', '', 0,
                w.asset_id, w.organization_id, w.id, CASE a.asset_type_id {cases} END
            FROM workorders_workorder w JOIN assets_asset a ON a.id = w.asset_id
            WHERE w.id BETWEEN %(lo)s AND %(hi)s AND w.type IN ('preventive', 'inspection')
              AND a.asset_type_id IS NOT NULL
            UNION ALL
            SELECT w.created_at, w.created_at, w.asset_id, w.created_at + interval '3 days', 'skipped',
                'open_order', 'Skipped: an order was still open', 0, w.asset_id, w.organization_id, NULL,
                CASE a.asset_type_id {cases} END
            FROM workorders_workorder w JOIN assets_asset a ON a.id = w.asset_id
            WHERE w.id BETWEEN %(lo)s AND %(hi)s AND w.type IN ('preventive', 'inspection')
              AND a.asset_type_id IS NOT NULL AND pg_temp.h(w.id, 60) % 100 < 5
            ON CONFLICT DO NOTHING
            """,
            {"lo": lo, "hi": hi},
        )
        step.advance(count)


def build(orders: int, *, bars, lists_only: bool = False, orders_per_asset: int = ORDERS_PER_ASSET) -> Dataset:
    """Write the dataset (see the module's docstring). The database must not hold one already.

    `lists_only`: assets, work orders, SLA clocks and the stock ledger only, then ANALYZE instead of VACUUM (which
    cannot run in a transaction): what the tests of the lists' query plans need, in seconds. `orders_per_asset`
    sizes the assets (a small dataset with many assets gives the asset list a size that means something)."""
    if connection.vendor != "postgresql":
        raise SystemExit("The dataset is built with PostgreSQL's SQL: set DATABASE_URL=postgres://…")
    if Organization.objects.filter(slug__startswith=SLUG_PREFIX).exists():
        raise SystemExit("This database already holds a bench dataset: pass --replace to build it again.")
    plan = sizes(orders, orders_per_asset)
    started = time.perf_counter()
    organisations, scaffolds = [], []
    with bars.step("organisations, people, locations, parts, policies", total=len(plan)) as step:
        for index, (slug, count, assets) in enumerate(plan):
            with transaction.atomic():
                org = Organization.objects.create(
                    name=f"Bench {'big' if slug == BIG_SLUG else slug[-2:]}", slug=slug, time_zone="Europe/Berlin"
                )
                people = _people(org, index, 60 if slug == BIG_SLUG else 15)
                scaffolds.append(_scaffold(org, people, max(50, count // ORDERS_PER_PART)))
            info = OrgInfo(org.pk, slug, count, assets)
            organisations.append(info)
            step.advance()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
        cursor.execute("SET work_mem TO '64MB'")
        cursor.execute(HASH_FUNCTION)
        next_asset, next_order = _next_id(cursor, "assets_asset"), _next_id(cursor, "workorders_workorder")
        for info in organisations:
            info.first_asset_id, info.first_order_id = next_asset, next_order
            next_asset += info.assets
            next_order += info.orders
        total_assets = sum(o.assets for o in organisations)
        phases = [
            ("assets", total_assets, lambda o, s, st: _assets(cursor, o, s, st)),
            ("work orders", orders, lambda o, s, st: _orders(cursor, o, s, st)),
            ("work-order history", orders, lambda o, s, st: _history(cursor, o, st)),
            ("SLA clocks and violations", orders, lambda o, s, st: _clocks(cursor, o, s, st)),
            ("checklists, comments, time, costs, downtime", orders, lambda o, s, st: _work_details(cursor, o, s, st)),
            ("stock ledger", orders, lambda o, s, st: _stock(cursor, o, s, st)),
            ("preventive occurrences", orders, lambda o, s, st: _preventive(cursor, o, s, st)),
            ("events", orders, lambda o, s, st: _events(cursor, o, st)),
            ("meters, readings, asset history", total_assets, lambda o, s, st: _meters_and_history(cursor, o, st)),
        ]
        if lists_only:
            kept = ("assets", "work orders", "SLA clocks and violations", "stock ledger")
            phases = [phase for phase in phases if phase[0] in kept]
        for description, total, write in phases:
            with bars.step(description, total=total) as step:
                for info, scaffold in zip(organisations, scaffolds, strict=True):
                    write(info, scaffold, step)
                if description == "assets":
                    _reset_sequence(cursor, "assets_asset")
                if description == "work orders":
                    _reset_sequence(cursor, "workorders_workorder")
        with bars.step("VACUUM ANALYZE", total=len(BIG_TABLES)) as step:
            for table in BIG_TABLES:
                cursor.execute(f"{'ANALYZE' if lists_only else 'VACUUM ANALYZE'} {table}")
                step.advance()
    bars.print(f"dataset: {orders:,} work orders in {len(plan)} organisations, {time.perf_counter() - started:.0f} s")
    return load()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000, help="work orders in all (default 1000000)")
    parser.add_argument("--replace", action="store_true", help="delete a dataset already there, then build")
    args = parser.parse_args()
    if args.orders < 1000:
        parser.error("--orders: give at least 1000")
    with progress.bars() as bars:
        if args.replace:
            replace(bars)
        dataset = build(args.orders, bars=bars)
    for org in dataset.organisations:
        print(f"{org.slug:<10} {org.orders:>9,} orders {org.assets:>7,} assets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
