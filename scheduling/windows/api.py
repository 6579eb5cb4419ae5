"""`/api/v1/maintenance/…`: windows (CRUD, `end`, `cancel`, `fail`, `fit`), the mode, history, metrics and
the calendar feed. Mounted by maintenance_site/api/urls.py:

    path("maintenance/", include("scheduling.windows.api")),

Every write goes through `scheduling.windows.services` with the caller as the actor. During maintenance mode the
`NotInMaintenanceMode` permission refuses writes, except here: leaving the mode (`POST maintenance/mode`)
and ending a window (`POST maintenance/windows/{id}/end`).
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import path, re_path
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from assets.models import Asset
from maintenance_site.api.filters import MomentFilter
from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.serializers import TenantPrimaryKeyRelatedField
from maintenance_site.api.viewsets import TenantAPIMixin, TenantModelViewSet, etag_for
from maintenance_site.errors import InvalidInput, NotFound
from maintenance_site.tenancy.roles import Action
from scheduling.windows import ical, mode, reports, services
from scheduling.windows.models import MaintenanceWindow
from workorders.models import WorkOrder

User = get_user_model()


# --- serializers ------------------------------------------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    """Give the end (`ends_at`) or the length (`duration_minutes`). Scope `system` needs nothing more,
    `location` a location (its sub-locations and assets are included), `assets` a list of asset ids."""

    serializer_related_field = TenantPrimaryKeyRelatedField

    assets = TenantPrimaryKeyRelatedField(many=True, queryset=Asset.objects.all(), required=False)
    starts_at = serializers.DateTimeField(
        help_text="ISO 8601 (without an offset: UTC); within the next ten years, at most a year back."
    )
    ends_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Exclusive; at most 366 days after the start. ISO 8601 (without an offset: UTC).",
    )
    duration_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=services.MAX_DURATION_MINUTES,
        help_text=f"Instead of ends_at: the length in minutes (1 to {services.MAX_DURATION_MINUTES}, 366 days).",
    )
    is_series = serializers.BooleanField(read_only=True)
    created_by_name = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "maintenance_type",
            "title",
            "description",
            "scope",
            "location",
            "assets",
            "starts_at",
            "ends_at",
            "duration_minutes",
            "recurrence",
            "is_series",
            "series",
            "occurrence_start",
            "status",
            "actual_start",
            "actual_end",
            "status_reason",
            "created_by",
            "created_by_name",
            "notify_users",
            "emergency",
            "emergency_reason",
            "overridden_conflicts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "series",
            "occurrence_start",
            "status",
            "actual_start",
            "actual_end",
            "status_reason",
            "created_by",
            "overridden_conflicts",
        ]

    def get_created_by_name(self, obj) -> str | None:
        user = obj.created_by
        return (user.get_full_name() or user.get_username()) if user is not None else None


class WindowReasonInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class MaintenanceModeInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["enter", "exit"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="enter: the expected end, sent to clients as Retry-After."
    )
    scope = serializers.ChoiceField(
        choices=["organization", "platform"], default="organization", help_text="platform: superusers only."
    )


# --- filters ---------------------------------------------------------------------------------------------


class WindowFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=MaintenanceWindow.Status.choices)
    maintenance_type = filters.MultipleChoiceFilter(choices=MaintenanceWindow.Type.choices)
    scope = filters.ChoiceFilter(choices=MaintenanceWindow.Scope.choices)
    series = filters.NumberFilter()
    starts_after = MomentFilter(field_name="starts_at", lookup_expr="gte", param="starts_after")
    starts_before = MomentFilter(field_name="starts_at", lookup_expr="lt", param="starts_before")
    ends_after = MomentFilter(field_name="ends_at", lookup_expr="gt", param="ends_after")

    class Meta:
        model = MaintenanceWindow
        fields = ["status", "maintenance_type", "scope", "series", "location", "emergency"]


# --- views ------------------------------------------------------------------------------------------------


class MaintenanceWindowViewSet(TenantModelViewSet):
    """Maintenance windows, soonest first. Everyone who may see the organisation reads them; managing them
    needs `manage_windows`. A started window cannot be deleted: `end` it or mark it `fail`ed."""

    queryset = (
        MaintenanceWindow.objects.select_related("location", "created_by")
        .prefetch_related("assets")
        .order_by("starts_at", "pk")
    )
    serializer_class = MaintenanceWindowSerializer
    pagination_class = CursorPagination
    filterset_class = WindowFilter
    search_fields = ["title", "description"]
    ordering_fields = ["starts_at", "ends_at", "updated_at", "status"]
    write_action = Action.MANAGE_WINDOWS
    # Allowed while the organisation is in maintenance mode (see scheduling.windows.permissions).
    allowed_during_maintenance_actions = ("end",)

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            mode.lock_organization(self.organization)  # the tick's lock order: mode row, then the window
            return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            mode.lock_organization(self.organization)
            return super().destroy(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.create_window(self.organization, actor=self.request.user, **data))

    def perform_update(self, serializer):
        data = serializer.validated_data
        self.written(serializer, services.update_window(serializer.instance, actor=self.request.user, **data))

    def perform_destroy(self, instance):
        services.delete_window(instance, actor=self.request.user)

    def _done(self, window):
        window = self.get_queryset().get(pk=window.pk)
        return Response(self.get_serializer(window).data, headers={"ETag": etag_for(window)})

    def _reason(self, request) -> str:
        return self.input(WindowReasonInput).get("reason", "")

    @extend_schema(request=WindowReasonInput, responses=MaintenanceWindowSerializer, summary="End a running window now")
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        return self._done(services.end_window(self.get_object(), reason=self._reason(request), actor=request.user))

    @extend_schema(request=WindowReasonInput, responses=MaintenanceWindowSerializer, summary="Cancel a window")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._done(services.cancel_window(self.get_object(), reason=self._reason(request), actor=request.user))

    @extend_schema(request=WindowReasonInput, responses=MaintenanceWindowSerializer, summary="Mark a window failed")
    @action(detail=True, methods=["post"])
    def fail(self, request, pk=None):
        return self._done(services.fail_window(self.get_object(), reason=self._reason(request), actor=request.user))

    @extend_schema(
        parameters=[
            OpenApiParameter("work_order", int, required=True, description="The work order needing downtime."),
            OpenApiParameter("count", int, description="How many windows (1–50, default 5)."),
        ],
        responses=MaintenanceWindowSerializer(many=True),
        summary="The next windows long enough for a work order",
    )
    @action(detail=False, methods=["get"])
    def fit(self, request):
        try:
            work_order_id = int(request.query_params.get("work_order", ""))
            count = int(request.query_params.get("count", 5))
        except ValueError:
            raise InvalidInput(
                _("Give the work order's id (?work_order=12) and optionally how many windows (?count=5)."),
                fields={"work_order": [_("A whole number.")]},
            ) from None
        if not 1 <= count <= 50:
            raise InvalidInput(_("Ask for 1 to 50 windows."), fields={"count": [_("From 1 to 50.")]})
        work_order = (
            WorkOrder.objects.for_tenant(self.organization)
            .select_related("asset__location", "location")
            .filter(pk=work_order_id)
            .first()
        )
        if work_order is None:
            raise NotFound(_("No work order with id %(id)s.") % {"id": work_order_id})
        found = reports.windows_that_fit(work_order, count=count)
        queryset = self.get_queryset().filter(pk__in=[window.pk for window in found])
        return Response(self.get_serializer(queryset, many=True).data)


class MaintenanceModeView(TenantAPIMixin, APIView):
    """GET: whether the organisation is in maintenance mode, why and until when. POST `{"action": "enter",
    "reason": "…", "until": "…"}` or `{"action": "exit"}` switches the manual mode (`manage_windows`;
    `"scope": "platform"` for superusers). Works during maintenance mode, so the mode can be left."""

    write_action = Action.MANAGE_WINDOWS
    allowed_during_maintenance = True

    @extend_schema(responses={200: dict}, summary="Maintenance mode of the organisation")
    def get(self, request):
        return Response(self._state())

    @extend_schema(request=MaintenanceModeInput, responses={200: dict}, summary="Enter or leave maintenance mode")
    def post(self, request):
        data = MaintenanceModeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        organization = None if values["scope"] == "platform" else self.organization
        if values["action"] == "enter":
            mode.enter_maintenance_mode(
                organization, reason=values.get("reason", ""), until=values.get("until"), actor=request.user
            )
        else:
            mode.exit_maintenance_mode(organization, reason=values.get("reason", ""), actor=request.user)
        return Response(self._state())

    def _state(self) -> dict:
        return mode.mode_body(self.organization)


class MaintenanceHistoryView(TenantAPIMixin, generics.ListAPIView):
    """Finished windows (completed or failed), the latest first; kept up to MAINTENANCE_MAX_HISTORY."""

    serializer_class = MaintenanceWindowSerializer
    queryset = MaintenanceWindow.objects.none()  # for the schema; the rows come from get_queryset
    write_action = Action.MANAGE_WINDOWS

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return (
            MaintenanceWindow.objects.for_tenant(self.organization)
            .occurrences()
            .finished()
            .select_related("location", "created_by")
            .prefetch_related("assets")
            .order_by("-ends_at", "-pk")
        )


class MaintenanceMetricsView(TenantAPIMixin, APIView):
    """Windows scheduled, durations, actual versus scheduled start and end, distribution by type."""

    write_action = Action.MANAGE_WINDOWS

    @extend_schema(responses={200: dict}, summary="Maintenance window metrics")
    def get(self, request):
        return Response(reports.window_metrics(self.organization))


class CalendarFeedStatus(serializers.Serializer):
    exists = serializers.BooleanField(help_text="Whether the organisation has a feed address.")
    url = serializers.URLField(allow_null=True, help_text="The secret address of the .ics feed; null: none yet.")
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True, help_text="When the address was last replaced.")
    how = serializers.CharField(help_text="How to create or replace the address.")


class CalendarFeedView(TenantAPIMixin, APIView):
    """The secret address of the organisation's iCalendar feed of upcoming windows. GET says whether there is one
    (and its address); it never creates one. POST (`manage_windows`) creates it, or replaces it: every copy of
    the old address stops working."""

    write_action = Action.MANAGE_WINDOWS

    @extend_schema(responses={200: CalendarFeedStatus}, summary="Whether the calendar feed exists, and its address")
    def get(self, request):
        return Response(self._body(services.current_feed_token(self.organization)))

    @extend_schema(
        request=None,
        responses={201: CalendarFeedStatus, 200: CalendarFeedStatus},
        summary="Create the calendar feed's address, or replace it (201 created, 200 replaced)",
    )
    def post(self, request):
        token, created = services.issue_feed_token(self.organization, actor=request.user)
        return Response(self._body(token), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _body(self, token) -> dict:
        if token is None:
            return {
                "exists": False,
                "url": None,
                "created_at": None,
                "updated_at": None,
                "how": "No feed address yet: a manager creates one with POST to this address.",
            }
        url = reverse("maintenance-calendar-feed", kwargs={"token": token.token}, request=self.request)
        return {
            "exists": True,
            "url": url,
            "created_at": token.created_at,
            "updated_at": token.updated_at,
            "how": "POST to this address (managers) replaces it: every copy of the old address stops working.",
        }


router = SimpleRouter()
router.trailing_slash = "/?"
router.register("windows", MaintenanceWindowViewSet, basename="maintenance-window")

urlpatterns = [
    re_path(r"^mode/?$", MaintenanceModeView.as_view(), name="maintenance-mode"),
    re_path(r"^history/?$", MaintenanceHistoryView.as_view(), name="maintenance-history"),
    re_path(r"^metrics/?$", MaintenanceMetricsView.as_view(), name="maintenance-metrics"),
    re_path(r"^calendar/?$", CalendarFeedView.as_view(), name="maintenance-calendar"),
    path("calendar/<str:token>.ics", ical.feed, name="maintenance-calendar-feed"),
    *router.urls,
]
