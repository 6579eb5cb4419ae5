"""`/api/v1/chat-channels/` (issue 25): the organisation's chat channels over the API, for managers and integrators.
The URL is a credential: written, never read back, stored encrypted, refused when it points at a private address."""

import json
import socket

import pytest

from maintenance_site.notifications.models import ChatChannel
from maintenance_site.security import encryption
from maintenance_site.security import outbound as targets

pytestmark = [pytest.mark.django_db]
URL = "http://127.0.0.1:9/services/T000/B000/XXXX"


def create(api, user, org, **extra):
    body = {"name": "ops", "kind": "slack", "url": URL, "kinds": ["sla:*"], **extra}
    return api(user, org).post("/api/v1/chat-channels/", body, format="json")


def test_a_manager_and_an_integrator_configure_channels(api, org_a, manager_a, integrator_a):
    response = create(api, manager_a, org_a)
    assert response.status_code == 201, response.content
    created = response.json()
    assert "url" not in created and created["url_hint"].startswith("http://127.0.0.1/services/")
    assert created["kinds"] == ["sla:*"] and created["kind"] == "slack" and created["is_active"] is True
    stored = ChatChannel.objects.get(pk=created["id"])
    assert URL not in stored.url_encrypted and encryption.decrypt(stored.url_encrypted) == URL

    client = api(integrator_a, org_a)
    changed = client.patch(
        f"/api/v1/chat-channels/{created['id']}/", {"kinds": ["*"], "is_active": False}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["kinds"] == ["*"] and changed.json()["is_active"] is False
    stored.refresh_from_db()
    assert encryption.decrypt(stored.url_encrypted) == URL  # a PATCH without a URL keeps it

    new_url = "http://127.0.0.1:9/workflows/abc"
    assert client.patch(f"/api/v1/chat-channels/{created['id']}/", {"url": new_url}, format="json").status_code == 200
    stored.refresh_from_db()
    assert encryption.decrypt(stored.url_encrypted) == new_url

    listed = client.get("/api/v1/chat-channels/").json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]
    assert all("url" not in row for row in listed["results"])
    assert not any(URL in json.dumps(row) or new_url in json.dumps(row) for row in listed["results"])

    assert client.delete(f"/api/v1/chat-channels/{created['id']}/").status_code == 204
    assert not ChatChannel.objects.exists()


def test_other_roles_are_refused(api, org_a, manager_a, technician_a, planner_a, viewer_a):
    for user in (technician_a, planner_a, viewer_a):
        assert create(api, user, org_a, name=user.username).status_code == 403
        assert api(user, org_a).get("/api/v1/chat-channels/").status_code == 403
    assert not ChatChannel.objects.exists()


def test_another_organisations_channel_is_a_404(api, org_a, org_b, manager_a, manager_b):
    channel_id = create(api, manager_a, org_a).json()["id"]
    client = api(manager_b, org_b)
    assert client.get(f"/api/v1/chat-channels/{channel_id}/").status_code == 404
    assert client.patch(f"/api/v1/chat-channels/{channel_id}/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/chat-channels/{channel_id}/").status_code == 404
    assert client.get("/api/v1/chat-channels/").json()["results"] == []
    assert ChatChannel.objects.get(pk=channel_id).name == "ops"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kinds": ["no-such:kind"]}, "kinds"),
        ({"kinds": []}, "kinds"),
        ({"kind": "irc"}, "kind"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x"}, "url"),
        ({"url": "https://no-such-host.invalid/x"}, "url"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, org_a, manager_a, body, field):
    response = create(api, manager_a, org_a, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not ChatChannel.objects.exists()


def test_a_second_channel_of_the_same_name_is_refused(api, org_a, org_b, manager_a, manager_b):
    assert create(api, manager_a, org_a).status_code == 201
    assert create(api, manager_a, org_a).status_code == 400
    assert create(api, manager_b, org_b).status_code == 201  # names are per organisation


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "fd00::5", "100.64.0.1"])
def test_private_targets_are_refused_as_for_webhooks(api, org_a, manager_a, settings, monkeypatch, address):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(targets, "_getaddrinfo", lambda host, port: [(family, 1, 6, "", (address, port))])
    response = create(api, manager_a, org_a, url="https://hooks.slack.test/services/T/B/X")
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]
    monkeypatch.setattr(targets, "_getaddrinfo", lambda host, port: [(2, 1, 6, "", ("93.184.216.34", port))])
    channel_id = create(api, manager_a, org_a, url="https://hooks.slack.test/services/T/B/X").json()["id"]
    monkeypatch.setattr(targets, "_getaddrinfo", lambda host, port: [(family, 1, 6, "", (address, port))])
    response = api(manager_a, org_a).patch(
        f"/api/v1/chat-channels/{channel_id}/", {"url": "https://other.slack.test/x"}, format="json"
    )  # the same check on a change
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]


def test_the_list_is_constant_in_queries(api, org_a, manager_a, django_assert_max_num_queries):
    client = api(manager_a, org_a)
    create(api, manager_a, org_a)
    with django_assert_max_num_queries(30) as one:
        assert len(client.get("/api/v1/chat-channels/").json()["results"]) == 1
    one_row = len(one)
    for number in range(8):
        create(api, manager_a, org_a, name=f"channel {number}")
    with django_assert_max_num_queries(one_row):  # auth, throttles, the page and its count
        assert len(client.get("/api/v1/chat-channels/").json()["results"]) == 9
