from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend


def parse_query_datetime(name: str, raw: str):
    value = parse_datetime(raw.strip().replace(" ", "+"))
    if value is None:
        raise ValidationError({name: [f"“{raw}” is not an ISO 8601 date-time; write e.g. 2026-01-31T12:00:00Z."]})
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


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
