"""An asset's history: its work orders, downtime and recorded changes, merged newest first.

`GET /api/v1/assets/{id}/history?limit=100` (`AssetHistoryView`). Every entry is
`{"at": <ISO 8601>, "kind": "work_order" | "downtime" | "change", "summary": <one line>, "details": {...}}`.

It lives with the work orders because it reads the assets and the orders done on them (assets come first in the
apps' order and know nothing of work orders). A fixed number of queries whatever the asset's past: each source is
read once, at most `limit` rows, with what it refers to joined in.
"""

from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from assets.models import Asset, AssetType, Downtime, Location
from maintenance_site.api.permissions import RolePermission
from maintenance_site.api.viewsets import TenantAPIMixin
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy.roles import Action
from workorders.models import DowntimeLink, WorkOrder

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
WORK_ORDER, DOWNTIME, CHANGE = "work_order", "downtime", "change"
# Foreign keys of Asset whose ids a change shows by name.
_RELATED_NAMES = {"location": Location, "asset_type": AssetType, "parent": Asset}


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def _duration_text(seconds: int) -> str:
    minutes = max(0, round(seconds / 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


def _work_order_entries(asset, limit: int) -> list[dict]:
    # The `limit` orders with the newest last event (completion, else creation) hold all of the newest
    # `limit` work-order events.
    orders = (
        WorkOrder.objects.filter(organization_id=asset.organization_id, asset=asset)
        .select_related("requested_by", "assignee")
        .annotate(last_event_at=Coalesce("completed_at", "created_at"))
        .order_by("-last_event_at", "-pk")[:limit]
    )
    entries = []
    for order in orders:
        base = {
            "id": order.pk,
            "number": order.number,
            "title": order.title,
            "type": order.type,
            "priority": order.priority,
            "status": order.status,
        }
        entries.append(
            {
                "at": order.created_at,
                "kind": WORK_ORDER,
                "summary": f"{order.number} opened: {order.title}",
                "details": {
                    **base,
                    "event": "created",
                    "source": order.source,
                    "requested_by": _username(order.requested_by),
                },
            }
        )
        if order.completed_at:
            entries.append(
                {
                    "at": order.completed_at,
                    "kind": WORK_ORDER,
                    "summary": f"{order.number} completed: {order.title}",
                    "details": {
                        **base,
                        "event": "completed",
                        "assignee": _username(order.assignee),
                        "completion_notes": order.completion_notes,
                        "failure_cause": order.failure_cause,
                        "remedy": order.remedy,
                    },
                }
            )
    return entries


def _downtime_entries(asset, limit: int) -> list[dict]:
    downtimes = (
        Downtime.objects.filter(organization_id=asset.organization_id, asset=asset)
        .select_related("work_order_link__caused_by", "work_order_link__ended_by")
        .annotate(last_event_at=Coalesce("ended_at", "started_at"))
        .order_by("-last_event_at", "-pk")[:limit]
    )
    entries = []
    for downtime in downtimes:
        link = _link(downtime)
        caused_by = link.caused_by.number if link and link.caused_by else None
        base = {"id": downtime.pk, "reason": downtime.reason, "caused_by_work_order": caused_by}
        entries.append(
            {
                "at": downtime.started_at,
                "kind": DOWNTIME,
                "summary": f"Down: {downtime.reason}",
                "details": {**base, "event": "started", "started_at": downtime.started_at},
            }
        )
        if downtime.ended_at:
            seconds = int((downtime.ended_at - downtime.started_at).total_seconds())
            ended_by = link.ended_by.number if link and link.ended_by else None
            entries.append(
                {
                    "at": downtime.ended_at,
                    "kind": DOWNTIME,
                    "summary": f"Back up after {_duration_text(seconds)}" + (f" ({ended_by})" if ended_by else ""),
                    "details": {
                        **base,
                        "event": "ended",
                        "started_at": downtime.started_at,
                        "ended_at": downtime.ended_at,
                        "duration_seconds": seconds,
                        "ended_by_work_order": ended_by,
                    },
                }
            )
    return entries


def _link(downtime: Downtime) -> DowntimeLink | None:
    try:
        return downtime.work_order_link
    except DowntimeLink.DoesNotExist:
        return None


def _display(field, value, names: dict):
    """A changed value as a person reads it: the choice's label, the related row's name."""
    if value is None or value == "":
        return None
    if field.name in _RELATED_NAMES:
        return names.get((field.name, value), f"#{value}")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, int | float | bool) else str(value)


def _shown(value) -> str:
    return "—" if value is None else str(value)


def _change_entries(asset, limit: int) -> list[dict]:
    # One extra (older) record: the predecessor the oldest shown record is compared with. Records are compared
    # with their predecessor in this list, which is `record.prev_record` without a query per record.
    records = list(
        Asset.history.filter(id=asset.pk)
        .select_related("history_user")
        .order_by("-history_date", "-history_id")[: limit + 1]
    )
    records.reverse()
    only_predecessor = len(records) > limit
    deltas = []
    for index, record in enumerate(records):
        if index == 0 and only_predecessor:
            continue
        previous = records[index - 1] if index else None
        delta = record.diff_against(previous) if previous is not None and record.history_type == "~" else None
        deltas.append((record, delta))

    wanted = set()
    for _record, delta in deltas:
        for change in delta.changes if delta else ():
            if change.field in _RELATED_NAMES:
                wanted.update((change.field, value) for value in (change.old, change.new) if value is not None)
    names = {}
    for field_name, model in _RELATED_NAMES.items():
        ids = {value for name, value in wanted if name == field_name}
        if ids:
            label = (lambda row: f"{row.code} — {row.name}") if model is Asset else (lambda row: row.name)
            names.update(
                ((field_name, row.pk), label(row))
                for row in model.objects.filter(organization_id=asset.organization_id, pk__in=ids)
            )

    entries = []
    for record, delta in deltas:
        by = _username(record.history_user)
        details = {"history_id": record.history_id, "by": by, "reason": record.history_change_reason or None}
        if record.history_type == "+":
            summary, details["event"], details["changes"] = "Asset registered", "created", []
        elif record.history_type == "-":
            summary, details["event"], details["changes"] = "Asset deleted", "deleted", []
        else:
            changes = []
            for change in delta.changes if delta else ():
                field = Asset._meta.get_field(change.field)
                changes.append(
                    {
                        "field": change.field,
                        "label": str(field.verbose_name),
                        "old": _display(field, change.old, names),
                        "new": _display(field, change.new, names),
                    }
                )
            if not changes:
                continue  # saved without a visible change
            shown = ", ".join(f"{c['label']} {_shown(c['old'])} → {_shown(c['new'])}" for c in changes[:3])
            more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
            summary = f"Changed {shown}{more}"
            details["event"], details["changes"] = "changed", changes
        if by:
            summary += f" by {by}"
        entries.append({"at": record.history_date, "kind": CHANGE, "summary": summary, "details": details})
    return entries


def asset_history(asset: Asset, limit: int = DEFAULT_LIMIT) -> list[dict]:
    """The asset's work orders (opened, completed), downtime (started, ended) and changes, newest first."""
    limit = max(1, int(limit))
    entries = [
        *_work_order_entries(asset, limit),
        *_downtime_entries(asset, limit),
        *_change_entries(asset, limit),
    ]
    entries.sort(key=lambda entry: entry["at"], reverse=True)
    return entries[:limit]


def parse_limit(raw) -> int:
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(
            _("“%(raw)s” is not a valid limit: give a whole number from 1 to %(limit)s.")
            % {"raw": raw, "limit": MAX_LIMIT},
            fields={"limit": [_("Between 1 and %(limit)s.") % {"limit": MAX_LIMIT}]},
        )
    return value


def history_response(request, asset: Asset) -> Response:
    """The endpoint's response for an asset already resolved within the request's organisation (also what an
    `@action` on AssetViewSet would return)."""
    limit = parse_limit(request.query_params.get("limit"))
    return Response({"asset": asset.pk, "limit": limit, "results": asset_history(asset, limit)})


_ENTRY_FIELDS = {
    "at": serializers.DateTimeField(),
    "kind": serializers.ChoiceField(choices=[WORK_ORDER, DOWNTIME, CHANGE]),
    "summary": serializers.CharField(),
    "details": serializers.DictField(),
}


class AssetHistoryView(TenantAPIMixin, APIView):
    """`GET /api/v1/assets/{id}/history`: what happened to an asset, newest first. Any member may read it; an
    asset of another organisation is not found."""

    permission_classes = [RolePermission]
    # RolePermission looks the required action up by the view's `action`, which a plain APIView has not (None).
    action_permissions = {None: Action.VIEW}
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="assets_history",
        tags=["assets"],
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"How many entries (1–{MAX_LIMIT}, default {DEFAULT_LIMIT})."
            ),
        ],
        responses=inline_serializer(
            name="AssetHistory",
            fields={
                "asset": serializers.IntegerField(),
                "limit": serializers.IntegerField(),
                "results": inline_serializer(name="AssetHistoryEntry", fields=_ENTRY_FIELDS, many=True),
            },
        ),
    )
    def get(self, request, pk=None, **kwargs):
        pk = pk if pk is not None else kwargs.get("id")
        asset = get_object_or_404(Asset.objects.filter(organization=request.organization), pk=pk)
        return history_response(request, asset)
