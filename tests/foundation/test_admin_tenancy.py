"""The admin for staff who are not superusers: only their active organisation, choices included."""

import pytest

from assets import services as asset_services


@pytest.fixture
def assets(org_a, org_b):
    return (
        asset_services.create_asset(org_a, code="A-1", name="Pump of A"),
        asset_services.create_asset(org_b, code="B-1", name="Pump of B"),
    )


def test_changelist_shows_only_own_organisation(client, manager_a, assets):
    client.force_login(manager_a)
    page = client.get("/admin/assets/asset/").content.decode()
    assert "Pump of A" in page and "Pump of B" not in page


def test_other_organisations_object_is_404_in_admin(client, manager_a, assets):
    client.force_login(manager_a)
    _, asset_b = assets
    assert client.get(f"/admin/assets/asset/{asset_b.pk}/change/").status_code == 404
    assert client.get(f"/admin/assets/asset/{asset_b.pk}/history/").status_code == 404
    assert client.post(f"/admin/assets/asset/{asset_b.pk}/delete/", {"post": "yes"}).status_code == 404
    history_id = asset_b.history.first().history_id
    assert client.get(f"/admin/assets/asset/{asset_b.pk}/history/{history_id}/").status_code == 404


def test_foreign_key_choices_are_scoped(client, manager_a, org_a, org_b):
    asset_services.create_location(org_a, name="Hall of A")
    asset_services.create_location(org_b, name="Hall of B")
    client.force_login(manager_a)
    page = client.get("/admin/assets/asset/add/").content.decode()
    autocomplete = client.get(
        "/admin/autocomplete/", {"app_label": "assets", "model_name": "asset", "field_name": "location"}
    ).json()
    names = [r["text"] for r in autocomplete["results"]]
    assert names == ["Hall of A"]
    assert 'name="organization"' not in page  # the organisation is the active one, not a choice


def test_new_object_lands_in_the_active_organisation(client, manager_a, org_a):
    client.force_login(manager_a)
    response = client.post(
        "/admin/assets/asset/add/",
        {"code": "NEW-1", "name": "added", "criticality": "low", "status": "operational", "organization": "999"},
    )
    assert response.status_code == 302
    from assets.models import Asset

    assert Asset.objects.get(code="NEW-1").organization == org_a


def test_role_without_the_write_action_only_views(client, org_a, assets):
    from maintenance_site.tenancy.roles import Role
    from tests.conftest import _member

    storekeeper = _member(org_a, "store", Role.STOREKEEPER, is_staff=True)
    client.force_login(storekeeper)
    asset_a, _ = assets
    assert client.get("/admin/assets/asset/").status_code == 200
    assert client.get("/admin/assets/asset/add/").status_code == 403
    response = client.post(f"/admin/assets/asset/{asset_a.pk}/change/", {"code": "A-1", "name": "changed"})
    assert response.status_code == 403


def test_technician_has_no_back_office(client, technician_a):
    technician_a.is_staff = True
    technician_a.save()
    client.force_login(technician_a)
    assert client.get("/admin/assets/asset/").status_code == 403


def test_switcher_changes_the_active_organisation(client, org_a, org_b, assets):
    from maintenance_site.tenancy import services
    from maintenance_site.tenancy.roles import Role
    from tests.conftest import make_user

    planner = make_user("planner-of-both", is_staff=True)
    services.add_member(org_a, planner, Role.PLANNER)
    services.add_member(org_b, planner, Role.PLANNER)
    client.force_login(planner)
    page = client.get("/admin/assets/asset/").content.decode()
    assert "Pump of A" in page and "Pump of B" not in page
    response = client.post("/organization/switch/", {"organization": org_b.pk, "next": "/admin/assets/asset/"})
    assert response.status_code == 302
    page = client.get("/admin/assets/asset/").content.decode()
    assert "Pump of B" in page and "Pump of A" not in page


def test_back_office_follows_the_role_in_the_active_organisation(client, member_of_both, org_b):
    client.force_login(member_of_both)  # planner in A, viewer in B
    assert client.get("/admin/assets/asset/").status_code == 200
    client.post("/organization/switch/", {"organization": org_b.pk})
    assert client.get("/admin/assets/asset/").status_code == 403


def test_switcher_refuses_an_organisation_you_are_not_in(client, manager_a, org_b):
    client.force_login(manager_a)
    assert client.post("/organization/switch/", {"organization": org_b.pk}).status_code == 400
