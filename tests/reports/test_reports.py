"""The four reports (issue 22): their content on hand-built histories, the formats (the PDF read back with pypdf),
the audit report's restriction to managers, the API and its tenant isolation, the archive's retention, the
schedules' exactly-once send under two concurrent passes on PostgreSQL, and query counts that do not grow with the
data."""

import hashlib
import io
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from assets.models import Asset, Downtime, Location
from maintenance_site.analytics import services as analytics
from maintenance_site.reports import content as report_content
from maintenance_site.reports import services
from maintenance_site.reports.models import GeneratedReport, ReportSchedule, ScheduledSend
from maintenance_site.tenancy.models import Organization
from workorders import services as work_orders


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _lifecycle(org, manager, technician):
    """A work order through its lifecycle, verification required: created, assigned, started, completed, rejected
    by the verifier, completed again, verified."""
    Organization.objects.filter(pk=org.pk).update(require_verification=True)
    org.refresh_from_db()
    order = work_orders.create_work_order(org, title="Replace the seal", actor=manager, type="preventive")
    order = work_orders.assign(order, technician, actor=manager)
    order = work_orders.start(order, actor=technician)
    order = work_orders.complete(order, actor=technician)
    order = work_orders.transition(order, "reject", actor=manager, reason="seal still leaks")
    order = work_orders.complete(order, actor=technician)
    order = work_orders.transition(order, "verify", actor=manager)
    return order


def _build(org, kind, **kwargs):
    day = timezone.localdate(timezone.now(), timezone=org.zone)  # the last seven local days
    kwargs.setdefault("first_day", day - timedelta(days=6))
    kwargs.setdefault("last_day", day)
    return report_content.build(org, kind, **kwargs)


def _block(content, key):
    return next(block for block in content.blocks if block.key == key)


# --- content ------------------------------------------------------------------------------------------------


def test_the_audit_report_lists_each_step_of_a_work_orders_lifecycle_with_who_and_before_after(
    org_a, manager_a, technician_a
):
    order = _lifecycle(org_a, manager_a, technician_a)
    content = _build(org_a, "audit", options={"model": "workorders.workorder", "object": order.pk})
    rows = _block(content, "changes").rows
    steps = [(row[1], row[5], row[6], row[7]) for row in rows]
    assert steps[0][:2] == ("manager-a", "created")
    assert "title: Replace the seal" in steps[0][2]
    changes = [(who, what, reason) for who, event, what, reason in steps[1:]]
    assert (changes[0][0], "status: Open → Assigned" in changes[0][1], changes[0][2]) == ("manager-a", True, "assign")
    assert f"assignee: (none) → #{technician_a.pk}" in changes[0][1]
    assert changes[1][0] == "technician-a" and "status: Assigned → In progress" in changes[1][1]
    assert changes[2][0] == "technician-a" and "status: In progress → Completed" in changes[2][1]
    assert changes[3][0] == "manager-a" and "status: Completed → In progress" in changes[3][1]
    assert changes[3][2] == "reject: seal still leaks"
    assert changes[4][0] == "technician-a" and "status: In progress → Completed" in changes[4][1]
    assert changes[5][0] == "manager-a" and "status: Completed → Verified" in changes[5][1]
    assert len(rows) == 7


def test_the_audit_report_filters_by_user_and_spans_every_audited_model(org_a, manager_a, technician_a):
    _lifecycle(org_a, manager_a, technician_a)
    Location.objects.create(organization=org_a, name="Hall")  # another audited model (no acting user here)
    everything = _block(_build(org_a, "audit"), "changes").rows
    assert {"Work order", "Location"} <= {row[2] for row in everything}
    mine = _block(_build(org_a, "audit", options={"user": technician_a.pk}), "changes").rows
    assert mine and {row[1] for row in mine} == {"technician-a"}
    assert all(row[2] == "Work order" for row in mine)


def test_the_quality_report_counts_verification_rejects_from_history(org_a, manager_a, technician_a):
    _lifecycle(org_a, manager_a, technician_a)
    content = _build(org_a, "quality")
    kpis = {row[0]: row[2] for row in _block(content, "kpis").rows}
    assert kpis["Verification rejects"] == 1
    assert kpis["Verification reject rate"] == 50.0  # one reject, one verification
    scope = analytics.scope_for(org_a, first_day=content.first_day, last_day=content.last_day)
    assert analytics.kpi_values(scope, ["verification_rejects"]) == {"verification_rejects": 1}


