"""`?search=` on every list: each word must appear (case-insensitively) in one of the view's `search_fields`.

On PostgreSQL the condition is written so that each arm can be an index lookup and the planner picks the plan: a
column of the listed table is `UPPER(column) LIKE UPPER('%word%')`, which its trigram index (pg_trgm,
`maintenance_site.trigram`) serves; a column of a related table is `fk_id = ANY(ARRAY(SELECT id FROM related WHERE
UPPER(column) LIKE …))`, computed once, which the foreign key's index serves. For a rare word the arms' bitmaps are
OR-ed and the few matches sorted (a few index probes among 300,000 rows); for a common one the planner walks the
list's own index in the page's order and stops at the page's last row. DRF's plain `icontains` OR across a join can
do neither. SQLite, prefixed fields (`^`, `=`, `@`, `$`) and relations other than foreign keys use DRF's filter.
"""

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import BooleanField, F, Func, Q, Subquery
from rest_framework.filters import SearchFilter as DRFSearchFilter


class AnyOf(Func):
    """`<column> = ANY(ARRAY(<subquery>))`: a condition the column's index can serve inside an OR."""

    template = "%(expressions)s)"
    arg_joiner = " = ANY(ARRAY"
    output_field = BooleanField()


class SearchFilter(DRFSearchFilter):
    def filter_queryset(self, request, queryset, view):
        fields = self.get_search_fields(view, request)
        terms = self.get_search_terms(request)
        if not fields or not terms or connections[queryset.db].vendor != "postgresql":
            return super().filter_queryset(request, queryset, view)
        model = queryset.model
        if any(field[0] in "^=@$" or not _searchable(model, field) for field in fields):
            return super().filter_queryset(request, queryset, view)
        scope = _tenant_scope(request)
        for term in terms:
            condition = Q()
            for field in fields:
                condition |= _contains(model, field, term, scope)
            queryset = queryset.filter(condition)
        return queryset


def _searchable(model, field: str) -> bool:
    """A column of the model, or of a model its foreign keys lead to."""
    name, _, rest = field.partition("__")
    try:
        model_field = model._meta.get_field(name)
    except FieldDoesNotExist:  # DRF's filter will say so
        return False
    if not rest:
        return not model_field.is_relation
    return model_field.many_to_one and _searchable(model_field.related_model, rest)


def _tenant_scope(request):
    return getattr(request, "organization", None)


def _has_organization(model) -> bool:
    return any(field.name == "organization" for field in model._meta.get_fields())


def _contains(model, field: str, term: str, organization):
    name, _, rest = field.partition("__")
    if not rest:
        return Q(**{f"{name}__icontains": term})
    foreign_key = model._meta.get_field(name)
    related = foreign_key.related_model
    matching = related._base_manager.filter(_contains(related, rest, term, organization))
    if organization is not None and _has_organization(related):
        matching = matching.filter(organization=organization)
    ids = Subquery(matching.order_by().values("pk"))
    return Q(AnyOf(F(foreign_key.attname), ids))
