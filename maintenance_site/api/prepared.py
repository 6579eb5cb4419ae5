"""Prepared list pages: a cursor-paged list's page query compiled once per list shape and re-bound per request.

Building a list's queryset (its annotations, filters, order, `values()`) and compiling it to SQL costs more CPU than
the database spends answering it: about 2 ms of the 5 ms a first page of work orders cost in-process. The SQL does
not change between two requests of the same shape, only the cursor's position does, so a list that opts in (a view
whose `prepared_params` names the query parameters it may prepare) keeps, per process, the page query of each
shape it answered:

- **the shape** (`shape_key`) is the view, the organisation, the page size, every query parameter with its value
  except the cursor, the cursor's order and which of its values are null, and what the view adds
  (`prepared_key_extra`, e.g. the hook receivers that annotate the rows). A request with any parameter the view does
  not name (`?page=`, `?format=`, a filter whose SQL depends on the time, the user or other rows) is never prepared:
  it takes the ordinary path, every time. So does a cursor that does not decode (the ordinary path answers 400);
- **the page query** (`PageQuery`) is what the ordinary path compiled for that shape, with the cursor's values as
  the only slots: found by compiling the page twice, at the request's position and at a shifted one, and keeping as
  slots exactly the parameters that moved (each to the value it carries). Any doubt (the two SQL texts differ, a
  moved parameter is not one cursor value as given, a value of a type it cannot shift) and nothing is prepared;
- **a prepared request** skips the queryset: the cursor is validated as before (`CursorPagination._position`), the
  SQL runs with its slots bound, and the rows get the same database converters `values()` applies.

What stays the same: authentication, permissions, throttles, the tenant (the organisation is part of the shape, and
its id is in the SQL), the answers (the same rows, converted alike) and the number of queries. What the filters
validate (a choice, a number) depends only on the parameter's value, so a shape the ordinary path answered has
passed them. The store is bounded (`LIMIT` shapes per process, the oldest dropped first) and emptied when settings
change (tests).
"""

import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.core.signals import setting_changed
from django.db import connections
from django.db.models.query import ValuesIterable
from django.utils import timezone

LIMIT = 512
CURSOR = object()  # a parameter slot: (CURSOR, (index of the cursor's value, the type it is wrapped in or None))


class PageQuery:
    """One shape's page: its SQL, where the cursor's values go, and how each column is read (as `values()` does)."""

    __slots__ = ("alias", "converters", "names", "nulls", "params", "sql", "terms")

    def __init__(self, sql, params, alias, names, converters, terms, nulls):
        self.sql, self.params, self.alias = sql, params, alias
        self.names, self.converters, self.terms, self.nulls = names, converters, terms, nulls

    def rows(self, position) -> list[dict]:
        """The page's rows as `values()` dicts (the page size + 1 the SQL limits it to)."""
        params = [
            _bind(value, position) if type(value) is tuple and value[0] is CURSOR else value for value in self.params
        ]
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        names, converters = self.names, self.converters
        if not converters:
            return [dict(zip(names, row, strict=True)) for row in fetched]
        rows = []
        for row in fetched:
            row = list(row)
            for index, functions, expression in converters:
                value = row[index]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[index] = value
            rows.append(dict(zip(names, row, strict=True)))
        return rows


def _bind(slot, position):
    _, (index, wrap) = slot
    return position[index] if wrap is None else wrap(position[index])


def _shifted(value, step: int):
    """A value of the same type as `value`, different from it and from the other slots' shifted values (`step`);
    None when the type is not one a cursor carries."""
    kind = type(value)
    if kind is bool:
        return None
    if kind is int:
        return value + step if value < 2**62 else value - step
    if kind is datetime:
        delta = timedelta(microseconds=step)
        return value + delta if value < datetime.max.replace(tzinfo=value.tzinfo) - delta else value - delta
    if kind is date:
        return value + timedelta(days=step) if value < date.max - timedelta(days=step) else value - timedelta(days=step)
    if kind is Decimal:
        return value + step
    if kind is str:
        return value + "\x01" * step
    if kind is UUID:
        return UUID(int=(value.int + step) % 2**128)
    return None


