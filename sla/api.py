"""`/api/v1/sla/config` (policies, with their escalation steps), `/api/v1/sla/calendars` (with working hours
and holidays), `/api/v1/sla/violations` (read-only, filterable) and `/api/v1/sla/performance`.

Reading needs `view`; changing policies and calendars needs `manage_sla` (managers). Every write goes through
`sla.services` with the caller as the actor; the serializers run the models' `clean()`, so the API refuses an
invalid policy (resolution shorter than response, a calendar without working time, an equally specific
overlapping policy) with the same sentence as the admin, as a 400 naming the field.
"""

import django_filters
from django.contrib.auth import get_user_model
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from maintenance_site.api.filters import FilterBackend, MomentFilter, UpdatedAfterFilter, parse_query_datetime
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.serializers import TenantModelSerializer, TenantPrimaryKeyRelatedField
from maintenance_site.api.viewsets import TenantAPIMixin, TenantModelViewSet, TenantReadOnlyViewSet
from maintenance_site.tenancy.roles import Action, Role
from sla import services
from sla.models import (
    PAUSABLE_STATUSES,
    BusinessCalendar,
    EscalationStep,
    Holiday,
    SLAPolicy,
    SLAViolation,
    WorkingHours,
    default_pause_statuses,
)

User = get_user_model()


@extend_schema_field(OpenApiTypes.STR)
class ChoiceAsString(serializers.ChoiceField):
    """A choice documented as a string with its values in the description: its field name ("kind", "target")
    or its choice set (work-order types, criticalities) already names another enum of the schema, and two
    names for one enum (or one name for two) are schema warnings."""

    def __init__(self, **kwargs):
        values = ", ".join(str(value) for value in dict(kwargs["choices"]) if value != "")
        help_text = kwargs.pop("help_text", "")
        kwargs["help_text"] = f"{help_text} One of: {values}.".strip()
        super().__init__(**kwargs)


class NestedRowsMixin:
    """Child rows (hours, holidays, steps) are handed to the service whole; the parent's clean() runs
    without them (assigning a reverse relation to an unsaved instance is not possible)."""

    nested_fields: tuple[str, ...] = ()

    def validate(self, attrs):
        nested = {name: attrs.pop(name) for name in self.nested_fields if name in attrs}
        attrs = super().validate(attrs)
        for name, rows in nested.items():
            attrs[name] = [dict(row) for row in rows]
        return attrs


# --- calendars ---------------------------------------------------------------------------------------------


class WorkingHoursSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkingHours
        fields = ["weekday", "start", "end"]


class HolidaySerializer(serializers.ModelSerializer):
    class Meta:
        model = Holiday
        fields = ["date", "name"]


class BusinessCalendarSerializer(NestedRowsMixin, TenantModelSerializer):
    nested_fields = ("hours", "holidays")
    hours = WorkingHoursSerializer(
        many=True, required=False, help_text="Spans of working time; weekday 0 is Monday, an end of 00:00 is midnight."
    )
    holidays = HolidaySerializer(many=True, required=False)

    class Meta:
        model = BusinessCalendar
        fields = ["id", "name", "time_zone", "always_open", "hours", "holidays", "created_at", "updated_at"]


class BusinessCalendarViewSet(TenantModelViewSet):
    """Business calendars: when SLA clocks run (working hours per weekday, holidays, time zone; or 24/7).
    Sending `hours` or `holidays` replaces them all."""

    queryset = BusinessCalendar.objects.select_related("organization").prefetch_related("hours", "holidays")
    serializer_class = BusinessCalendarSerializer
    filter_backends = [UpdatedAfterFilter]
    write_action = Action.MANAGE_SLA

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_calendar(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_calendar(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_calendar(instance, actor=self.request.user)


# --- policies ----------------------------------------------------------------------------------------------


class EscalationStepSerializer(serializers.ModelSerializer):
    kind = ChoiceAsString(choices=EscalationStep.Kind.choices, help_text="What the step does.")
    target = ChoiceAsString(
        choices=EscalationStep.Target.choices, required=False, help_text="Which target's warning or breach."
    )
    notify_roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), required=False)
    reassign_to = TenantPrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, allow_null=True, help_text="Reassign: to this member."
    )

    class Meta:
        model = EscalationStep
        fields = [
            "position",
            "level",
            "target",
            "kind",
            "notify_roles",
            "notify_assignee",
            "raise_to",
            "reassign_to",
        ]
        extra_kwargs = {"position": {"required": False}}


class SLAPolicySerializer(NestedRowsMixin, TenantModelSerializer):
    nested_fields = ("escalation_steps",)
    pause_statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=PAUSABLE_STATUSES),
        required=False,
        default=default_pause_statuses,
        help_text="Work-order statuses in which the clock does not run.",
    )
    escalation_steps = EscalationStepSerializer(
        many=True, required=False, help_text="In order; sending them replaces all the policy's steps."
    )
    calendar_name = serializers.CharField(source="calendar.name", read_only=True)
    work_order_type = ChoiceAsString(
        choices=SLAPolicy.TYPES, allow_blank=True, required=False, help_text="Empty: any type."
    )
    asset_criticality = ChoiceAsString(
        choices=SLAPolicy.CRITICALITIES, allow_blank=True, required=False, help_text="Empty: any asset (or none)."
    )

    class Meta:
        model = SLAPolicy
        fields = [
            "id",
            "name",
            "is_active",
            "priority",
            "work_order_type",
            "asset_criticality",
            "location",
            "calendar",
            "calendar_name",
            "response_minutes",
            "resolution_minutes",
            "warning_percent",
            "pause_statuses",
            "escalation_steps",
            "created_at",
            "updated_at",
        ]


