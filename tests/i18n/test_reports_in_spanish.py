"""The generated reports are written in the language of the person who asked for them (issue 30): a Spanish
manager's report — its heading, KPI names, columns, notes, numbers (decimal comma) and the PDF's page footer — is
in Spanish, an English manager's in English; a scheduled report, asked for by no one, in the organisation's
language; and the admin's report pages speak Spanish to a Spanish manager."""

import io
import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from pypdf import PdfReader

from maintenance_site.reports import services
from maintenance_site.reports.models import GeneratedReport, ReportSchedule
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.models import Organization
from workorders import services as work_orders


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _generate(org, actor, kind, fmt, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = services.request_report(org, actor=actor, kind=kind, format=fmt)
    report.refresh_from_db()
    assert report.status == GeneratedReport.Status.DONE, report.error
    return report


def _some_work(org, manager, technician):
    for index in range(3):
        order = work_orders.create_work_order(org, title=f"Check pump {index}", actor=manager)
        work_orders.assign(order, technician, actor=manager)


def test_a_spanish_managers_status_report_is_in_spanish_and_an_english_managers_in_english(
    org_a, manager_a, planner_a, technician_a, django_capture_on_commit_callbacks
):
    _some_work(org_a, manager_a, technician_a)
    tenancy.set_language(manager_a, actor=manager_a, language="es")

    spanish = _generate(org_a, manager_a, "status", "html", django_capture_on_commit_callbacks)
    html = spanish.file.open("rb").read().decode()
    for text in (
        "Informe de estado",
        "Organización",
        "Periodo",
        "Ámbito",
        "toda la organización",
        "Trabajo abierto por estado",
        "Trabajo pendiente por antigüedad",
        "hasta 7 días",
        "Trabajo vencido",
        "Activos parados",
        "Stock bajo",
        "3 abiertas ahora",
    ):
        assert text in html, text
    for english in (
        "Status report",
        "Organisation",
        "Open work",
        "Backlog by age",
        "Overdue",
        "Nothing in this period",
        "the whole organisation",
        "estimated hours",
    ):
        assert english not in html, english

    english = _generate(org_a, planner_a, "status", "html", django_capture_on_commit_callbacks)
    html = english.file.open("rb").read().decode()
    assert "Open work by status" in html and "3 open now" in html and "Trabajo" not in html


def test_a_spanish_managers_performance_report_pdf_and_csv_are_in_spanish(
    org_a, manager_a, technician_a, django_capture_on_commit_callbacks
):
    _some_work(org_a, manager_a, technician_a)
    tenancy.set_language(manager_a, actor=manager_a, language="es")

    pdf = _generate(org_a, manager_a, "performance", "pdf", django_capture_on_commit_callbacks)
    reader = PdfReader(io.BytesIO(pdf.file.open("rb").read()))
    first = reader.pages[0].extract_text()
    assert "Informe de rendimiento" in first and "Versión de las definiciones" in first
    assert f"Página 1 de {len(reader.pages)}" in first
    assert "KPI del periodo" in first and "Tiempo medio entre averías" in first and "Disponibilidad" in first
    assert "Page 1" not in first and "Mean time between failures" not in first

    csv = _generate(org_a, manager_a, "performance", "csv", django_capture_on_commit_callbacks)
    text = csv.file.open("rb").read().decode("utf-8-sig")
    assert "KPI,Unidad,Este periodo,Periodo anterior,Variación" in text
    assert "Trabajo pendiente,cantidad,3," in text  # the backlog: three open orders


def test_numbers_in_a_spanish_report_have_the_spanish_separators(org_a, manager_a, django_capture_on_commit_callbacks):
    from django.utils import translation

    from maintenance_site.reports.render import cell

    with translation.override("es"):
        assert [cell(value, None) for value in (1234567, 2.5, True)] == ["1.234.567", "2,5", "sí"]
    with translation.override("en-gb"):
        assert [cell(value, None) for value in (1234567, 2.5, True)] == ["1,234,567", "2.5", "yes"]


def test_a_scheduled_report_is_written_in_the_organisations_language(org_a, manager_a):
    """Asked for by no one: the organisation's language, as its e-mail; the manager who set it up reads English."""
    Organization.objects.filter(pk=org_a.pk).update(language="es")
    org_a.refresh_from_db()
    schedule = services.create_schedule(
        org_a, actor=manager_a, name="Weekly", kind="status", format="csv", recipients=["plant@example.com"]
    )
    ReportSchedule.objects.filter(pk=schedule.pk).update(created_at=datetime(2026, 11, 1, tzinfo=UTC))
    tenancy.set_language(manager_a, actor=manager_a, language="en-gb")
    assert services.send_due_reports(datetime(2026, 12, 7, 9, tzinfo=UTC)) == {"sent": 1, "failed": 0}
    report = GeneratedReport.objects.get(schedule=schedule)
    text = report.file.open("rb").read().decode("utf-8-sig")
    assert "Informe de estado" in text and "Trabajo abierto por estado" in text and "Open work" not in text
    [message] = mail.outbox
    assert message.subject.startswith("Informe de estado: Org A")


def test_the_admin_report_pages_speak_spanish_to_a_spanish_manager(
    client, org_a, manager_a, django_capture_on_commit_callbacks
):
    tenancy.set_language(manager_a, actor=manager_a, language="es")
    client.force_login(manager_a)
    form = client.get("/admin/reports/generatedreport/new/").content.decode()
    assert "Solicitar un informe" in form and "Generar" in form and "Desde" in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/reports/generatedreport/new/", {"kind": "status", "format": "html"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Trabajo abierto por estado" in page and re.search(r"\d+ filas? ·", page)
    assert "Descargar (" in page and "Open work by status" not in page
    archive = client.get("/admin/reports/generatedreport/").content.decode()
    assert "Solicitar un informe" in archive