def _compile(queryset):
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    return compiler, sql, tuple(params)


def prepare(at_position, terms, position) -> PageQuery | None:
    """The page query `at_position(position)` (a `values()` queryset sliced to the page) with the cursor's values
    (`position`, in the order of `terms`; None on the first page) as slots; None when it cannot be prepared safely
    (see the module's docstring)."""
    queryset = at_position(position)
    if (
        queryset._iterable_class is not ValuesIterable
        or queryset._prefetch_related_lookups
        or queryset.query.extra_select
        or queryset.query.combinator
    ):
        return None
    compiler, sql, params = _compile(queryset)
    slots = {}
    if position is not None:
        moved = [_shifted(value, index + 1) if value is not None else None for index, value in enumerate(position)]
        if any(value is None and original is not None for value, original in zip(moved, position, strict=True)):
            return None
        try:
            _, other_sql, other_params = _compile(at_position(moved))
        except (TypeError, ValueError, ArithmeticError):  # a shifted value the field refuses: not prepared
            return None
        if other_sql != sql or len(other_params) != len(params):
            return None
        for place, (value, other) in enumerate(zip(params, other_params, strict=True)):
            if type(value) is type(other) and value == other:
                continue
            # The value as given, or wrapped in a subclass of its type by the expression it meets (psycopg's
            # `Int4` for an annotation's integer): bound the same way.
            indexes = [i for i, shifted in enumerate(moved) if shifted is not None and isinstance(other, type(shifted))]
            indexes = [i for i in indexes if moved[i] == other]
            if len(indexes) != 1:
                return None
            index = indexes[0]
            wrap, given = type(value), type(position[index])
            if type(other) is not wrap or not issubclass(wrap, given) or value != position[index]:
                return None
            if wrap is given:
                wrap = None
            elif wrap(position[index]) != value or wrap(moved[index]) != other:
                return None
            slots[place] = (index, wrap)
    query = queryset.query
    # The columns' names in the SQL's order, as `ValuesIterable` reads them (`selected`: the order `values()` named them
    # in, annotations among the fields).
    names = (
        list(query.selected)
        if query.selected
        else [*query.extra_select, *query.values_select, *query.annotation_select]
    )
    if len(names) != compiler.col_count:
        return None
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    converters = [
        (index, functions, expression) for index, (functions, expression) in compiler.get_converters(fields).items()
    ]
    bound = [(CURSOR, slots[place]) if place in slots else value for place, value in enumerate(params)]
    nulls = None if position is None else tuple(value is None for value in position)
    return PageQuery(sql, bound, queryset.db, names, converters, terms, nulls)


# --- the store ------------------------------------------------------------------------------------------------

_store: dict = {}
_lock = threading.Lock()


def lookup(key) -> PageQuery | None:
    return _store.get(key) if key is not None else None


def keep(key, page: PageQuery) -> None:
    with _lock:
        if key not in _store and len(_store) >= LIMIT:
            _store.pop(next(iter(_store)))
        _store[key] = page


def clear(**kwargs) -> None:
    with _lock:
        _store.clear()


setting_changed.connect(clear, dispatch_uid="maintenance_site.api.prepared.clear")


def shape_key(view, request, page_size: int, cursor_shape):
    """The request's list shape (see the module's docstring), or None when the request may not be prepared."""
    allowed = view.prepared_params
    params = []
    for name, values in request.query_params.lists():
        if name == "cursor":
            continue
        if name not in allowed:
            return None
        params.append((name, tuple(values)))
    organization = getattr(getattr(request, "organization", None), "pk", None)
    if organization is None:
        return None
    params.sort()
    zone = timezone.get_current_timezone_name()
    return (
        type(view),
        view.action,
        organization,
        zone,
        page_size,
        cursor_shape,
        tuple(params),
        view.prepared_key_extra(),
    )
