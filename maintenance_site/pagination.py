"""Counting rows without an exact COUNT(*) over a large set, for the API's page numbers and the admin's change
lists alike (`EstimatingPaginator`).

A count is exact up to `settings.EXACT_COUNT_LIMIT` rows; above it, it is PostgreSQL's estimate (the planner's row
count of the query, from EXPLAIN), and says so. Asking costs one COUNT over at most the limit's rows (`SELECT
COUNT(*) FROM (SELECT id … LIMIT n)`, the one query a small list always paid), and one EXPLAIN when there are more:
never a count of a large set. On SQLite (the embedded run, small by nature, and without estimates) the count is
exact.
"""

import json

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


def planner_estimate(queryset) -> int | None:
    """The planner's estimate of the rows `queryset` returns (PostgreSQL), None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:  # a filter that matches nothing by construction (`pk__in=[]`, `.none()`)
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def bounded_count(queryset, limit: int | None = None) -> tuple[int, bool]:
    """(count, estimated): exact when at most `limit` rows match (EXACT_COUNT_LIMIT by default), else the planner's
    estimate (never below limit + 1) and True."""
    limit = settings.EXACT_COUNT_LIMIT if limit is None else limit
    if connections[queryset.db].vendor != "postgresql":  # SQLite: the embedded run is small, and has no estimate
        return queryset.count(), False
    # Count, but never more than limit + 1 rows (one query, as a plain count of a small list); more: estimate.
    counted = queryset.order_by().values("pk")[: limit + 1].count()
    if counted <= limit:
        return counted, False
    return max(planner_estimate(queryset) or 0, counted), True


def estimated_count(queryset) -> tuple[int, bool]:
    """(count, estimated) without counting: PostgreSQL's estimate (one EXPLAIN, however large or filtered the set),
    or on SQLite an exact count."""
    estimate = planner_estimate(queryset)
    return (queryset.count(), False) if estimate is None else (estimate, True)


class EstimatingPaginator(Paginator):
    """Django's paginator with `bounded_count` as its count: `estimated` says whether it is exact."""

    estimated = False

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if not hasattr(object_list, "query"):  # a list, not a queryset
            return len(object_list)
        count, self.estimated = bounded_count(object_list)
        return count
