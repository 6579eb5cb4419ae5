"""Where points live: the monthly partitions of `iot_device_metrics` (PostgreSQL), the set-based write of a batch
with its rollups, the rollups' rebuild, and retention. Called by the services (`assets.telemetry.services`), which
stay the only writers; the tools here check no role and write no history (points are data, their audit is the
ingest log).

PostgreSQL: `iot_device_metrics` is partitioned by range of `ts`, one partition a month
(`iot_device_metrics_YYYYMM`), each with the (series_id, ts) primary key and a BRIN index on `ts` inherited from the
parent. `ensure_partitions` creates them ahead (periodic job, and on demand for a batch's months); retention
drops whole partitions once every organisation's raw retention has passed them, and deletes by series before that
for organisations that keep less. SQLite (embedded): one plain table, the same columns and key.
"""

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from assets.models import Asset
from assets.telemetry.models import Grain, IngestBatch, Series, TelemetryPoint, TelemetryRollup

TABLE = TelemetryPoint._meta.db_table
ROLLUPS = TelemetryRollup._meta.db_table
PARTITION_LOCK = 0x10710719  # pg_advisory_xact_lock key: one process creates or drops partitions at a time

_known_partitions: set[str] = set()


def is_partitioned() -> bool:
    return connection.vendor == "postgresql"


# --- partitions -------------------------------------------------------------------------------------------


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_{month:%Y%m}"


def partitions() -> dict[str, date]:
    """The partitions that exist now: name → first day of their month (PostgreSQL; empty elsewhere)."""
    if not is_partitioned():
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = {}
    for name in names:
        suffix = name.removeprefix(f"{TABLE}_")
        if len(suffix) == 6 and suffix.isdigit():
            found[name] = date(int(suffix[:4]), int(suffix[4:]), 1)
    return found


def _create(months: Iterable[date]) -> list[str]:
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        existing = partitions()
        for month in sorted(set(months)):
            name = partition_name(month)
            if name in existing:
                continue
            upper = add_months(month, 1)
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {connection.ops.quote_name(name)} PARTITION OF {TABLE} "  # noqa: S608
                f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{upper.isoformat()} 00:00:00+00')"
            )
            created.append(name)
    names = {partition_name(month) for month in months}
    # remembered once committed: a rolled-back batch takes its new partition with it
    transaction.on_commit(lambda: _known_partitions.update(names))
    return created


def ensure_partitions(*, now: datetime | None = None, ahead: int | None = None, since: date | None = None) -> list:
    """Create the monthly partitions from `since` (default: this month) to `ahead` months after this one
    (TELEMETRY_PARTITIONS_AHEAD). Idempotent, and safe on two machines at once (an advisory lock, and IF NOT
    EXISTS). Returns the names created (none on SQLite)."""
    if not is_partitioned():
        return []
    now = now or datetime.now(UTC)
    ahead = settings.TELEMETRY_PARTITIONS_AHEAD if ahead is None else ahead
    first = since or month_start(now)
    months, month = [], first
    last = add_months(month_start(now), ahead)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return _create(months)


def ensure_partitions_for(moments: Iterable[datetime]) -> None:
    """Make sure the months of these moments have their partition (a batch's late points may reach back into a
    month that was never created ahead). Costs nothing once this process has seen them."""
    if not is_partitioned():
        return
    moments = list(moments)
    first, last = month_start(min(moments).astimezone(UTC)), month_start(max(moments).astimezone(UTC))
    months, month = set(), first
    while month <= last:
        months.add(month)
        month = add_months(month, 1)
    missing = {month for month in months if partition_name(month) not in _known_partitions}
    if not missing:
        return
    existing = partitions()
    transaction.on_commit(lambda: _known_partitions.update(existing))
    missing = {month for month in missing if partition_name(month) not in existing}
    if missing:
        _create(missing)


def drop_partitions_before(cutoff: datetime) -> list[str]:
    """Drop the partitions whose whole month ends at or before `cutoff` (retention): a DROP is instant, where a
    DELETE of a month of points would write it all to the WAL."""
    if not is_partitioned():
        return []
    dropped = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        for name, month in sorted(partitions().items(), key=lambda item: item[1]):
            upper = add_months(month, 1)
            if datetime(upper.year, upper.month, upper.day, tzinfo=UTC) <= cutoff:
                cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(name)}")
                dropped.append(name)
                _known_partitions.discard(name)
    return dropped


