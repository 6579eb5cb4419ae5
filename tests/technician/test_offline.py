"""A technician's day without signal, server side: lifecycle steps and parts sent from the phone's offline queue
(applied once per client id, dated by the device within bounds, refused honestly when they no longer apply), the
bundle the phone saves for offline use (and its size for 50 orders), the installable app's manifest and icons,
and Web Push (a subscription per phone, the payload decrypted by a local push service, an unreachable one)."""

import base64
import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from inventory.models import StockLevel, StockMovement
from maintenance_site.notifications import services as notification_services
from maintenance_site.notifications import webpush
from maintenance_site.notifications.models import (
    Channel,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    WebPushSubscription,
)
from maintenance_site.notifications.senders import DeliveryFailed
from workorders import services
from workorders.models import ChecklistItem, OfflineAction, WorkOrder

pytestmark = pytest.mark.django_db
S = WorkOrder.Status


def url(name, *args):
    return reverse(f"technician:{name}", args=args)


def post_json(client, path, payload):
    return client.post(path, json.dumps(payload), content_type="application/json")


def step(client, order, action, *, client_id=None, occurred_at=None, **extra):
    body = {"client_id": client_id or str(uuid.uuid4()), **extra}
    if occurred_at is not None:
        body["occurred_at"] = occurred_at.isoformat()
    return post_json(client, url("api-step", order.pk, action), body)


def backdate(order, hours=2):
    """The order was created and assigned `hours` ago (its row and history), so a step an hour ago is after that."""
    WorkOrder.objects.filter(pk=order.pk).update(created_at=F("created_at") - timedelta(hours=hours))
    order.history.update(history_date=F("history_date") - timedelta(hours=hours))
    order.refresh_from_db()


def tick_required(order, technician):
    for item in ChecklistItem.objects.filter(work_order=order, required=True):
        services.record_checklist_result(item, actor=technician, done=True)


# --- lifecycle steps from the offline queue --------------------------------------------------------------


def test_steps_done_offline_carry_the_device_time_into_the_order_its_history_and_apply_once(
    client_of, order, technician_a
):
    client = client_of(technician_a)
    backdate(order)
    began = timezone.now() - timedelta(minutes=40)
    first = step(client, order, "start", client_id="start-1", occurred_at=began)
    assert first.status_code == 201, first.content
    assert first.json()["order_status"] == "in_progress"

    again = step(client, order, "start", client_id="start-1", occurred_at=began)  # the replay after a lost answer
    assert again.status_code == 200 and again.json()["message"].endswith("already done.")
    order.refresh_from_db()
    assert order.status == S.IN_PROGRESS and order.started_at == began
    record = order.history.filter(status=S.IN_PROGRESS).get()  # one history row for the start: applied once
    assert record.history_date == began and record.history_user == technician_a
    assert "done offline, sent at" in record.history_change_reason
    action = OfflineAction.objects.get()
    assert (action.author, action.occurred_at, action.action) == (technician_a, began, "start")
    assert action.created_at > began  # the sync time, kept apart

    tick_required(order, technician_a)
    finished = timezone.now() - timedelta(minutes=5)
    done = step(client, order, "complete", occurred_at=finished, notes="Seal replaced")
    assert done.status_code == 201, done.content
    order.refresh_from_db()
    assert (order.status, order.completed_at, order.completion_notes) == (S.COMPLETED, finished, "Seal replaced")


def test_a_reused_client_id_with_other_content_is_a_409_naming_the_first_step(client_of, order, technician_a):
    client = client_of(technician_a)
    assert step(client, order, "start", client_id="same").status_code == 201
    reused = step(client, order, "hold", client_id="same", reason="Waiting for a part")
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "client_id_reused"
    assert "offline start of" in reused.json()["error"]["message"]
    order.refresh_from_db()
    assert order.status == S.IN_PROGRESS  # the hold was not applied silently


def test_device_times_out_of_bounds_are_refused_on_the_field(client_of, order, technician_a, settings):
    client = client_of(technician_a)
    future = step(client, order, "start", occurred_at=timezone.now() + timedelta(minutes=10))
    assert future.status_code == 400
    assert "in the future" in future.json()["error"]["fields"]["occurred_at"][0]
    too_old = step(
        client, order, "start", occurred_at=timezone.now() - timedelta(days=settings.OFFLINE_MAX_AGE_DAYS + 1)
    )
    assert too_old.status_code == 400 and "too old" in too_old.json()["error"]["message"]
    before = step(client, order, "start", occurred_at=order.created_at - timedelta(hours=1))
    assert before.status_code == 400 and "before WO-" in before.json()["error"]["message"]
    order.refresh_from_db()
    assert order.status == S.ASSIGNED and not OfflineAction.objects.exists()


def test_before_it_was_mine_means_before_the_latest_assignment_to_me(
    client_of, order, technician_a, technician2_a, planner_a
):
    services.assign(order, technician2_a, actor=planner_a)
    services.assign(order, technician_a, actor=planner_a)
    mine_since = order.history.order_by("-history_date").first().history_date
    response = step(client_of(technician_a), order, "start", occurred_at=mine_since - timedelta(minutes=30))
    assert response.status_code == 400
    assert services.assigned_since(order, technician_a) == mine_since


