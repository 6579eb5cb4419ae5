"""`/api/v1/work-orders` (with lifecycle actions, checklist, comments, time, costs and attachments),
`/api/v1/requests`, `/api/v1/procedures`, `/api/v1/teams` and `/api/v1/attachments/{token}/download`.

Every write goes through `workorders.services` with the caller as the actor: the permission class checks the
role table, the service checks it again along with the work-order rules (technicians act on their own work).
"""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from maintenance_site import client_ids, hooks
from maintenance_site.analytics.api import as_json
from maintenance_site.api import prepared
from maintenance_site.api.filters import FilterBackend, UpdatedAfterFilter
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.search import SearchFilter
from maintenance_site.api.serializers import (
    FastListSerializer,
    TenantModelSerializer,
    TenantPrimaryKeyRelatedField,
    datetime_for_json,
)
from maintenance_site.api.viewsets import TenantGenericViewSet, TenantModelViewSet, TenantReadOnlyViewSet
from maintenance_site.errors import InvalidInput, NotFound
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import REASON_MAX_LENGTH
from workorders import services
from workorders.filters import WorkOrderFilter, WorkOrderOrdering, WorkRequestFilter
from workorders.models import (
    Attachment,
    Budget,
    ChecklistItem,
    Comment,
    CostLine,
    FailureCode,
    Procedure,
    ProcedureItem,
    ResumableUpload,
    Team,
    TimeEntry,
    WorkOrder,
    WorkRequest,
)

User = get_user_model()


def person(user) -> str | None:
    return (user.get_full_name() or user.get_username()) if user is not None else None


def member_field(**kwargs):
    """A user of the active organisation, by id (anyone else: "does not exist")."""
    return TenantPrimaryKeyRelatedField(queryset=User.objects.all(), **kwargs)


class OptionalBooleanField(serializers.BooleanField):
    default_empty_html = serializers.empty  # absent from a form: not given (DRF's default is False)


# --- serializers ------------------------------------------------------------------------------------------


class AttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "token",
            "original_name",
            "content_type",
            "size",
            "work_order",
            "request",
            "uploaded_by",
            "download_url",
            "created_at",
        ]
        read_only_fields = fields

    def get_download_url(self, obj) -> str:
        return reverse("attachment-download", kwargs={"token": obj.token}, request=self.context.get("request"))