def test_the_status_report_shows_open_overdue_down_and_the_period(org_a, manager_a):
    site = Location.objects.create(organization=org_a, name="Site")
    pump = Asset.objects.create(organization=org_a, code="PMP-1", name="Pump", location=site)
    late = work_orders.create_work_order(
        org_a, title="Late one", actor=manager_a, asset=pump, due_at=timezone.now() - timedelta(days=2)
    )
    work_orders.create_work_order(org_a, title="On time", actor=manager_a, asset=pump)
    Downtime.objects.create(organization=org_a, asset=pump, started_at=timezone.now() - timedelta(hours=5), reason="x")
    content = _build(org_a, "status")
    assert dict(map(tuple, _block(content, "open_by_status").rows))["Open"] == 2
    assert [row[0] for row in _block(content, "overdue").rows] == [late.number]
    assert _block(content, "assets_down").rows[0][0] == "PMP-1"
    assert _block(content, "backlog_age").rows[0] == ["up to 7 days", 2]
    elsewhere = Location.objects.create(organization=org_a, name="Elsewhere")
    other = _build(org_a, "status", location=elsewhere.pk)
    assert _block(other, "overdue").rows == [] and _block(other, "assets_down").rows == []
    assert "Elsewhere" in other.scope_label


def test_the_performance_report_shows_the_analytics_figures_unchanged(org_a, manager_a, technician_a):
    _lifecycle(org_a, manager_a, technician_a)
    content = _build(org_a, "performance")
    scope = analytics.scope_for(org_a, first_day=content.first_day, last_day=content.last_day)
    expected = analytics.kpi_values(scope, ["planned_ratio", "backlog_count"])
    kpis = {row[0]: row[2] for row in _block(content, "kpis").rows}
    assert kpis["Planned work"] == expected["planned_ratio"] == 100.0
    assert kpis["Backlog"] == expected["backlog_count"]
    assert content.definitions_version == analytics.VERSION


# --- formats ------------------------------------------------------------------------------------------------


def _generate(org, actor, kind, fmt, django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        report = services.request_report(org, actor=actor, kind=kind, format=fmt, **kwargs)
    report.refresh_from_db()
    assert report.status == GeneratedReport.Status.DONE, report.error
    return report


def test_the_pdf_opens_and_its_first_page_names_the_organisation(
    org_a, manager_a, technician_a, django_capture_on_commit_callbacks
):
    _lifecycle(org_a, manager_a, technician_a)
    report = _generate(org_a, manager_a, "performance", "pdf", django_capture_on_commit_callbacks)
    data = report.file.open("rb").read()
    assert data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(data))
    first = reader.pages[0].extract_text()
    assert "Org A" in first
    assert "Definitions version" in first and f"Page 1 of {len(reader.pages)}" in first
    assert report.checksum == hashlib.sha256(data).hexdigest() and report.size == len(data)


def test_an_audit_over_the_limit_is_offered_as_csv_only(
    org_a, manager_a, technician_a, django_capture_on_commit_callbacks, monkeypatch
):
    _lifecycle(org_a, manager_a, technician_a)
    monkeypatch.setattr(report_content, "AUDIT_PDF_LIMIT", 3)
    report = _generate(org_a, manager_a, "audit", "pdf", django_capture_on_commit_callbacks)
    text = PdfReader(report.file.open("rb")).pages[0].extract_text()
    assert "offered as CSV only" in text and f"/reports/generatedreport/{report.pk}/download/?variant=csv" in text
    rows = report.csv_file.open("rb").read().decode("utf-8-sig").splitlines()
    assert any("reject: seal still leaks" in row for row in rows)


def test_csv_and_html(org_a, manager_a, technician_a, django_capture_on_commit_callbacks):
    _lifecycle(org_a, manager_a, technician_a)
    csv_report = _generate(org_a, manager_a, "quality", "csv", django_capture_on_commit_callbacks)
    text = csv_report.file.open("rb").read().decode("utf-8-sig")
    assert "Verification rejects,count,1" in text
    html = _generate(org_a, manager_a, "performance", "html", django_capture_on_commit_callbacks)
    fragment = html.file.open("rb").read().decode()
    assert "<canvas" in fragment  # the theme's chart component, as on the dashboard


# --- API, roles, tenants ---------------------------------------------------------------------------------------