def test_steps_that_no_longer_apply_are_refused_with_what_happened(
    client_of, order, technician_a, technician2_a, planner_a
):
    client = client_of(technician_a)
    services.assign(order, technician2_a, actor=planner_a)  # reassigned while I was offline
    reassigned = step(client, order, "start")
    assert reassigned.status_code == 403
    assert "not assigned to you" in reassigned.json()["error"]["message"]

    services.assign(order, technician_a, actor=planner_a)
    services.cancel(order, reason="Pump replaced instead", actor=planner_a)
    cancelled = step(client, order, "start")
    assert cancelled.status_code == 409
    assert "cancelled" in cancelled.json()["error"]["message"]
    assert not OfflineAction.objects.exists()


def test_another_organisation_order_is_a_404_and_a_signed_out_phone_a_401(client_of, order, manager_b, client):
    assert step(client_of(manager_b), order, "start").status_code == 404
    assert step(client, order, "start").status_code == 401


# --- parts from the van ----------------------------------------------------------------------------------


def test_a_part_used_offline_is_issued_once_and_stock_gone_is_refused(client_of, order, technician_a, van, seal):
    client = client_of(technician_a)
    services.start(order, actor=technician_a)
    body = {"part": seal.pk, "quantity": "1", "location": van.pk, "client_id": "part-1"}
    first = post_json(client, url("api-part", order.pk), body)
    assert first.status_code == 201, first.content
    assert post_json(client, url("api-part", order.pk), body).status_code == 200  # replay
    assert StockLevel.objects.get(part=seal, location=van).on_hand == 1
    assert StockMovement.objects.filter(work_order=order, client_id="part-1").count() == 1

    other = post_json(client, url("api-part", order.pk), {**body, "quantity": "2"})  # same id, other content
    assert other.status_code == 409 and other.json()["error"]["code"] == "client_id_reused"
    gone = post_json(client, url("api-part", order.pk), {**body, "quantity": "5", "client_id": "part-2"})
    assert gone.status_code == 409
    assert "Only 1 left in Van 3" in gone.json()["error"]["message"]


def test_the_van_parts_saved_for_offline(client_of, technician_a, van, seal):
    data = client_of(technician_a).get(url("van-parts")).json()
    assert data["van"]["name"] == "Van 3"
    assert data["parts"] == [
        {"id": seal.pk, "sku": "SEAL-40", "name": "Mechanical seal 40 mm", "unit": "each", "in_van": "2"}
    ]


# --- what the phone saves for offline --------------------------------------------------------------------


def test_the_offline_bundle_lists_my_orders_their_assets_and_my_van(client_of, order, technician_a, technician2_a, van):
    data = client_of(technician_a).get(url("api-offline")).json()
    assert data["orders"] == [order.pk]
    assert url("order", order.pk) in data["urls"]
    assert url("asset", order.asset.public_token) in data["urls"]
    assert url("van-parts") in data["urls"]
    assert data["assets"] == [{"code": "PMP-1", "name": "Cooling pump", "token": order.asset.public_token}]
    assert client_of(technician2_a).get(url("api-offline")).json()["orders"] == []


def test_fifty_orders_saved_for_offline_stay_under_5_mb(client_of, org_a, planner_a, technician_a, pump, van, seal):
    """The measure of the issue's budget: every page the bundle names, as the service worker saves them."""
    for index in range(50):
        work_order = services.create_work_order(
            org_a,
            title=f"Inspect line {index}",
            description="Check the seals and the coupling. " * 10,
            asset=pump,
            actor=planner_a,
            assignee=technician_a,
        )
        for number in range(5):
            services.add_checklist_item(work_order, text=f"Step {number} of the procedure", actor=planner_a)
        services.add_comment(work_order, actor=planner_a, body="Bring the 40 mm seal. " * 5)
    client = client_of(technician_a)
    bundle = client.get(url("api-offline")).json()
    assert len(bundle["orders"]) == 50
    sizes = [len(client.get(path).content) for path in bundle["urls"]]
    total = sum(sizes)
    print(f"\noffline bundle for 50 orders: {len(sizes)} URLs, {total / 1024:.0f} kB")
    assert total < 5 * 1024 * 1024


# --- installable ---------------------------------------------------------------------------------------


def test_the_manifest_and_its_icons_make_the_view_installable(client):
    manifest = client.get(url("manifest"))
    assert manifest["Content-Type"] == "application/manifest+json"
    data = manifest.json()
    assert (data["start_url"], data["scope"], data["display"]) == ("/t/", "/t/", "standalone")
    sizes = {icon["sizes"] for icon in data["icons"]}
    assert {"192x192", "512x512"} <= sizes and any(icon.get("purpose") == "maskable" for icon in data["icons"])
    for icon in data["icons"]:
        response = client.get(icon["src"])
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/t/icons/64.png").status_code == 404


# --- Web Push -------------------------------------------------------------------------------------------


