"""REST API of the maintenance scenarios (list, activate, deactivate, stop-all, preset create / import /
export, windows, the activity log and the runs).

Scenarios are platform-wide: one organisation's manager switching them would act for every tenant, so
the role table's ACTIVATE_SCENARIOS is not enough here. Every endpoint is for platform administrators
(active superusers) only; API keys (which belong to one organisation) are refused.

    GET  /api/v1/scenarios                    POST /api/v1/scenarios/{key}/activate   {duration_minutes|until, reason}
    GET  /api/v1/scenarios/{key}              POST /api/v1/scenarios/{key}/deactivate {reason}
    POST /api/v1/scenarios/{key}/run          POST /api/v1/scenarios/stop-all         {reason}
    GET  /api/v1/presets                      POST /api/v1/presets/{key}/apply        {reason, duration_minutes|until}
    POST /api/v1/presets  {key, name, description, replace}   (saves the current state)
    POST /api/v1/presets/import  {preset JSON}                GET /api/v1/presets/{key}/export
    DELETE /api/v1/presets/{key}
    GET|POST /api/v1/preset-schedules  {preset, cron, duration, time_zone}   DELETE /api/v1/preset-schedules/{id}
    GET  /api/v1/scenario-activity?action=&result=&scenario=&q=
    GET  /api/v1/scenario-runs?scenario=&status=              POST /api/v1/scenario-runs/{id}/cancel
"""

from django.db.models import Q
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import InputMixin
from maintenance_site.tenancy.models import OrganizationAPIKey
from scenarios import metrics, rollback, services
from scenarios import presets as preset_services
from scenarios.models import Category, Preset, PresetSchedule, Scenario, ScenarioActivity, ScenarioRun, Weight
from scenarios.priority import analyze_priority

VIA = ScenarioActivity.Via.API
KEY_REGEX = r"[a-z0-9][a-z0-9-]*"


class IsPlatformAdministrator(BasePermission):
    message = gettext_lazy(
        "Maintenance scenarios are platform-wide: only platform administrators (superusers) may see and manage them."
    )

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if isinstance(request.auth, OrganizationAPIKey):
            return False  # a key belongs to one organisation
        return bool(user.is_active and user.is_superuser)


# --- serializers ----------------------------------------------------------------------------------------


def _choices(choices) -> serializers.CharField:
    """A read-only choice as a plain string: its values in the description, no shared enum component (the
    generic names "status" or "kind" would collide with other apps' enums in the OpenAPI schema)."""
    return serializers.CharField(read_only=True, help_text="One of: " + ", ".join(choices.values) + ".")


class ScenarioSerializer(serializers.ModelSerializer):
    kind = _choices(Scenario.Kind)
    category = _choices(Category)
    weight = _choices(Weight)
    state = _choices(Scenario.State)
    conflicts = serializers.SerializerMethodField()
    activated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    present = serializers.BooleanField(source="is_present", read_only=True)
    depends_on = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)
    schedule = serializers.SerializerMethodField()
    external = serializers.SerializerMethodField()
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = Scenario
        fields = [
            "key",
            "name",
            "description",
            "kind",
            "category",
            "tags",
            "weight",
            "conflicts",
            "present",
            "state",
            "active_since",
            "active_until",
            "activated_by",
            "activation_reason",
            "schedule",
            "external",
            "last_error",
            "last_error_at",
            "last_run",
            "updated_at",
            # task settings (the automated-task runner)
            "executor",
            "config",
            "priority",
            "timeout_seconds",
            "max_retries",
            "allowed_hours",
            "allowed_weekdays",
            "cooldown_minutes",
            "impact_code_quality",
            "impact_security",
            "impact_performance",
            "impact_maintainability",
            "impact_user_experience",
            "estimated_minutes",
            "complexity",
            "risk",
            "depends_on",
        ]
        read_only_fields = fields

    def get_conflicts(self, scenario) -> list[str]:
        return sorted(other.key for other in scenario.conflicts.all())

    def get_schedule(self, scenario) -> dict:
        return {
            "interval_seconds": scenario.interval_seconds,
            "cron": scenario.cron or None,
            "time_zone": scenario.time_zone,
            "description": scenario.schedule_display,
        }

    def get_external(self, scenario) -> dict | None:
        if scenario.kind != Scenario.Kind.EXTERNAL:
            return None
        return {
            "source": scenario.source_path,
            "status_url": scenario.status_url,
            "health": scenario.remote_health or None,
            "maintenance_state": scenario.remote_state or None,
            "can_toggle": scenario.can_toggle,
            "last_polled_at": services.iso(scenario.last_polled_at),
        }

    def get_last_run(self, scenario) -> dict | None:
        if not scenario.last_run_at:
            return None
        return {
            "at": services.iso(scenario.last_run_at),
            "status": scenario.last_run_status,
            "summary": scenario.last_run_summary,
        }


