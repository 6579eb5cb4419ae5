"""`/api/v1/preventive-maintenance/…`: schedules (CRUD, `{id}/generate`, `{id}/pause`, `{id}/resume`,
`{id}/occurrences`, `{id}/forecast`), `statistics`, `forecast`, `occurrences` and `calendar-feeds` (the secret
.ics URLs). Reading needs `view`; everything else `manage_schedules`. A bad cron expression, RRULE or interval
is a 400 saying, next to the field, what is wrong with it."""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from assets.models import Asset
from inventory.models import Part, StockLocation
from maintenance_site.api.filters import parse_query_datetime
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.serializers import TenantModelSerializer, TenantPrimaryKeyRelatedField
from maintenance_site.api.viewsets import TenantAPIMixin, TenantGenericViewSet, TenantModelViewSet
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import REASON_MAX_LENGTH
from scheduling.preventive import reports, services
from scheduling.preventive.ical import feed_url
from scheduling.preventive.models import CalendarFeed, PreventiveOccurrence, PreventiveSchedule, ScheduleTemplatePart

PREFIX = "preventive-maintenance"


class TemplatePartSerializer(serializers.ModelSerializer):
    part = TenantPrimaryKeyRelatedField(queryset=Part.objects.all())
    stock_location = TenantPrimaryKeyRelatedField(queryset=StockLocation.objects.all())
    sku = serializers.CharField(source="part.sku", read_only=True)

    class Meta:
        model = ScheduleTemplatePart
        fields = ["part", "sku", "stock_location", "quantity"]


class ScheduleSerializer(TenantModelSerializer):
    parts = TemplatePartSerializer(many=True, required=False, source="template_parts")
    trigger_summary = serializers.SerializerMethodField()

    class Meta:
        model = PreventiveSchedule
        fields = [
            "id",
            "name",
            "description",
            "status",
            "paused_at",
            "pause_reason",
            "coverage",
            "asset",
            "asset_type",
            "location",
            "trigger",
            "cron_expression",
            "rrule",
            "interval_count",
            "interval_unit",
            "time_of_day",
            "meter_name",
            "meter_mode",
            "meter_interval",
            "meter_threshold",
            "cooldown_minutes",
            "trigger_summary",
            "mode",
            "lead_days",
            "skip_if_open",
            "misfire_policy",
            "misfire_cap",
            "start_date",
            "end_date",
            "title",
            "instructions",
            "priority",
            "work_type",
            "procedure",
            "estimated_minutes",
            "plan_start",
            "assignee",
            "team",
            "parts",
            "next_due_at",
            "last_run_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "paused_at", "pause_reason", "next_due_at", "last_run_at"]
        extra_kwargs = {"start_date": {"required": False}}

    def get_trigger_summary(self, schedule) -> str:
        return reports.trigger_summary(schedule)

    def validate(self, attrs):
        parts = attrs.pop("template_parts", None)
        if self.instance is None and "start_date" not in attrs:
            organization = self.context["organization"]
            attrs["start_date"] = timezone.localdate(timezone.now(), organization.zone)
        attrs = super().validate(attrs)
        if parts is not None:
            attrs["parts"] = parts
        return attrs


class ScheduleDetailSerializer(ScheduleSerializer):
    next_due_dates = serializers.SerializerMethodField()

    class Meta(ScheduleSerializer.Meta):
        fields = [*ScheduleSerializer.Meta.fields, "next_due_dates"]

    def get_next_due_dates(self, schedule) -> list[datetime]:
        return reports.next_due_dates(schedule, 5)


class OccurrenceSerializer(serializers.ModelSerializer):
    work_order_number = serializers.CharField(source="work_order.number", read_only=True, default=None)
    work_order_status = serializers.CharField(source="work_order.status", read_only=True, default=None)

    class Meta:
        model = PreventiveOccurrence
        fields = [
            "id",
            "schedule",
            "asset",
            "due_at",
            "status",
            "skip_reason",
            "note",
            "missed_count",
            "meter_value",
            "work_order",
            "work_order_number",
            "work_order_status",
            "created_at",
        ]


class GenerateInput(serializers.Serializer):
    days_ahead = serializers.IntegerField(
        min_value=0,
        max_value=services.MAX_DAYS_AHEAD,
        default=0,
        help_text="Also create what falls due within this many days (plus the schedule's lead time).",
    )


class GenerationHorizon(serializers.Serializer):
    days_ahead = serializers.IntegerField()
    until = serializers.DateTimeField(help_text="What the schedule would create by this moment was created now.")
    due_until = serializers.DateTimeField(help_text="`until` plus the lead time: occurrences due by then were covered.")


class DeferredOccurrence(serializers.Serializer):
    schedule = serializers.IntegerField()
    asset = serializers.IntegerField(allow_null=True)
    due_at = serializers.DateTimeField()
    reason = serializers.CharField()


class GenerateResult(serializers.Serializer):
    created = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Occurrences recorded as skipped (misfire, or an order still open).")
    work_orders = serializers.ListField(child=serializers.IntegerField())
    as_of = serializers.DateTimeField()
    horizon = GenerationHorizon()
    already_generated = serializers.IntegerField(help_text="Occurrences in the horizon generated before.")
    deferred = DeferredOccurrence(
        many=True, help_text="Occurrences in the horizon left until they fall due (skip if open), with the reason."
    )
    message = serializers.CharField(help_text="What was covered and, when fewer orders were made, why.")


class PauseInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH, default="")