def test_asking_for_a_report_over_the_api_and_downloading_it(
    api, org_a, manager_a, viewer_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(viewer_a).post("/api/v1/reports/", {"kind": "status", "format": "csv"}, format="json")
    assert response.status_code == 202, response.content
    report_id = response.json()["id"]
    detail = api(viewer_a).get(f"/api/v1/reports/{report_id}/").json()
    assert detail["status"] == "done" and detail["progress"] == 100 and detail["requested_by"] == "viewer-a"
    download = api(viewer_a).get(f"/api/v1/reports/{report_id}/file/")
    assert download.status_code == 200 and b"Status report" in b"".join(download.streaming_content)
    bad = api(viewer_a).post("/api/v1/reports/", {"kind": "status", "from": "2026-05-01", "to": "2026-04-01"})
    assert bad.status_code == 400
    assert api(viewer_a).post("/api/v1/reports/", {"kind": "status", "model": "x.y"}).status_code == 400


def test_the_audit_report_is_for_managers_only(
    api, org_a, manager_a, planner_a, viewer_a, django_capture_on_commit_callbacks
):
    assert api(planner_a).post("/api/v1/reports/", {"kind": "audit"}).status_code == 403
    assert api(viewer_a).post("/api/v1/reports/", {"kind": "audit"}).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = api(manager_a).post("/api/v1/reports/", {"kind": "audit", "format": "csv"})
    assert response.status_code == 202
    audit_id = response.json()["id"]
    assert api(manager_a).get(f"/api/v1/reports/{audit_id}/file/").status_code == 200
    assert api(planner_a).get(f"/api/v1/reports/{audit_id}/").status_code == 404
    assert api(planner_a).get(f"/api/v1/reports/{audit_id}/file/").status_code == 404
    assert audit_id not in [row["id"] for row in api(planner_a).get("/api/v1/reports/").json()["results"]]


def test_another_organisations_report_file_and_schedule_are_404(
    api, org_a, manager_a, manager_b, django_capture_on_commit_callbacks
):
    report = _generate(org_a, manager_a, "status", "pdf", django_capture_on_commit_callbacks)
    schedule = services.create_schedule(
        org_a, actor=manager_a, name="Weekly", kind="status", recipients=["boss@example.com"]
    )
    stranger = api(manager_b)
    assert stranger.get(f"/api/v1/reports/{report.pk}/").status_code == 404
    assert stranger.get(f"/api/v1/reports/{report.pk}/file/").status_code == 404
    assert stranger.get(f"/api/v1/report-schedules/{schedule.pk}/").status_code == 404
    assert stranger.get("/api/v1/reports/").json()["results"] == []
    # another organisation's location is not found, as every filter of the analytics scope
    hall = Location.objects.create(organization=org_a, name="Hall")
    refused = stranger.post("/api/v1/reports/", {"kind": "status", "location": hall.pk})
    assert refused.status_code == 404
    assert refused.json()["error"]["fields"]["location"] == ["No such location."]


def test_the_admin_pages(client, org_a, manager_a, planner_a, manager_b, django_capture_on_commit_callbacks):
    client.force_login(manager_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/reports/generatedreport/new/", {"kind": "status", "format": "html"})
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"Open work by status" in page.content
    assert client.get("/admin/reports/generatedreport/").status_code == 200
    report = GeneratedReport.objects.get()
    client.force_login(manager_b)
    assert client.get(f"/admin/reports/generatedreport/{report.pk}/report/").status_code == 404
    assert client.get(f"/admin/reports/generatedreport/{report.pk}/download/").status_code == 404


# --- retention ------------------------------------------------------------------------------------------------


def test_retention_removes_old_reports_and_their_files(org_a, manager_a, settings, django_capture_on_commit_callbacks):
    old = _generate(org_a, manager_a, "status", "pdf", django_capture_on_commit_callbacks)
    new = _generate(org_a, manager_a, "status", "csv", django_capture_on_commit_callbacks)
    storage, name = old.file.storage, old.file.name
    assert storage.exists(name)
    GeneratedReport.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=settings.REPORTS_RETENTION_DAYS + 1)
    )
    assert services.prune_reports() == 1
    assert not storage.exists(name) and new.file.storage.exists(new.file.name)
    assert list(GeneratedReport.objects.values_list("pk", flat=True)) == [new.pk]
    assert services.prune_reports() == 0  # twice is harmless


# --- schedules ------------------------------------------------------------------------------------------------


def test_the_last_complete_period():
    assert services.last_complete_period("weekly", date(2026, 12, 7)) == (date(2026, 11, 30), date(2026, 12, 6))
    assert services.last_complete_period("weekly", date(2026, 12, 13)) == (date(2026, 11, 30), date(2026, 12, 6))
    assert services.last_complete_period("monthly", date(2026, 12, 7)) == (date(2026, 11, 1), date(2026, 11, 30))


