from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


def _positive_integer(request, name: str) -> int | None:
    """The query parameter as a whole number of at least 1, None when absent; a 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"“{raw}” is not a whole number; give 1 or more."]}) from None
    if value < 1:
        raise ValidationError({name: [f"{value} is too small; give 1 or more."]})
    return value


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M`, the page size capped by API_MAX_PAGE_SIZE. A page or page size that is not a
    whole number of at least 1, or a page past the last one, is a 400 naming the parameter (never ignored)."""

    page_size_query_param = "page_size"

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
            raise ValidationError({"page": [f"There is no page {number}: the last page is {last}."]})
        self.page = paginator.page(number)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True  # the browsable API's page links
        return list(self.page)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters
