"""What maintenance mode does: API and technician-view writes get a 503 with the right Retry-After, reads
work, bypass users write, login and token endpoints work, leaving the mode restores writes; the platform
switch; /api/v1/status and /health/ready; the admin banner."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.views import APIView

from maintenance_site import formats
from maintenance_site.api.permissions import RolePermission
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy import services as tenancy
from scheduling.windows.mode import enter_maintenance_mode
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.permissions import NotInMaintenanceMode
from scheduling.windows.services import create_window
from tests.conftest import make_user
from tests.scheduling.windows.support import MIDDLEWARE

pytestmark = [pytest.mark.urls("tests.scheduling.windows.urls"), pytest.mark.usefixtures("gated")]

ASSETS = "/api/v1/assets/"
MODE = "/api/v1/maintenance/mode"


def new_asset(client, code="NEW-1"):
    return client.post(ASSETS, {"code": code, "name": "New asset"}, format="json")


def error(response):
    return response.json()["error"]


@pytest.fixture
def system_window(org_a):
    """A system-scope window running now, ending in 30 minutes (created due: it starts at once)."""
    now = timezone.now()
    window = create_window(
        org_a,
        title="Database upgrade",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(minutes=30),
        actor=SYSTEM,
    )
    assert window.status == MaintenanceWindow.Status.ACTIVE
    return window


def assert_retry_after(response, seconds, slack=5):
    assert seconds - slack <= int(response["Retry-After"]) <= seconds + 1


# --- API ---------------------------------------------------------------------------------------------------


def test_a_write_gets_503_with_retry_after_from_the_windows_end(api, org_a, planner_a, system_window):
    response = new_asset(api(planner_a))
    assert response.status_code == 503
    assert error(response)["code"] == "maintenance_mode"
    assert "maintenance mode" in error(response)["message"] and "Database upgrade" in error(response)["message"]
    assert_retry_after(response, 30 * 60)


def test_reads_keep_working(api, org_a, planner_a, system_window):
    response = api(planner_a).get(ASSETS)
    assert response.status_code == 200
    assert api(planner_a).get(MODE).json()["active"] is True


def test_a_bypass_user_keeps_writing(api, org_a, manager_a, system_window):
    assert new_asset(api(manager_a)).status_code == 201  # managers may bypass_maintenance


def test_api_keys_do_not_bypass(org_a, manager_a, system_window):
    from rest_framework.test import APIClient

    _, key = tenancy.create_api_key(org_a, name="ERP", scope="read_write", created_by=manager_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert new_asset(client).status_code == 503  # the key's integrator role may manage assets, not bypass
    assert client.get(ASSETS).status_code == 200
    response = client.post("/api/v1/maintenance/windows/", {"title": "x"}, format="json")
    assert response.status_code == 403  # the role check comes first: an integrator may not manage windows


def test_login_and_tokens_keep_working(api, client, org_a, planner_a, system_window):
    response = client.post("/api/v1/auth/token/", {"username": "planner-a", "password": "pw-planner-a"})
    assert response.status_code == 200
    refresh = response.json()["refresh"]
    assert client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}).status_code == 200
    response = client.post("/accounts/login/", {"username": "planner-a", "password": "pw-planner-a"})
    assert response.status_code == 302


def test_leaving_manual_mode_restores_writes(api, org_a, manager_a, planner_a):
    response = api(manager_a).post(MODE, {"action": "enter", "reason": "Disk failure"}, format="json")
    assert response.status_code == 200 and response.json()["active"] is True
    refused = new_asset(api(planner_a))
    assert refused.status_code == 503
    assert not refused.has_header("Retry-After")  # switched on by hand with no end: nobody knows
    response = api(manager_a).post(MODE, {"action": "exit", "reason": "Disk replaced"}, format="json")
    assert response.status_code == 200 and response.json()["active"] is False
    assert new_asset(api(planner_a)).status_code == 201


def test_manual_mode_with_an_expected_end_announces_it(api, org_a, manager_a, planner_a):
    until = timezone.now() + timedelta(minutes=10)
    api(manager_a).post(MODE, {"action": "enter", "reason": "Migration", "until": until.isoformat()}, format="json")
    assert_retry_after(new_asset(api(planner_a)), 600)
    body = api(planner_a).get(MODE).json()
    assert body["manual"] is True and body["reason"] == "Migration" and 595 <= body["retry_after"] <= 600


def test_ending_the_window_restores_writes_and_works_during_maintenance(
    api, org_a, manager_a, planner_a, system_window
):
    assert new_asset(api(planner_a)).status_code == 503
    response = api(manager_a).post(f"/api/v1/maintenance/windows/{system_window.pk}/end", {"reason": "Done"})
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert new_asset(api(planner_a)).status_code == 201


def test_manual_exit_leaves_a_running_system_window_in_charge(api, org_a, manager_a, planner_a, system_window):
    api(manager_a).post(MODE, {"action": "enter", "reason": "Belt and braces"}, format="json")
    body = api(manager_a).post(MODE, {"action": "exit"}, format="json").json()
    assert body["active"] is True and body["windows"][0]["id"] == system_window.pk
    assert new_asset(api(planner_a)).status_code == 503


def test_switching_needs_manage_windows_and_a_reason(api, org_a, manager_a, planner_a):
    assert api(planner_a).post(MODE, {"action": "enter", "reason": "x"}, format="json").status_code == 403
    response = api(manager_a).post(MODE, {"action": "enter", "reason": " "}, format="json")
    assert response.status_code == 400 and "reason" in error(response)["fields"]
    assert api().post(MODE, {"action": "enter", "reason": "x"}, format="json").status_code == 401


def test_other_organisations_are_not_affected(api, org_a, org_b, manager_b, system_window):
    assert new_asset(api(manager_b)).status_code == 201
    b_member = make_user("planner-b")
    tenancy.add_member(org_b, b_member, "planner")
    assert new_asset(api(b_member), code="B-2").status_code == 201


def test_the_platform_switch_is_for_superusers_and_stops_everyone_else(api, org_a, org_b, manager_a, manager_b):
    assert (
        api(manager_a).post(MODE, {"action": "enter", "reason": "x", "scope": "platform"}, format="json").status_code
        == 403
    )
    root = make_user("root", is_superuser=True, is_staff=True)
    tenancy.add_member(org_a, root, "manager")
    response = api(root).post(
        MODE, {"action": "enter", "reason": "PostgreSQL upgrade", "scope": "platform"}, format="json"
    )
    assert response.status_code == 200 and response.json()["platform"] is True
    assert new_asset(api(manager_a)).status_code == 503  # a platform maintenance: managers do not bypass it
    assert new_asset(api(manager_b), code="B-1").status_code == 503
    assert new_asset(api(root), code="ROOT-1").status_code == 201
    api(root).post(MODE, {"action": "exit", "scope": "platform"}, format="json")
    assert new_asset(api(manager_b), code="B-1").status_code == 201


# --- status endpoints -------------------------------------------------------------------------------------


def test_status_and_readiness_report_the_platform_and_how_many_organisations(
    client, api, org_a, manager_a, system_window
):
    status = api(manager_a).get("/api/v1/status").json()["maintenance_mode"]  # the details need a signed-in user
    assert status["active"] is False and status["organizations_in_maintenance"] == 1
    enter_maintenance_mode(None, reason="Cluster move", actor=SYSTEM)
    ready = client.get("/health/ready").json()["maintenance_mode"]
    assert ready["active"] is True and ready["platform"]["reason"] == "Cluster move"
    assert ready["organizations_in_maintenance"] == 1


# --- technician view (/t/) -----------------------------------------------------------------------------


def test_technician_view_writes_get_a_page_with_retry_after(client, org_a, technician_a, system_window):
    client.force_login(technician_a)
    assert client.get("/t/work/").status_code == 200
    response = client.post("/t/work/", {"note": "done"})
    assert response.status_code == 503
    assert "Maintenance in progress" in response.content.decode()
    assert_retry_after(response, 30 * 60)
    response = client.post("/t/work/", {"note": "done"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 503 and response.json()["error"]["code"] == "maintenance_mode"
    assert client.post("/t/logout/").status_code == 200  # signing out is never refused


def test_technician_view_bypass_and_mode_off(client, org_a, manager_a, technician_a):
    client.force_login(technician_a)
    assert client.post("/t/work/", {"note": "done"}).status_code == 200
    enter_maintenance_mode(org_a, reason="Move", actor=SYSTEM)
    assert client.post("/t/work/", {"note": "done"}).status_code == 503
    client.force_login(manager_a)
    assert client.post("/t/work/", {"note": "done"}).status_code == 200


def test_public_problem_reports_are_still_accepted(client, org_a, system_window):
    response = client.post(f"/report/{org_a.request_form_token}/", {"description": "Water on the floor"})
    assert response.status_code != 503


# --- admin banner ------------------------------------------------------------------------------------------


def test_the_admin_keeps_working_and_shows_a_banner(client, org_a, manager_a, system_window):
    client.force_login(manager_a)
    page = client.get("/admin/").content.decode()
    assert "maintenance-banner" in page and "Database upgrade" in page
    # the one date format, in the organisation's time zone (maintenance_site.formats)
    assert formats.date_time(system_window.ends_at, org_a.zone) in page
    assert client.get("/admin/scheduling/maintenancewindow/").status_code == 200


def test_no_banner_without_maintenance(client, org_a, manager_a):
    client.force_login(manager_a)
    assert "maintenance-banner" not in client.get("/admin/").content.decode()


def test_the_wiring_fixture_lists_the_permission_after_the_role_check(gated):
    assert APIView.permission_classes == [RolePermission, NotInMaintenanceMode]
    middleware = list(settings.MIDDLEWARE)
    assert middleware.index(MIDDLEWARE) > middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
