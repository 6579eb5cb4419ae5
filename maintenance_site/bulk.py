"""Set-based writes for the services' batch functions (`workorders.services.create_work_orders_bulk`,
`inventory.services.reserve_bulk`, `maintenance_site.events.services.publish_many`, the preventive generator):
the tools, not a way around the services, which stay the only writers of their tables.

- `insert_rows`: rows given as tuples of values, written with their ids known in advance. PostgreSQL: the ids come
  from the table's sequence in one query and the rows go in by COPY (with `ignore_conflicts`, into a temporary
  table first, then INSERT … SELECT … ON CONFLICT DO NOTHING). Elsewhere (SQLite): `bulk_create`.
  No Python model instance, no SQL text per row.
- `history_by_select`: the "+" history rows of rows just inserted, written by the database itself
  (INSERT INTO <history> SELECT <the row's columns>, <date>, <reason>, '+', <user> FROM <table> WHERE …).
- `int_table` and `id_in`: ids as a table to join, or a set to test, in one parameter per column on PostgreSQL.

Each writes in a fixed number of statements whatever the number of rows (on SQLite, one per batch of what its
parameter limit allows). A COPY does not pass through Django's cursor wrapper, so it is logged here when queries
are logged (tests count it like any other statement).
"""

import json
import time
from collections.abc import Sequence

from django.db import connection
from django.db.models import JSONField
from django.utils import timezone

from maintenance_site import audit

