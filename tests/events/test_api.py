"""`GET /api/v1/events/?after=` (catch-up) and `POST /api/v1/events/ticket`."""

import pytest
from django.core.cache import cache

from maintenance_site.events import services
from maintenance_site.events.models import Event


def _publish(org, count, user=None):
    for n in range(count):
        services.publish(org, "work-order:created", {"n": n}, user=user)
    services.number_pending_events()


def test_catch_up_pages_through_the_organisations_events(api, manager_a, org_a, org_b):
    _publish(org_a, 5)
    _publish(org_b, 2)
    services.publish(org_a, "work-order:closed")  # committed but not numbered yet: not listed
    client = api(manager_a, org_a)

    body = client.get("/api/v1/events/?after=0&limit=2").json()
    assert [e["sequence"] for e in body["events"]] == [1, 2]
    assert body["last_sequence"] == 2
    assert body["has_more"] is True
    assert body["events"][0]["type"] == "work-order:created"
    assert body["events"][0]["organization"] == org_a.pk
    assert body["events"][0]["payload"] == {"n": 0}

    body = client.get("/api/v1/events/", {"after": body["last_sequence"], "limit": 2}).json()
    assert [e["sequence"] for e in body["events"]] == [3, 4]
    body = client.get("/api/v1/events/", {"after": body["last_sequence"]}).json()
    assert [e["sequence"] for e in body["events"]] == [5]
    assert (body["last_sequence"], body["has_more"]) == (5, False)

    empty = client.get("/api/v1/events?after=5").json()  # also without the trailing slash
    assert empty == {"events": [], "last_sequence": 5, "has_more": False}
    assert client.get("/api/v1/events/3").status_code == 404  # no detail route


def test_the_default_is_everything_kept_up_to_a_hundred(api, manager_a, org_a):
    _publish(org_a, 101)
    body = api(manager_a, org_a).get("/api/v1/events/").json()
    assert len(body["events"]) == 100
    assert body["has_more"] is True
    assert body["last_sequence"] == 100


def test_events_concerning_one_user_are_visible_to_every_member(api, manager_a, technician_a, org_a):
    _publish(org_a, 1, user=manager_a)
    body = api(technician_a, org_a).get("/api/v1/events/").json()
    assert [e["user"] for e in body["events"]] == [manager_a.pk]


def test_another_organisation_sees_none_of_them(api, manager_a, manager_b, org_a, org_b):
    _publish(org_a, 3)
    assert api(manager_b, org_b).get("/api/v1/events/").json()["events"] == []
    response = api(manager_b, org_a).get("/api/v1/events/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


@pytest.mark.parametrize(
    "query, field",
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=1.5", "after"),
        ("after=99999999999999999999999", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
    ],
)
def test_bad_parameters_are_a_400_in_the_error_format(api, manager_a, org_a, query, field):
    response = api(manager_a, org_a).get(f"/api/v1/events/?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400
    assert error["code"] == "invalid"
    assert field in error["fields"]


def test_anonymous_callers_are_refused(api, org_a):
    assert api().get("/api/v1/events/").status_code == 401
    assert api().post("/api/v1/events/ticket").status_code == 401


def test_a_ticket_is_single_use_and_bound_to_the_caller(api, technician_a, org_a):
    response = api(technician_a, org_a).post("/api/v1/events/ticket")
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 60
    assert len(body["ticket"]) >= 32
    assert cache.get(body["ticket"]) is None  # only a hash of it is stored

    membership = services.redeem_websocket_ticket(body["ticket"])
    assert (membership.user_id, membership.organization_id) == (technician_a.pk, org_a.pk)
    assert services.redeem_websocket_ticket(body["ticket"]) is None
    assert services.redeem_websocket_ticket("made-up") is None
    assert services.redeem_websocket_ticket("") is None


def test_a_ticket_expires(api, manager_a, org_a, monkeypatch):
    ticket = api(manager_a, org_a).post("/api/v1/events/ticket").json()["ticket"]
    now = services._ticket_clock()
    monkeypatch.setattr(services, "_ticket_clock", lambda: now + 61)
    assert services.redeem_websocket_ticket(ticket) is None


def test_a_ticket_of_a_membership_that_ended_opens_nothing(api, manager_a, org_a):
    ticket = api(manager_a, org_a).post("/api/v1/events/ticket").json()["ticket"]
    manager_a.memberships.update(is_active=False)
    assert services.redeem_websocket_ticket(ticket) is None


def test_a_read_only_api_key_may_get_a_ticket(api, manager_a, org_a):
    from rest_framework.test import APIClient

    from maintenance_site.tenancy.services import create_api_key

    api_key, key = create_api_key(org_a, name="dashboard", created_by=manager_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post("/api/v1/events/ticket")
    assert response.status_code == 201, response.json()
    membership = services.redeem_websocket_ticket(response.json()["ticket"])
    assert membership.user_id == api_key.service_user_id
    assert client.get("/api/v1/events/").status_code == 200
    assert Event.objects.count() == 0
