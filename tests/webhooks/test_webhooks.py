"""Signed webhooks (issue 25): a receiver started here verifies every delivery with `standardwebhooks`, the
specification's reference library, never with the platform's own code."""

import json
import socket
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from maintenance_site.events import services as events
from maintenance_site.notifications.models import Notification
from maintenance_site.security import outbound as targets
from maintenance_site.webhooks import services
from maintenance_site.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from workorders import services as work_orders

pytestmark = [pytest.mark.django_db]


def subscribe(api, user, org, url, types=("work-order:*",), **extra) -> dict:
    response = api(user, org).post(
        "/api/v1/webhooks/", {"url": url, "event_types": list(types), **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def publish_work_order(org, actor, title="Replace the seal"):
    """A committed change with its event numbered (what the outbox's after-commit dispatch does)."""
    order = work_orders.create_work_order(org, title=title, actor=actor)
    events.number_pending_events()
    return order


def run_job():
    return services.deliver_due(seconds=10)


def verified(receiver, secret) -> list[dict]:
    """Every received body, each verified by the reference library (raises on a bad signature)."""
    return [Webhook(secret).verify(item["body"], item["headers"]) for item in receiver.requests]


# --- subscriptions ------------------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_encrypted(api, manager_a, org_a, receiver):
    created = subscribe(api, manager_a, org_a, receiver.url)
    assert created["secret"].startswith("whsec_")
    assert created["secret_prefix"] == created["secret"][:12]
    again = api(manager_a, org_a).get(f"/api/v1/webhooks/{created['id']}/").json()
    assert again["secret"] is None
    stored = WebhookSubscription.objects.get(pk=created["id"])
    assert created["secret"] not in stored.secret_encrypted
    assert services.signing_secrets(stored) == [created["secret"]]
    assert not any("secret_encrypted" in str(row.__dict__) for row in stored.history.all())


def test_integrators_manage_webhooks_technicians_may_not(api, integrator_a, technician_a, org_a, receiver):
    assert (
        api(integrator_a, org_a)
        .post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["*"]}, format="json")
        .status_code
        == 201
    )
    assert api(technician_a, org_a).get("/api/v1/webhooks/").status_code == 403


def test_event_types_are_validated_against_the_registry(api, manager_a, org_a, receiver):
    client = api(manager_a, org_a)
    for bad in (["work-order:exploded"], ["nothing:*"], ["WORK"], []):
        response = client.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": bad}, format="json")
        assert response.status_code == 400, bad
        assert "event_types" in response.json()["error"]["fields"]
    ok = client.post(
        "/api/v1/webhooks/", {"url": receiver.url, "event_types": ["work-order:*", "sla:violation"]}, format="json"
    )
    assert ok.status_code == 201


def test_another_organisations_subscription_is_a_404(api, manager_a, manager_b, org_a, org_b, receiver):
    created = subscribe(api, manager_a, org_a, receiver.url)
    assert api(manager_b, org_b).get(f"/api/v1/webhooks/{created['id']}/").status_code == 404
    assert api(manager_b, org_b).post(f"/api/v1/webhooks/{created['id']}/test/").status_code == 404


# --- delivery -------------------------------------------------------------------------------------------------


def test_a_committed_change_arrives_signed_with_its_sequence(api, manager_a, org_a, receiver):
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    order = publish_work_order(org_a, manager_a)
    assert run_job()["succeeded"] == 1
    [body] = verified(receiver, secret)
    event = events.Event.objects.get(type="work-order:created")
    assert body["type"] == "work-order:created"
    assert body["sequence"] == event.sequence
    assert body["organization"] == org_a.slug
    assert body["data"]["id"] == order.pk
    headers = receiver.requests[0]["headers"]
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(receiver.requests[0]["body"], headers)
    run_job()
    assert len(receiver.requests) == 1  # sent once


def test_the_outbox_dispatch_triggers_delivery(api, manager_a, org_a, receiver, django_capture_on_commit_callbacks):
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        work_orders.create_work_order(org_a, title="Dispatched", actor=manager_a)
    assert [body["type"] for body in verified(receiver, secret)] == ["work-order:created"]


