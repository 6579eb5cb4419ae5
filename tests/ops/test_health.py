"""/health, /health/ready and /api/v1/status, with real failures where they are cheap to cause."""

from datetime import timedelta

import pytest
from django.utils import timezone

from maintenance_site.ops.models import Heartbeat

pytestmark = pytest.mark.django_db

COMPONENTS = {"database", "cache", "broker", "beat"}


def test_liveness_answers_200_without_checking_anything(client, cache_down, broker_down):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_everything_is_up(client, beat_alive):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert set(body["checks"]) == COMPONENTS
    assert all(check["ok"] for check in body["checks"].values())


def test_not_ready_without_any_beat_heartbeat(client):
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["beat"]
    assert "no beat heartbeat" in body["checks"]["beat"]["detail"]


def test_not_ready_when_the_beat_heartbeat_is_stale(client, settings, beat_alive):
    stale = timezone.now() - timedelta(seconds=settings.HEALTH_BEAT_STALE_SECONDS + 60)
    Heartbeat.objects.filter(component="beat").update(last_seen_at=stale)
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["down"] == ["beat"]
    assert "ago (limit" in response.json()["checks"]["beat"]["detail"]


def test_a_fresh_heartbeat_is_within_the_limit(client, settings, beat_alive):
    recent = timezone.now() - timedelta(seconds=settings.HEALTH_BEAT_STALE_SECONDS - 30)
    Heartbeat.objects.filter(component="beat").update(last_seen_at=recent)
    assert client.get("/health/ready").status_code == 200


def test_not_ready_when_the_cache_is_unreachable(client, beat_alive, cache_down):
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["cache"]
    assert "Connection" in body["checks"]["cache"]["detail"]


def test_not_ready_when_the_broker_is_unreachable(client, beat_alive, broker_down):
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False


def test_status_agrees_with_readiness_when_all_is_up(client, beat_alive, manager_a):
    ready = client.get("/health/ready").json()
    client.force_login(manager_a)  # components are for signed-in users
    status = client.get("/api/v1/status").json()
    assert status["healthy"] is True
    assert {name: c["ok"] for name, c in status["components"].items()} == {
        name: c["ok"] for name, c in ready["checks"].items()
    }


@pytest.mark.parametrize(
    "failure",
    [
        "no-beat",
        "broker_down",
        "cache_down",
    ],
)
def test_status_agrees_with_readiness_when_a_component_is_down(client, request, failure, manager_a):
    if failure != "no-beat":
        request.getfixturevalue("beat_alive")
        request.getfixturevalue(failure)
    ready = client.get("/health/ready")
    client.force_login(manager_a)  # components are for signed-in users
    status = client.get("/api/v1/status")
    assert ready.status_code == 503
    assert status.status_code == 200  # the status endpoint reports; it does not fail
    assert status.json()["healthy"] is False
    assert {name: c["ok"] for name, c in status.json()["components"].items()} == {
        name: c["ok"] for name, c in ready.json()["checks"].items()
    }
