"""Back office: read-only lists of notifications and deliveries, scoped to the organisation, with status
and kind filters, and a "retry failed deliveries" action for managers."""

import pytest

from maintenance_site.notifications import services
from maintenance_site.notifications.models import Channel, Notification, NotificationDelivery

Status = NotificationDelivery.Status
DELIVERIES = "/admin/notifications/notificationdelivery/"
NOTIFICATIONS = "/admin/notifications/notification/"


@pytest.fixture
def rows(org_a, org_b, manager_a, technician_a, manager_b, settings, http_endpoint, notify_now):
    """In A: an SLA violation whose Slack post failed for good, a low-stock notice. In B: one notice."""
    slack = http_endpoint(default=404)
    settings.SLACK_WEBHOOK_URL = slack.url
    notify_now(org_a, manager_a, "sla:violation", {"title": "SLA violated", "body": "WO-1 is late."})
    notify_now(org_a, technician_a, "inventory:low-stock", {"title": "Filter low", "body": "2 left."})
    notify_now(org_b, manager_b, "inventory:low-stock", {"title": "Secret of B", "body": "B's stock."})
    slack.default = 200
    return slack


def admin_client(client, user):
    client.force_login(user)
    return client


def test_delivery_list_is_scoped_and_filters_by_status_and_kind(client, manager_a, rows):
    client = admin_client(client, manager_a)
    response = client.get(DELIVERIES)
    assert response.status_code == 200
    shown = {row.pk for row in response.context["cl"].result_list}
    assert shown == set(NotificationDelivery.objects.filter(organization__slug="org-a").values_list("pk", flat=True))
    assert b"Secret of B" not in response.content

    failed = client.get(DELIVERIES, {"status": "failed"}).context["cl"].result_list
    assert [(d.channel, d.status) for d in failed] == [(Channel.SLACK, Status.FAILED)]
    by_kind = client.get(DELIVERIES, {"kind": "inventory:low-stock"}).context["cl"].result_list
    assert {d.notification.title for d in by_kind} == {"Filter low"}


def test_notification_list_is_scoped_and_read_only(client, manager_a, rows):
    client = admin_client(client, manager_a)
    response = client.get(NOTIFICATIONS, {"kind": "inventory:low-stock"})
    assert response.status_code == 200
    assert [n.title for n in response.context["cl"].result_list] == ["Filter low"]
    notification = Notification.objects.get(title="Filter low")
    detail = client.get(f"{NOTIFICATIONS}{notification.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.get(f"{NOTIFICATIONS}{notification.pk}/history/").status_code == 200
    assert client.get(f"{NOTIFICATIONS}add/").status_code == 403
    theirs = Notification.objects.get(title="Secret of B")
    assert client.get(f"{NOTIFICATIONS}{theirs.pk}/change/").status_code == 404


def test_manager_retries_failed_deliveries(client, manager_a, rows, django_capture_on_commit_callbacks):
    failed = NotificationDelivery.objects.get(status=Status.FAILED)
    everything = NotificationDelivery.objects.filter(organization__slug="org-a").values_list("pk", flat=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client(client, manager_a).post(
            DELIVERIES, {"action": "retry_failed", "_selected_action": list(everything)}, follow=True
        )
    assert response.status_code == 200
    assert "Queued 1 failed delivery for another round of attempts." in response.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (Status.SENT, 1)
    assert len(rows.requests) == 2


def test_a_planner_may_look_but_not_retry(client, planner_a, rows):
    failed = NotificationDelivery.objects.get(status=Status.FAILED)
    client = admin_client(client, planner_a)
    assert client.get(DELIVERIES).status_code == 200
    client.post(DELIVERIES, {"action": "retry_failed", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == Status.FAILED


def test_retry_deliveries_ignores_what_did_not_fail(org_a, technician_a, notify_now):
    notify_now(org_a, technician_a, "inventory:low-stock", {"title": "t", "body": "b"})
    assert services.retry_deliveries(NotificationDelivery.objects.all()) == 0


CHANNELS = "/admin/notifications/chatchannel/"


def test_chat_channels_in_the_back_office_need_manage_webhooks_like_the_api(client, org_a, manager_a, planner_a):
    from maintenance_site.notifications import chat_api
    from maintenance_site.notifications.admin import ChatChannelAdmin

    assert ChatChannelAdmin.write_action == chat_api.MANAGE  # one permission for the channels, admin and API
    channel = services.create_chat_channel(
        org_a, actor=manager_a, name="Ops", kind="webhook", url="http://127.0.0.1:9/hook", kinds=["*"]
    )
    planner = admin_client(client, planner_a)  # a back-office role without manage_webhooks
    assert planner.get(CHANNELS).status_code == 403
    assert planner.get(f"{CHANNELS}{channel.pk}/change/").status_code == 403
    assert planner.get(f"{CHANNELS}add/").status_code == 403
    manager = admin_client(client, manager_a)
    assert manager.get(CHANNELS).status_code == 200
    assert manager.get(f"{CHANNELS}{channel.pk}/change/").status_code == 200
    assert manager.get(f"{CHANNELS}add/").status_code == 200