class Device:
    """A browser's push subscription made by the test: its own P-256 key pair and auth secret."""

    def __init__(self, endpoint: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = uuid.uuid4().bytes
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = {
            "endpoint": endpoint,
            "keys": {"p256dh": b64(public), "auth": b64(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class PushService:
    """A local push service: records what it receives and answers `status` (no internet in the tests)."""

    def __init__(self, status=201):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                received.append(
                    {
                        "path": self.path,
                        "headers": {name.lower(): value for name, value in self.headers.items()},
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vapid(settings):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = webpush._new_private_key_pem()
    return settings.WEBPUSH_VAPID_PRIVATE_KEY


@pytest.fixture
def push_service():
    service = PushService()
    yield service
    service.close()


def test_subscribing_a_phone_opts_in_to_webpush_for_urgent_work(client_of, org_a, technician_a, vapid):
    client = client_of(technician_a)
    key = client.get(url("api-push-key")).json()["publicKey"]
    assert key == webpush.application_server_key() and len(base64.urlsafe_b64decode(key + "==")) == 65
    device = Device("https://push.example.net/send/abc")
    response = post_json(client, url("api-push-subscribe"), device.subscription)
    assert response.status_code == 201, response.content
    again = post_json(client, url("api-push-subscribe"), device.subscription)  # the same phone again: one row
    assert again.status_code == 201 and WebPushSubscription.objects.count() == 1
    chosen = dict(NotificationPreference.objects.filter(user=technician_a).values_list("kind", "channels"))
    assert all(Channel.WEBPUSH in chosen[kind] for kind in notification_services.WEBPUSH_KINDS)
    assert Channel.EMAIL in chosen["work-order:assigned"]  # the other channels kept

    bad = post_json(client, url("api-push-subscribe"), {"endpoint": "ftp://x", "keys": {}})
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"endpoint", "keys"}
    gone = post_json(client, url("api-push-unsubscribe"), {"endpoint": device.subscription["endpoint"]})
    assert gone.status_code == 200 and not WebPushSubscription.objects.exists()


def test_an_urgent_assignment_reaches_the_phone_encrypted_for_it(
    org_a, planner_a, technician_a, vapid, push_service, django_capture_on_commit_callbacks
):
    device = Device(f"{push_service.url}/send/device-1")
    notification_services.subscribe_webpush(
        org_a, actor=technician_a, endpoint=device.subscription["endpoint"], **device.subscription["keys"]
    )
    order = services.create_work_order(
        org_a, title="Burst pipe", priority="critical", actor=planner_a, assignee=technician_a
    )
    notification = Notification.objects.get(recipient=technician_a, kind="work-order:assigned")
    delivery = NotificationDelivery.objects.get(notification=notification, channel=Channel.WEBPUSH)
    notification_services.send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == NotificationDelivery.Status.SENT, delivery.last_error

    (request,) = push_service.received
    assert request["path"] == "/send/device-1"
    assert request["headers"]["content-encoding"] == "aes128gcm"
    assert f"k={webpush.application_server_key()}" in request["headers"]["authorization"]
    payload = device.decrypt(request["body"])  # decrypted independently of pywebpush, with the phone's keys
    assert payload["title"] == f"Critical: {order.number} Burst pipe"
    assert payload["url"] == f"/t/orders/{order.pk}/"

    services.create_work_order(org_a, title="Squeaky door", priority="low", actor=planner_a, assignee=technician_a)
    assert Notification.objects.filter(recipient=technician_a).count() == 1  # not urgent: no notification


def test_an_unreachable_push_service_fails_the_delivery_and_never_crashes(org_a, technician_a, vapid):
    service = PushService()
    endpoint = f"{service.url}/send/x"
    service.close()  # nobody listens there any more
    device = Device(endpoint)
    notification_services.subscribe_webpush(org_a, actor=technician_a, endpoint=endpoint, **device.subscription["keys"])
    (notification,) = notification_services.notify(
        org_a, [technician_a], "work-order:assigned", {"title": "Urgent", "body": "Now"}
    )
    with pytest.raises(DeliveryFailed, match="push service could not be reached"):
        webpush.send_webpush(notification)
    delivery = NotificationDelivery.objects.get(notification=notification, channel=Channel.WEBPUSH)
    with pytest.raises(DeliveryFailed):  # the task retries it later, with backoff
        notification_services.send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == NotificationDelivery.Status.FAILED and delivery.attempts == 1


def test_a_phone_the_push_service_says_is_gone_is_forgotten(org_a, technician_a, vapid):
    service = PushService(status=410)
    try:
        device = Device(f"{service.url}/send/old")
        notification_services.subscribe_webpush(
            org_a, actor=technician_a, endpoint=device.subscription["endpoint"], **device.subscription["keys"]
        )
        (notification,) = notification_services.notify(
            org_a, [technician_a], "work-order:assigned", {"title": "Urgent", "body": "Now"}
        )
        with pytest.raises(Exception, match="unsubscribed"):
            webpush.send_webpush(notification)
        assert not WebPushSubscription.objects.exists()
    finally:
        service.close()
