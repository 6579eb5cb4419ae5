"""The API's pagination.

`Pagination` (every list): `?page=N&page_size=M`. `count` is exact up to EXACT_COUNT_LIMIT rows and PostgreSQL's
estimate above it, with `count_estimated` saying which (maintenance_site.pagination): no list counts a large set.

`CursorPagination` (lists that grow without bound: work orders, assets, stock movements, a part's history, meter
readings): by default the list pages by **cursor** (keyset): `next` carries `?cursor=…`, which names the last row
shown, and the following page is the rows after it in the list's order (an index range, as fast at page 2000 as at
page 1, and stable while rows are added: none is shown twice or skipped). There nothing is counted: `count` is exact
when the first page holds every row, else null (`next` says whether there is more). With
`?updated_after=` and no `?ordering=`, the order is (updated_at, id): a sync client pages through the changes in the
order they were made. `?page=` keeps working (deprecated: OFFSET costs grow with the page number).
"""

import base64
import binascii
import json
import threading
from datetime import date, datetime, time
from decimal import Decimal
from urllib.parse import quote_plus
from uuid import UUID

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db.models import F, Q
from django.db.models.expressions import OrderBy
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from maintenance_site.api import prepared
from maintenance_site.pagination import EstimatingPaginator


def _positive_integer(request, name: str) -> int | None:
    """The query parameter as a whole number of at least 1, None when absent; a 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [_("“%(raw)s” is not a whole number; give 1 or more.") % {"raw": raw}]}) from None
    if value < 1:
        raise ValidationError({name: [_("%(value)s is too small; give 1 or more.") % {"value": value}]})
    return value


COUNT_DESCRIPTION = (
    "How many rows match: exact up to {limit:,}, the database's estimate above (then `count_estimated` is true)."
)


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M`, the page size capped by API_MAX_PAGE_SIZE. A page or page size that is not a
    whole number of at least 1, or a page past the last one, is a 400 naming the parameter (never ignored)."""

    page_size_query_param = "page_size"
    django_paginator_class = EstimatingPaginator

    @property
    def max_page_size(self):
        return settings.API_MAX_PAGE_SIZE

    def get_page_size(self, request):
        size = _positive_integer(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        raw = request.query_params.get(self.page_query_param, "")
        number = paginator.num_pages if raw in self.last_page_strings else _positive_integer(request, "page") or 1
        if number > paginator.num_pages:
            last = paginator.num_pages
            if paginator.estimated:
                message = _("There is no page %(number)s: the last page is about %(last)s.")
            else:
                message = _("There is no page %(number)s: the last page is %(last)s.")
            raise ValidationError({"page": [message % {"number": number, "last": last}]})
        self.page = paginator.page(number)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True  # the browsable API's page links
        return list(self.page)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.page.paginator.count,
                "count_estimated": self.page.paginator.estimated,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        properties = response["properties"]
        properties["count"]["description"] = COUNT_DESCRIPTION.format(limit=settings.EXACT_COUNT_LIMIT)
        properties["count_estimated"] = {"type": "boolean", "description": "Whether `count` is an estimate."}
        response["properties"] = {name: properties[name] for name in ("count", "count_estimated", *properties)}
        response["required"] = ["count", "count_estimated", "next", "previous", "results"]
        return response

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters


# --- keyset ---------------------------------------------------------------------------------------------------


class Term:
    """One term of a list's order: a model field or an annotation, ascending or descending."""

    def __init__(self, queryset, name: str, descending: bool):
        self.descending = descending
        model = queryset.model
        if name == "pk":
            name = model._meta.pk.name
        self.name = name
        if name in queryset.query.annotations:
            self.field, self.attname = queryset.query.annotations[name].output_field, name
        else:
            self.field = model._meta.get_field(name)  # FieldDoesNotExist: not a keyset term (a related column)
            if self.field.is_relation and not self.field.many_to_one:
                raise FieldDoesNotExist(name)
            self.attname = self.field.attname
        self.nullable = bool(getattr(self.field, "null", False))

    @property
    def label(self) -> str:
        return f"-{self.name}" if self.descending else self.name

    def value_of(self, row):
        return row[self.attname] if isinstance(row, dict) else getattr(row, self.attname)  # an instance or values()

    def order_by(self):
        return F(self.attname).desc() if self.descending else F(self.attname).asc()

    # A value encoded in a cursor, and back.
    @staticmethod
    def encode(value):
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, Decimal | UUID):
            return str(value)
        return value

    def decode(self, raw):
        """The value, typed like the column; ValueError for anything the database would refuse (a 400, not a 500):
        a wrong type, a number beyond the column's range, a NUL in a text."""
        if raw is None:
            return None
        if isinstance(raw, list | dict) or (isinstance(raw, str) and "\x00" in raw):
            raise ValueError(raw)
        target = getattr(self.field, "target_field", self.field)  # a foreign key's id: the related pk's type
        try:
            value = target.to_python(raw)
            if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
                raise ValueError(raw)
            if isinstance(value, Decimal) and not value.is_finite():
                raise ValueError(raw)
            target.get_db_prep_value(value, connection=connections["default"], prepared=False)
            return value
        except (DjangoValidationError, TypeError, ValueError, ArithmeticError):
            raise ValueError(raw) from None


