"""What `/api/v1/status` tells whom: anyone (a monitor without credentials) the overall health and the maintenance
mode; a signed-in user, a JWT or an API key also the version, each component and the scenarios."""

import pytest
from rest_framework.test import APIClient

from maintenance_site.tenancy import services as tenancy

pytestmark = pytest.mark.django_db

DETAILS = {"version", "components", "scenarios"}


def test_anyone_gets_health_and_maintenance_mode_only(client, beat_alive):
    response = client.get("/api/v1/status")
    assert response.status_code == 200
    assert response.json() == {"healthy": True, "maintenance_mode": {"active": False, "expected_end": None}}


def test_anyone_sees_a_component_down_as_unhealthy_without_learning_which(client, cache_down):
    body = client.get("/api/v1/status").json()
    assert body["healthy"] is False
    assert not DETAILS & set(body)


@pytest.mark.parametrize("how", ["jwt", "api-key", "session"])
def test_signed_in_callers_get_components_and_scenarios(api, client, manager_a, org_a, beat_alive, how):
    if how == "jwt":
        caller = api(manager_a)
    elif how == "api-key":
        _, key = tenancy.create_api_key(org_a, name="monitor")
        caller = APIClient()
        caller.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    else:
        caller = client
        caller.force_login(manager_a)
    body = caller.get("/api/v1/status").json()
    assert set(body) >= DETAILS
    assert set(body["components"]) == {"database", "cache", "broker", "beat"}
    assert "organizations_in_maintenance" in body["maintenance_mode"]


def test_a_bad_token_is_told_so_rather_than_served_the_public_form(db):
    caller = APIClient()
    caller.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert caller.get("/api/v1/status").status_code == 401