class WorkOrderSerializer(TenantModelSerializer):
    asset_code = serializers.CharField(source="asset.code", read_only=True, default=None)
    location_name = serializers.CharField(source="location.name", read_only=True, default=None)
    assignee_name = serializers.SerializerMethodField()
    team_name = serializers.CharField(source="team.name", read_only=True, default=None)
    is_overdue = serializers.BooleanField(read_only=True)
    allowed_actions = serializers.SerializerMethodField(help_text="Lifecycle actions possible from the status.")
    sla_state = serializers.SerializerMethodField(help_text="breached, warning, on_track, met, or null (no SLA).")
    response_due_at = serializers.SerializerMethodField()
    resolution_due_at = serializers.SerializerMethodField()
    assignee = member_field(required=False, allow_null=True, help_text="On creation: assigns at once.")
    procedure = TenantPrimaryKeyRelatedField(
        queryset=Procedure.objects.all(),
        write_only=True,
        required=False,
        allow_null=True,
        help_text="On creation: the procedure whose steps become the checklist.",
    )

    class Meta:
        model = WorkOrder
        fields = [
            "id",
            "number",
            "title",
            "description",
            "type",
            "priority",
            "status",
            "asset",
            "asset_code",
            "location",
            "location_name",
            "assignee",
            "assignee_name",
            "team",
            "team_name",
            "requested_by",
            "due_at",
            "scheduled_start",
            "started_at",
            "completed_at",
            "verified_at",
            "estimated_minutes",
            "source",
            "needs_downtime",
            "parent",
            "completion_notes",
            "problem_code",
            "cause_code",
            "remedy_code",
            "failure_cause",
            "remedy",
            "hold_reason",
            "cancel_reason",
            "is_overdue",
            "allowed_actions",
            "sla_state",
            "response_due_at",
            "resolution_due_at",
            "procedure",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["requested_by"]

    # Lists annotate these in one join (services.with_extensions); an order just written has no annotation
    # and reads its clock instead.
    def _sla(self, obj, annotation: str, pick):
        if hasattr(obj, annotation):
            return getattr(obj, annotation)
        summary = services.sla_summary(obj)
        return pick(summary) if summary else None

    def get_sla_state(self, obj) -> str | None:
        return self._sla(obj, "sla_state", lambda summary: summary["state"])

    def get_response_due_at(self, obj) -> datetime | None:
        return self._sla(obj, "response_due_at", lambda summary: summary["response"]["due_at"])

    def get_resolution_due_at(self, obj) -> datetime | None:
        return self._sla(obj, "resolution_due_at", lambda summary: summary["resolution"]["due_at"])

    def get_assignee_name(self, obj) -> str | None:
        return person(obj.assignee) if obj.assignee_id else None

    def get_allowed_actions(self, obj) -> list[str]:
        return services.allowed_actions(obj)

    def validate_source(self, value):
        if value in (WorkOrder.Source.FOLLOW_UP, WorkOrder.Source.REQUEST):
            raise serializers.ValidationError(
                _("Follow-ups are raised from a failed checklist item and requests are approved: not created here.")
            )
        return value


class WorkOrderListSerializer(serializers.ModelSerializer):
    """A work order in a list: what a list shows. The detail has the rest (description, close-out, costs, the SLA
    clock) and the lifecycle actions allowed from its status."""

    asset_code = serializers.CharField(source="asset.code", read_only=True, default=None)
    assignee_name = serializers.SerializerMethodField()
    is_overdue = serializers.BooleanField(read_only=True)
    sla_state = serializers.CharField(
        read_only=True, allow_null=True, help_text="breached, warning, on_track, met, or null (no SLA)."
    )
    response_due_at = serializers.DateTimeField(read_only=True, allow_null=True)
    resolution_due_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = WorkOrder
        fields = [
            "id",
            "number",
            "title",
            "type",
            "priority",
            "status",
            "asset",
            "asset_code",
            "location",
            "assignee",
            "assignee_name",
            "team",
            "due_at",
            "is_overdue",
            "sla_state",
            "response_due_at",
            "resolution_due_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        list_serializer_class = FastListSerializer

    def get_assignee_name(self, obj) -> str | None:
        return person(obj.assignee) if obj.assignee_id else None

    # --- the lean read path: `WorkOrderViewSet.list` reads `VALUES` rows (no model instances) and `items` turns them
    # into this serializer's items, the same bytes (tests.foundation.test_list_paging compares them row for row).
    VALUES = [
        "id",
        "number",
        "title",
        "type",
        "priority",
        "status",
        "asset_id",
        "asset__code",
        "location_id",
        "assignee_id",
        "assignee__username",
        "assignee__first_name",
        "assignee__last_name",
        "team_id",
        "due_at",
        "created_at",
        "updated_at",
        "sla_state",
        "response_due_at",
        "resolution_due_at",
    ]

    @staticmethod
    def items(rows) -> list[dict]:
        """The list's items from `VALUES` rows (dicts), as the serializer would write them from the orders (UTC
        date-times left for the renderer, which writes them alike: `datetime_for_json`)."""
        text = datetime_for_json()
        now, open_statuses = timezone.now(), WorkOrder.OPEN_STATUSES
        items = []
        for row in rows:
            due_at, status, assignee = row["due_at"], row["status"], row["assignee_id"]
            if assignee is not None:
                name = f"{row['assignee__first_name']} {row['assignee__last_name']}".strip()
                name = name or row["assignee__username"]
            else:
                name = None
            response_due, resolution_due = row["response_due_at"], row["resolution_due_at"]
            items.append(
                {
                    "id": row["id"],
                    "number": row["number"],
                    "title": row["title"],
                    "type": row["type"],
                    "priority": row["priority"],
                    "status": status,
                    "asset": row["asset_id"],
                    "asset_code": row["asset__code"],
                    "location": row["location_id"],
                    "assignee": assignee,
                    "assignee_name": name,
                    "team": row["team_id"],
                    "due_at": None if due_at is None else text(due_at),
                    "is_overdue": status in open_statuses and due_at is not None and due_at < now,
                    "sla_state": row["sla_state"],
                    "response_due_at": None if response_due is None else text(response_due),
                    "resolution_due_at": None if resolution_due is None else text(resolution_due),
                    "created_at": text(row["created_at"]),
                    "updated_at": text(row["updated_at"]),
                }
            )
        return items


class WorkOrderDetailSerializer(WorkOrderSerializer):
    costs = serializers.SerializerMethodField(help_text="Labour, parts, other and total, as decimal strings.")
    sla = serializers.SerializerMethodField(help_text="The SLA clock: policy, targets, due times, states, pauses.")

    class Meta(WorkOrderSerializer.Meta):
        fields = [*WorkOrderSerializer.Meta.fields, "costs", "sla"]

    def get_sla(self, obj) -> dict | None:
        return services.sla_summary(obj)

    def get_costs(self, obj) -> dict[str, str]:
        return {name: str(amount) for name, amount in services.cost_totals(obj).items()}


class ChecklistItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChecklistItem
        fields = [
            "id",
            "position",
            "text",
            "kind",
            "unit",
            "required",
            "done",
            "passed",
            "number_value",
            "text_value",
            "done_by",
            "done_at",
            "follow_up",
            "client_id",
            "updated_at",
        ]
        read_only_fields = fields


class ChecklistItemInput(serializers.ModelSerializer):
    class Meta:
        model = ChecklistItem
        fields = ["text", "kind", "unit", "required"]


class ChecklistResultInput(serializers.Serializer):
    done = OptionalBooleanField(required=False)
    passed = OptionalBooleanField(required=False, allow_null=True)
    number_value = serializers.DecimalField(max_digits=14, decimal_places=4, required=False, allow_null=True)
    text_value = serializers.CharField(required=False, allow_blank=True)
    client_id = serializers.CharField(required=False, allow_blank=True, max_length=64)


class FollowUpInput(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, required=False)


class CommentSerializer(serializers.ModelSerializer):
    author_name = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "body", "author", "author_name", "client_id", "created_at", "updated_at"]
        read_only_fields = ["author"]
        extra_kwargs = {"client_id": {"required": False}}

    def get_author_name(self, obj) -> str | None:
        return person(obj.author)


class TimeEntrySerializer(serializers.ModelSerializer):
    technician_name = serializers.SerializerMethodField()
    cost = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = TimeEntry
        fields = [
            "id",
            "technician",
            "technician_name",
            "entered_by",
            "started_at",
            "ended_at",
            "minutes",
            "hourly_rate",
            "cost",
            "note",
            "client_id",
            "created_at",
        ]
        read_only_fields = fields

    def get_technician_name(self, obj) -> str | None:
        return person(obj.technician)


class TimeEntryInput(serializers.Serializer):
    minutes = serializers.IntegerField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)
    technician = member_field(required=False, allow_null=True, help_text="Default: you.")
    client_id = serializers.CharField(required=False, allow_blank=True, max_length=64)


class CostLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = CostLine
        fields = ["id", "description", "amount", "added_by", "created_at", "updated_at"]
        read_only_fields = ["added_by"]
        extra_kwargs = {"amount": {"min_value": None}}  # a negative amount: the service's sentence


class AttachmentInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False)  # empty, wrong type, too big: the service


class UploadStartInput(serializers.Serializer):
    client_id = serializers.CharField(max_length=64, help_text="Your id of the file: one upload per id.")
    name = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1, help_text="The whole file's length in bytes.")
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, help_text="When it was taken.")


class UploadSerializer(serializers.ModelSerializer):
    offset = serializers.IntegerField(source="received", help_text="Bytes received: send the next piece from here.")
    complete = serializers.BooleanField(help_text="The whole file arrived and is attached to the order.")
    attachment = AttachmentSerializer(allow_null=True, read_only=True)

    class Meta:
        model = ResumableUpload
        fields = ["client_id", "name", "size", "offset", "complete", "occurred_at", "attachment"]


UPLOAD_OFFSET = OpenApiParameter(
    "Upload-Offset",
    int,
    OpenApiParameter.HEADER,
    required=True,
    description="Where this piece starts in the file: the upload's `offset`.",
)
CLIENT_ID = OpenApiParameter("client_id", str, OpenApiParameter.PATH, description="Your id of the file.")


