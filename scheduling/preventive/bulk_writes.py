"""Bulk writes of the generator that the ORM cannot express in one statement: pointing occurrences at their
orders (UPDATE … FROM VALUES), the history rows of bulk-inserted rows (INSERT … SELECT), and copying each new
order's procedure steps onto its checklist (INSERT … SELECT). The same SQL on PostgreSQL and SQLite."""

from django.db import connection
from django.utils import timezone

from maintenance_site import audit
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule
from workorders.models import ChecklistItem, ProcedureItem, WorkOrder

Occurrence = PreventiveOccurrence
Schedule = PreventiveSchedule


def link_orders(pairs: list[tuple[int, int]]) -> None:
    """Point occurrences at their work orders: one UPDATE per chunk (UPDATE … FROM (VALUES …))."""
    if not pairs:
        return
    table = connection.ops.quote_name(Occurrence._meta.db_table)
    values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS bigint))"] * len(pairs))
    params = [value for pair in pairs for value in pair]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS o SET work_order_id = v.wo FROM (VALUES {values}) AS v(id, wo) "  # noqa: S608
                "WHERE o.id = v.id",
                params,
            )
        else:
            cursor.execute(
                f"WITH v(id, wo) AS (VALUES {values}) UPDATE {table} SET work_order_id = "  # noqa: S608
                f"(SELECT v.wo FROM v WHERE v.id = {table}.id) WHERE id IN (SELECT id FROM v)",
                params,
            )


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def _db_value(field, value):
    return field.get_db_prep_save(value, connection)


def history_by_select(model, ids: list[int], *, reason: str) -> None:
    """The "+" history rows of rows just bulk-inserted, written by the database itself:
    INSERT INTO <history> (…) SELECT <the row's columns>, <date>, <reason>, '+', <user> FROM <table> WHERE id IN
    (…) — one statement, no Python object per row. simple-history's history model has the model's columns plus
    history_id / history_date / history_change_reason / history_type / history_user_id."""
    if not ids:
        return
    history_model = model.history.model
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user_id"}
    columns = [f.column for f in history_model._meta.concrete_fields if f.column not in own]
    user = audit.current_user()
    date_field = history_model._meta.get_field("history_date")
    insert = ", ".join(
        _quoted(c) for c in [*columns, "history_date", "history_change_reason", "history_type", "history_user_id"]
    )
    select = ", ".join(f"t.{_quoted(c)}" for c in columns)
    sql = (
        f"INSERT INTO {_quoted(history_model._meta.db_table)} ({insert}) "  # noqa: S608 - names are quoted
        f"SELECT {select}, %s, %s, %s, %s FROM {_quoted(model._meta.db_table)} t "
        f"WHERE t.{_quoted(model._meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})"
    )
    params = [_db_value(date_field, timezone.now()), reason, "+", user.pk if user is not None else None, *ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def copy_checklists(order_ids: list[int]) -> int:
    """Copy each new order's procedure steps onto its checklist in the database: INSERT INTO checklist item
    SELECT … FROM the orders joined to their occurrence, schedule and the procedure's steps (positions 1, 2, …
    in step order, as `apply_procedure` numbers them), then their history. Columns this code does not know get
    their model default. Returns how many items were written."""
    if not order_ids:
        return 0
    item = ChecklistItem._meta
    step, order, occurrence, schedule = (
        _quoted(ProcedureItem._meta.db_table),
        _quoted(WorkOrder._meta.db_table),
        _quoted(Occurrence._meta.db_table),
        _quoted(Schedule._meta.db_table),
    )
    now_value = _db_value(item.get_field("created_at"), timezone.now())
    known = {
        "organization_id": ("w.organization_id", []),
        "created_at": ("%s", [now_value]),
        "updated_at": ("%s", [now_value]),
        "work_order_id": ("w.id", []),
        "position": (f"ROW_NUMBER() OVER (PARTITION BY w.id ORDER BY p.{_quoted('position')}, p.id)", []),
        "text": (f"p.{_quoted('text')}", []),
        "kind": (f"p.{_quoted('kind')}", []),
        "unit": (f"p.{_quoted('unit')}", []),
        "required": (f"p.{_quoted('required')}", []),
    }
    columns, expressions, params = [], [], []
    for column in item.concrete_fields:
        if column.primary_key:
            continue
        expression, values = known.get(column.attname, ("%s", [_db_value(column, column.get_default())]))
        columns.append(_quoted(column.column))
        expressions.append(expression)
        params.extend(values)
    placeholders = ", ".join(["%s"] * len(order_ids))
    sql = (
        f"INSERT INTO {_quoted(item.db_table)} ({', '.join(columns)}) "  # noqa: S608 - names are quoted
        f"SELECT {', '.join(expressions)} FROM {order} w "
        f"JOIN {occurrence} o ON o.work_order_id = w.id JOIN {schedule} s ON s.id = o.schedule_id "
        f"JOIN {step} p ON p.procedure_id = s.procedure_id WHERE w.id IN ({placeholders})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *order_ids])
        written = cursor.rowcount
    if written:
        ids = list(ChecklistItem.objects.filter(work_order_id__in=order_ids).values_list("pk", flat=True))
        history_by_select(ChecklistItem, ids, reason="copied from the procedure")
    return written
