"""Counting rows without an exact COUNT(*) over a large set, for the API's page numbers and the admin's change
lists alike (`EstimatingPaginator`).

A count is exact up to `settings.EXACT_COUNT_LIMIT` rows when counting them is cheap (the planner's cost of reading
them at most `EXACT_COUNT_COST`); otherwise it is PostgreSQL's estimate (the planner's row count, from EXPLAIN), and
says so. Asking costs one EXPLAIN, and one COUNT over at most limit + 1 rows (`SELECT COUNT(*) FROM (SELECT id …
LIMIT n)`) when that is cheap: never a count of a large set, nor a scan for a few matches spread over a large list.
On SQLite (the embedded run, small by nature, and without estimates) the count is exact.
"""

import json

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


def _plan(queryset) -> dict | None:
    """The planner's top plan node for `queryset` (PostgreSQL), None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:  # the ids alone: the rows a count would read, without the list's columns and joins
        sql, params = queryset.order_by().values("pk").query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:  # a filter that matches nothing by construction (`pk__in=[]`, `.none()`)
        return {"Plan Rows": 0, "Total Cost": 0}
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]


def planner_estimate(queryset) -> int | None:
    """The planner's estimate of the rows `queryset` returns (PostgreSQL), None elsewhere."""
    plan = _plan(queryset)
    return None if plan is None else int(plan["Plan Rows"])


def bounded_count(queryset, limit: int | None = None) -> tuple[int, bool]:
    """(count, estimated). On PostgreSQL one EXPLAIN first: more than `limit` rows (EXACT_COUNT_LIMIT by default)
    by the planner's reckoning, or a count that would cost more than EXACT_COUNT_COST to make (a filter no index
    serves, whose few matches are spread over the whole list), gives the estimate and True; otherwise a COUNT over
    at most limit + 1 rows."""
    limit = settings.EXACT_COUNT_LIMIT if limit is None else limit
    plan = _plan(queryset)
    if plan is None:  # SQLite: the embedded run is small, and has no estimate
        return queryset.count(), False
    estimate = int(plan["Plan Rows"])
    if estimate > limit or plan["Total Cost"] > settings.EXACT_COUNT_COST:
        return max(estimate, 1), True
    counted = queryset.order_by().values("pk")[: limit + 1].count()
    if counted > limit:
        return max(estimate, counted), True
    return counted, False


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
