"""The three audiences' ways in: session (staff, technicians), JWT and API keys (integrators)."""

from datetime import timedelta

import pytest
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from assets.models import Asset
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import ApiKeyScope


def key_client(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def test_jwt_obtained_with_username_and_password_works(manager_a):
    client = APIClient()
    tokens = client.post("/api/v1/auth/token/", {"username": "manager-a", "password": "pw-manager-a"}).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/v1/me").json()["role"] == "manager"
    refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200 and refreshed.json()["access"]


def test_wrong_password_is_401_with_a_message(manager_a):
    response = APIClient().post("/api/v1/auth/token/", {"username": "manager-a", "password": "nope"})
    assert response.status_code == 401
    assert "No active account" in response.json()["error"]["message"]


def test_expired_jwt_is_401_saying_so(manager_a):
    token = AccessToken.for_user(manager_a)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/v1/assets/")
    assert response.status_code == 401
    assert "Token is expired" in response.json()["error"]["message"]
    assert "/api/v1/auth/token/refresh/" in response.json()["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_api_key_acts_in_its_own_organisation(org_a, org_b):
    from assets import services as asset_services

    asset_services.create_asset(org_a, code="A", name="in A")
    asset_services.create_asset(org_b, code="B", name="in B")
    _, key = services.create_api_key(org_a, name="ERP")
    response = key_client(key).get("/api/v1/assets/")
    assert [r["name"] for r in response.json()["results"]] == ["in A"]
    # naming another organisation does not move the key out of its own
    other = key_client(key).get("/api/v1/assets/", HTTP_X_ORGANIZATION=org_b.slug)
    assert [r["name"] for r in other.json()["results"]] == ["in A"]


def test_read_only_key_cannot_write(org_a):
    _, key = services.create_api_key(org_a, name="dashboard", scope=ApiKeyScope.READ)
    response = key_client(key).post("/api/v1/assets/", {"code": "X", "name": "x"})
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


def test_revoked_key_is_401_saying_so(org_a):
    api_key, key = services.create_api_key(org_a, name="old", scope=ApiKeyScope.READ_WRITE)
    assert key_client(key).get("/api/v1/assets/").status_code == 200
    services.revoke_api_key(api_key)
    response = key_client(key).get("/api/v1/assets/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_expired_key_is_401_saying_so(org_a):
    api_key, key = services.create_api_key(org_a, name="temp", expiry_date=timezone.now() + timedelta(minutes=1))
    type(api_key).objects.filter(pk=api_key.pk).update(expiry_date=timezone.now() - timedelta(minutes=1))
    response = key_client(key).get("/api/v1/assets/")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_garbage_key_is_401(db):
    assert key_client("abc.def").get("/api/v1/assets/").status_code == 401


def test_key_records_last_use(org_a):
    api_key, key = services.create_api_key(org_a, name="ERP")
    assert api_key.last_used_at is None
    key_client(key).get("/api/v1/assets/")
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_key_used_again_within_a_minute_sends_no_update(org_a):
    """The stamp has a minute's resolution, decided on the key just read: no UPDATE statement at all (not even one
    matching no row) on a busy key's requests."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api_key, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    with CaptureQueriesContext(connection) as first:
        client.get("/api/v1/assets/")
    with CaptureQueriesContext(connection) as second:
        client.get("/api/v1/assets/")
    updates = [q["sql"] for q in second.captured_queries if "UPDATE" in q["sql"] and "apikey" in q["sql"]]
    assert [q for q in first.captured_queries if "UPDATE" in q["sql"] and "apikey" in q["sql"]]
    assert updates == []


def test_key_is_stored_hashed(org_a):
    api_key, key = services.create_api_key(org_a, name="ERP")
    assert key not in api_key.hashed_key and key.split(".")[1] not in api_key.id


def test_manager_creates_and_revokes_keys_over_the_api(api, manager_a):
    client = api(manager_a)
    created = client.post("/api/v1/api-keys/", {"name": "BI tool", "scope": "read"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key and key_client(key).get("/api/v1/assets/").status_code == 200
    assert client.get("/api/v1/api-keys/").json()["results"][0]["key"] is None  # shown once only
    assert client.post(f"/api/v1/api-keys/{created.json()['prefix']}/revoke").status_code == 200
    assert key_client(key).get("/api/v1/assets/").status_code == 401


def test_session_login_works_for_the_browsable_api(client, manager_a):
    # django-axes counts sign-ins per client address, so authenticate() needs a request
    assert client.login(request=HttpRequest(), username="manager-a", password="pw-manager-a")
    assert client.get("/api/v1/assets/", HTTP_ACCEPT="application/json").status_code == 200


@pytest.mark.parametrize("bad", ["", "   "])
def test_key_needs_a_name(org_a, bad):
    from maintenance_site.errors import InvalidInput

    with pytest.raises(InvalidInput):
        services.create_api_key(org_a, name=bad)
    assert not Asset.objects.exists()