# --- writing a batch ---------------------------------------------------------------------------------------


def _array(values, cast=str) -> str:
    return "{" + ",".join(map(cast, values)) + "}"


def _ts_text(moment: datetime) -> str:
    return moment.isoformat()  # with its offset: PostgreSQL reads it as the same instant


ROLLUP_UPSERT = """
INSERT INTO {rollups} AS r (series_id, grain, bucket, count, total, minimum, maximum)
SELECT series_id, '{grain}', date_trunc('{unit}', ts, 'UTC'), count(*), sum(value), min(value), max(value)
FROM {source} GROUP BY series_id, date_trunc('{unit}', ts, 'UTC')
ON CONFLICT (series_id, grain, bucket) DO UPDATE SET count = r.count + excluded.count,
  total = r.total + excluded.total, minimum = LEAST(r.minimum, excluded.minimum),
  maximum = GREATEST(r.maximum, excluded.maximum)
"""


class _All:
    """Every row went in (what `insert_points` answers instead of building the set of all their keys)."""

    def __contains__(self, key) -> bool:
        return True


ALL = _All()


class StoredAlready(Exception):
    """The COPY met a point stored already: the transaction is lost; run the batch again with `copy=False`."""


def insert_points(rows: list[tuple[int, datetime, float]], *, copy: bool = False, moments=None):
    """Store (series_id, ts, value) rows, unique by (series_id, ts) within `rows`, and add them to their hourly
    and daily rollups. A row whose (series_id, ts) is stored already is left as it was (a duplicate) and not
    counted again. Returns the keys actually stored (`ALL` when every row was). The caller holds its series' row
    locks, so two batches never write the same series (or rollup rows) at once.

    PostgreSQL, `copy=True`: a binary COPY straight into the table (the usual case: new points); it returns `ALL`
    and the caller adds the rows to their rollups with `save_batch(rollup_points=…)`. A row stored already fails
    the COPY, and the transaction with it: `StoredAlready` is raised and the caller runs the batch again with
    `copy=False`: one statement (INSERT … ON CONFLICT DO NOTHING RETURNING, the two rollup upserts reading what it
    returned). `moments`: the rows' distinct moments, when the caller has them."""
    if not rows:
        return set()
    ensure_partitions_for(moments if moments is not None else [ts for _, ts, _ in rows])
    if not is_partitioned():
        return _insert_points_elsewhere(rows)
    if not copy:
        return _insert_points_on_conflict(rows)
    try:
        _copy_points(rows)
    except IntegrityError as exc:
        raise StoredAlready from exc
    return ALL


def _copy_points(rows) -> None:
    started = time.monotonic()
    sql = f"COPY {TABLE} (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.set_types(["bigint", "timestamptz", "float8"])
        write = copy.write_row
        for row in rows:
            write(row)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


