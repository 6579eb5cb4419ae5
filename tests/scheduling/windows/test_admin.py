"""The back office: the calendar-like list, saving through the services (an overlap is a form error), the
actions behind a confirmation page with the reason, the maintenance-mode switch with its confirmation page,
the history, and the organisation switcher kept in the admin's header."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from maintenance_site.tenancy import SYSTEM
from scheduling.windows.mode import is_in_maintenance_mode
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.services import create_window, end_window

pytestmark = pytest.mark.usefixtures("gated")

LIST = "/admin/scheduling/maintenancewindow/"
MODE = "/admin/scheduling/maintenancewindow/mode/"
S = MaintenanceWindow.Status


def split(moment):
    """The admin's date and time inputs, in the organisation's time zone (org_a: Europe/Berlin), as the back office
    reads them."""
    local = timezone.localtime(moment, ZoneInfo("Europe/Berlin"))
    return {"0": local.strftime("%Y-%m-%d"), "1": local.strftime("%H:%M:%S")}


def form(title="Patch day", start=None, end=None, **extra):
    start = start or timezone.now() + timedelta(days=1)
    data = {"title": title, "maintenance_type": "security", "description": "", "scope": "system", "recurrence": ""}
    data.update({f"starts_at_{k}": v for k, v in split(start).items()})
    if end is not None:
        data.update({f"ends_at_{k}": v for k, v in split(end).items()})
    data.update({"notify_users": "on", **extra})
    return data


@pytest.fixture
def running(org_a):
    now = timezone.now()
    return create_window(
        org_a, title="Running", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1), actor=SYSTEM
    )


@pytest.fixture
def scheduled(org_a):
    now = timezone.now()
    return create_window(
        org_a, title="Scheduled", starts_at=now + timedelta(hours=3), ends_at=now + timedelta(hours=4), actor=SYSTEM
    )


def test_the_list_is_a_calendar_with_the_mode_switch_in_sight(client, manager_a, scheduled, running):
    client.force_login(manager_a)
    page = client.get(LIST).content.decode()
    assert page.index("Running") < page.index("Scheduled")  # by start
    assert 'id="maintenance-mode-switch"' in page and "Maintenance mode: ON" in page
    assert client.get(f"{LIST}?starts_at__year={scheduled.starts_at.year}").status_code == 200


def test_planners_read_but_do_not_manage(client, planner_a, scheduled):
    client.force_login(planner_a)
    assert client.get(LIST).status_code == 200
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.get(MODE).status_code == 200
    assert client.post(MODE, {"action": "enter", "reason": "x", "scope": "organization"}).status_code == 403


def test_adding_goes_through_the_service(client, org_a, manager_a):
    client.force_login(manager_a)
    start = timezone.now() + timedelta(days=1)
    response = client.post(f"{LIST}add/", form(start=start, duration_minutes="45"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    window = MaintenanceWindow.objects.get(title="Patch day")
    assert window.organization == org_a and window.created_by == manager_a
    assert window.duration_minutes == 45


def test_an_overlap_is_shown_on_the_form(client, org_a, manager_a, scheduled):
    client.force_login(manager_a)
    response = client.post(f"{LIST}add/", form(start=scheduled.starts_at, end=scheduled.ends_at))
    assert response.status_code == 200
    assert "overlaps the maintenance window" in response.content.decode() and "Scheduled" in response.content.decode()
    assert MaintenanceWindow.objects.count() == 1
    response = client.post(
        f"{LIST}add/",
        form(start=scheduled.starts_at, end=scheduled.ends_at, emergency="on", emergency_reason="Zero-day"),
    )
    assert response.status_code == 302 and MaintenanceWindow.objects.count() == 2


def test_bad_input_on_the_form(client, manager_a):
    client.force_login(manager_a)
    start = timezone.now() + timedelta(days=1)
    page = client.post(f"{LIST}add/", form(start=start, end=start - timedelta(hours=1))).content.decode()
    assert "The end must be after the start." in page
    page = client.post(f"{LIST}add/", form(start=start, duration_minutes="0")).content.decode()
    assert "at least one minute" in page
    assert not MaintenanceWindow.objects.exists()


def test_end_now_asks_for_confirmation_first(client, org_a, manager_a, running):
    client.force_login(manager_a)
    data = {"action": "end_now", "_selected_action": [running.pk]}
    response = client.post(LIST, data)
    assert response.status_code == 200 and "End them now" in response.content.decode()
    running.refresh_from_db()
    assert running.status == S.ACTIVE
    response = client.post(LIST, {**data, "apply": "1", "reason": "Done early"})
    assert response.status_code == 302
    running.refresh_from_db()
    assert running.status == S.COMPLETED and running.status_reason == "Done early"


def test_cancel_and_mark_failed_need_a_reason(client, manager_a, scheduled, running):
    client.force_login(manager_a)
    response = client.post(LIST, {"action": "cancel_windows", "_selected_action": [scheduled.pk], "apply": "1"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    client.post(LIST, {"action": "cancel_windows", "_selected_action": [scheduled.pk], "apply": "1", "reason": "Moved"})
    client.post(LIST, {"action": "mark_failed", "_selected_action": [running.pk], "apply": "1", "reason": "Broke"})
    scheduled.refresh_from_db()
    running.refresh_from_db()
    assert (scheduled.status, running.status) == (S.CANCELLED, S.FAILED)


def test_a_started_window_cannot_be_deleted_in_the_admin(client, manager_a, running, scheduled):
    client.force_login(manager_a)
    assert client.get(f"{LIST}{running.pk}/delete/").status_code == 403
    assert client.post(f"{LIST}{scheduled.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not MaintenanceWindow.objects.filter(pk=scheduled.pk).exists()


def test_the_mode_switch_has_a_confirmation_page(client, org_a, manager_a):
    client.force_login(manager_a)
    assert "Maintenance mode is off" in client.get(MODE).content.decode()
    data = {"action": "enter", "reason": "Storage migration", "scope": "organization", "until": ""}
    response = client.post(MODE, data)
    assert response.status_code == 200 and "Please confirm" in response.content.decode()
    assert not is_in_maintenance_mode(org_a)
    response = client.post(MODE, {**data, "confirm": "1"})
    assert response.status_code == 302
    assert is_in_maintenance_mode(org_a)
    page = client.get(MODE).content.decode()
    assert "Maintenance mode is ON" in page and "maintenance-banner" in page and "Storage migration" in page
    client.post(MODE, {"action": "exit", "reason": "", "scope": "organization", "until": "", "confirm": "1"})
    assert not is_in_maintenance_mode(org_a)


def test_entering_without_a_reason_is_refused(client, org_a, manager_a):
    client.force_login(manager_a)
    response = client.post(MODE, {"action": "enter", "reason": "", "scope": "organization", "confirm": "1"})
    assert response.status_code == 200 and "Say why" in response.content.decode()
    assert not is_in_maintenance_mode(org_a)


def test_the_platform_switch_is_offered_to_superusers_only(client, org_a, manager_a, admin_user):
    client.force_login(manager_a)
    assert "whole platform" not in client.get(MODE).content.decode()
    client.force_login(admin_user)
    assert "The whole platform" in client.get(MODE).content.decode()
    client.post(MODE, {"action": "enter", "reason": "Upgrade", "scope": "platform", "until": "", "confirm": "1"})
    assert is_in_maintenance_mode(None) and is_in_maintenance_mode(org_a)


def test_history_lists_finished_windows(client, manager_a, running, scheduled):
    end_window(running, actor=SYSTEM)
    client.force_login(manager_a)
    page = client.get("/admin/scheduling/maintenancehistoryentry/").content.decode()
    assert f"/maintenancehistoryentry/{running.pk}/change/" in page
    assert f"/maintenancehistoryentry/{scheduled.pk}/change/" not in page
    assert client.get("/admin/scheduling/maintenancehistoryentry/add/").status_code == 403


def test_the_header_keeps_the_organisation_switcher(client, member_of_both, org_a, org_b):
    client.force_login(member_of_both)
    page = client.get(LIST).content.decode()
    assert 'id="organization-switcher"' in page and 'action="/organization/switch/"' in page
    assert f'<option value="{org_a.pk}" selected>Org A (Planner)</option>' in page
    assert f'<option value="{org_b.pk}">Org B (Viewer)</option>' in page
    assert 'name="next" value="/admin/scheduling/maintenancewindow/"' in page


def test_the_pages_render_for_every_status(client, org_a, manager_a, admin_user, running, scheduled):
    finished = end_window(running, actor=SYSTEM)
    client.force_login(manager_a)
    for window in (finished, scheduled):
        assert client.get(f"{LIST}{window.pk}/change/").status_code == 200
    assert client.get(f"{LIST}add/").status_code == 200
    client.force_login(admin_user)
    assert client.get(f"{LIST}add/").status_code == 200
    assert client.get(f"{LIST}{scheduled.pk}/change/").status_code == 200
    assert client.get("/admin/scheduling/maintenancemode/").status_code == 200


def test_editing_a_running_window_changes_its_end(client, manager_a, running):
    client.force_login(manager_a)
    new_end = running.ends_at + timedelta(hours=1)
    data = {"title": "Running longer", "description": "", "notify_users": "on"}
    data.update({f"ends_at_{k}": v for k, v in split(new_end).items()})
    response = client.post(f"{LIST}{running.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    running.refresh_from_db()
    assert running.title == "Running longer" and running.ends_at == new_end.replace(microsecond=0)
