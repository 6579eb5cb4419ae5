"""A work order's recorded changes over the API: `GET /api/v1/work-orders/{id}/history/`.

Every entry is one history record of the order (simple-history), newest first: who acted, when, why (the change
reason, e.g. a hold reason), and per changed field its value before and after as a person reads it (choice
labels, user names). Pages go backwards through the records: `next` carries `?before=<history_id>` of the last
entry shown, a keyset (`WHERE history_id < ?`), as fast on page 200 as on page 1. A fixed number of queries per
page: the page's records plus one (its oldest record's predecessor, to compare with), and the names of the users
the page mentions. An order of another organisation is a 404, like a missing one.
"""

from django.contrib.auth import get_user_model
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from maintenance_site.api.permissions import RolePermission
from maintenance_site.api.viewsets import TenantAPIMixin
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy.roles import Action
from workorders.models import WorkOrder

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_LARGEST_ID = 2**63 - 1
# Bookkeeping that changes with every save: not a change a person made.
_IGNORED_FIELDS = {"updated_at", "search_vector", "version"}
_USER_FIELDS = {"assignee", "requested_by", "completed_by", "verified_by"}
EVENTS = {"+": "created", "~": "changed", "-": "deleted"}


def _whole_number(raw, name: str, default: int, low: int, high: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidInput(
            _("“%(raw)s” is not a valid %(name)s: give a whole number from %(low)s to %(high)s.")
            % {"raw": raw, "name": name, "low": low, "high": high},
            fields={name: [_("A whole number from %(low)s to %(high)s.") % {"low": low, "high": high}]},
        )
    return value


def _display(field, value, users: dict):
    if value is None or value == "":
        return None
    if field.name in _USER_FIELDS:
        return users.get(value, f"#{value}")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, int | float | bool) else str(value)


def work_order_history(work_order: WorkOrder, *, before: int | None = None, page_size: int = DEFAULT_PAGE_SIZE):
    """One page of the order's history, newest first: (entries, history id to continue before, or None)."""
    records = WorkOrder.history.filter(id=work_order.pk).select_related("history_user")
    if before is not None:
        records = records.filter(history_id__lt=before)
    rows = list(records.order_by("-history_id")[: page_size + 1])  # one more: the predecessor of the oldest
    page, predecessor = rows[:page_size], (rows[page_size] if len(rows) > page_size else None)
    deltas = []
    for index, record in enumerate(page):
        previous = page[index + 1] if index + 1 < len(page) else predecessor
        delta = record.diff_against(previous) if previous is not None and record.history_type == "~" else None
        changes = [change for change in (delta.changes if delta else []) if change.field not in _IGNORED_FIELDS]
        deltas.append((record, changes))
    user_ids = {
        value
        for _, changes in deltas
        for change in changes
        if change.field in _USER_FIELDS
        for value in (change.old, change.new)
        if value is not None
    }
    users = (
        {user.pk: user.get_username() for user in get_user_model().objects.filter(pk__in=user_ids)} if user_ids else {}
    )
    entries = []
    for record, changes in deltas:
        shown = []
        for change in changes:
            field = WorkOrder._meta.get_field(change.field)
            shown.append(
                {
                    "field": change.field,
                    "label": str(field.verbose_name),
                    "old": _display(field, change.old, users),
                    "new": _display(field, change.new, users),
                }
            )
        entries.append(
            {
                "history_id": record.history_id,
                "at": record.history_date,
                "event": EVENTS.get(record.history_type, record.history_type),
                "by": record.history_user.get_username() if record.history_user else None,
                "reason": record.history_change_reason or None,
                "changes": shown,
            }
        )
    next_before = page[-1].history_id if predecessor is not None and page else None
    return entries, next_before


_CHANGE = inline_serializer(
    "WorkOrderHistoryChange",
    {
        "field": serializers.CharField(),
        "label": serializers.CharField(),
        "old": serializers.JSONField(allow_null=True),
        "new": serializers.JSONField(allow_null=True),
    },
    many=True,
)


class WorkOrderHistoryView(TenantAPIMixin, APIView):
    """`GET /api/v1/work-orders/{id}/history/`: who changed what on a work order, and when, newest first. Any
    member may read it, like the order; another organisation's order is not found."""

    permission_classes = [RolePermission]
    action_permissions = {None: Action.VIEW}  # a plain APIView has no `action`
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="work_orders_history",
        tags=["work-orders"],
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("before", OpenApiTypes.INT, description="Continue before this history id (`next`)."),
            OpenApiParameter(
                "page_size", OpenApiTypes.INT, description=f"Entries per page (1–{MAX_PAGE_SIZE}, {DEFAULT_PAGE_SIZE})."
            ),
        ],
        responses=inline_serializer(
            "WorkOrderHistory",
            {
                "work_order": serializers.IntegerField(),
                "next": serializers.CharField(allow_null=True),
                "results": inline_serializer(
                    "WorkOrderHistoryEntry",
                    {
                        "history_id": serializers.IntegerField(),
                        "at": serializers.DateTimeField(),
                        "event": serializers.CharField(),
                        "by": serializers.CharField(allow_null=True),
                        "reason": serializers.CharField(allow_null=True),
                        "changes": _CHANGE,
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request, pk=None, **kwargs):
        if int(pk) > _LARGEST_ID:
            raise Http404(_("No such work order."))
        work_order = get_object_or_404(WorkOrder.objects.filter(organization=request.organization), pk=pk)
        before = _whole_number(request.query_params.get("before"), "before", None, 1, _LARGEST_ID)
        page_size = _whole_number(
            request.query_params.get("page_size"), "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE
        )
        entries, next_before = work_order_history(work_order, before=before, page_size=page_size)
        next_url = None
        if next_before is not None:
            query = request.query_params.copy()
            query["before"] = str(next_before)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"work_order": work_order.pk, "next": next_url, "results": entries})