def upload_offset(request) -> int:
    raw = request.headers.get("Upload-Offset", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise InvalidInput(
            _("Send where the piece starts in the header Upload-Offset (a whole number of bytes)."),
            fields={"Upload-Offset": [_("A whole number, the upload's offset.")]},
        )
    return int(raw)


def upload_piece(request) -> bytes:
    """The request's body, read only when it is no larger than a piece may be."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > services.UPLOAD_PIECE_MAX_BYTES:
        raise InvalidInput(
            _("Send at most %(size)s kB at a time.") % {"size": services.UPLOAD_PIECE_MAX_BYTES // 1024},
            fields={"body": [_("Too large.")]},
        )
    return request.body


class AssignInput(serializers.Serializer):
    assignee = member_field(required=False, allow_null=True)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH)


def failure_code_field(kind: str):
    return TenantPrimaryKeyRelatedField(
        queryset=FailureCode.objects.filter(kind=kind),
        required=False,
        allow_null=True,
        help_text=f"A {kind} code of the failure-code library (/api/v1/failure-codes?kind={kind}).",
    )


class CompleteInput(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True)
    problem_code = failure_code_field("problem")
    cause_code = failure_code_field("cause")
    remedy_code = failure_code_field("remedy")

    def validate(self, attrs):
        codes = {name: attrs.pop(name) for name in ("problem_code", "cause_code", "remedy_code") if name in attrs}
        if codes:
            attrs["failure_codes"] = codes
        return attrs


class CancelInput(ReasonInput):
    parts_disposition = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Parts already issued to the order: `return` them to stock or `write_off`.",
    )


class WorkRequestSerializer(TenantModelSerializer):
    asset_code = serializers.CharField(source="asset.code", read_only=True, default=None)
    location_name = serializers.CharField(source="location.name", read_only=True, default=None)
    attachments = AttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = WorkRequest
        fields = [
            "id",
            "description",
            "asset",
            "asset_code",
            "location",
            "location_name",
            "contact_name",
            "contact_email",
            "contact_phone",
            "status",
            "decided_by",
            "decided_at",
            "rejection_reason",
            "work_order",
            "attachments",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ScheduleInput(serializers.Serializer):
    scheduled_start = serializers.DateTimeField(
        allow_null=True, help_text="When the work is planned to start (null: unplan it); the estimate gives its length."
    )


class DispatchInput(serializers.Serializer):
    assignee = member_field(allow_null=True, help_text="Who does it; null: back to the unassigned work.")
    scheduled_start = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Also plan it to start then (absent or null: keep the plan)."
    )


class ApproveInput(serializers.Serializer):
    title = serializers.CharField(required=False, max_length=200)
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, required=False)
    type = serializers.ChoiceField(choices=WorkOrder.Type.choices, required=False)
    assignee = member_field(required=False, allow_null=True)
    due_at = serializers.DateTimeField(required=False, allow_null=True)


class ProcedureItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProcedureItem
        fields = ["id", "position", "text", "kind", "unit", "required"]
        extra_kwargs = {"position": {"required": False}}


class ProcedureSerializer(TenantModelSerializer):
    items = ProcedureItemSerializer(many=True, required=False, help_text="Replaces every step when given.")

    class Meta:
        model = Procedure
        fields = ["id", "name", "description", "items", "created_at", "updated_at"]

    def validate(self, attrs):
        items = attrs.pop("items", None)  # the base class would assign them to the model: a reverse relation
        attrs = super().validate(attrs)
        if items is not None:
            attrs["items"] = items
        return attrs


class FailureCodeSerializer(TenantModelSerializer):
    class Meta:
        model = FailureCode
        fields = ["id", "kind", "code", "name", "description", "asset_type", "is_active", "created_at", "updated_at"]


class BudgetSerializer(TenantModelSerializer):
    ends_on = serializers.DateField(read_only=True)

    class Meta:
        model = Budget
        fields = [
            "id",
            "name",
            "period",
            "starts_on",
            "ends_on",
            "category",
            "amount",
            "location",
            "asset_type",
            "asset",
            "thresholds",
            "created_at",
            "updated_at",
        ]


class TeamSerializer(TenantModelSerializer):
    members = member_field(many=True, required=False)

    class Meta:
        model = Team
        fields = ["id", "name", "members", "created_at", "updated_at"]


# --- viewsets ---------------------------------------------------------------------------------------------


def _post(request_serializer, response_serializer, **kwargs):
    return extend_schema(request=request_serializer, responses=response_serializer, **kwargs)


ITEM_ID = OpenApiParameter("item_id", int, OpenApiParameter.PATH, description="The checklist item.")


# The order's comments, time entries, cost lines and attachments come whole: not paged, not filtered.
WHOLE_LIST = {"pagination_class": None, "filter_backends": []}


class WorkOrderViewSet(TenantModelViewSet):
    """Work orders: list and read for every member; create and edit with `create_work`; the lifecycle
    through the action endpoints (`assign`, `start`, `complete`, …), each checked against the status
    (409 with `current_status` and `allowed_actions`) and the caller's role and assignment."""

    queryset = WorkOrder.objects.select_related("organization", "asset", "location", "assignee", "team")
    serializer_class = WorkOrderDetailSerializer
    pagination_class = CursorPagination
    filterset_class = WorkOrderFilter
    filter_backends = [FilterBackend, UpdatedAfterFilter, SearchFilter, WorkOrderOrdering]
    search_fields = ["number", "title", "asset__code"]
    ordering_fields = ["created_at", "due_at", "priority", "number", "updated_at"]
    write_action = Action.CREATE_WORK
    action_permissions = {
        **services.ACTION_PERMISSION,  # the lifecycle actions: the service's own table
        "schedule": Action.EXECUTE_WORK,  # and the service's rule: supervisors, or the technician on the order
        "dispatch_order": Action.ASSIGN_WORK,
        "add_checklist_item": Action.CREATE_WORK,
        "checklist_item": Action.EXECUTE_WORK,
        "follow_up": Action.EXECUTE_WORK,
        # who may comment and attach is one rule with two actions: services.check_may_annotate, asked first
        "add_comment": Action.VIEW,
        "log_time": Action.EXECUTE_WORK,
        "start_timer": Action.EXECUTE_WORK,
        "stop_timer": Action.EXECUTE_WORK,
        "add_cost_line": Action.CREATE_WORK,
        "add_attachment": Action.VIEW,
        "start_upload": Action.VIEW,  # uploads too: services.check_may_annotate
        "upload": Action.VIEW,
        "upload_piece": Action.VIEW,
    }

    def get_queryset(self):
        # The SLA state and deadlines (and the clock, for the detail's summary) joined in: no query per order.
        queryset = services.with_extensions(super().get_queryset())
        if self.action == "list":  # list() reads VALUES rows: no whole rows joined (the SLA state is annotated)
            queryset = queryset.select_related(None)
        return queryset

    def get_serializer_class(self):
        return WorkOrderListSerializer if self.action == "list" else WorkOrderDetailSerializer

    # The query parameters whose SQL depends on nothing but their values (`maintenance_site.api.prepared`): a list
    # asked with these alone reads its page through the page query kept for its shape. Not `location` (its SQL
    # holds the location's descendants), `overdue` (the time), `mine` (the user) or `page`.
    prepared_params = frozenset(
        {
            *("status", "priority", "type", "source", "assignee", "team", "asset", "parent"),
            *("due_before", "due_after", "updated_after", "search", "ordering", "page_size"),
        }
    )

    def prepared_key_extra(self):
        return tuple(hooks.work_order_list.receivers)  # what annotates the rows (tests add and remove receivers)

    def list(self, request, *args, **kwargs):
        """The hot read: rows as values (no model instances, only the list's columns and annotations compiled),
        written straight into the list's items; filters, search, ordering and both paginations as on any list.
        A shape asked before reads its page through the page query kept for it (`maintenance_site.api.prepared`):
        no queryset built or compiled."""
        paginator = self.paginator
        key = paginator.prepared_key(self, request)
        page = prepared.lookup(key)
        rows = paginator.paginate_prepared(page, request) if page is not None else None
        if rows is None:
            queryset = self.filter_queryset(self.get_queryset())
            ordered_by = {str(term).lstrip("-") for term in queryset.query.order_by}  # `priority_rank`: the cursor's
            ordering = [name for name in queryset.query.annotations if name in ordered_by]
            values = queryset.values(*WorkOrderListSerializer.VALUES, *ordering)
            rows = paginator.paginate_queryset(values, request, view=self, prepare=key is not None)
            if key is not None and getattr(paginator, "prepared", None) is not None:
                prepared.keep(key, paginator.prepared)
        return self.get_paginated_response(WorkOrderListSerializer.items(rows))

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_work_order(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        if changes.pop("procedure", None) is not None:
            raise InvalidInput(
                _("A procedure is applied when the order is created; add checklist items to change the checklist."),
                fields={"procedure": [_("Only on creation.")]},
            )
        # validate() has set the new values on serializer.instance: compare with the stored row instead.
        # Fields the service does not edit pass only when unchanged (a PUT repeats them).
        stored = WorkOrder.objects.get(pk=serializer.instance.pk)
        changes = {k: v for k, v in changes.items() if k in services.EDITABLE_FIELDS or getattr(stored, k) != v}
        self.written(serializer, services.update_work_order(stored, actor=self.request.user, **changes))

    def perform_destroy(self, instance):
        services.delete_work_order(instance, actor=self.request.user)

    # --- helpers ---
    def _order(self, work_order, status=200) -> Response:
        work_order = self.get_queryset().get(pk=work_order.pk)
        self._written_instance = work_order
        return Response(
            WorkOrderDetailSerializer(work_order, context=self.get_serializer_context()).data, status=status
        )

    def _transition(self, name, input_class=None) -> Response:
        work_order = self.get_object()  # first: another organisation's order is a 404 whatever the body
        data = self.input(input_class) if input_class else {}
        return self._order(services.transition(work_order, name, actor=self.request.user, **data))

    # --- lifecycle ---
    @_post(AssignInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        return self._transition("assign", AssignInput)

    @_post(None, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def unassign(self, request, pk=None):
        return self._transition("unassign")

    @_post(None, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._transition("start")

    @_post(ReasonInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def hold(self, request, pk=None):
        return self._transition("hold", ReasonInput)

    @_post(None, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._transition("resume")

    @_post(CompleteInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._transition("complete", CompleteInput)

    @_post(None, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        return self._transition("verify")

    @_post(ReasonInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._transition("reject", ReasonInput)

    @_post(ReasonInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._transition("reopen", ReasonInput)

    @_post(CancelInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._transition("cancel", CancelInput)

    # --- planning (the planner's calendar and the dispatch board) ---
    @_post(ScheduleInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def schedule(self, request, pk=None):
        """Plan when the order starts (`workorders.services.schedule`): 409 for a closed order or a period in which a
        maintenance window takes its asset out of service."""
        work_order = self.get_object()
        data = self.input(ScheduleInput)
        return self._order(services.schedule(work_order, actor=request.user, **data))

    @_post(DispatchInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"], url_path="dispatch")
    def dispatch_order(self, request, pk=None):
        """Assign the order (or take it back) and optionally plan its start, all or nothing
        (`workorders.services.dispatch`): 409 for a technician not in the order's team."""
        work_order = self.get_object()
        data = self.input(DispatchInput)
        return self._order(services.dispatch(work_order, actor=request.user, **data))

    # --- checklist ---
    @extend_schema(responses=ChecklistItemSerializer(many=True))
    @action(detail=True, methods=["get"], **WHOLE_LIST)
    def checklist(self, request, pk=None):
        return self.many(ChecklistItemSerializer, self.get_object().checklist.all())

    @_post(ChecklistItemInput, ChecklistItemSerializer)
    @checklist.mapping.post
    def add_checklist_item(self, request, pk=None):
        work_order = self.get_object()
        item = services.add_checklist_item(work_order, actor=request.user, **self.input(ChecklistItemInput))
        return self.one(ChecklistItemSerializer, item, status=201)

    @_post(ChecklistResultInput, ChecklistItemSerializer, parameters=[ITEM_ID], methods=["PATCH"])
    @_post(
        ChecklistResultInput,
        ChecklistItemSerializer,
        parameters=[ITEM_ID],
        methods=["POST"],
        operation_id="v1_work_orders_checklist_result_create",
    )
    @action(detail=True, methods=["patch", "post"], url_path=r"checklist/(?P<item_id>[0-9]+)")
    def checklist_item(self, request, pk=None, item_id=None):
        with transaction.atomic():  # get_object() locks the order on PATCH
            item = get_object_or_404(ChecklistItem, work_order=self.get_object(), pk=item_id)
            item = services.record_checklist_result(item, actor=request.user, **self.input(ChecklistResultInput))
        return self.one(ChecklistItemSerializer, item)

    @_post(FollowUpInput, WorkOrderDetailSerializer, parameters=[ITEM_ID])
    @action(detail=True, methods=["post"], url_path=r"checklist/(?P<item_id>[0-9]+)/follow-up")
    def follow_up(self, request, pk=None, item_id=None):
        item = get_object_or_404(ChecklistItem, work_order=self.get_object(), pk=item_id)
        existed = item.follow_up_id is not None
        follow_up = services.raise_follow_up(item, actor=request.user, **self.input(FollowUpInput))
        return self._order(follow_up, status=200 if existed else 201)

    # --- comments, time, costs, attachments ---
    @extend_schema(responses=CommentSerializer(many=True))
    @action(detail=True, methods=["get"], **WHOLE_LIST)
    def comments(self, request, pk=None):
        return self.many(CommentSerializer, self.get_object().comments.select_related("author"))

    @_post(CommentSerializer, {201: CommentSerializer, 200: CommentSerializer})
    @comments.mapping.post
    def add_comment(self, request, pk=None):
        """Add a comment. A `client_id` you used before: 200 with that comment when the body and the order are the
        same (a replay), 409 naming it when they are not."""
        work_order = self.get_object()
        services.check_may_annotate(work_order, actor=request.user)  # before the body: who may not comment learns that
        comment = services.add_comment(work_order, actor=request.user, **self.input(CommentSerializer))
        return self.one(CommentSerializer, comment, status=200 if client_ids.was_replayed(comment) else 201)

    @extend_schema(responses=TimeEntrySerializer(many=True))
    @action(detail=True, methods=["get"], **WHOLE_LIST, url_path="time-entries")
    def time_entries(self, request, pk=None):
        return self.many(TimeEntrySerializer, self.get_object().time_entries.select_related("technician"))

    @_post(TimeEntryInput, {201: TimeEntrySerializer, 200: TimeEntrySerializer})
    @time_entries.mapping.post
    def log_time(self, request, pk=None):
        """Log minutes worked. A `client_id` you used before: 200 with that entry when the order, technician,
        minutes and note are the same (a replay), 409 naming it when they are not."""
        work_order = self.get_object()
        entry = services.log_time(work_order, actor=request.user, **self.input(TimeEntryInput))
        return self.one(TimeEntrySerializer, entry, status=200 if client_ids.was_replayed(entry) else 201)

    @_post(None, TimeEntrySerializer)
    @action(detail=True, methods=["post"], url_path="time-entries/start")
    def start_timer(self, request, pk=None):
        return self.one(TimeEntrySerializer, services.start_timer(self.get_object(), actor=request.user), status=201)

    @_post(None, TimeEntrySerializer)
    @action(detail=True, methods=["post"], url_path="time-entries/stop")
    def stop_timer(self, request, pk=None):
        return self.one(TimeEntrySerializer, services.stop_timer(self.get_object(), actor=request.user))

    @extend_schema(responses=CostLineSerializer(many=True))
    @action(detail=True, methods=["get"], **WHOLE_LIST, url_path="cost-lines")
    def cost_lines(self, request, pk=None):
        return self.many(CostLineSerializer, self.get_object().cost_lines.all())

    @_post(CostLineSerializer, CostLineSerializer)
    @cost_lines.mapping.post
    def add_cost_line(self, request, pk=None):
        work_order = self.get_object()
        line = services.add_cost_line(work_order, actor=request.user, **self.input(CostLineSerializer))
        return self.one(CostLineSerializer, line, status=201)

    @extend_schema(responses=AttachmentSerializer(many=True))
    @action(detail=True, methods=["get"], **WHOLE_LIST)
    def attachments(self, request, pk=None):
        return self.many(AttachmentSerializer, self.get_object().attachments.all())

    @extend_schema(request={"multipart/form-data": AttachmentInput}, responses=AttachmentSerializer)
    @attachments.mapping.post
    def add_attachment(self, request, pk=None):
        work_order = self.get_object()
        services.check_may_annotate(work_order, actor=request.user)
        uploaded = self.input(AttachmentInput)["file"]
        attachment = services.add_attachment(uploaded=uploaded, actor=request.user, work_order=work_order)
        return self.one(AttachmentSerializer, attachment, status=201)

    # --- resumable uploads (a phone's photos taken offline) ---
    @_post(UploadStartInput, {201: UploadSerializer, 200: UploadSerializer})
    @action(detail=True, methods=["post"], url_path="uploads")
    def start_upload(self, request, pk=None):
        """Announce a file sent in pieces (`PATCH …/uploads/{client_id}/`). The same `client_id` again (same name
        and size): 200 with where it stands, to continue from `offset`; with another name or size, 409."""
        work_order = self.get_object()
        services.check_may_annotate(work_order, actor=request.user)
        upload = services.start_upload(work_order, actor=request.user, **self.input(UploadStartInput))
        return self.one(UploadSerializer, upload, status=200 if client_ids.was_replayed(upload) else 201)

    def _upload(self, client_id) -> ResumableUpload:
        work_order = self.get_object()
        services.check_may_annotate(work_order, actor=self.request.user)
        return get_object_or_404(
            ResumableUpload.objects.select_related("attachment"),
            work_order=work_order,
            author=self.request.user,
            client_id=client_id,
        )

    @extend_schema(responses=UploadSerializer, parameters=[CLIENT_ID])
    @action(detail=True, methods=["get"], url_path=r"uploads/(?P<client_id>[A-Za-z0-9_.-]{1,64})")
    def upload(self, request, pk=None, client_id=None):
        """Where an upload of yours stands: `offset` (bytes received), `complete`, and the attachment once
        complete. Somebody else's upload is a 404, like a missing one."""
        return self.one(UploadSerializer, self._upload(client_id))

    @extend_schema(
        request={"application/octet-stream": {"type": "string", "format": "binary"}},
        responses=UploadSerializer,
        parameters=[CLIENT_ID, UPLOAD_OFFSET],
    )
    @upload.mapping.patch
    def upload_piece(self, request, pk=None, client_id=None):
        """The next piece of the file (the body's bytes, at most 1 MB), starting at `Upload-Offset`. 409
        `upload_offset_mismatch` with `offset` when it does not start where the bytes received end; the last
        piece attaches the file to the order (type checked by content, size, a photo stripped of EXIF), once."""
        upload = self._upload(client_id)
        upload = services.receive_upload_piece(
            upload, actor=request.user, offset=upload_offset(request), piece=upload_piece(request)
        )
        return self.one(UploadSerializer, upload)


class AttachmentViewSet(TenantGenericViewSet):
    """`/api/v1/attachments/{token}/` (what it is) and `…/download` (the file itself), for members of the
    organisation the attachment belongs to only; files are never served from a public URL."""

    queryset = Attachment.objects.all()
    serializer_class = AttachmentSerializer
    lookup_field = "token"
    filter_backends = []

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, token=None):
        attachment = self.get_object()
        try:
            handle = attachment.file.storage.open(attachment.file.name, "rb")
        except FileNotFoundError:
            raise NotFound(
                _("The file “%(name)s” is missing from storage.") % {"name": attachment.original_name}
            ) from None
        return FileResponse(
            handle, as_attachment=True, filename=attachment.original_name, content_type=attachment.content_type
        )


class WorkRequestViewSet(TenantReadOnlyViewSet):
    """Problems reported through the request form: approve one into a work order (its attachments come
    along) or reject it with a reason the requester sees."""

    queryset = WorkRequest.objects.select_related("asset", "location").prefetch_related("attachments")
    serializer_class = WorkRequestSerializer
    pagination_class = CursorPagination
    filterset_class = WorkRequestFilter
    search_fields = ["description", "contact_name", "contact_email"]
    ordering_fields = ["created_at", "updated_at"]
    action_permissions = {"approve": Action.APPROVE_REQUESTS, "reject": Action.APPROVE_REQUESTS}

    @_post(ApproveInput, WorkOrderDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        work_request = self.get_object()
        work_order = services.approve_request(work_request, actor=request.user, **self.input(ApproveInput))
        self._written_instance = work_order
        return self.one(WorkOrderDetailSerializer, work_order, status=201)

    @_post(ReasonInput, WorkRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        work_request = self.get_object()
        reason = self.input(ReasonInput).get("reason", "")
        work_request = services.reject_request(work_request, actor=request.user, reason=reason)
        return Response(self.get_serializer(work_request).data)


class ProcedureViewSet(TenantModelViewSet):
    """The procedure library: reusable checklists, written with their steps inline."""

    queryset = Procedure.objects.prefetch_related("items")
    serializer_class = ProcedureSerializer
    write_action = Action.CREATE_WORK
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_procedure(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_procedure(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_procedure(instance, actor=self.request.user)


class TeamViewSet(TenantModelViewSet):
    """Crews that work orders can be assigned to."""

    queryset = Team.objects.prefetch_related("members")
    serializer_class = TeamSerializer
    write_action = Action.ASSIGN_WORK
    search_fields = ["name"]
    ordering_fields = ["name", "updated_at"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_team(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_team(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_team(instance, actor=self.request.user)


class FailureCodeViewSet(TenantModelViewSet):
    """The failure-code library: problem, cause and remedy codes, optionally per asset type. Read by every member;
    written by who edits work orders (`create_work`). A code in use is deactivated, not deleted (409)."""

    queryset = FailureCode.objects.all()
    serializer_class = FailureCodeSerializer
    write_action = Action.CREATE_WORK
    filterset_fields = ["kind", "asset_type", "is_active"]
    search_fields = ["code", "name"]
    ordering_fields = ["kind", "code", "name", "updated_at"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_failure_code(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_failure_code(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_failure_code(instance, actor=self.request.user)


class BudgetViewSet(TenantModelViewSet):
    """Budgets per month, quarter or year, for the organisation, a location subtree, an asset type or an asset, per
    cost category. Read by every member; set by managers (`manage_settings`). Budget against actual:
    `/api/v1/analytics/costs` and `{id}/status`."""

    queryset = Budget.objects.all()
    serializer_class = BudgetSerializer
    write_action = Action.MANAGE_SETTINGS
    filterset_fields = ["period", "category", "location", "asset_type", "asset"]
    search_fields = ["name"]
    ordering_fields = ["starts_on", "name", "updated_at"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_budget(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_budget(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_budget(instance, actor=self.request.user)

    @extend_schema(responses=dict)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """The budget against its actual, committed and forecast spend (its own period and scope)."""
        return Response(as_json(services.budget_figures(self.get_object(), timezone.now())))


router.register("work-orders", WorkOrderViewSet, basename="work-order")
router.register("requests", WorkRequestViewSet, basename="work-request")
router.register("procedures", ProcedureViewSet, basename="procedure")
router.register("teams", TeamViewSet, basename="team")
router.register("failure-codes", FailureCodeViewSet, basename="failure-code")
router.register("budgets", BudgetViewSet, basename="budget")
router.register("attachments", AttachmentViewSet, basename="attachment")