class TimerSerializer(serializers.Serializer):
    """The body of activate and apply: an optional timer and a reason."""

    duration_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    until = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    def validate(self, attrs):
        if attrs.get("duration_minutes") is not None and attrs.get("until") is not None:
            raise serializers.ValidationError({"until": [gettext("Give either an end time or a duration, not both.")]})
        return attrs


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class RunSerializer(serializers.ModelSerializer):
    scenario = serializers.SlugRelatedField(slug_field="key", read_only=True)
    status = _choices(ScenarioRun.Status)
    trigger = _choices(ScenarioRun.Trigger)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ScenarioRun
        fields = [
            "id",
            "scenario",
            "slot",
            "trigger",
            "status",
            "requested_by",
            "attempt",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "worker",
            "cancel_requested_at",
            "summary",
            "changed",
            "issues_fixed",
            "result",
            "not_before",
            "deadline_at",
            "retry_of",
            "rolled_back_at",
            "rollback_reason",
        ]
        read_only_fields = fields


class RollbackSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=400)
    force = serializers.BooleanField(default=False, help_text="Even over records changed after the run.")


class DaysSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=3650, default=30)


class RunDetailSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "output", "error"]
        read_only_fields = fields


class PresetSerializer(serializers.ModelSerializer):
    scenarios = serializers.SerializerMethodField()

    class Meta:
        model = Preset
        fields = ["key", "name", "description", "scenarios", "includes_all", "builtin", "created_at", "updated_at"]
        read_only_fields = fields

    def get_scenarios(self, preset) -> list[str]:
        return preset_services.preset_keys(preset, self.context.get("scenarios"))


class PresetCreateSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=80)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    replace = serializers.BooleanField(required=False, default=False)


class PresetScheduleSerializer(serializers.ModelSerializer):
    preset = serializers.SlugRelatedField(slug_field="key", read_only=True)
    next_start = serializers.SerializerMethodField()

    class Meta:
        model = PresetSchedule
        fields = [
            "id",
            "preset",
            "cron",
            "duration_minutes",
            "time_zone",
            "enabled",
            "next_start",
            "window_start",
            "window_end",
            "last_occurrence",
            "last_result",
            "created_at",
        ]
        read_only_fields = fields

    def get_next_start(self, schedule) -> str | None:
        return services.iso(preset_services.next_occurrence(schedule)) if schedule.enabled else None


class PresetScheduleCreateSerializer(serializers.Serializer):
    preset = serializers.CharField(max_length=80)
    cron = serializers.CharField(max_length=120)
    duration = serializers.CharField(max_length=20, help_text="Minutes (120) or hours and minutes (2h, 1h30m).")
    time_zone = serializers.CharField(max_length=64, required=False, default="UTC")


class ActivitySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    via = _choices(ScenarioActivity.Via)
    action = _choices(ScenarioActivity.Action)
    result = _choices(ScenarioActivity.Result)
    scenario = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = ScenarioActivity
        fields = ["id", "at", "actor", "via", "action", "scenario", "subject", "reason", "result", "message", "details"]
        read_only_fields = fields


# --- views ----------------------------------------------------------------------------------------------


class PlatformViewSet(InputMixin, viewsets.GenericViewSet):
    permission_classes = [IsPlatformAdministrator]

    def actor(self):
        return self.request.user


class ScenarioViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PlatformViewSet):
    """The platform's maintenance scenarios and their state."""

    queryset = (
        Scenario.objects.select_related("activated_by").prefetch_related("conflicts", "depends_on").order_by("key")
    )
    serializer_class = ScenarioSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    filterset_fields = ["state", "kind", "category", "weight"]
    search_fields = ["key", "name", "description"]
    ordering_fields = ["key", "category", "state", "active_since"]

    def _fresh(self, key):
        return ScenarioSerializer(self.get_queryset().get(key=key)).data

    @extend_schema(summary="A task's priority score, term by term, with the inputs of each")
    @action(detail=True, methods=["get"])
    def priority(self, request, key=None):
        return Response(analyze_priority(self.get_object()))

    @extend_schema(parameters=[DaysSerializer], summary="A task's success rate, duration and trend")
    @action(detail=True, methods=["get"], url_path="metrics")
    def task_metrics(self, request, key=None):
        query = DaysSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(metrics.task_metrics(self.get_object(), query.validated_data["days"]))

    @extend_schema(request=TimerSerializer, responses=ScenarioSerializer, summary="Activate a scenario")
    @action(detail=True, methods=["post"])
    def activate(self, request, key=None):
        scenario = self.get_object()
        data = self.input(TimerSerializer)
        services.activate_scenario(
            scenario,
            actor=self.actor(),
            via=VIA,
            until=data.get("until"),
            duration_minutes=data.get("duration_minutes"),
            reason=data["reason"],
        )
        return Response(self._fresh(scenario.key))

    @extend_schema(request=ReasonSerializer, responses=ScenarioSerializer, summary="Deactivate a scenario")
    @action(detail=True, methods=["post"])
    def deactivate(self, request, key=None):
        scenario = self.get_object()
        data = self.input(ReasonSerializer)
        services.deactivate_scenario(scenario, actor=self.actor(), via=VIA, reason=data["reason"])
        return Response(self._fresh(scenario.key))

    @extend_schema(request=ReasonSerializer, responses={202: RunSerializer}, summary="Run a scenario now")
    @action(detail=True, methods=["post"])
    def run(self, request, key=None):
        scenario = self.get_object()
        data = self.input(ReasonSerializer)
        run = services.request_run(scenario, actor=self.actor(), via=VIA, reason=data["reason"])
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReasonSerializer, responses={200: dict}, summary="Emergency stop: every scenario off")
    @action(detail=False, methods=["post"], url_path="stop-all")
    def stop_all(self, request):
        data = self.input(ReasonSerializer)
        return Response(services.stop_all(actor=self.actor(), via=VIA, reason=data["reason"]))


class PresetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, PlatformViewSet):
    """Presets: built-in and saved sets of scenarios, applied in one transaction."""

    queryset = Preset.objects.order_by("-builtin", "key")
    serializer_class = PresetSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["scenarios"] = {s.key: s for s in Scenario.objects.all()}
        return context

    @extend_schema(
        request=PresetCreateSerializer, responses={201: PresetSerializer}, summary="Save the current state as a preset"
    )
    def create(self, request):
        data = self.input(PresetCreateSerializer)
        preset = preset_services.save_preset(
            data["key"],
            name=data["name"],
            description=data["description"],
            actor=self.actor(),
            via=VIA,
            replace=data["replace"],
        )
        return Response(self.get_serializer(preset).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        preset_services.delete_preset(instance, actor=self.actor(), via=VIA)

    @extend_schema(request=TimerSerializer, responses={200: dict}, summary="Apply a preset (all or nothing)")
    @action(detail=True, methods=["post"])
    def apply(self, request, key=None):
        preset = self.get_object()
        data = self.input(TimerSerializer)
        changes = preset_services.apply_preset(
            preset,
            actor=self.actor(),
            via=VIA,
            reason=data["reason"],
            until=data.get("until"),
            duration_minutes=data.get("duration_minutes"),
        )
        return Response({"preset": preset.key, **changes, "status": services.scenarios_status()})

    @extend_schema(responses={200: dict}, summary="Export a preset as JSON")
    @action(detail=True, methods=["get"])
    def export(self, request, key=None):
        return Response(preset_services.export_preset(self.get_object()))

    @extend_schema(request=dict, responses={201: PresetSerializer}, summary="Import a preset from its JSON export")
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_(self, request):
        document = request.data
        replace = str(request.query_params.get("replace", "")).lower() in ("1", "true", "yes")
        preset = preset_services.import_preset(
            dict(document) if hasattr(document, "keys") else document, actor=self.actor(), via=VIA, replace=replace
        )
        return Response(self.get_serializer(preset).data, status=status.HTTP_201_CREATED)


class PresetScheduleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, PlatformViewSet
):
    """Preset windows: a preset applied at cron times for a duration, the state before restored after."""

    queryset = PresetSchedule.objects.select_related("preset").order_by("id")
    serializer_class = PresetScheduleSerializer

    @extend_schema(
        request=PresetScheduleCreateSerializer,
        responses={201: PresetScheduleSerializer},
        summary="Schedule a preset window",
    )
    def create(self, request):
        data = self.input(PresetScheduleCreateSerializer)
        schedule = preset_services.create_schedule(
            data["preset"],
            cron=data["cron"],
            duration=data["duration"],
            time_zone=data["time_zone"],
            actor=self.actor(),
            via=VIA,
        )
        return Response(self.get_serializer(schedule).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        preset_services.delete_schedule(instance, actor=self.actor(), via=VIA)


class ActivityViewSet(mixins.ListModelMixin, PlatformViewSet):
    """The activity log: who did what, when, why, and how it ended. `?q=` searches subject and message."""

    queryset = ScenarioActivity.objects.select_related("actor", "scenario").order_by("-at", "-id")
    serializer_class = ActivitySerializer
    filterset_fields = ["action", "result", "via"]

    def get_queryset(self):
        queryset = super().get_queryset()
        params = self.request.query_params
        if params.get("scenario"):
            queryset = queryset.filter(Q(scenario__key=params["scenario"]) | Q(subject=params["scenario"]))
        if params.get("q"):
            term = params["q"]
            queryset = queryset.filter(Q(subject__icontains=term) | Q(message__icontains=term) | Q(action=term))
        return queryset


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PlatformViewSet):
    """Scenario runs, newest first."""

    queryset = ScenarioRun.objects.select_related("scenario", "requested_by").order_by("-slot", "-id")
    serializer_class = RunSerializer
    filterset_fields = ["status", "trigger"]

    def get_serializer_class(self):
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.query_params.get("scenario"):
            queryset = queryset.filter(scenario__key=self.request.query_params["scenario"])
        return queryset

    @extend_schema(parameters=[DaysSerializer], summary="Success rate, duration, trend per task")
    @action(detail=False, methods=["get"])
    def metrics(self, request):
        query = DaysSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(metrics.all_metrics(query.validated_data["days"]))

    @extend_schema(responses=RunSerializer(many=True), summary="Runs that offer a rollback point")
    @action(detail=False, methods=["get"])
    def rollbacks(self, request):
        return Response(RunSerializer(rollback.points(), many=True).data)

    @extend_schema(request=RollbackSerializer, summary="Roll back what a run changed")
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        run = self.get_object()
        data = self.input(RollbackSerializer)
        return Response(rollback.rollback(run, data["reason"], force=data["force"], actor=self.actor(), via=VIA))

    @extend_schema(request=ReasonSerializer, responses=RunSerializer, summary="Cancel a run")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        data = self.input(ReasonSerializer)
        run = services.cancel_run(run, actor=self.actor(), via=VIA, reason=data["reason"])
        return Response(RunSerializer(run).data)


router.register("scenarios", ScenarioViewSet, basename="scenario")
router.register("presets", PresetViewSet, basename="preset")
router.register("preset-schedules", PresetScheduleViewSet, basename="preset-schedule")
router.register("scenario-activity", ActivityViewSet, basename="scenario-activity")
router.register("scenario-runs", RunViewSet, basename="scenario-run")
