"""`/api/v1/reports/` (the archive, and asking for a report) and `/api/v1/report-schedules/` (scheduled e-mails).

    GET     reports/                  the archive, newest first (?kind=, ?status=); audit reports for managers only
    POST    reports/                  ask for a report: {kind, format, from, to, location, user, model, object} → 202,
                                      generated in the background; poll GET reports/{id}/ (status, progress)
    GET     reports/{id}/             one report: parameters, who asked, status, progress, checksum, links
    GET     reports/{id}/file/        its file (?variant=csv: the CSV of an audit over the PDF limit)
    GET/POST             report-schedules/        schedules (managers: manage_settings)
    GET/PATCH/DELETE     report-schedules/{id}/

Another organisation's report or file is a 404, like a missing one; so is an audit report to a non-manager.
"""

from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError

from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantGenericViewSet, TenantModelViewSet
from maintenance_site.reports import services
from maintenance_site.reports.models import Format, GeneratedReport, ReportSchedule
from maintenance_site.reports.registry import KINDS
from maintenance_site.tenancy.roles import Action

LARGEST_ID = 2**63 - 1
CONTENT_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


class _FromTo:
    """`from` and `to` are Python keywords: the two fields are added by name."""

    def get_fields(self):
        fields = super().get_fields()
        read_only = getattr(self, "period_read_only", False)
        fields["from"] = serializers.DateField(
            source="first_day", required=False, read_only=read_only, help_text="First day (local), YYYY-MM-DD."
        )
        fields["to"] = serializers.DateField(
            source="last_day", required=False, read_only=read_only, help_text="Last day (local), included."
        )
        return fields


class ReportRequestSerializer(_FromTo, serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KINDS), help_text="status, performance, quality or audit.")
    format = serializers.ChoiceField(choices=Format.choices, default=Format.PDF)
    location = serializers.IntegerField(
        required=False, min_value=1, max_value=LARGEST_ID, help_text="A location: the report of its subtree."
    )
    user = serializers.IntegerField(
        required=False, min_value=1, max_value=LARGEST_ID, help_text="Audit: changes by this user only."
    )
    model = serializers.CharField(required=False, max_length=100, help_text="Audit: app_label.model.")
    object = serializers.IntegerField(
        required=False, min_value=1, max_value=LARGEST_ID, help_text="Audit: this object of the model only."
    )


class GeneratedReportSerializer(_FromTo, serializers.ModelSerializer):
    period_read_only = True
    location = serializers.IntegerField(source="location_id", read_only=True, allow_null=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True, default=None)
    file = serializers.SerializerMethodField(help_text="Where to download the file, once done.")
    csv_file = serializers.SerializerMethodField(help_text="An audit over the PDF limit: its CSV.")
    page = serializers.SerializerMethodField(help_text="The report's page in the back office.")

    class Meta:
        model = GeneratedReport
        fields = [
            "id",
            "kind",
            "format",
            "location",
            "options",
            "status",
            "progress",
            "requested_by",
            "schedule",
            "checksum",
            "size",
            "rows",
            "definitions_version",
            "error",
            "file",
            "csv_file",
            "page",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_file(self, obj) -> str | None:
        return self._absolute(f"/api/v1/reports/{obj.pk}/file/") if obj.file else None

    def get_csv_file(self, obj) -> str | None:
        return self._absolute(f"/api/v1/reports/{obj.pk}/file/?variant=csv") if obj.csv_file else None

    def get_page(self, obj) -> str:
        return self._absolute(services.report_url(obj))


class ReportViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    queryset = GeneratedReport.objects.select_related("requested_by")
    serializer_class = GeneratedReportSerializer
    filterset_fields = ["kind", "status", "format"]
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]
    lookup_value_regex = r"\d+"
    write_action = Action.VIEW  # asking for a report reads; the audit report's own check is the service's
    action_permissions = {"list": Action.VIEW, "retrieve": Action.VIEW, "create": Action.VIEW, "file": Action.VIEW}

    def get_queryset(self):
        return services.visible_reports(self.organization, self.request.user).select_related("requested_by")

    def get_object(self):
        if int(self.kwargs["pk"]) > LARGEST_ID:
            raise NotFound(_("No such report."))
        return super().get_object()

    @extend_schema(request=ReportRequestSerializer, responses={202: GeneratedReportSerializer})
    def create(self, request, *args, **kwargs):
        data = self.input(ReportRequestSerializer)
        options = {key: data[key] for key in ("user", "model", "object") if key in data}
        report = services.request_report(
            self.organization,
            actor=request.user,
            kind=data["kind"],
            format=data["format"],
            first_day=data.get("first_day"),
            last_day=data.get("last_day"),
            location=data.get("location"),
            options=options,
        )
        return self.one(GeneratedReportSerializer, report, status=202)

    @extend_schema(
        parameters=[OpenApiParameter("variant", OpenApiTypes.STR, enum=["csv"], description="csv: the audit's CSV.")],
        responses={(200, "application/octet-stream"): bytes},
    )
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        report = self.get_object()
        variant = request.query_params.get("variant")
        if variant not in (None, "", "csv"):
            raise ValidationError({"variant": [_("Only “csv” (the CSV of an audit over the PDF limit).")]})
        stored = report.csv_file if variant == "csv" else report.file
        if not stored:
            raise NotFound(_("This report has no such file (yet): see its status."))
        try:
            handle = stored.storage.open(stored.name, "rb")
        except FileNotFoundError:
            raise NotFound(_("The report's file is missing from storage.")) from None
        fmt = "csv" if variant == "csv" else report.format
        name = report.filename.rsplit(".", 1)[0] + f".{fmt}"
        return FileResponse(handle, as_attachment=True, filename=name, content_type=CONTENT_TYPES[fmt])


class ReportScheduleSerializer(serializers.ModelSerializer):
    recipients = serializers.ListField(
        child=serializers.EmailField(max_length=254), min_length=1, max_length=services.MAX_RECIPIENTS
    )
    location = serializers.IntegerField(
        source="location_id", required=False, allow_null=True, min_value=1, max_value=LARGEST_ID
    )
    options = serializers.DictField(required=False, help_text="The audit report's filters: user, model, object.")

    class Meta:
        model = ReportSchedule
        fields = [
            "id",
            "name",
            "kind",
            "frequency",
            "format",
            "recipients",
            "location",
            "options",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class ReportScheduleViewSet(TenantModelViewSet):
    queryset = ReportSchedule.objects.all()
    serializer_class = ReportScheduleSerializer
    filterset_fields = ["kind", "is_active"]
    ordering_fields = ["id", "name"]
    ordering = ["id"]
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    write_action = Action.MANAGE_SETTINGS
    action_permissions = {
        "list": Action.MANAGE_SETTINGS,
        "retrieve": Action.MANAGE_SETTINGS,
        "create": Action.MANAGE_SETTINGS,
        "partial_update": Action.MANAGE_SETTINGS,
        "destroy": Action.MANAGE_SETTINGS,
    }

    def get_object(self):
        if int(self.kwargs["pk"]) > LARGEST_ID:
            raise NotFound(_("No such report schedule."))
        return super().get_object()

    def perform_create(self, serializer):
        self.written(
            serializer,
            services.create_schedule(self.organization, actor=self.request.user, **serializer.validated_data),
        )

    def perform_update(self, serializer):
        self.written(
            serializer,
            services.update_schedule(serializer.instance, actor=self.request.user, **serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.delete_schedule(instance, actor=self.request.user)


router.register("reports", ReportViewSet, basename="report")
router.register("report-schedules", ReportScheduleViewSet, basename="report-schedule")
