"""Redis is a cache, broker and channel layer here, not the system of record (issue 16, finding 2): when it
cannot be reached, requests are still served, writes still commit (the outbox keeps their events), the event
socket degrades, /health/ready says 503 naming it and /health stays 200.

First in-process (the cache and the broker pointed at a closed port), then against a live daphne whose
REDIS_URL is a closed port."""

import json
import logging
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from maintenance_site.api.throttling import throttle_cache
from maintenance_site.celery import app
from maintenance_site.events.models import Event
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.roles import Role
from tests.conftest import make_user
from tests.web_process import DAPHNE, database_url, web_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_throttle_fallback():
    """The fallback remembers that the shared cache failed: forget it around each test."""
    throttle_cache._shared_down_until = 0.0
    throttle_cache.local.clear()
    yield
    throttle_cache._shared_down_until = 0.0
    throttle_cache.local.clear()


def _forget_broker_connections():
    """Celery caches its pools of the broker in use: forget them (kombu keeps them, by URL, for whoever asks
    for that broker again), else the pool opened on the real broker by an earlier test would still deliver."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_really_used(settings, broker_down):
    """Tasks are sent to the (unreachable) broker instead of running in the test process."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    _forget_broker_connections()
    yield
    _forget_broker_connections()
    app.conf.task_always_eager = True


@pytest.mark.django_db
def test_requests_are_served_and_writes_commit_with_redis_unreachable(
    api, org_a, manager_a, cache_down, broker_really_used, caplog, django_capture_on_commit_callbacks
):
    client = api(manager_a)
    with caplog.at_level(logging.WARNING):
        assert client.get("/api/v1/me/").status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/v1/work-orders/", {"title": "Pump leaking"})
        assert response.status_code == 201, response.json()
        assert client.get("/api/v1/work-orders/").json()["count"] == 1
    # the write and its event are committed; the event waits in the outbox for the sweep
    event = Event.objects.get(type="work-order:created")
    assert event.sequence is None
    assert "rate limits count in this process" in caplog.text  # the throttles fell back, saying so
    assert "dispatch" in caplog.text.lower()  # the failed dispatch request was logged, not raised


@pytest.mark.django_db
def test_rate_limits_still_apply_from_the_local_count(api, org_a, manager_a, cache_down, settings, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"organization": None, "principal": "3/min", "anon": None}
    )
    client = api(manager_a)
    statuses = [client.get("/api/v1/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.django_db
def test_event_socket_ticket_is_a_503_saying_how_to_catch_up(api, org_a, manager_a, cache_down):
    response = api(manager_a).post("/api/v1/events/ticket/")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "events_unavailable"
    assert "/api/v1/events/?after=" in error["message"]


@pytest.mark.django_db
def test_health_says_which_dependency_is_down(client, cache_down, broker_down):
    assert client.get("/health").status_code == 200
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert {"cache", "broker"} <= set(response.json()["down"])


@pytest.mark.django_db(transaction=True)
def test_the_event_socket_closes_with_try_again_later_when_the_channel_layer_is_down(settings, org_a, manager_a):
    from asgiref.sync import async_to_sync

    from maintenance_site.events.consumers import CLOSE_TRY_AGAIN_LATER
    from tests.events.support import expect_refusal, session_cookie, socket

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    cookie = session_cookie(manager_a)

    async def scenario():
        message = await expect_refusal(socket(cookie=cookie), CLOSE_TRY_AGAIN_LATER, "events_unavailable")
        assert "/api/v1/events/?after=" in message["message"]

    async_to_sync(scenario)()


# --- a live server ------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # released on return: nothing listens there


def _request(url, *, method="GET", body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (our server)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_live_server_without_redis(tmp_path):
    organization = tenancy.create_organization(name="Outage Ltd", slug="outage", time_zone="UTC")
    manager = make_user("outage-manager")
    hasher = PBKDF2PasswordHasher()  # the server's default hasher (the tests' own is MD5, for speed)
    manager.password = hasher.encode("pw-outage-manager", hasher.salt())
    manager.save(update_fields=["password"])
    tenancy.add_member(organization, manager, Role.MANAGER)
    port, redis_port = _closed_port(), _closed_port()
    env = {
        **{key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE",)},
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "live-server-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "false",
    }
    with web_process(env, tmp_path / "daphne.log", command=DAPHNE, port=port, timeout=60):
        url = f"http://127.0.0.1:{port}"
        status, body = _request(f"{url}/health/ready")
        assert status == 503 and {"cache", "broker"} <= set(body["down"])
        status, body = _request(
            f"{url}/api/v1/auth/token/",
            method="POST",
            body={"username": "outage-manager", "password": "pw-outage-manager"},
        )
        assert status == 200, body
        token = body["access"]
        status, body = _request(f"{url}/api/v1/work-orders/", method="POST", body={"title": "Valve stuck"}, token=token)
        assert status == 201, body
        assert _request(f"{url}/api/v1/work-orders/", token=token)[1]["count"] == 1
        status, body = _request(f"{url}/api/v1/events/ticket/", method="POST", token=token)
        assert status == 503 and body["error"]["code"] == "events_unavailable"
        # committed, and its event kept in the outbox until the broker is back
        assert Event.objects.filter(organization=organization, type="work-order:created", sequence=None).count() == 1
    output = (tmp_path / "daphne.log").read_text(errors="replace")
    assert "Shared cache unreachable" in output
    assert "Internal Server Error" not in output, output[-3000:]


@pytest.mark.django_db
def test_api_keys_authenticate_from_the_database_with_redis_unreachable(org_a, cache_down):
    from rest_framework.test import APIClient

    _, key = tenancy.create_api_key(org_a, name="ERP")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert [client.get("/api/v1/assets/").status_code for _ in range(2)] == [200, 200]
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.split('.')[0]}.{'x' * 32}")
    assert forged.get("/api/v1/assets/").status_code == 401
