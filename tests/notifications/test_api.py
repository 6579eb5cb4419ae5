"""`/api/v1/notifications/`: every member sees and manages only their own notifications, in the active
organisation; anonymous callers get a 401, another person's or organisation's notification a 404."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from maintenance_site.notifications import services
from maintenance_site.notifications.models import Notification, NotificationPreference, NotificationProfile

URL = "/api/v1/notifications/"


def make(org, user, title="Low stock: filter F-12", kind="inventory:low-stock"):
    [notification] = services.notify(org, user, kind, {"title": title, "body": "2 left, reorder point 5."})
    return notification


@pytest.fixture
def mine(org_a, technician_a):
    return [make(org_a, technician_a, f"Notice {i}") for i in range(3)]


def test_list_shows_only_mine_in_the_active_organisation(
    api, org_a, org_b, technician_a, viewer_a, member_of_both, mine
):
    make(org_a, viewer_a, "For the viewer")
    response = api(technician_a).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [item["title"] for item in body["results"]] == ["Notice 2", "Notice 1", "Notice 0"]  # newest first
    first = body["results"][0]
    assert first["kind"] == "inventory:low-stock"
    assert first["kind_label"] == "Stock below its reorder point"
    assert first["is_read"] is False and first["read_at"] is None

    make(org_a, member_of_both, "In A")
    make(org_b, member_of_both, "In B")
    in_a = api(member_of_both, org_a).get(URL).json()
    in_b = api(member_of_both, org_b).get(URL).json()
    assert [item["title"] for item in in_a["results"]] == ["In A"]
    assert [item["title"] for item in in_b["results"]] == ["In B"]


def test_list_is_paginated_and_filters_unread(api, technician_a, mine):
    services.mark_read(mine[0])
    client = api(technician_a)
    unread = client.get(URL, {"unread": "true"}).json()
    assert sorted(item["id"] for item in unread["results"]) == sorted(n.pk for n in mine[1:])
    read = client.get(URL, {"unread": "false"}).json()
    assert [item["id"] for item in read["results"]] == [mine[0].pk]
    page = client.get(URL, {"page_size": 2}).json()  # pages by cursor, newest first: nothing counted
    assert page["count"] is None and len(page["results"]) == 2 and "cursor=" in page["next"]
    rest = client.get(page["next"]).json()
    assert [item["id"] for item in page["results"] + rest["results"]] == [n.pk for n in reversed(mine)]
    assert rest["next"] is None
    assert client.get(URL, {"page_size": 2, "page": 1}).json()["count"] == 3  # ?page= still counts


def test_list_queries_do_not_grow_with_the_list(api, org_a, technician_a):
    client = api(technician_a)
    make(org_a, technician_a)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    for i in range(10):
        make(org_a, technician_a, f"More {i}")
    with CaptureQueriesContext(connection) as large:
        assert client.get(URL).json()["count"] == 11
    assert len(large) == len(small)


def test_retrieve_mine(api, technician_a, mine):
    response = api(technician_a).get(f"{URL}{mine[0].pk}")
    assert response.status_code == 200
    assert response.json()["id"] == mine[0].pk
    assert response.has_header("ETag")


def test_read_marks_one_read(api, technician_a, mine):
    client = api(technician_a)
    response = client.post(f"{URL}{mine[0].pk}/read")
    assert response.status_code == 200
    assert response.json()["is_read"] is True
    first_read_at = response.json()["read_at"]
    assert first_read_at
    again = client.post(f"{URL}{mine[0].pk}/read/")
    assert again.status_code == 200 and again.json()["read_at"] == first_read_at  # harmless, keeps the time
    assert client.get(f"{URL}unread-count").json() == {"unread": 2}


def test_read_all_marks_only_mine_in_this_organisation(api, org_a, org_b, technician_a, viewer_a, member_of_both, mine):
    theirs = make(org_a, viewer_a)
    make(org_a, member_of_both)
    elsewhere = make(org_b, member_of_both)
    response = api(technician_a).post(f"{URL}read-all")
    assert response.status_code == 200 and response.json() == {"marked_read": 3}
    assert not Notification.objects.filter(recipient=technician_a, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None

    assert api(member_of_both, org_a).post(f"{URL}read-all").json() == {"marked_read": 1}
    elsewhere.refresh_from_db()
    assert elsewhere.read_at is None


def test_unread_count(api, org_a, technician_a, viewer_a, mine):
    make(org_a, viewer_a)
    assert api(technician_a).get(f"{URL}unread-count").json() == {"unread": 3}
    assert api(viewer_a).get(f"{URL}unread-count/").json() == {"unread": 1}


def test_another_users_notification_is_a_404(api, org_a, technician_a, viewer_a, manager_a):
    theirs = make(org_a, viewer_a)
    client = api(manager_a)  # even a manager does not read other people's notifications
    assert client.get(f"{URL}{theirs.pk}").status_code == 404
    response = client.post(f"{URL}{theirs.pk}/read")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_another_organisations_notification_is_a_404(api, org_a, org_b, member_of_both, manager_b):
    in_b = make(org_b, member_of_both)
    client = api(member_of_both, org_a)  # their own, but acting in A
    assert client.get(f"{URL}{in_b.pk}").status_code == 404
    assert client.post(f"{URL}{in_b.pk}/read").status_code == 404
    in_a = make(org_a, member_of_both)
    assert api(manager_b).get(f"{URL}{in_a.pk}").status_code == 404
    assert api(manager_b).post(f"{URL}{in_a.pk}/read").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "1"),
        ("post", "1/read"),
        ("post", "read-all"),
        ("get", "unread-count"),
        ("get", "preferences"),
        ("put", "preferences"),
    ],
)
def test_anonymous_is_a_401(api, db, method, path):
    response = getattr(api(), method)(f"{URL}{path}")
    assert response.status_code == 401


def test_every_role_manages_its_own(api, org_a, integrator_a, viewer_a):
    for user in (integrator_a, viewer_a):
        make(org_a, user)
        client = api(user)
        assert client.get(URL).json()["count"] == 1
        assert client.post(f"{URL}read-all").status_code == 200
        assert client.get(f"{URL}preferences").status_code == 200


# --- preferences -------------------------------------------------------------------------------------


def test_preferences_read(api, org_a, technician_a, settings):
    settings.SLACK_WEBHOOK_URL = "https://hooks.example.com/secret"
    body = api(technician_a).get(f"{URL}preferences").json()
    assert body["phone_number"] == ""
    assert body["available_channels"] == ["in_app", "email", "slack", "webpush"]  # webpush: its key is generated
    kinds = {item["kind"]: item for item in body["kinds"]}
    assert kinds["sla:violation"] == {
        "kind": "sla:violation",
        "label": "SLA violated",
        "channels": ["in_app", "email", "slack", "push"],
        "default_channels": ["in_app", "email", "slack", "push"],
        "customised": False,
    }


def test_preferences_update(api, org_a, org_b, technician_a, member_of_both):
    client = api(technician_a)
    response = client.put(
        f"{URL}preferences",
        {
            "phone_number": "+4915112345678",
            "kinds": [
                {"kind": "sla:violation", "channels": ["sms"]},
                {"kind": "inventory:low-stock", "channels": []},
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    kinds = {item["kind"]: item for item in response.json()["kinds"]}
    assert kinds["sla:violation"]["channels"] == ["in_app", "sms"]  # in_app cannot be switched off
    assert kinds["inventory:low-stock"]["channels"] == ["in_app"]
    assert kinds["sla:violation"]["customised"] is True
    assert response.json()["phone_number"] == "+4915112345678"
    assert NotificationPreference.objects.filter(user=technician_a, organization=org_a).count() == 2

    # null goes back to the defaults; kinds not named keep their choice
    response = client.put(f"{URL}preferences", {"kinds": [{"kind": "sla:violation", "channels": None}]}, format="json")
    kinds = {item["kind"]: item for item in response.json()["kinds"]}
    assert kinds["sla:violation"]["customised"] is False
    assert kinds["inventory:low-stock"]["channels"] == ["in_app"]
    assert NotificationProfile.objects.get(user=technician_a).phone_number == "+4915112345678"

    # preferences are per organisation
    api(member_of_both, org_b).put(
        f"{URL}preferences", {"kinds": [{"kind": "sla:warning", "channels": []}]}, format="json"
    )
    in_a = api(member_of_both, org_a).get(f"{URL}preferences").json()
    assert {item["kind"]: item for item in in_a["kinds"]}["sla:warning"]["customised"] is False


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kinds": [{"kind": "no:such-kind", "channels": []}]}, "kinds"),
        ({"kinds": [{"kind": "sla:warning", "channels": ["pigeon"]}]}, "kinds.1.channels.0"),
        ({"phone_number": "0151 123"}, "phone_number"),
    ],
)
def test_preferences_refuse_bad_input_and_change_nothing(api, technician_a, payload, field):
    client = api(technician_a)
    valid = {"phone_number": "+4915112345678", "kinds": [{"kind": "sla:violation", "channels": []}]}
    response = client.put(
        f"{URL}preferences",
        {**valid, **payload, "kinds": valid["kinds"] + payload.get("kinds", [])},
        format="json",
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not NotificationPreference.objects.exists()
    assert not NotificationProfile.objects.exclude(phone_number="").exists()  # all of the PUT or nothing