def _weekly(org, manager, **fields):
    schedule = services.create_schedule(
        org, actor=manager, name="Weekly status", kind="status", recipients=["boss@example.com"], **fields
    )
    ReportSchedule.objects.filter(pk=schedule.pk).update(created_at=datetime(2026, 11, 1, tzinfo=UTC))
    return schedule


def test_a_schedule_sends_once_per_period_with_an_absolute_link(org_a, manager_a, settings):
    settings.PUBLIC_BASE_URL = "https://maintenance.example.com"
    _weekly(org_a, manager_a)
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)
    assert services.send_due_reports(monday) == {"sent": 1, "failed": 0}
    assert services.send_due_reports(monday + timedelta(hours=1)) == {"sent": 0, "failed": 0}
    [message] = mail.outbox
    assert message.to == ["boss@example.com"] and "Org A" in message.subject
    assert "https://maintenance.example.com/admin/reports/generatedreport/" in message.body
    assert message.attachments[0][0].endswith(".pdf")
    send = ScheduledSend.objects.get()
    assert (send.first_day, send.last_day, send.status) == (date(2026, 11, 30), date(2026, 12, 6), "sent")
    assert services.send_due_reports(monday + timedelta(days=7)) == {"sent": 1, "failed": 0}  # the next week
    assert len(mail.outbox) == 2


def test_schedules_are_checked(org_a, manager_a, planner_a):
    from maintenance_site.errors import InvalidInput, PermissionDeniedError

    with pytest.raises(InvalidInput):
        services.create_schedule(org_a, actor=manager_a, name="x", kind="status", recipients=["not-an-address"])
    with pytest.raises(PermissionDeniedError):
        services.create_schedule(org_a, actor=planner_a, name="x", kind="status", recipients=["a@example.com"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_passes_send_a_schedules_report_once(org_a, manager_a):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL")
    _weekly(org_a, manager_a)
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)
    for attempt in range(3):
        barrier = threading.Barrier(2)
        results, errors = [], []

        def one_pass(barrier=barrier, results=results, errors=errors, attempt=attempt):
            try:
                barrier.wait()
                results.append(services.send_due_reports(monday + timedelta(days=7 * attempt)))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=one_pass) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert sum(result["sent"] for result in results) == 1
    assert ScheduledSend.objects.count() == 3 and len(mail.outbox) == 3
    assert GeneratedReport.objects.filter(schedule__isnull=False).count() == 3


# --- query counts -------------------------------------------------------------------------------------------


def _grow(org, manager, technician, n):
    site = Location.objects.create(organization=org, name=f"Site {n}")
    for i in range(n):
        asset = Asset.objects.create(organization=org, code=f"A-{n}-{i}", name="a", location=site)
        order = work_orders.create_work_order(
            org, title=f"t{i}", actor=manager, asset=asset, due_at=timezone.now() - timedelta(days=1)
        )
        if i % 2:
            order = work_orders.assign(order, technician, actor=manager)
            order = work_orders.start(order, actor=technician)
            work_orders.complete(order, actor=technician)
        Downtime.objects.create(
            organization=org, asset=asset, started_at=timezone.now() - timedelta(hours=i + 1), reason="x"
        )


@pytest.mark.parametrize("kind", ["status", "performance", "quality", "audit"])
def test_each_report_runs_the_same_number_of_queries_whatever_the_data(org_a, manager_a, technician_a, kind):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            _build(org_a, kind)
        return len(captured)

    _grow(org_a, manager_a, technician_a, 2)
    small = queries()
    _grow(org_a, manager_a, technician_a, 12)
    assert queries() == small


def test_a_failed_send_is_retried_and_a_dead_senders_claim_taken_over(org_a, manager_a, settings, monkeypatch):
    _weekly(org_a, manager_a)
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)

    def broken(schedule, report):
        raise OSError("mail server down")

    monkeypatch.setattr(services, "_mail", broken)
    assert services.send_due_reports(monday) == {"sent": 0, "failed": 1}
    send = ScheduledSend.objects.get()
    assert (send.status, send.attempts, send.error) == ("pending", 1, "OSError: mail server down")
    monkeypatch.undo()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # a sender that claimed it and died: taken over once its lease is over, not before
    ScheduledSend.objects.filter(pk=send.pk).update(status="sending", claimed_at=timezone.now())
    assert services.send_due_reports(monday) == {"sent": 0, "failed": 0}
    ScheduledSend.objects.filter(pk=send.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.REPORTS_SEND_LEASE_SECONDS + 1)
    )
    assert services.send_due_reports(monday) == {"sent": 1, "failed": 0}
    assert len(mail.outbox) == 1 and ScheduledSend.objects.get().status == "sent"
