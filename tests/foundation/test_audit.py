"""History rows name whoever acted: admin user, API user, API key's service user, command, Celery."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from assets import services as asset_services
from assets.models import Asset
from maintenance_site import audit
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import ApiKeyScope


def test_api_key_changes_are_attributed_to_its_service_user(org_a):
    api_key, key = services.create_api_key(org_a, name="ERP sync", scope=ApiKeyScope.READ_WRITE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post("/api/v1/assets/", {"code": "K-1", "name": "via key"})
    assert response.status_code == 201
    record = Asset.objects.get(code="K-1").history.get()
    assert record.history_user == api_key.service_user
    assert record.history_user.first_name == "ERP sync"


def test_jwt_user_changes_are_attributed_to_them(api, manager_a, org_a):
    asset = asset_services.create_asset(org_a, code="J-1", name="a")
    api(manager_a).patch(f"/api/v1/assets/{asset.pk}/", {"name": "renamed"})
    latest = asset.history.first()
    assert latest.name == "renamed"
    assert latest.history_user == manager_a
    assert latest.history_type == "~"


def test_admin_changes_are_attributed_to_the_staff_user(client, manager_a, org_a):
    asset = asset_services.create_asset(org_a, code="AD-1", name="a")
    client.force_login(manager_a)
    response = client.post(
        f"/admin/assets/asset/{asset.pk}/change/",
        {"code": "AD-1", "name": "from admin", "criticality": "high", "status": "operational"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert asset.history.first().history_user == manager_a


def test_command_changes_are_attributed_to_the_system_user(db):
    call_command("create_organization", "Cmd Org", slug="cmd")
    from maintenance_site.tenancy.models import Organization

    record = Organization.objects.get(slug="cmd").history.get()
    assert record.history_user.username == audit.SYSTEM_USERNAME


def test_celery_task_changes_are_attributed_to_the_system_user(org_a):
    from celery import shared_task

    @shared_task
    def rename(asset_id):
        asset = Asset.objects.get(pk=asset_id)
        asset_services.update_asset(asset, name="by task")

    asset = asset_services.create_asset(org_a, code="T-1", name="a")
    rename.delay(asset.pk)
    assert asset.history.first().history_user.username == audit.SYSTEM_USERNAME


def test_acting_as_sets_user_and_reason(org_a, manager_a):
    asset = asset_services.create_asset(org_a, code="R-1", name="a")
    with audit.acting_as(manager_a, reason="label was wrong"):
        asset_services.update_asset(asset, name="b")
    latest = asset.history.first()
    assert (latest.history_user, latest.history_change_reason) == (manager_a, "label was wrong")


def test_bulk_create_writes_history(org_a, manager_a):
    with audit.acting_as(manager_a, reason="import"):
        audit.bulk_create_with_history([Asset(organization=org_a, code=f"B-{i}", name="bulk") for i in range(3)], Asset)
    history = Asset.history.filter(code__startswith="B-")
    assert history.count() == 3
    assert {h.history_user for h in history} == {manager_a}


@pytest.mark.django_db
def test_system_user_cannot_log_in():
    user = audit.system_user()
    assert not user.is_active and not user.has_usable_password()
