"""Set-based writes for the services' batch functions (`workorders.services.create_work_orders_bulk`,
`inventory.services.reserve_bulk`, `maintenance_site.events.services.publish_many`, the preventive generator):
the tools, not a way around the services, which stay the only writers of their tables.

- `take_ids`: ids of new rows taken in advance (so that rows pointing at them can be written first).
- `insert_rows`: rows given as tuples of values, written with their ids known in advance. PostgreSQL: by binary
  COPY. Elsewhere (SQLite): one INSERT run for every row. No Python model instance, no SQL text per row.
  `insert_new_rows`: the same for rows whose unique key may exist already (ON CONFLICT DO NOTHING).
- `loaded`: the instances of rows just inserted, without reading them back.
- `history_by_select`: the "+" history rows of rows just inserted, written by the database itself
  (INSERT INTO <history> SELECT <the row's columns>, <date>, <reason>, '+', <user> FROM <table> WHERE …);
  `insert_select_with_history`: an INSERT … SELECT and the history of its rows, in one statement on PostgreSQL.
- `int_table` and `id_in`: ids as a table to join, or a set to test, in one parameter per column on PostgreSQL.

Each writes in a fixed number of statements whatever the number of rows. A COPY does not pass through Django's
cursor wrapper, so it is logged here when queries are logged (tests count it like any other statement).
"""

import gc
import json
import time
from collections.abc import Sequence
from contextlib import contextmanager

from django.db import IntegrityError, connection, transaction
from django.db.models import JSONField, signals
from django.db.models.base import ModelState
from django.db.models.constants import OnConflict
from django.utils import timezone
from psycopg.types.json import Jsonb

from maintenance_site import audit

HISTORY_OWN_COLUMNS = ("history_id", "history_date", "history_change_reason", "history_type", "history_user_id")


@contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector for a batch: building and writing many rows allocates objects by
    the hundred thousand, all freed by reference counting, and each burst of allocations makes the collector walk
    every live object again (at 100,000 occurrences, a third of a generation pass's Python time). Enabled again
    afterwards (if it was); what it would have found is collected then."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def take_ids(model, count: int) -> list[int]:
    """`count` new ids of the model's table, taken now and never given to anyone else, so that rows pointing at
    the new rows can be written before them (foreign keys are checked at commit). PostgreSQL: from the table's
    sequence, one query; SQLite: by moving its AUTOINCREMENT counter past them (the transaction holds the
    database's write lock from there on)."""
    if count <= 0:
        return []
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # one row back: the first and last id, and the whole list only when other sessions took ids in between
            cursor.execute(
                "SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL ELSE array_agg(v) END "
                "FROM (SELECT nextval(pg_get_serial_sequence(%s, %s)) AS v FROM generate_series(1, %s)) AS taken",
                [table, pk, count],
            )
            first, last, scattered = cursor.fetchone()
            return sorted(scattered) if scattered is not None else list(range(first, last + 1))
        highest = f"(SELECT COALESCE(MAX({_quoted(pk)}), 0) FROM {_quoted(table)})"  # noqa: S608
        cursor.execute(
            f"INSERT INTO sqlite_sequence (name, seq) SELECT %s, {highest} "  # noqa: S608
            "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = %s)",
            [table, table],
        )
        cursor.execute(
            f"UPDATE sqlite_sequence SET seq = MAX(seq, {highest}) + %s WHERE name = %s",  # noqa: S608
            [count, table],
        )
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        last = cursor.fetchone()[0]
    return list(range(last - count + 1, last + 1))


def _prepared(model, fields, rows, ids):
    """The COPY of `rows` into the model's table: (table, column names, their types, the rows' plan, the rows)."""
    columns = _columns(model, fields)
    pk = model._meta.pk
    names = ", ".join(
        _quoted(c) for c in [*([pk.column] if ids is not None else []), *(f.column for f, _, _ in columns)]
    )
    plan = [(index, None if index is not None else _constant(field, value)) for field, index, value in columns]
    json_positions = [index for field, index, _ in columns if isinstance(field, JSONField) and index is not None]
    if json_positions:
        rows = [_json_wrapped(row, json_positions) for row in rows]
    plan = [
        (
            index,
            Jsonb(constant, dumps=_json_text) if isinstance(field, JSONField) and constant is not None else constant,
        )
        for (index, constant), (field, _, _) in zip(plan, columns, strict=True)
    ]
    types = ([_copy_type(pk)] if ids is not None else []) + [_copy_type(f) for f, _, _ in columns]
    return _quoted(model._meta.db_table), names, types, plan, rows


def insert_rows(
    model, fields: Sequence[str], rows: Sequence[Sequence], *, ids: Sequence[int] | None = None, with_ids: bool = True
) -> list:
    """Insert `rows` (tuples of the values of `fields`, attnames such as `asset_id`; a JSON column's value given as
    its JSON text) into the model's table; the columns not in `fields` get their default (now for automatic
    timestamps). The rows take `ids` when given (from `take_ids`), else new ids taken for them; the ids are returned
    in the order of `rows`. `with_ids=False` lets the database number the rows and returns nothing (one query
    less, when nobody needs the ids). Values must be valid already: the caller validated them."""
    if not rows:
        return []
    if ids is None and with_ids:
        ids = take_ids(model, len(rows))
    if connection.vendor != "postgresql":
        _insert_rows_elsewhere(model, _columns(model, fields), rows, ids, ignore_conflicts=False)
    else:
        _copy(*_prepared(model, fields, rows, ids), ids)
    return list(ids) if ids is not None else []


def insert_new_rows(model, fields: Sequence[str], rows: Sequence[Sequence]) -> bool:
    """`insert_rows` for rows whose unique key another transaction may have written already (two passes of a
    scheduler at once): a row that meets a unique conflict is left out (ON CONFLICT DO NOTHING), the others go
    in, numbered by the database. Returns True when every row went in, False when some may have been left out
    (the caller then reads back which are its own). PostgreSQL: a plain COPY first, in a savepoint; only if a row
    conflicts is it rolled back and the rows go through a temporary table and INSERT … SELECT … ON CONFLICT DO
    NOTHING, in the rows' order (a local temporary table is read in the order it was written), so that passes
    writing the same keys in the same order cannot deadlock. Elsewhere INSERT OR IGNORE."""
    if not rows:
        return True
    if connection.vendor != "postgresql":
        return _insert_rows_elsewhere(model, _columns(model, fields), rows, None, ignore_conflicts=True) == len(rows)
    table, names, types, plan, prepared = _prepared(model, fields, rows, None)
    try:
        with transaction.atomic():
            _copy(table, names, types, plan, prepared, None)
        return True
    except IntegrityError:
        pass
    temporary = _quoted(f"bulk_{model._meta.db_table}")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {temporary} AS SELECT {names} FROM {table} WITH NO DATA")  # noqa: S608
        _copy(temporary, names, types, plan, prepared, None)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {temporary} ON CONFLICT DO NOTHING")  # noqa: S608
        cursor.execute(f"DROP TABLE {temporary}")
    return False


def loaded(model, fields: Sequence[str], rows: Sequence[Sequence], ids: Sequence[int]) -> list:
    """Instances of rows just written (`insert_rows`' fields, rows and ids), as if read back from the database
    without the query: built the way unpickling builds them (attributes set directly, `_state` saved), which costs
    a fraction of `Model.from_db`. A model with post_init receivers gets `from_db`."""
    names = [model._meta.pk.attname, *fields]
    if signals.post_init.has_listeners(model):
        return [model.from_db(connection.alias, names, (pk, *row)) for pk, row in zip(ids, rows, strict=True)]
    made = []
    new = model.__new__
    for pk, row in zip(ids, rows, strict=True):
        instance = new(model)
        state = ModelState()
        state.adding, state.db = False, connection.alias
        values = instance.__dict__
        values["_state"] = state
        values.update(zip(names, (pk, *row), strict=True))
        made.append(instance)
    return made


def _copy(table: str, names: str, types: list[str], plan, rows, ids) -> None:
    """COPY the rows (binary: no text to format or parse) into the table's columns `names`."""
    started = time.monotonic()
    sql = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.set_types(types)
        write = copy.write_row
        if [index for index, _ in plan] == list(range(len(plan))):  # every column given, in order
            if ids is not None:
                for pk_value, row in zip(ids, rows, strict=True):
                    write((pk_value, *row))
            else:
                for row in rows:
                    write(row)
        elif ids is not None:
            for pk_value, row in zip(ids, rows, strict=True):
                write((pk_value, *[constant if index is None else row[index] for index, constant in plan]))
        else:
            for row in rows:
                write([constant if index is None else row[index] for index, constant in plan])
    _log(f"{sql} -- {len(rows)} rows", started)


def _copy_type(field) -> str:
    """The column's type as psycopg names it, for a binary COPY (varchar(20) → varchar, numeric(12, 3) →
    numeric; timestamp with time zone, bigint, integer, boolean, jsonb… as they are)."""
    return field.db_type(connection).split("(")[0].strip()


def _json_text(text: str) -> str:
    return text


def _json_wrapped(row, positions) -> list:
    """A row whose JSON texts are wrapped for psycopg's binary jsonb dumper (sent as they are, not encoded again)."""
    row = list(row)
    for position in positions:
        if row[position] is not None:
            row[position] = Jsonb(row[position], dumps=_json_text)
    return row


def _insert_rows_elsewhere(model, columns, rows, ids, ignore_conflicts: bool) -> int:
    """SQLite: one INSERT executed for every row (executemany), each value prepared by its field as the ORM
    would, the given timestamps kept as they are (`bulk_create` would stamp its own). Returns the rows written."""
    pk = model._meta.pk
    fields = ([pk] if ids is not None else []) + [field for field, _, _ in columns]
    constants = [None if index is not None else _constant(field, value) for field, index, value in columns]
    plan = [
        (field, index, constant, isinstance(field, JSONField))
        for (field, index, _), constant in zip(columns, constants, strict=True)
    ]

    def prepared(row):
        values = []
        for field, index, constant, is_json in plan:
            if index is None:
                values.append(constant)
            else:
                value = row[index]
                values.append(value if is_json else field.get_db_prep_save(value, connection))
        return values

    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    sql = (
        f"{connection.ops.insert_statement(on_conflict=on_conflict)} {_quoted(model._meta.db_table)} "
        f"({', '.join(_quoted(f.column) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))})"
        f"{connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)}"
    )
    params = (
        [[pk_value, *prepared(row)] for pk_value, row in zip(ids, rows, strict=True)]
        if ids is not None
        else [prepared(row) for row in rows]
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return cursor.rowcount


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


def _history_sql(model, source: str, reason, user) -> tuple[str, list]:
    """INSERT INTO <history> (…) SELECT <the row's columns>, <now>, <reason>, '+', <user> FROM <source> t."""
    history_model = model.history.model
    columns = [f.column for f in history_model._meta.concrete_fields if f.column not in HISTORY_OWN_COLUMNS]
    user = user if user is not None else audit.current_user()
    insert = ", ".join(
        _quoted(c) for c in [*columns, "history_date", "history_change_reason", "history_type", "history_user_id"]
    )
    select = ", ".join(f"t.{_quoted(c)}" for c in columns)
    sql = (
        f"INSERT INTO {_quoted(history_model._meta.db_table)} ({insert}) "  # noqa: S608 - names are quoted
        f"SELECT {select}, %s, %s, %s, %s FROM {source} t"
    )
    now = history_model._meta.get_field("history_date").get_db_prep_save(timezone.now(), connection)
    return sql, [now, reason, "+", user.pk if user is not None else None]


def history_by_select(model, where: str, params: Sequence, *, reason=None, user=None) -> int:
    """The "+" history rows of the rows of `model` that `where` selects (SQL on the table's alias `t`, e.g. from
    `id_in("t.id", ids)`), written by one INSERT … SELECT: the row's columns, now, `reason`, '+' and `user`
    (default: whoever the code acts for, `audit.current_user()`). Returns how many were written. simple-history's
    history model has the model's columns plus history_id / history_date / history_change_reason / history_type /
    history_user_id."""
    sql, history_params = _history_sql(model, _quoted(model._meta.db_table), reason, user)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} WHERE {where}", [*history_params, *params])
        return cursor.rowcount


def insert_select_with_history(model, insert_sql: str, params: Sequence, *, where, reason=None, user=None) -> int:
    """Run `insert_sql` (an INSERT INTO the model's table … SELECT …) and write the "+" history rows of what it
    inserted, as `history_by_select` would. On PostgreSQL in one statement (the INSERT … RETURNING in a WITH, its
    rows copied into the history: no second look-up); elsewhere the INSERT, then `history_by_select(model,
    *where)`. Returns how many rows were inserted."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql, history_params = _history_sql(model, "inserted", reason, user)
            cursor.execute(f"WITH inserted AS ({insert_sql} RETURNING *) {sql}", [*params, *history_params])
            return cursor.rowcount
        cursor.execute(insert_sql, params)
        written = cursor.rowcount
    if written:
        history_by_select(model, where[0], where[1], reason=reason, user=user)
    return written


def id_in(column: str, ids: Sequence[int]) -> tuple[str, list]:
    """SQL that `column` is one of `ids`, and its parameters: `<column> BETWEEN first AND last` when the ids are a
    run without gaps (ids just taken together usually are: a range scan of the index instead of one probe per id),
    else `<column> = ANY('{…}'::bigint[])` with one parameter on PostgreSQL, `<column> IN (…)` elsewhere."""
    ids = sorted(set(ids))
    if ids and ids[-1] - ids[0] + 1 == len(ids):
        return f"{column} BETWEEN %s AND %s", [ids[0], ids[-1]]
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [_int_array(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)