def ordering_terms(queryset) -> list[Term] | None:
    """The terms of the queryset's order, ending with the primary key (so that every row has its own place); None
    when the order cannot be a keyset (a related model's column, an expression, random)."""
    query = queryset.query
    raw = list(query.order_by) or (list(query.get_meta().ordering) if query.default_ordering else [])
    terms = []
    try:
        for item in raw:
            if isinstance(item, str):
                if item == "?" or "__" in item:
                    return None
                terms.append(Term(queryset, item.lstrip("-"), item.startswith("-")))
            elif isinstance(item, OrderBy) and isinstance(item.expression, F) and "__" not in item.expression.name:
                if item.nulls_first or item.nulls_last:
                    return None
                terms.append(Term(queryset, item.expression.name, item.descending))
            else:
                return None
    except FieldDoesNotExist:
        return None
    pk = queryset.model._meta.pk.name
    if not terms or terms[-1].name != pk:
        terms = [term for term in terms if term.name != pk]
        terms.append(Term(queryset, pk, terms[-1].descending if terms else False))
    return terms


def _after(terms: list[Term], values: list, nulls_largest: bool) -> Q:
    """Rows strictly after `values` in the order of `terms`. NULLs sort as the largest values on PostgreSQL and the
    smallest on SQLite (each database's default, which the order_by of the list follows)."""
    term, value = terms[0], values[0]
    rest = _after(terms[1:], values[1:], nulls_largest) if len(terms) > 1 else None
    beyond = "lt" if term.descending else "gt"
    nulls_come_after = term.nullable and (nulls_largest != term.descending)
    if value is None:
        tie = Q(**{f"{term.attname}__isnull": True})
        if nulls_come_after:  # the NULLs are the end of the order: only ties can follow
            return tie & rest if rest is not None else tie & Q(pk__in=[])
        later = Q(**{f"{term.attname}__isnull": False})
        return later | (tie & rest) if rest is not None else later
    condition = Q(**{f"{term.attname}__{beyond}": value})
    if nulls_come_after:
        condition |= Q(**{f"{term.attname}__isnull": True})
    if rest is not None:
        condition |= Q(**{term.attname: value}) & rest
    return condition


def _index_bound(term: Term, value, nulls_largest: bool) -> Q | None:
    """A condition implied by `_after` on the first term alone, which an index on it can seek to (the OR in `_after`
    cannot start an index range by itself)."""
    nulls_come_after = term.nullable and (nulls_largest != term.descending)
    if value is None:
        return Q(**{f"{term.attname}__isnull": True}) if nulls_come_after else None
    if nulls_come_after:
        return None
    return Q(**{f"{term.attname}__{'lte' if term.descending else 'gte'}": value})


# The next links' templates, per URL asked and parameter names (`next_link`), at most NEXT_LINKS of them (the oldest
# forgotten first).
NEXT_LINKS = 512
_next_links: dict = {}
_next_links_lock = threading.Lock()
_SLOT = "\x00cursor\x00"
_SLOT_QUOTED = quote_plus(_SLOT)


def next_link(url: str, page_param: str, cursor_param: str, cursor: str) -> str:
    """`url` without `page_param` and with `cursor_param` set to `cursor`: DRF's `remove_query_param` then
    `replace_query_param` (its query re-encoded, in the order of the names), ~60 µs a page, mostly parsing and writing
    the same query again. Their answer for a URL is kept as a template with a slot for the cursor's text, quoted as
    `urlencode` quotes it, and filled in; a URL where the slot would not be found once is written by DRF each time."""
    key = (url, page_param, cursor_param)
    template = _next_links.get(key)
    if template is None:
        template = replace_query_param(remove_query_param(url, page_param), cursor_param, _SLOT)
        if template.count(_SLOT_QUOTED) != 1:
            template = False
        with _next_links_lock:
            if len(_next_links) >= NEXT_LINKS:
                _next_links.pop(next(iter(_next_links)), None)
            _next_links[key] = template
    if template is False:
        return replace_query_param(remove_query_param(url, page_param), cursor_param, cursor)
    return template.replace(_SLOT_QUOTED, quote_plus(cursor))