class SLAPolicyViewSet(TenantModelViewSet):
    """SLA configurations (policies): which work orders they cover, response and resolution targets in
    business minutes on a calendar, pause statuses, warning threshold and escalation steps."""

    queryset = SLAPolicy.objects.select_related("organization", "calendar").prefetch_related("escalation_steps")
    serializer_class = SLAPolicySerializer
    filter_backends = [FilterBackend, UpdatedAfterFilter]
    filterset_fields = ["is_active", "priority", "work_order_type", "asset_criticality", "calendar"]
    write_action = Action.MANAGE_SLA

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_policy(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_policy(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_policy(instance, actor=self.request.user)


# --- violations --------------------------------------------------------------------------------------------


class SLAViolationSerializer(serializers.ModelSerializer):
    kind = ChoiceAsString(choices=SLAViolation._meta.get_field("kind").choices, read_only=True)
    work_order_number = serializers.CharField(source="work_order.number", read_only=True)
    policy_name = serializers.CharField(source="policy.name", read_only=True)

    class Meta:
        model = SLAViolation
        fields = [
            "id",
            "work_order",
            "work_order_number",
            "policy",
            "policy_name",
            "kind",
            "level",
            "priority",
            "threshold_at",
            "detected_at",
            "late_seconds",
            "escalations",
        ]
        read_only_fields = fields


class SLAViolationFilter(django_filters.FilterSet):
    policy = django_filters.NumberFilter(field_name="policy_id")
    work_order = django_filters.NumberFilter(field_name="work_order_id")
    detected_after = MomentFilter(field_name="detected_at", lookup_expr="gte", param="detected_after")
    detected_before = MomentFilter(field_name="detected_at", lookup_expr="lt", param="detected_before")

    class Meta:
        model = SLAViolation
        fields = ["kind", "level", "priority", "policy", "work_order", "detected_after", "detected_before"]


class SLAViolationViewSet(TenantReadOnlyViewSet):
    """Warnings and breaches the monitor recorded (append-only), newest first; filter by `kind` (response,
    resolution), `level` (warning, breach), `policy`, `priority`, `work_order` and `detected_after` /
    `detected_before`."""

    queryset = SLAViolation.objects.select_related("work_order", "policy")
    serializer_class = SLAViolationSerializer
    pagination_class = CursorPagination
    filter_backends = [FilterBackend, UpdatedAfterFilter]
    filterset_class = SLAViolationFilter
    write_action = Action.MANAGE_SLA  # no write exists: a permitted write is a 405


# --- performance -------------------------------------------------------------------------------------------


def _date_or_datetime(name: str, raw: str | None):
    if not raw:
        return None
    try:
        day = parse_date(raw.strip())
    except ValueError:  # well-formed but not a day of the calendar, such as 2026-02-30
        raise ValidationError({name: [_("“%(raw)s” is not a date of the calendar.") % {"raw": raw}]}) from None
    return day if day is not None else parse_query_datetime(name, raw)


class TargetFiguresSerializer(serializers.Serializer):
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    compliance_percent = serializers.FloatField(allow_null=True, help_text="Met of met + breached.")
    mean_minutes = serializers.FloatField(allow_null=True, help_text="Business minutes taken, mean.")
    p90_minutes = serializers.FloatField(allow_null=True, help_text="Business minutes taken, 90th percentile.")
    measured = serializers.IntegerField(help_text="How many targets were reached (late or not).")


class FiguresSerializer(serializers.Serializer):
    clocks = serializers.IntegerField()
    response = TargetFiguresSerializer()
    resolution = TargetFiguresSerializer()


class GroupFiguresSerializer(FiguresSerializer):
    key = serializers.JSONField(help_text="Priority, policy id, asset id or period.")
    label = serializers.CharField()


@extend_schema_serializer(many=False)  # the list action answers one object, not a list
class PerformanceSerializer(serializers.Serializer):
    group_by = serializers.CharField()
    interval = serializers.CharField(allow_null=True)
    groups = GroupFiguresSerializer(many=True)
    overall = FiguresSerializer()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["from"], data["to"] = instance["from"], instance["to"]
        return data


class SLAPerformanceViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """SLA compliance and response / resolution times of the clocks started in a period."""

    serializer_class = PerformanceSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"list": Action.VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("group_by", str, enum=list(services.GROUPINGS), description="Default: priority."),
            OpenApiParameter("interval", str, enum=list(services.INTERVALS), description="For group_by=period."),
            OpenApiParameter("from", str, description="Date or date-time (ISO 8601): clocks started from then."),
            OpenApiParameter("to", str, description="Date (included) or date-time (excluded): started before."),
        ],
        responses=PerformanceSerializer,
    )
    def list(self, request, *args, **kwargs):
        params = request.query_params
        result = services.performance(
            self.organization,
            group_by=params.get("group_by") or "priority",
            interval=params.get("interval") or "month",
            start=_date_or_datetime("from", params.get("from")),
            end=_date_or_datetime("to", params.get("to")),
        )
        return Response(PerformanceSerializer(result).data)


router.register("sla/config", SLAPolicyViewSet, basename="sla-policy")
router.register("sla/calendars", BusinessCalendarViewSet, basename="sla-calendar")
router.register("sla/violations", SLAViolationViewSet, basename="sla-violation")
router.register("sla/performance", SLAPerformanceViewSet, basename="sla-performance")