HISTORY_OWN_COLUMNS = ("history_id", "history_date", "history_change_reason", "history_type", "history_user_id")
SQLITE_BATCH = 500  # rows per statement on SQLite (its parameter limit)


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def _log(sql: str, started: float) -> None:
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _columns(model, fields: Sequence[str]):
    """The model's columns but the id, each with the index of its value in a row of `fields` or the constant it
    takes (the field's default, or now for auto_now / auto_now_add fields not given)."""
    given = {name: index for index, name in enumerate(fields)}
    unknown = set(given) - {f.attname for f in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no column(s) {', '.join(sorted(unknown))}.")
    now = timezone.now()
    columns = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.attname in given:
            columns.append((field, given[field.attname], None))
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        columns.append((field, None, value))
    return columns


def _constant(field, value):
    """A column's constant as the driver takes it (JSON as its text, like the rows' JSON values)."""
    if isinstance(field, JSONField):
        return None if value is None else json.dumps(value, cls=field.encoder)
    return field.get_db_prep_save(value, connection)


def insert_rows(model, fields: Sequence[str], rows: Sequence[Sequence], *, ignore_conflicts: bool = False) -> list:
    """Insert `rows` (tuples of the values of `fields`, attnames such as `asset_id`; a JSON column's value given as
    its JSON text) into the model's table; the columns not in `fields` get their default (now for automatic
    timestamps). Returns the new ids in the order of `rows`. With `ignore_conflicts` a row that meets a unique
    conflict is left out (ON CONFLICT DO NOTHING) and the ids are not returned: find the rows by their own key.
    Values must be valid already: the caller validated them."""
    if not rows:
        return []
    columns = _columns(model, fields)
    if connection.vendor != "postgresql":
        return _insert_rows_elsewhere(model, columns, rows, ignore_conflicts)
    table = _quoted(model._meta.db_table)
    pk = model._meta.pk
    names = ", ".join(_quoted(c) for c in [pk.column, *(field.column for field, _, _ in columns)])
    plan = [(index, None if index is not None else _constant(field, value)) for field, index, value in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, pk.column, len(rows)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        target = table
        if ignore_conflicts:  # COPY knows no ON CONFLICT: the rows go through a temporary table
            target = _quoted(f"bulk_{model._meta.db_table}")
            cursor.execute(f"CREATE TEMPORARY TABLE {target} (LIKE {table}) ON COMMIT DROP")
        started = time.monotonic()
        sql = f"COPY {target} ({names}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            write = copy.write_row
            for pk_value, row in zip(ids, rows, strict=True):
                write((pk_value, *[constant if index is None else row[index] for index, constant in plan]))
        _log(f"{sql} -- {len(rows)} rows", started)
        if ignore_conflicts:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {target} "  # noqa: S608 - names are quoted
                f"ORDER BY {_quoted(pk.column)} ON CONFLICT DO NOTHING"
            )
            cursor.execute(f"DROP TABLE {target}")
            return []
    return ids


def _insert_rows_elsewhere(model, columns, rows, ignore_conflicts: bool) -> list:
    """SQLite: `bulk_create` of instances built from the rows (the ids come back from the database)."""
    objects = []
    for row in rows:
        values = {}
        for field, index, value in columns:
            value = row[index] if index is not None else value
            if isinstance(field, JSONField) and index is not None and value is not None:
                value = json.loads(value)
            values[field.attname] = value
        objects.append(model(**values))
    created = model.objects.bulk_create(objects, batch_size=SQLITE_BATCH, ignore_conflicts=ignore_conflicts)
    return [obj.pk for obj in created]


def _int_array(values) -> str:
    """Integers as one PostgreSQL array literal ('{1,2,NULL}'): a single text parameter, whatever their number
    (psycopg's client-side binding would quote each element in Python, and the planner hashes a constant array)."""
    return "{" + ",".join("NULL" if value is None else str(int(value)) for value in values) + "}"


def int_table(rows: Sequence[Sequence[int | None]], alias: str, names: Sequence[str]) -> tuple[str, list]:
    """Rows of integers (ids) as a table for a FROM clause, named `alias` with the columns `names`, and its
    parameters: on PostgreSQL unnest('{…}'::bigint[], …), one parameter per column whatever the number of rows;
    elsewhere a VALUES list."""
    if connection.vendor == "postgresql":
        arrays = [_int_array(row[n] for row in rows) for n in range(len(names))]
        unnest = ", ".join(["%s::bigint[]"] * len(names))
        return f"unnest({unnest}) AS {alias}({', '.join(names)})", arrays
    one = "(" + ", ".join(["CAST(%s AS bigint)"] * len(names)) + ")"
    renamed = ", ".join(f"column{n} AS {name}" for n, name in enumerate(names, start=1))
    sql = f"(SELECT {renamed} FROM (VALUES {', '.join([one] * len(rows))})) AS {alias}"  # noqa: S608
    return sql, [value for row in rows for value in row]


def history_by_select(model, where: str, params: Sequence, *, reason=None, user=None) -> int:
    """The "+" history rows of the rows of `model` that `where` selects (SQL on the table's alias `t`, e.g.
    `t.id = ANY(%s)`), written by one INSERT … SELECT: the row's columns, now, `reason`, '+' and `user` (default:
    whoever the code acts for, `audit.current_user()`). Returns how many were written. simple-history's history
    model has the model's columns plus history_id / history_date / history_change_reason / history_type /
    history_user_id."""
    history_model = model.history.model
    columns = [f.column for f in history_model._meta.concrete_fields if f.column not in HISTORY_OWN_COLUMNS]
    user = user if user is not None else audit.current_user()
    date_field = history_model._meta.get_field("history_date")
    insert = ", ".join(
        _quoted(c) for c in [*columns, "history_date", "history_change_reason", "history_type", "history_user_id"]
    )
    select = ", ".join(f"t.{_quoted(c)}" for c in columns)
    sql = (
        f"INSERT INTO {_quoted(history_model._meta.db_table)} ({insert}) "  # noqa: S608 - names are quoted
        f"SELECT {select}, %s, %s, %s, %s FROM {_quoted(model._meta.db_table)} t WHERE {where}"
    )
    now = date_field.get_db_prep_save(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, reason, "+", user.pk if user is not None else None, *params])
        return cursor.rowcount


def id_in(column: str, ids: Sequence[int]) -> tuple[str, list]:
    """`<column> = ANY('{…}'::bigint[])` with one parameter on PostgreSQL (no SQL text per id), `<column> IN (…)`
    elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [_int_array(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)