def _int_param(request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(
            _("“%(raw)s” is not a whole number.") % {"raw": raw}, fields={name: [_("A whole number.")]}
        ) from None


def _moment_param(request, name: str) -> datetime | None:
    """An ISO 8601 moment from the query string, in UTC; a moment outside the calendar once in UTC (year 9999 west
    of it, year 1 east of it) is a 400 naming the parameter, like a malformed one."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_query_datetime(name, raw).astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(
            _("“%(raw)s” is not a moment in the calendar; write e.g. 2026-01-31T12:00:00Z.") % {"raw": raw},
            fields={name: [_("Out of range.")]},
        ) from None


DAYS = OpenApiParameter("days", int, description="How many days ahead (1–366, default 30).")


class ScheduleViewSet(TenantModelViewSet):
    """Preventive schedules. Writes call `scheduling.preventive.services` with the caller as the actor."""

    queryset = PreventiveSchedule.objects.select_related("organization", "asset").prefetch_related(
        "template_parts__part"
    )
    serializer_class = ScheduleSerializer
    pagination_class = CursorPagination
    write_action = Action.MANAGE_SCHEDULES
    action_permissions = {
        "generate": Action.MANAGE_SCHEDULES,
        "pause": Action.MANAGE_SCHEDULES,
        "resume": Action.MANAGE_SCHEDULES,
    }
    filterset_fields = ["status", "trigger", "coverage", "asset", "asset_type", "location", "mode"]
    search_fields = ["name", "title"]
    ordering_fields = ["name", "next_due_at", "updated_at"]

    def get_serializer_class(self):
        return ScheduleDetailSerializer if self.action == "retrieve" else ScheduleSerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_schedule(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_schedule(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_schedule(instance, actor=self.request.user)

    def _schedule_response(self, schedule, status_code=200):
        schedule = self.get_queryset().get(pk=schedule.pk)
        self._written_instance = schedule
        return Response(
            ScheduleDetailSerializer(schedule, context=self.get_serializer_context()).data, status=status_code
        )

    @extend_schema(request=GenerateInput, responses=GenerateResult)
    @action(detail=True, methods=["post"])
    def generate(self, request, pk=None):
        """Create now what is due (or due within `days_ahead` days); nothing twice."""
        schedule = self.get_object()
        days_ahead = self.input(GenerateInput)["days_ahead"]
        result = services.generate_now(schedule, actor=request.user, days_ahead=days_ahead)
        return Response(GenerateResult(result.as_dict()).data)

    @extend_schema(request=PauseInput, responses=ScheduleDetailSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        schedule = self.get_object()
        return self._schedule_response(services.pause_schedule(schedule, actor=request.user, **self.input(PauseInput)))

    @extend_schema(request=None, responses=ScheduleDetailSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._schedule_response(services.resume_schedule(self.get_object(), actor=request.user))

    @extend_schema(responses=OccurrenceSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def occurrences(self, request, pk=None):
        """What the schedule generated and skipped, newest first (paginated)."""
        queryset = PreventiveOccurrence.objects.filter(schedule=self.get_object()).select_related("work_order")
        page = self.paginate_queryset(queryset.order_by("-due_at", "-pk"))
        return self.get_paginated_response(OccurrenceSerializer(page, many=True).data)

    @extend_schema(parameters=[DAYS], responses=dict)
    @action(detail=True, methods=["get"])
    def forecast(self, request, pk=None):
        """This schedule's occurrences over the next `days` days, with the parts they need."""
        schedule = self.get_object()
        days = _int_param(request, "days", 30)
        return Response(reports.forecast(self.organization, days=days, schedule=schedule))


class OccurrenceViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """Every generated or skipped occurrence of the organisation (filter by schedule, asset, status)."""

    queryset = PreventiveOccurrence.objects.select_related("work_order")
    serializer_class = OccurrenceSerializer
    pagination_class = CursorPagination
    filterset_fields = ["schedule", "asset", "status", "skip_reason"]
    ordering_fields = ["due_at", "created_at"]
    ordering = ["-due_at", "-id"]


class _ReportViewSet(TenantAPIMixin, viewsets.ViewSet):
    """A report: GET only, for every member who may view."""

    def get_queryset(self):  # for the schema and the permission class
        return PreventiveSchedule.objects.none()


class StatisticsViewSet(_ReportViewSet):
    @extend_schema(
        parameters=[
            OpenApiParameter("start", datetime, description="From (ISO 8601; default 90 days before `end`)."),
            OpenApiParameter("end", datetime, description="Until, exclusive (ISO 8601; default now)."),
            OpenApiParameter("group_by", str, enum=list(reports.GROUPS), description="period, schedule or asset."),
            OpenApiParameter("period", str, enum=list(reports.PERIODS), description="day, week or month."),
            OpenApiParameter("schedule", int),
            OpenApiParameter("asset", int),
        ],
        responses=dict,
    )
    def list(self, request):
        """Generated, completed on time, completed late, overdue, skipped, and PM compliance (%)."""
        params = request.query_params
        start = _moment_param(request, "start")
        end = _moment_param(request, "end")
        schedule = asset = None
        if params.get("schedule"):
            schedule = (
                PreventiveSchedule.objects.for_tenant(self.organization)
                .filter(pk=_int_param(request, "schedule", 0))
                .first()
            )
            if schedule is None:
                raise InvalidInput(_("No such schedule."), fields={"schedule": [_("No such schedule.")]})
        if params.get("asset"):
            asset = Asset.objects.for_tenant(self.organization).filter(pk=_int_param(request, "asset", 0)).first()
            if asset is None:
                raise InvalidInput(_("No such asset."), fields={"asset": [_("No such asset.")]})
        return Response(
            reports.statistics(
                self.organization,
                start=start,
                end=end,
                group_by=params.get("group_by", "period"),
                period=params.get("period", "month"),
                schedule=schedule,
                asset=asset,
            )
        )


class ForecastViewSet(_ReportViewSet):
    @extend_schema(parameters=[DAYS], responses=dict)
    def list(self, request):
        """The organisation's preventive work over the next `days` days, with the parts it will need."""
        return Response(reports.forecast(self.organization, days=_int_param(request, "days", 30)))


class CalendarFeedSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalendarFeed
        fields = ["id", "name", "token_prefix", "created_by", "created_at", "revoked_at", "last_used_at"]
        read_only_fields = ["token_prefix", "created_by", "created_at", "revoked_at", "last_used_at"]


class CalendarFeedViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """Secret .ics URLs of upcoming preventive work. The URL is shown once, when the feed is created."""

    queryset = CalendarFeed.objects.all()
    serializer_class = CalendarFeedSerializer
    write_action = Action.MANAGE_SCHEDULES
    # The feeds are managed by who manages schedules: listing them and reading one alike (the permission matrix).
    action_permissions = {
        "list": Action.MANAGE_SCHEDULES,
        "retrieve": Action.MANAGE_SCHEDULES,
        "revoke": Action.MANAGE_SCHEDULES,
    }

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feed, token = services.create_calendar_feed(
            self.organization, name=serializer.validated_data["name"], actor=request.user
        )
        body = {**CalendarFeedSerializer(feed).data, "url": feed_url(request, token)}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CalendarFeedSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        feed = services.revoke_calendar_feed(self.get_object(), actor=request.user)
        return Response(CalendarFeedSerializer(feed).data)


router.register(f"{PREFIX}/schedules", ScheduleViewSet, basename="preventive-schedule")
router.register(f"{PREFIX}/occurrences", OccurrenceViewSet, basename="preventive-occurrence")
router.register(f"{PREFIX}/statistics", StatisticsViewSet, basename="preventive-statistics")
router.register(f"{PREFIX}/forecast", ForecastViewSet, basename="preventive-forecast")
router.register(f"{PREFIX}/calendar-feeds", CalendarFeedViewSet, basename="preventive-calendar-feed-token")
