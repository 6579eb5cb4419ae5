"""The set-based SQL behind `workorders.services.create_work_orders_bulk`: copying procedures' steps onto the
checklists of many new orders in one INSERT … SELECT, and the orders' related rows read in one query per kind.
The services decide and check; this module only writes or reads what they hand it."""

from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from maintenance_site.bulk import id_in, insert_select_with_history, int_table
from workorders.models import ChecklistItem, ProcedureItem

# How a procedure's step becomes a checklist item, for `apply_procedure` and the bulk copy alike: these fields are
# copied, and the items are numbered 1, 2, … (after any the order has) in the steps' STEP_ORDER.
STEP_FIELDS = ("text", "kind", "unit", "required")
STEP_ORDER = ("position", "id")


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def copy_procedure_steps(pairs: Sequence[tuple[int, int, int]], *, reason) -> int:
    """Copy each procedure's steps onto the checklist of a new order (which has none yet): `pairs` of (order id,
    organisation id, procedure id). One INSERT … SELECT joining the pairs to the steps (positions 1, 2, … in
    STEP_ORDER, as `apply_procedure` numbers them) with their history (`reason`) in the same statement on
    PostgreSQL.
    Columns this code does not copy get their model default. Returns how many items were written."""
    if not pairs:
        return 0
    item = ChecklistItem._meta
    now = item.get_field("created_at").get_db_prep_save(timezone.now(), connection)
    order_by = ", ".join(f"p.{_quoted(ProcedureItem._meta.get_field(name).column)}" for name in STEP_ORDER)
    known = {
        "organization_id": ("w.organization_id", []),
        "created_at": ("%s", [now]),
        "updated_at": ("%s", [now]),
        "work_order_id": ("w.id", []),
        "position": (f"ROW_NUMBER() OVER (PARTITION BY w.id ORDER BY {order_by})", []),
        **{name: (f"p.{_quoted(ProcedureItem._meta.get_field(name).column)}", []) for name in STEP_FIELDS},
    }
    columns, expressions, params = [], [], []
    for field in item.concrete_fields:
        if field.primary_key:
            continue
        expression, values = known.get(field.attname, ("%s", [field.get_db_prep_save(field.get_default(), connection)]))
        columns.append(_quoted(field.column))
        expressions.append(expression)
        params.extend(values)
    table, table_params = int_table(pairs, "w", ["id", "organization_id", "procedure_id"])
    sql = (
        f"INSERT INTO {_quoted(item.db_table)} ({', '.join(columns)}) "  # noqa: S608 - names are quoted
        f"SELECT {', '.join(expressions)} FROM {table} "
        f"JOIN {_quoted(ProcedureItem._meta.db_table)} p ON p.procedure_id = w.procedure_id"
    )
    where = id_in("t.work_order_id", [order_id for order_id, _, _ in pairs])
    return insert_select_with_history(ChecklistItem, sql, [*params, *table_params], where=where, reason=reason)


def owners(model, ids, *extra: str) -> dict[int, tuple]:
    """For the rows of `model` with these ids: id → (organization id, *extra columns), in one query."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    where, params = id_in("t.id", ids)
    columns = ", ".join(f"t.{_quoted(model._meta.get_field(name).column)}" for name in ("organization_id", *extra))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.id, {columns} FROM {_quoted(model._meta.db_table)} t WHERE {where}", params)  # noqa: S608
        return {row[0]: row[1:] for row in cursor.fetchall()}