def encode_cursor(terms: list[Term], values: list) -> str:
    payload = {"o": [term.label for term in terms], "v": [Term.encode(value) for value in values]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_for(values, ordering=("-created_at", "-id")) -> str:
    """A cursor naming the row whose order values are `values` in `ordering` (benchmarks and tests start deep)."""

    class _Label:
        def __init__(self, label):
            self.label = label

    return encode_cursor([_Label(label) for label in ordering], list(values))


class CursorPagination(Pagination):
    __doc__ = __doc__
    cursor_query_param = "cursor"
    invalid_cursor = "This cursor is not one this list gave out (or the list's order changed): start without it."

    def paginate_queryset(self, queryset, request, view=None, prepare=False):
        """The page's rows. With `prepare` (a list that keeps its page query per shape, `prepared`), the page query
        is compiled for keeping as well when it can be (`self.prepared`) and the rows are read through it."""
        self.request, self.cursor_mode, self.prepared = request, False, None
        if request.query_params.get(self.page_query_param) is not None:
            return super().paginate_queryset(queryset, request, view)
        if "updated_after" in request.query_params and not request.query_params.get("ordering"):
            queryset = queryset.order_by("updated_at", "pk")  # sync: in the order the changes were made
        terms = ordering_terms(queryset)
        if terms is None:  # an order a keyset cannot follow: numbered pages
            return super().paginate_queryset(queryset, request, view)
        self.cursor_mode = True
        nulls_largest = connections[queryset.db].vendor == "postgresql"
        position = self._position(request, terms)
        page_size = self.get_page_size(request)

        def at_position(values):
            page = queryset
            if values is not None:
                bound = _index_bound(terms[0], values[0], nulls_largest)
                page = page.filter(_after(terms, values, nulls_largest))
                if bound is not None:
                    page = page.filter(bound)
            return page.order_by(*(term.order_by() for term in terms))[: page_size + 1]

        if prepare:
            self.prepared = prepared.prepare(at_position, terms, position)
        rows = self.prepared.rows(position) if self.prepared is not None else list(at_position(position))
        return self._page(rows, terms, position, page_size)

    def _page(self, rows, terms, position, page_size):
        self.next_cursor = None
        self.whole = position is None and len(rows) <= page_size  # the first page holds every row: count them
        if len(rows) > page_size:
            rows = rows[:page_size]
            self.next_cursor = encode_cursor(terms, [term.value_of(rows[-1]) for term in terms])
        self.page_size_used = page_size
        return rows

    def prepared_key(self, view, request):
        """The request's list shape for `prepared` (None: it takes the ordinary path): its cursor's order and which of
        its values are null stand for the cursor; a page number, or a cursor or page size the ordinary path would
        refuse, is never prepared."""
        if request.query_params.get(self.page_query_param) is not None:
            return None
        raw = request.query_params.get(self.cursor_query_param)
        cursor_shape = None
        if raw:
            try:
                payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
                labels, values = payload["o"], payload["v"]
            except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
                return None
            if not isinstance(labels, list) or not isinstance(values, list):
                return None
            if not all(isinstance(label, str) for label in labels):
                return None
            cursor_shape = (tuple(labels), tuple(value is None for value in values))
        try:
            page_size = self.get_page_size(request)
        except ValidationError:
            return None
        return prepared.shape_key(view, request, page_size, cursor_shape)

    def paginate_prepared(self, page: "prepared.PageQuery", request):
        """The page's rows through a kept page query (`prepared`); None when the cursor's values are not null where
        the kept query's were (the ordinary path answers). A cursor the list did not give out is a 400, as always."""
        self.request, self.cursor_mode, self.prepared = request, True, page
        position = self._position(request, page.terms)
        if page.nulls != (None if position is None else tuple(value is None for value in position)):
            return None
        return self._page(page.rows(position), page.terms, position, self.get_page_size(request))

    def _position(self, request, terms: list[Term]) -> list | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if payload["o"] != [term.label for term in terms] or len(payload["v"]) != len(terms):
                raise ValueError("another order")
            return [term.decode(value) for term, value in zip(terms, payload["v"], strict=True)]
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor]}) from None

    def get_paginated_response(self, data):
        if not self.cursor_mode:
            return super().get_paginated_response(data)
        count = len(data) if self.whole else None  # no query: a count of a large set is what cursors avoid
        return Response(
            {"count": count, "count_estimated": False, "next": self._next_link(), "previous": None, "results": data}
        )

    def _next_link(self) -> str | None:
        if self.next_cursor is None:
            return None
        return next_link(
            self.request.build_absolute_uri(), self.page_query_param, self.cursor_query_param, self.next_cursor
        )

    def get_html_context(self):
        if not self.cursor_mode:
            return super().get_html_context()
        return {"previous_url": None, "next_url": self._next_link(), "page_links": []}

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        properties = response["properties"]
        properties["count"]["nullable"] = True
        properties["count"]["description"] += (
            " When the list pages by cursor nothing is counted: exact when the first page holds every row, else null."
        )
        properties["next"]["example"] = "http://api.example.org/accounts/?cursor=eyJvIjpbIi1jcmVhdGVkX2F0Il19"
        properties["previous"]["description"] = "Null when paging by cursor: cursors go forward."
        return response

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["deprecated"] = True
                parameter["description"] = (
                    "A page number (deprecated: its cost grows with the number; follow `next`, which pages by cursor)."
                )
        cursor = {
            "name": self.cursor_query_param,
            "required": False,
            "in": "query",
            "description": "Where the page starts: the cursor of the previous page's `next` link.",
            "schema": {"type": "string"},
        }
        return [cursor, *parameters]