def _rollup_sums(points_by_series, epochs) -> list[str]:
    """The points' sums per series and UTC hour and day, as columns for the rollups' upsert. `points_by_series`:
    series id → [(ts, value)] (time order is the fast case, not a requirement); `epochs`: ts → epoch seconds."""
    buckets = []
    hour_grain, day_grain = Grain.HOUR.value, Grain.DAY.value
    for series_id, points in points_by_series.items():
        hours: dict[int, list] = {}
        current, bucket = None, None
        for ts, value in points:
            hour = int(epochs[ts] // 3600)
            if hour != bucket:  # points in time order stay in one hour for many points: one lookup per hour
                bucket = hour
                current = hours.get(hour)
                if current is None:
                    hours[hour] = current = [0, 0.0, value, value]
            current[0] += 1
            current[1] += value
            if value < current[2]:
                current[2] = value
            elif value > current[3]:
                current[3] = value
        days: dict[int, list] = {}
        for hour, (count, total, low, high) in hours.items():
            buckets.append((series_id, hour_grain, hour * 3600, count, total, low, high))
            day = days.get(hour // 24)
            if day is None:
                days[hour // 24] = [count, total, low, high]
            else:
                day[0] += count
                day[1] += total
                if low < day[2]:
                    day[2] = low
                if high > day[3]:
                    day[3] = high
        buckets += [(series_id, day_grain, day * 86400, *sums) for day, sums in days.items()]
    series_ids, grains, starts, counts, totals, lows, highs = zip(*buckets, strict=True)
    # array literals (text): quoting Python lists element by element is psycopg's slow path here
    return [
        _array(series_ids),
        _array(grains),
        _array(starts),
        _array(counts),
        *(_array(c, repr) for c in (totals, lows, highs)),
    ]


ROLLUP_SUMS_UPSERT = (
    f"INSERT INTO {ROLLUPS} AS r (series_id, grain, bucket, count, total, minimum, maximum) "  # noqa: S608
    "SELECT s, g, to_timestamp(b), c, t, lo, hi FROM unnest(%s::bigint[], %s::text[], %s::bigint[], "
    "%s::bigint[], %s::float8[], %s::float8[], %s::float8[]) AS v(s, g, b, c, t, lo, hi) "
    "ON CONFLICT (series_id, grain, bucket) DO UPDATE SET count = r.count + excluded.count, "
    "total = r.total + excluded.total, minimum = LEAST(r.minimum, excluded.minimum), "
    "maximum = GREATEST(r.maximum, excluded.maximum)"
)


def _insert_points_on_conflict(rows):
    """The rows of a batch that holds points stored already: those go nowhere (ON CONFLICT DO NOTHING), the others
    in, with their rollups, in one statement."""
    series_ids, moments, values = zip(*rows, strict=True)
    sql = (
        f"WITH new AS (INSERT INTO {TABLE} (series_id, ts, value) "  # noqa: S608
        "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[]) "
        "ON CONFLICT DO NOTHING RETURNING series_id, ts, value), "
        f"hourly AS ({ROLLUP_UPSERT.format(rollups=ROLLUPS, grain=Grain.HOUR, unit='hour', source='new')}), "
        f"daily AS ({ROLLUP_UPSERT.format(rollups=ROLLUPS, grain=Grain.DAY, unit='day', source='new')}) "
        # every row new (the usual case): only the count comes back; else the keys that went in
        "SELECT count(*), CASE WHEN count(*) = %s THEN NULL ELSE array_agg(series_id) END, "
        "CASE WHEN count(*) = %s THEN NULL ELSE array_agg(ts) END FROM new"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [_array(series_ids), _array(map(_ts_text, moments)), _array(values, repr), len(rows), len(rows)]
        )
        count, stored_ids, stored_moments = cursor.fetchone()
    if count == len(rows):
        return ALL
    return set(zip(stored_ids or [], stored_moments or [], strict=True))


def _bucket(moment: datetime, grain: str) -> datetime:
    moment = moment.astimezone(UTC)
    if grain == Grain.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _insert_points_elsewhere(rows) -> set:
    """SQLite: read which keys exist, insert the others, add them to their rollups (computed here)."""
    by_series = defaultdict(list)
    for series_id, ts, _ in rows:
        by_series[series_id].append(ts)
    existing = set()
    for series_id, moments in by_series.items():
        existing.update(
            TelemetryPoint.objects.filter(series_id=series_id, ts__gte=min(moments), ts__lte=max(moments)).values_list(
                "series_id", "ts"
            )
        )
    fresh = [row for row in rows if (row[0], row[1]) not in existing]
    ts_field = TelemetryPoint._meta.get_field("ts")
    prep = ts_field.get_db_prep_save
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {TABLE} (series_id, ts, value) VALUES (%s, %s, %s)",  # noqa: S608
            [(series_id, prep(ts, connection), value) for series_id, ts, value in fresh],
        )
        _add_to_rollups_elsewhere(cursor, fresh)
    return {(series_id, ts) for series_id, ts, _ in fresh}


def _add_to_rollups_elsewhere(cursor, rows) -> None:
    sums: dict[tuple, list] = {}
    for series_id, ts, value in rows:
        for grain in (Grain.HOUR, Grain.DAY):
            key = (series_id, str(grain), _bucket(ts, grain))
            current = sums.get(key)
            if current is None:
                sums[key] = [1, value, value, value]
            else:
                current[0] += 1
                current[1] += value
                current[2] = min(current[2], value)
                current[3] = max(current[3], value)
    prep = TelemetryRollup._meta.get_field("bucket").get_db_prep_save
    cursor.executemany(
        f"INSERT INTO {ROLLUPS} (series_id, grain, bucket, count, total, minimum, maximum) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (series_id, grain, bucket) DO UPDATE SET "
        "count = count + excluded.count, total = total + excluded.total, "
        "minimum = min(minimum, excluded.minimum), maximum = max(maximum, excluded.maximum)",
        [(s, g, prep(b, connection), *values) for (s, g, b), values in sums.items()],
    )


def rebuild_rollups(series_ids: list[int], start: datetime, end: datetime) -> int:
    """Recompute the rollups of these series for the UTC days from `start`'s to `end`'s from the raw points (after a
    raw load such as the benchmark's COPY, or to repair). Returns the buckets written."""
    start = _bucket(start, Grain.DAY)
    end = _bucket(end, Grain.DAY) + timedelta(days=1)
    TelemetryRollup.objects.filter(series_id__in=series_ids, bucket__gte=start, bucket__lt=end).delete()
    if not is_partitioned():
        written = 0
        with connection.cursor() as cursor:
            for series_id in series_ids:
                rows = list(
                    TelemetryPoint.objects.filter(series_id=series_id, ts__gte=start, ts__lt=end).values_list(
                        "series_id", "ts", "value"
                    )
                )
                _add_to_rollups_elsewhere(cursor, rows)
                written += len(rows)
        return written
    total = 0
    with connection.cursor() as cursor:
        for grain, unit in ((Grain.HOUR, "hour"), (Grain.DAY, "day")):
            cursor.execute(
                f"INSERT INTO {ROLLUPS} (series_id, grain, bucket, count, total, minimum, maximum) "  # noqa: S608
                f"SELECT series_id, %s, date_trunc('{unit}', ts, 'UTC'), count(*), sum(value), min(value), max(value) "
                f"FROM {TABLE} WHERE series_id = ANY(%s::bigint[]) AND ts >= %s AND ts < %s "
                f"GROUP BY series_id, date_trunc('{unit}', ts, 'UTC')",
                [str(grain), _array(series_ids), start, end],
            )
            total += cursor.rowcount
    return total


def save_batch(series_list, *, rollup_points=None, epochs=None, log: IngestBatch) -> None:
    """After a batch: write the series' newest point, unit, analysed time and detector state (not `updated_at`: no
    indexed column changes, so PostgreSQL updates the rows in place, HOT), add `rollup_points` (series id →
    [(ts, value)], the rows a COPY stored; `epochs`: ts → epoch seconds) to their rollups, and insert `log` (the
    batch's unsaved `IngestBatch`; its id is set). PostgreSQL: one statement, an UPDATE … FROM
    jsonb_to_recordset(…) beside the rollups' upsert and the log's INSERT (Django's bulk_update builds a CASE per
    field and row, most of a batch's Python time; and each statement is a round trip, which a loaded machine makes
    long). Elsewhere: a statement each."""
    log.created_at = log.updated_at = timezone.now()
    if not is_partitioned():
        _save_series_elsewhere(series_list)
        log.save(force_insert=True)
        return
    table = Series._meta.db_table
    parts, params = [], []
    if rollup_points:
        parts.append(f"rollups AS ({ROLLUP_SUMS_UPSERT})")
        params += _rollup_sums(rollup_points, epochs)
    if series_list:
        # one JSON document (orjson: datetimes with their offset, floats shortest round-trip) read back by
        # jsonb_to_recordset, and the rollups as array literals: psycopg's client-side quoting of Python lists
        # element by element was a third of this statement's cost
        parts.append(
            f"series AS (UPDATE {table} AS s SET unit = v.unit, first_ts = v.first_ts, "  # noqa: S608
            "last_ts = v.last_ts, last_value = v.last_value, analysed_until = v.analysed_until, state = v.state "
            "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, unit text, first_ts timestamptz, "
            "last_ts timestamptz, last_value float8, analysed_until timestamptz, state jsonb) WHERE s.id = v.id)"
        )
        params.append(
            orjson.dumps(
                [
                    {
                        "id": s.pk,
                        "unit": s.unit,
                        "first_ts": s.first_ts,
                        "last_ts": s.last_ts,
                        "last_value": s.last_value,
                        "analysed_until": s.analysed_until,
                        "state": s.state,
                    }
                    for s in series_list
                ]
            ).decode()
        )
    fields = [field for field in IngestBatch._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    holes = ", ".join(["%s"] * len(fields))
    insert = f"INSERT INTO {IngestBatch._meta.db_table} ({columns}) VALUES ({holes}) RETURNING id"  # noqa: S608
    params += [field.get_db_prep_save(getattr(log, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute((f"WITH {', '.join(parts)} " if parts else "") + insert, params)
        log.pk = cursor.fetchone()[0]
    log._state.adding, log._state.db = False, connection.alias


def _save_series_elsewhere(series_list) -> None:
    columns = ("unit", "first_ts", "last_ts", "last_value", "analysed_until", "state")
    prep = Series._meta.get_field("last_ts").get_db_prep_save
    assignments = ", ".join(f"{column} = %s" for column in columns)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Series._meta.db_table} SET {assignments} WHERE id = %s",  # noqa: S608
            [
                (
                    s.unit,
                    prep(s.first_ts, connection),
                    prep(s.last_ts, connection),
                    s.last_value,
                    prep(s.analysed_until, connection),
                    json.dumps(s.state),
                    s.pk,
                )
                for s in series_list
            ],
        )


_SERIES_FIELDS = [field.attname for field in Series._meta.concrete_fields]


def locked_series(organization_id: int, asset_ids, asset_codes, metrics) -> list[tuple[Series, str, int | None]]:
    """The organisation's series of these metrics for these assets (named by id or by code), locked FOR UPDATE in
    id order, each with its asset's code and type id. PostgreSQL: one plain statement read as tuples (the ORM's
    query building and per-row conversions were a sixth of a batch's client time); elsewhere the ORM."""
    if not is_partitioned():
        return [
            (series, series.asset_code, series.type_id)
            for series in Series.objects.select_for_update(of=("self",))
            .filter(organization_id=organization_id, metric__in=metrics)
            .filter(Q(asset_id__in=asset_ids) | Q(asset__code__in=asset_codes))
            .annotate(asset_code=F("asset__code"), type_id=F("asset__asset_type_id"))
            .order_by("pk")
        ]
    columns = ", ".join(f"s.{name}" if name != "state" else "s.state::text" for name in _SERIES_FIELDS)
    sql = (
        f"SELECT {columns}, a.code, a.asset_type_id FROM {Series._meta.db_table} s "  # noqa: S608
        f"JOIN {Asset._meta.db_table} a ON a.id = s.asset_id "
        "WHERE s.organization_id = %s AND s.metric = ANY(%s::text[]) "
        "AND (s.asset_id = ANY(%s::bigint[]) OR a.code = ANY(%s::text[])) ORDER BY s.id FOR UPDATE OF s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [organization_id, list(metrics), list(asset_ids), list(asset_codes)])
        rows = cursor.fetchall()
    state_at, loads, alias, make = _SERIES_FIELDS.index("state"), orjson.loads, connection.alias, Series.from_db
    found = []
    for row in rows:
        values = list(row[:-2])
        values[state_at] = loads(values[state_at])
        found.append((make(alias, _SERIES_FIELDS, values), row[-2], row[-1]))
    return found


def stored_points(series_id: int, since: datetime, until: datetime) -> list[tuple[datetime, float]]:
    """The series' points from `since` to `until` (both included), in time order."""
    return list(
        TelemetryPoint.objects.filter(series_id=series_id, ts__gte=since, ts__lte=until)
        .order_by("ts")
        .values_list("ts", "value")
    )


# --- retention -------------------------------------------------------------------------------------------


def delete_points(series_ids: list[int], before: datetime) -> int:
    """Delete the raw points of these series older than `before` (the rollups stay)."""
    if not series_ids:
        return 0
    if not is_partitioned():
        return TelemetryPoint.objects.filter(series_id__in=series_ids, ts__lt=before).delete()[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE series_id = ANY(%s::bigint[]) AND ts < %s",  # noqa: S608
            [_array(series_ids), before],
        )
        return cursor.rowcount


def delete_rollups(series_ids: list[int], grain: str, before: datetime) -> int:
    if not series_ids:
        return 0
    return TelemetryRollup.objects.filter(series_id__in=series_ids, grain=grain, bucket__lt=before).delete()[0]


def delete_series_data(series_ids: list[int]) -> None:
    """All points and rollups of these series (the series are being deleted; the points have no FK to cascade)."""
    if not series_ids:
        return
    TelemetryRollup.objects.filter(series_id__in=series_ids).delete()
    if not is_partitioned():
        TelemetryPoint.objects.filter(series_id__in=series_ids).delete()
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE series_id = ANY(%s::bigint[])", [_array(series_ids)])  # noqa: S608
