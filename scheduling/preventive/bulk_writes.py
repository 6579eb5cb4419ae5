"""The generator's own set-based write that the ORM cannot express in one statement: pointing the occurrences at
their new work orders (one UPDATE … FROM a table of pairs). Work orders, checklists, reservations and events are
written by their services' batch functions (`workorders.services.create_work_orders_bulk`,
`inventory.services.reserve_bulk`, `publish_many`)."""

from django.db import connection

from maintenance_site.bulk import int_table
from scheduling.preventive.models import PreventiveOccurrence

Occurrence = PreventiveOccurrence


def link_orders(pairs: list[tuple[int, int]]) -> None:
    """Point occurrences at their work orders: `pairs` of (occurrence id, work order id), one UPDATE."""
    if not pairs:
        return
    table = connection.ops.quote_name(Occurrence._meta.db_table)
    pairs_sql, params = int_table(pairs, "v", ["id", "wo"])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS o SET work_order_id = v.wo FROM {pairs_sql} WHERE o.id = v.id",  # noqa: S608
                params,
            )
        else:
            cursor.execute(
                f"UPDATE {table} SET work_order_id = (SELECT v.wo FROM {pairs_sql} WHERE v.id = {table}.id) "  # noqa: S608
                f"WHERE id IN (SELECT v.id FROM {pairs_sql})",
                [*params, *params],
            )
