"""Query filters of the work-order API.

`/api/v1/work-orders/?status=open,assigned&priority=high&mine=true&overdue=true&location=3&due_before=…`:
multiple-choice filters take comma-separated values or the parameter repeated; `location` includes its
sub-locations; `mine` is work assigned to the caller or to one of their teams. `?ordering=priority` sorts by
urgency (critical first), `-priority` the reverse.
"""

from django import forms
from django.db.models import Q
from django.utils import timezone
from django_filters import rest_framework as filters
from rest_framework.filters import OrderingFilter

from assets.models import Location
from maintenance_site.api.filters import MomentFilter
from workorders.models import PRIORITY_URGENCY, Team, WorkOrder, WorkRequest


class CommaSeparatedChoiceField(forms.MultipleChoiceField):
    """`?status=open,assigned` and `?status=open&status=assigned` alike."""

    def to_python(self, value):
        return [part.strip() for raw in super().to_python(value) for part in raw.split(",") if part.strip()]


class ChoiceInFilter(filters.Filter):
    """One or more of the field's choices: `WHERE field IN (…)`; an unknown choice is a 400."""

    field_class = CommaSeparatedChoiceField

    def filter(self, queryset, value):
        return queryset.filter(**{f"{self.field_name}__in": value}) if value else queryset


class IdFilter(filters.Filter):
    field_class = forms.IntegerField


class WorkOrderFilter(filters.FilterSet):
    status = ChoiceInFilter(choices=WorkOrder.Status.choices)
    priority = ChoiceInFilter(choices=WorkOrder.Priority.choices)
    type = ChoiceInFilter(choices=WorkOrder.Type.choices)
    source = ChoiceInFilter(choices=WorkOrder.Source.choices)
    assignee = IdFilter()
    team = IdFilter()
    asset = IdFilter()
    parent = IdFilter()
    location = IdFilter(method="filter_location", help_text="The location or any location inside it.")
    due_before = MomentFilter(param="due_before", field_name="due_at", lookup_expr="lt")
    due_after = MomentFilter(param="due_after", field_name="due_at", lookup_expr="gte")
    overdue = filters.BooleanFilter(method="filter_overdue", help_text="Open and past its due date.")
    mine = filters.BooleanFilter(method="filter_mine", help_text="Assigned to me or to one of my teams.")

    class Meta:
        model = WorkOrder
        fields = []

    def filter_location(self, queryset, name, value):
        organization = self.request.organization
        ids = frontier = {value}
        while frontier:  # a handful of levels (site, building, area): one query each
            children = Location.objects.filter(organization=organization, parent_id__in=frontier)
            frontier = set(children.values_list("pk", flat=True)) - ids
            ids = ids | frontier
        return queryset.filter(location_id__in=ids)

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status__in=WorkOrder.OPEN_STATUSES, due_at__lt=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_mine(self, queryset, name, value):
        if not value:
            return queryset
        user = self.request.user
        return queryset.filter(Q(assignee=user) | Q(team__in=Team.objects.filter(members=user).values("pk")))


class WorkRequestFilter(filters.FilterSet):
    status = ChoiceInFilter(choices=WorkRequest.Status.choices)
    asset = IdFilter()
    location = IdFilter()

    class Meta:
        model = WorkRequest
        fields = []


class WorkOrderOrdering(OrderingFilter):
    """The standard `?ordering=`, except that priority sorts by urgency rather than alphabetically. Ties go by id in
    the direction of the last term, so that one index (organization, term, id) serves the order both ways."""

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        if any(term.lstrip("-") == "priority" for term in ordering):
            queryset = queryset.annotate(priority_rank=PRIORITY_URGENCY)
            ordering = [term.replace("priority", "priority_rank") for term in ordering]
        return queryset.order_by(*ordering, "-pk" if ordering[-1].startswith("-") else "pk")
