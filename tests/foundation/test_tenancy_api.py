"""Tenant isolation, active-organisation resolution and the role table, through the API."""

import pytest

from assets import services as asset_services
from maintenance_site.tenancy.roles import Action, Role, role_allows


@pytest.fixture
def asset_a(org_a):
    return asset_services.create_asset(org_a, code="PMP-1", name="Pump A")


@pytest.fixture
def asset_b(org_b):
    return asset_services.create_asset(org_b, code="PMP-1", name="Pump B")


def test_list_shows_only_the_active_organisation(api, manager_a, asset_a, asset_b):
    response = api(manager_a).get("/api/v1/assets/")
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["Pump A"]


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_another_organisations_object_is_404_on_every_verb(api, manager_a, asset_b, method):
    response = getattr(api(manager_a), method)(f"/api/v1/assets/{asset_b.pk}/", {"name": "x", "code": "y"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    asset_b.refresh_from_db()
    assert asset_b.name == "Pump B"


def test_foreign_key_to_another_organisation_in_a_body_is_refused(api, manager_a, org_b):
    location_b = asset_services.create_location(org_b, name="B site")
    response = api(manager_a).post("/api/v1/assets/", {"code": "X-1", "name": "X", "location": location_b.pk})
    assert response.status_code == 400
    assert "location" in response.json()["error"]["fields"]


def test_same_code_in_two_organisations_is_fine_but_not_twice_in_one(api, manager_a, asset_a, asset_b):
    response = api(manager_a).post("/api/v1/assets/", {"code": "PMP-1", "name": "dup"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["code"] == ["An asset with code “PMP-1” already exists."]


def test_member_of_two_organisations_must_name_one(api, member_of_both, asset_a, asset_b):
    response = api(member_of_both).get("/api/v1/assets/")
    assert response.status_code == 400
    assert "org-a, org-b" in response.json()["error"]["message"]
    assert "X-Organization" in response.json()["error"]["message"]


def test_member_of_two_organisations_sees_the_one_named(api, member_of_both, org_a, org_b, asset_a, asset_b):
    names_a = [r["name"] for r in api(member_of_both, org_a).get("/api/v1/assets/").json()["results"]]
    names_b = [r["name"] for r in api(member_of_both, org_b).get("/api/v1/assets/").json()["results"]]
    assert names_a == ["Pump A"]
    assert names_b == ["Pump B"]


def test_role_differs_per_organisation(api, member_of_both, org_a, org_b):
    # planner in A may manage assets; viewer in B may not
    assert api(member_of_both, org_a).post("/api/v1/assets/", {"code": "N", "name": "n"}).status_code == 201
    response = api(member_of_both, org_b).post("/api/v1/assets/", {"code": "N", "name": "n"})
    assert response.status_code == 403
    assert "Viewer" in response.json()["error"]["message"]


def test_naming_an_organisation_you_do_not_belong_to_is_refused(api, manager_a, org_b):
    response = api(manager_a, org_b).get("/api/v1/assets/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


def test_user_without_membership_is_refused(api, db):
    from tests.conftest import make_user

    response = api(make_user("loner")).get("/api/v1/assets/")
    assert response.status_code == 403
    assert "not a member of any organisation" in response.json()["error"]["message"]


def test_anonymous_is_401(api, db):
    response = api().get("/api/v1/assets/")
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reads_and_writes_as_the_table_says(api, org_a, role):
    from tests.conftest import _member

    user = _member(org_a, f"user-{role}", role)
    client = api(user)
    assert client.get("/api/v1/assets/").status_code == 200
    created = client.post("/api/v1/assets/", {"code": f"C-{role}", "name": "c"})
    assert created.status_code == (201 if role_allows(role, Action.MANAGE_ASSETS) else 403)
    keys = client.get("/api/v1/api-keys/")
    assert keys.status_code == (200 if role_allows(role, Action.MANAGE_KEYS) else 403)


def test_role_table_matches_the_product_rules():
    assert role_allows(Role.MANAGER, Action.BYPASS_MAINTENANCE)
    assert not role_allows(Role.TECHNICIAN, Action.ASSIGN_WORK)
    assert role_allows(Role.TECHNICIAN, Action.EXECUTE_WORK)
    assert role_allows(Role.STOREKEEPER, Action.ADJUST_STOCK)
    assert not role_allows(Role.PLANNER, Action.ADJUST_STOCK)
    assert not role_allows(Role.VIEWER, Action.REQUEST_WORK)
    assert role_allows(Role.INTEGRATOR, Action.INGEST_TELEMETRY)
    assert not role_allows(Role.INTEGRATOR, Action.ACTIVATE_SCENARIOS)
    assert role_allows(Role.MANAGER, Action.ACTIVATE_SCENARIOS)


def test_readme_role_table_is_current():
    from pathlib import Path

    from maintenance_site.tenancy.roles import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "README's roles table is stale: paste `manage.py roles_table`"
