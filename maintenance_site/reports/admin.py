"""Back office: the reports. Ask for one (a form: kind, period, location, format, the audit's filters), watch it
being generated (the page refreshes itself with the progress until it is done), read it (the HTML report in the
admin, with the theme's charts) or download it (CSV, PDF); the archive; the schedules (written through the
services). Audit reports are shown to those who may read them (`read_audit`: managers)."""

from django import forms
from django.contrib import admin, messages
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from maintenance_site import formats
from maintenance_site.errors import DomainError
from maintenance_site.reports import audit as audit_report
from maintenance_site.reports import services
from maintenance_site.reports.models import Format, GeneratedReport, ReportSchedule
from maintenance_site.reports.registry import KINDS
from maintenance_site.tenancy.admin_base import (
    ReadOnlyTenantAdmin,
    ServiceAdmin,
    ServiceForm,
    active_organization,
    adopt,
    request_may,
    submitted,
)
from maintenance_site.tenancy.roles import Action

CONTENT_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(label=_("Report"), choices=list(KINDS.items()))
    first_day = forms.DateField(label=_("From"), required=False, help_text=_("YYYY-MM-DD (default: 30 days ago)"))
    last_day = forms.DateField(label=_("To"), required=False, help_text=_("YYYY-MM-DD, included (default: today)"))
    location = forms.IntegerField(
        label=_("Location"), required=False, min_value=1, help_text=_("A location's id: the report of its subtree.")
    )
    format = forms.ChoiceField(label=_("Format"), choices=Format.choices, initial=Format.HTML)
    user = forms.IntegerField(
        label=_("User"), required=False, min_value=1, help_text=_("Audit only: changes by this user id.")
    )
    model = forms.ChoiceField(label=_("Model"), required=False, help_text=_("Audit only: one model."))
    object = forms.IntegerField(
        label=_("Object"), required=False, min_value=1, help_text=_("Audit only: one object of the model (its id).")
    )

    def __init__(self, *args, audit_allowed: bool, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = [(k, label) for k, label in KINDS.items() if k != "audit" or audit_allowed]
        self.fields["kind"].choices = kinds
        self.fields["model"].choices = [("", _("every model")), *audit_report.model_choices()]


@admin.register(GeneratedReport)
class GeneratedReportAdmin(ReadOnlyTenantAdmin):
    """The archive: every generated report, newest first; "Ask for a report" above the list."""

    list_display = ["id", "kind", "format", "period", "state", "requested_by", "schedule", "created_at", "open"]
    list_filter = ["kind", "status", "format"]
    list_select_related = ["requested_by", "schedule"]
    ordering = ["-id"]
    readonly_fields = [
        "kind",
        "format",
        "first_day",
        "last_day",
        "location_id",
        "options",
        "status",
        "progress",
        "requested_by",
        "schedule",
        "file",
        "csv_file",
        "checksum",
        "size",
        "rows",
        "definitions_version",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]
    change_list_template = "admin/reports/change_list.html"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not request_may(request, Action.READ_AUDIT):
            queryset = queryset.exclude(kind="audit")
        return queryset

    @admin.display(description=_("period"))
    def period(self, obj):
        return f"{formats.date(obj.first_day)} – {formats.date(obj.last_day)}"

    @admin.display(description=_("status"))
    def state(self, obj):
        if obj.status == GeneratedReport.Status.RUNNING:
            return _("running (%(progress)s %%)") % {"progress": obj.progress}
        return obj.get_status_display()

    @admin.display(description="")
    def open(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:reports_generatedreport_report", args=[obj.pk]), _("Open")
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("new/", wrap(self.new_view), name="reports_generatedreport_new"),
            path("<int:report_id>/report/", wrap(self.report_view), name="reports_generatedreport_report"),
            path("<int:report_id>/download/", wrap(self.download_view), name="reports_generatedreport_download"),
            *super().get_urls(),
        ]

    def _report(self, request, report_id: int) -> GeneratedReport:
        report = self.get_queryset(request).filter(pk=report_id).first()
        if report is None or not self.has_view_permission(request, report):
            raise Http404(_("No such report."))
        return report

    def new_view(self, request):
        if not self.has_view_permission(request):
            raise Http404(_("No such page."))
        organization = active_organization(request)
        form = ReportRequestForm(request.POST or None, audit_allowed=request_may(request, Action.READ_AUDIT))
        if request.method == "POST" and form.is_valid() and organization is not None:
            data = form.cleaned_data
            options = {key: data[key] for key in ("user", "model", "object") if data.get(key) not in (None, "")}
            try:
                report = services.request_report(
                    organization,
                    actor=request.user,
                    kind=data["kind"],
                    format=data["format"],
                    first_day=data["first_day"],
                    last_day=data["last_day"],
                    location=data["location"],
                    options=options,
                )
            except DomainError as refusal:
                form.add_error(None, refusal.message)
            else:
                return HttpResponseRedirect(reverse("admin:reports_generatedreport_report", args=[report.pk]))
        if organization is None:
            messages.warning(request, _("Choose an organisation first (the switcher at the top)."))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ask for a report"),
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/reports/new.html", context)

    def report_view(self, request, report_id: int):
        report = self._report(request, report_id)
        fragment = ""
        if report.status == GeneratedReport.Status.DONE and report.format == Format.HTML and report.file:
            with report.file.open("rb") as stored:
                fragment = stored.read().decode("utf-8")  # rendered by our own template, escaped when it was made
        context = {
            **self.admin_site.each_context(request),
            "title": str(report),
            "report": report,
            "fragment": fragment,
            "waiting": report.status in (GeneratedReport.Status.QUEUED, GeneratedReport.Status.RUNNING),
            "download": reverse("admin:reports_generatedreport_download", args=[report.pk]),
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/reports/report.html", context)

    def download_view(self, request, report_id: int):
        report = self._report(request, report_id)
        variant = request.GET.get("variant")
        stored = report.csv_file if variant == "csv" else report.file
        if not stored:
            raise Http404(_("This report has no such file (yet)."))
        fmt = "csv" if variant == "csv" else report.format
        name = report.filename.rsplit(".", 1)[0] + f".{fmt}"
        try:
            handle = stored.storage.open(stored.name, "rb")
        except FileNotFoundError:
            raise Http404(_("The report's file is missing from storage.")) from None
        return FileResponse(handle, as_attachment=fmt != "html", filename=name, content_type=CONTENT_TYPES[fmt])


class ReportScheduleForm(ServiceForm):
    recipients = forms.CharField(label=_("Recipients"), help_text=_("E-mail addresses, separated by commas."))

    class Meta:
        model = ReportSchedule
        fields = ["name", "kind", "frequency", "format", "recipients", "location_id", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.initial.get("recipients"), list):
            self.initial["recipients"] = ", ".join(self.initial["recipients"])

    def clean_recipients(self):
        return [item.strip() for item in self.cleaned_data["recipients"].replace("\n", ",").split(",") if item.strip()]


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ServiceAdmin):
    """Reports sent by e-mail every week or month, once per period (managers)."""

    form = ReportScheduleForm
    write_action = Action.MANAGE_SETTINGS
    list_display = ["name", "kind", "frequency", "format", "is_active", "created_at"]
    list_filter = ["kind", "frequency", "is_active"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and request_may(request, Action.MANAGE_SETTINGS)

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.SCHEDULE_FIELDS, changed=change)
        if change:
            adopt(obj, services.update_schedule(obj, actor=request.user, **fields))
            return
        adopt(obj, services.create_schedule(self.new_organization(request, form), actor=request.user, **fields))

    def delete_model(self, request, obj):
        services.delete_schedule(obj, actor=request.user)
