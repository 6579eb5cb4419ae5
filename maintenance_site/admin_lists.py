"""Admin change lists that cost the same at a million rows as at ten thousand (the admin base, TenantAdmin, uses
these for every domain model):

- `EstimatingPaginator` (maintenance_site.pagination): the row count is exact up to EXACT_COUNT_LIMIT and the
  database's estimate above ("about 300,000 work orders"); the unfiltered total is not counted at all.
- `ChangeList`: reads only the columns the list shows when the admin names them (`list_columns`), instead of every
  column of the model and of each table `list_select_related` joins in.
- `AutocompleteFilter`: a sidebar filter over a foreign key to a large table (assets, people, teams) is a search
  box served by the admin's autocomplete view, instead of a link per value found by a `SELECT DISTINCT` over the
  whole list (20,000 assets: a 1.8 MB page and a scan of every work order on each view). TenantAdmin turns a
  plain foreign-key name in `list_filter` into one when the related model's admin can search.
- No `date_hierarchy` on a large table: its drill-down counts dates over every row of the list.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from unfold.views import ChangeList as ThemeChangeList

AUTOCOMPLETE_FILTER_JS = "backoffice/autocomplete_filter.js"


class ChangeList(ThemeChangeList):
    def get_results(self, request):
        """The page with the admin's `list_columns` only, and of the joins only `list_select_related`'s (the admin's
        queryset may join more for its change form). Actions keep the whole rows (`get_queryset`)."""
        columns = getattr(self.model_admin, "list_columns", None)
        if not columns:
            return super().get_results(request)
        whole = self.queryset
        joined = self.list_select_related if isinstance(self.list_select_related, list | tuple) else ()
        self.queryset = whole.select_related(None).select_related(*joined).only(*columns)
        try:
            super().get_results(request)
        finally:
            self.queryset = whole


class AutocompleteFilter(admin.RelatedFieldListFilter):
    """ "By asset": a search box (the admin's select2 autocomplete over the related admin's `search_fields`, scoped to
    the organisation like every admin query) and "All"; the chosen value is read by its id, nothing else is listed."""

    template = "admin/autocomplete_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.admin_site = model_admin.admin_site
        self.source_field = field
        self.related_queryset = model_admin.scoped(request, field.related_model._default_manager.all())
        super().__init__(field, request, params, model, model_admin, field_path)

    def field_choices(self, field, request, model_admin):
        """Only the value chosen (no query at all when none is)."""
        chosen = [value for value in self.lookup_val or [] if str(value).isdigit()]
        if not chosen:
            return []
        return [(row.pk, str(row)) for row in self.related_queryset.filter(pk__in=chosen)]

    def has_output(self):
        return True

    def choices(self, changelist):
        yield {
            "selected": not self.lookup_val and not self.lookup_val_isnull,
            "query_string": changelist.get_query_string(remove=[self.lookup_kwarg, self.lookup_kwarg_isnull]),
            "display": "All",
        }
        field = forms.ModelChoiceField(
            queryset=self.related_queryset,
            required=False,
            widget=AutocompleteSelect(self.source_field, self.admin_site, attrs={"data-allow-clear": "true"}),
        )
        chosen = self.lookup_val[0] if self.lookup_val else None
        attrs = {
            "data-filter-url": changelist.get_query_string(
                {self.lookup_kwarg: "__value__"}, [self.lookup_kwarg_isnull]
            ),
            "data-clear-url": changelist.get_query_string(remove=[self.lookup_kwarg, self.lookup_kwarg_isnull]),
            "aria-label": f"By {self.title}",
        }
        field.widget.attrs.update(attrs)
        yield {"autocomplete": field.widget.render(f"filter-{self.field_path}", chosen)}


def autocomplete_filter_media() -> forms.Media:
    """What a change list with autocomplete filters loads: the admin's select2 set-up, and the script that opens
    the list filtered by the value chosen."""
    widget = AutocompleteSelect(None, None)
    return widget.media + forms.Media(js=[AUTOCOMPLETE_FILTER_JS])
