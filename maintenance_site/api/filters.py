from datetime import UTC

import django_filters
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend


def parse_query_datetime(name: str, raw: str):
    """An ISO 8601 date-time from the query string, in UTC (PostgreSQL refuses offsets beyond ±15:59, and a
    year-1 moment west of UTC does not exist): a 400 naming the parameter when it is not one."""
    invalid = ValidationError(
        {name: [_("“%(raw)s” is not an ISO 8601 date-time; write e.g. 2026-01-31T12:00:00Z.") % {"raw": raw}]}
    )
    try:
        value = parse_datetime(raw.strip().replace(" ", "+"))
        if value is None:
            raise invalid
        if timezone.is_naive(value):
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid from None


BOOLEAN_VALUES = {"", "true", "false", "True", "False", "1", "0"}


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, which answers an invalid filter value with a 400 naming it, except for yes/no
    filters, which read anything but true/false as "no filter": those are refused here the same way.

    A request that names none of the list's filters is not filtered at all: the filter set (a form built afresh per
    request, a third of a list's cost in Python) is only made when there is something for it to do. A filter
    applies nothing to an absent parameter, so the answer is the same."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not _names_a_filter(request, filterset_class):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            for name, field in filterset.filters.items():
                raw = request.query_params.get(name)
                if isinstance(field, django_filters.BooleanFilter) and raw is not None and raw not in BOOLEAN_VALUES:
                    raise ValidationError(
                        {name: [_("“%(raw)s” is not a yes/no value; use true or false.") % {"raw": raw}]}
                    )
        return filterset


def _names_a_filter(request, filterset_class) -> bool:
    """Whether a query parameter is (or begins like, for the two-part filters: `_min`, `_after`…) a filter's name."""
    names = filterset_class.base_filters.keys()
    return any(param.startswith(name) for param in request.query_params for name in names)


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(django_filters.CharFilter):
    """A filterset field taking an ISO 8601 moment, read like `updated_after` (400 naming `param` if it is not)."""

    def __init__(self, *args, param: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.param = param

    def filter(self, queryset, value):
        if not value:
            return queryset
        return queryset.filter(**{f"{self.field_name}__{self.lookup_expr}": parse_query_datetime(self.param, value)})


class UpdatedAfterFilter(BaseFilterBackend):
    """`?updated_after=<ISO 8601>` on every list whose model has `updated_at`: incremental sync."""

    param = "updated_after"

    def filter_queryset(self, request, queryset, view):
        raw = request.query_params.get(self.param)
        if not raw or not any(f.name == "updated_at" for f in queryset.model._meta.get_fields()):
            return queryset
        return queryset.filter(updated_at__gt=parse_query_datetime(self.param, raw))

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.param,
                "required": False,
                "in": "query",
                "description": "Only rows changed after this moment (ISO 8601), for incremental sync.",
                "schema": {"type": "string", "format": "date-time"},
            }
        ]