def test_a_rolled_back_change_sends_nothing(api, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        work_orders.create_work_order(org_a, title="Never", actor=manager_a)
        raise RuntimeError("rolled back")
    events.number_pending_events()
    run_job()
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


def test_another_organisations_subscription_never_sees_the_event(api, manager_a, manager_b, org_a, org_b, receiver):
    subscribe(api, manager_b, org_b, receiver.url, types=["*"])
    publish_work_order(org_a, manager_a)
    run_job()
    assert receiver.requests == []


def test_only_the_subscribed_types_are_sent(api, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url, types=["work-order:completed"])
    publish_work_order(org_a, manager_a)
    run_job()
    assert receiver.requests == []


def test_a_500_is_retried_with_the_same_webhook_id(api, manager_a, org_a, receiver):
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    receiver.script = [(500, 0)]
    publish_work_order(org_a, manager_a)
    result = run_job()
    assert result["retrying"] == 1 and result["succeeded"] == 1
    assert len(verified(receiver, secret)) == 2
    ids = {item["headers"]["webhook-id"] for item in receiver.requests}
    assert len(ids) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert [attempt.status_code for attempt in services.attempt_log(delivery)] == [200, 500]  # newest first
    assert WebhookSubscription.objects.get().failing_since is None  # the success ended the streak


def test_the_delivery_log_shows_the_failed_attempts_and_the_success_as_sent(api, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url)
    receiver.script = [(500, 0)]
    publish_work_order(org_a, manager_a)
    run_job()
    delivery = WebhookDelivery.objects.get()
    # the failure is an attempt row; the success is kept on the delivery (one row write fewer per delivery)
    assert list(WebhookAttempt.objects.values_list("status_code", flat=True)) == [500]
    detail = api(manager_a, org_a).get(f"/api/v1/webhook-deliveries/{delivery.pk}/").json()
    success, failure = detail["attempt_log"]
    assert (success["status_code"], failure["status_code"]) == (200, 500)
    assert success["id"] is None and failure["id"] is not None
    sent = receiver.requests[1]
    assert success["request_body"] == sent["body"].decode()  # rebuilt from the event: what was sent
    for name in ("webhook-id", "webhook-timestamp", "content-type", "user-agent"):
        assert {k.lower(): v for k, v in success["request_headers"].items()}[name] == sent["headers"][name]
    assert "webhook-signature" not in success["request_headers"]
    assert success["response_body"] == "ok" and success["latency_ms"] >= 0
    assert success["attempted_at"] >= failure["attempted_at"]
    assert failure["response_body"] == "nope" and failure["request_body"] == receiver.requests[0]["body"].decode()


def test_a_timeout_is_retried(api, manager_a, org_a, receiver, settings):
    settings.WEBHOOK_TIMEOUT = 0.3
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    receiver.script = [(200, 1.0)]  # answers too late the first time
    publish_work_order(org_a, manager_a)
    run_job()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    first = WebhookAttempt.objects.order_by("id").first()
    assert first.status_code is None and "timed out" in first.error.lower()
    assert verified(receiver, secret)


def test_retries_back_off_exponentially_with_jitter(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 5
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (10, 2560), (30, 3600)]:
        delays = [services.retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1


def test_retries_stop_after_the_retry_window(api, manager_a, org_a, receiver, settings):
    settings.WEBHOOK_RETRY_HOURS = 0
    subscribe(api, manager_a, org_a, receiver.url)
    receiver.script = [(503, 0)]
    publish_work_order(org_a, manager_a)
    assert run_job()["failed"] == 1
    assert WebhookDelivery.objects.get().status == "failed"


def test_410_disables_the_subscription_and_tells_the_managers(api, manager_a, org_a, receiver):
    created = subscribe(api, manager_a, org_a, receiver.url)
    receiver.script = [(410, 0)]
    publish_work_order(org_a, manager_a)
    run_job()
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    assert not subscription.is_active and "410" in subscription.disabled_reason
    assert Notification.objects.filter(kind="webhook:disabled", recipient=manager_a).exists()
    publish_work_order(org_a, manager_a, title="After")
    run_job()
    assert len(receiver.requests) == 1


def test_repeated_failure_for_days_disables(api, manager_a, org_a, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 600  # one attempt in this job
    created = subscribe(api, manager_a, org_a, receiver.url)
    WebhookSubscription.objects.filter(pk=created["id"]).update(failing_since=timezone.now() - timedelta(days=4))
    receiver.script = [(500, 0)]
    publish_work_order(org_a, manager_a)
    run_job()
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    assert not subscription.is_active and "3" in subscription.disabled_reason
    assert Notification.objects.filter(kind="webhook:disabled").count() == 1


def test_replay_resends_the_same_webhook_id(api, manager_a, org_a, receiver):
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    publish_work_order(org_a, manager_a)
    run_job()
    delivery = WebhookDelivery.objects.get()
    response = api(manager_a, org_a).post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/")
    assert response.status_code == 202
    run_job()
    assert len(verified(receiver, secret)) == 2
    assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]
    detail = api(manager_a, org_a).get(f"/api/v1/webhook-deliveries/{delivery.pk}/").json()
    assert len(detail["attempt_log"]) == 2 and detail["webhook_id"] == receiver.requests[0]["headers"]["webhook-id"]
    # the first success, moved to an attempt row by the replay, and the second, each with its own timestamp
    assert [attempt["status_code"] for attempt in detail["attempt_log"]] == [200, 200]
    assert [attempt["request_headers"]["webhook-timestamp"] for attempt in detail["attempt_log"]] == [
        request["headers"]["webhook-timestamp"] for request in reversed(receiver.requests)
    ]
    assert detail["attempt_log"][0]["attempted_at"] >= detail["attempt_log"][1]["attempted_at"]


def test_replay_since_a_sequence_number(api, manager_a, org_a, receiver):
    created = subscribe(api, manager_a, org_a, receiver.url)
    for title in ("one", "two", "three"):
        publish_work_order(org_a, manager_a, title=title)
    run_job()
    first = min(body["sequence"] for body in receiver.bodies())
    response = api(manager_a, org_a).post(f"/api/v1/webhooks/{created['id']}/replay/", {"after": first}, format="json")
    assert response.status_code == 202 and response.json()["replayed"] == 2
    run_job()
    assert sorted(body["sequence"] for body in receiver.bodies()[3:]) == [first + 1, first + 2]
    bad = api(manager_a, org_a).post(f"/api/v1/webhooks/{created['id']}/replay/", {"after": -1}, format="json")
    assert bad.status_code == 400


def test_send_test_event(api, manager_a, org_a, receiver):
    created = subscribe(api, manager_a, org_a, receiver.url)
    response = api(manager_a, org_a).post(f"/api/v1/webhooks/{created['id']}/test/")
    assert response.status_code == 202
    run_job()
    [body] = verified(receiver, created["secret"])
    assert body["type"] == "webhook:test" and body["sequence"] is None


def test_rotation_signs_with_both_secrets_during_the_grace_period(api, manager_a, org_a, receiver):
    created = subscribe(api, manager_a, org_a, receiver.url)
    rotated = api(manager_a, org_a).post(f"/api/v1/webhooks/{created['id']}/rotate-secret/", {}, format="json")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    publish_work_order(org_a, manager_a)
    run_job()
    assert verified(receiver, created["secret"]) and verified(receiver, new_secret)
    assert len(receiver.requests[0]["headers"]["webhook-signature"].split(" ")) == 2
    WebhookSubscription.objects.update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    publish_work_order(org_a, manager_a, title="later")
    run_job()
    last = receiver.requests[-1]
    Webhook(new_secret).verify(last["body"], last["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(last["body"], last["headers"])


def test_a_large_payload_is_sent_truncated(api, manager_a, org_a, receiver, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    publish_work_order(org_a, manager_a, title="x" * 190)
    events.Event.objects.update(payload={"blob": "y" * 5000})
    run_job()
    [body] = verified(receiver, secret)
    assert body["data"]["truncated"] is True and "after=" in body["data"]["fetch"]
    assert len(receiver.requests[0]["body"]) <= 1024


# --- a dead worker, two workers ---------------------------------------------------------------------------------


def test_a_killed_worker_mid_delivery_leads_to_exactly_one_delivery(api, manager_a, org_a, receiver, settings):
    secret = subscribe(api, manager_a, org_a, receiver.url)["secret"]
    publish_work_order(org_a, manager_a)
    services.fan_out()
    claims = services.claim_due()  # a worker claims ... and dies before sending
    assert len(claims) == 1
    run_job()
    assert receiver.requests == []  # its claim is still leased
    WebhookDelivery.objects.update(
        claimed_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS + 1)
    )
    run_job()  # the sweep takes the claim over
    run_job()
    assert len(verified(receiver, secret)) == 1
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_stale_worker_cannot_record_over_a_newer_claim(api, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url)
    publish_work_order(org_a, manager_a)
    services.fan_out()
    [(delivery_id, old_claim)] = services.claim_due()
    WebhookDelivery.objects.update(claimed_at=old_claim - timedelta(hours=1))
    [(_, new_claim)] = services.claim_due()
    services.send_claimed([(delivery_id, old_claim)])  # the stale worker comes back: its result is only logged
    assert WebhookDelivery.objects.get().status == "sending"
    assert list(WebhookAttempt.objects.values_list("status_code", flat=True)) == [200]
    services.send_claimed([(delivery_id, new_claim)])
    delivery = services.with_sent_payload(WebhookDelivery.objects).get()
    assert delivery.status == "succeeded"
    assert WebhookAttempt.objects.count() == 1  # the delivery's own success stays on its row
    assert [attempt.pk is None for attempt in services.attempt_log(delivery)] == [True, False]


def test_in_flight_deliveries_per_subscription_are_capped(api, manager_a, org_a, receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT = 2
    subscribe(api, manager_a, org_a, receiver.url)
    for number in range(5):
        publish_work_order(org_a, manager_a, title=f"order {number}")
    services.fan_out()
    assert len(services.claim_due()) == 2
    assert services.claim_due() == []  # two in flight already
    services.fan_out()
    assert WebhookDelivery.objects.count() == 5  # fanning out again writes nothing twice


# --- SSRF -------------------------------------------------------------------------------------------------------

REFUSED = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.9": "private",
    "192.168.1.20": "private",
    "fd00::5": "private",
    "100.64.0.1": "private",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "0.0.0.0": "unspecified",  # noqa: S104 - the address being refused
    "::ffff:127.0.0.1": "loopback",
    "224.0.0.1": "multicast",
}


@pytest.mark.parametrize("address", list(REFUSED))
def test_private_targets_are_refused_at_save(api, manager_a, org_a, settings, monkeypatch, address):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(targets, "_getaddrinfo", lambda host, port: [(family, 1, 6, "", (address, port))])
    response = api(manager_a, org_a).post(
        "/api/v1/webhooks/", {"url": "https://hooks.customer.test/in", "event_types": ["*"]}, format="json"
    )
    assert response.status_code == 400
    assert REFUSED[address] in json.dumps(response.json())
    assert not WebhookSubscription.objects.exists()


def test_a_target_whose_dns_changed_is_refused_at_send(api, manager_a, org_a, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    answer = {"address": "93.184.216.34"}
    monkeypatch.setattr(targets, "_getaddrinfo", lambda host, port: [(2, 1, 6, "", (answer["address"], port))])
    subscribe(api, manager_a, org_a, "https://hooks.customer.test/in")
    answer["address"] = "10.0.0.5"  # DNS rebinding
    connections = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: connections.append(args))
    publish_work_order(org_a, manager_a)
    services.fan_out()
    services.send_claimed(services.claim_due())
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "private address" in attempt.error
    assert connections == []


def test_schemes_credentials_and_unknown_hosts_are_refused(api, manager_a, org_a):
    client = api(manager_a, org_a)
    for url in ("ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "https://no-such-host.invalid/x"):
        response = client.post("/api/v1/webhooks/", {"url": url, "event_types": ["*"]}, format="json")
        assert response.status_code == 400, url


def test_redirects_are_not_followed(api, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url)
    receiver.script = [(302, 0)]
    publish_work_order(org_a, manager_a)
    services.fan_out()
    services.send_claimed(services.claim_due())
    assert WebhookAttempt.objects.get().status_code == 302
    assert WebhookDelivery.objects.get().status == "pending"  # a retry, not a success


def test_the_log_is_pruned_after_its_retention(api, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url)
    receiver.script = [(500, 0)]
    publish_work_order(org_a, manager_a)
    run_job()  # a failed attempt, then the success
    old = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=31))
    publish_work_order(org_a, manager_a, title="recent")
    run_job()
    assert services.prune_log() == 2  # the old delivery and its failed attempt
    assert not WebhookAttempt.objects.exists()
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["succeeded"]  # the recent one stays
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()


def test_the_delivery_log_lists_in_constant_queries(api, manager_a, org_a, receiver, django_assert_max_num_queries):
    created = subscribe(api, manager_a, org_a, receiver.url)
    for number in range(6):
        publish_work_order(org_a, manager_a, title=f"order {number}")
    run_job()
    client = api(manager_a, org_a)
    # auth/membership, throttles, the page and its count: the same for 6 rows as for 1
    with django_assert_max_num_queries(12):
        response = client.get(f"/api/v1/webhook-deliveries/?subscription={created['id']}")
    assert response.status_code == 200 and len(response.json()["results"]) == 6


def test_the_back_office_shows_a_deliverys_success_and_its_failed_attempts(api, client, manager_a, org_a, receiver):
    subscribe(api, manager_a, org_a, receiver.url)
    receiver.script = [(500, 0)]
    publish_work_order(org_a, manager_a)
    run_job()
    delivery = WebhookDelivery.objects.get()
    client.force_login(manager_a)
    response = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "HTTP 200" in content  # the success the delivery keeps
    assert receiver.requests[1]["headers"]["webhook-timestamp"] in content  # its request, rebuilt
    assert "nope" in content  # the failed attempt's row, with the receiver's answer
