"""/metrics: request metrics, Celery task metrics shared through the cache, outbox, websockets, heartbeats,
and the optional bearer token."""

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from celery import shared_task
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils import timezone

from maintenance_site.celery import app
from maintenance_site.events.models import Event
from maintenance_site.ops import metrics
from maintenance_site.ops.tasks import beat_heartbeat, record_heartbeat
from tests.ops.conftest import is_inf


@pytest.fixture(autouse=True)
def _open_as_in_development(settings):
    """pytest-django runs with DEBUG off, where /metrics wants METRICS_TOKEN; these tests scrape it as a developer
    would (the token's own tests set one). Every scrape reads the database afresh (the snapshot's cache has its own
    tests in test_business_metrics.py)."""
    settings.DEBUG = True
    settings.METRICS_CACHE_SECONDS = 0


pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]

REQUESTS = "maintenance_http_requests_total"
LATENCY_COUNT = "maintenance_http_request_duration_seconds_count"
TASKS = "maintenance_celery_tasks_total"
RUNTIME = "maintenance_celery_task_runtime_seconds"


@shared_task(name="tests.ops.explode")
def explode():
    raise RuntimeError("the task failed")


@shared_task(bind=True, name="tests.ops.always_retry", max_retries=1)
def always_retry(self):
    raise self.retry(countdown=0)


# --- HTTP -----------------------------------------------------------------------------------------------


def test_requests_are_counted_and_timed_by_route_name(client, scrape):
    before = scrape()
    client.get("/health")
    client.get("/health")
    after = scrape()
    labels = {"method": "GET", "route": "health", "status": "200"}
    assert after.count(REQUESTS, **labels) == before.count(REQUESTS, **labels) + 2
    assert after.count(LATENCY_COUNT, method="GET", route="health") == (
        before.count(LATENCY_COUNT, method="GET", route="health") + 2
    )
    assert after.value("maintenance_http_request_duration_seconds_bucket", method="GET", route="health", le="+Inf")


def test_status_codes_are_labelled(client, scrape):
    before = scrape()
    client.get("/health/ready")  # 503: no beat heartbeat
    after = scrape()
    labels = {"method": "GET", "route": "health-ready", "status": "503"}
    assert after.count(REQUESTS, **labels) == before.count(REQUESTS, **labels) + 1


def test_labels_never_contain_the_raw_path(client, scrape):
    client.get("/admin/auth/user/987654/change/")  # anonymous: redirected to the login page
    client.get("/no/such/page/123456")
    routes = scrape().label_values(REQUESTS, "route")
    assert "admin:auth_user_change" in routes
    assert metrics.UNMATCHED_ROUTE in routes
    assert not any("987654" in route or "123456" in route or "/" in route for route in routes)


def test_unknown_methods_share_one_label(client, scrape):
    before = scrape()
    client.generic("BREW", "/health")  # refused with 405 on every route (issue 16)
    after = scrape()
    assert after.count(REQUESTS, method="other", route="health", status="405") == (
        before.count(REQUESTS, method="other", route="health", status="405") + 1
    )
    assert "BREW" not in after.label_values(REQUESTS, "method")


# --- Celery ---------------------------------------------------------------------------------------------


def test_a_successful_task_is_counted_and_timed(scrape):
    beat_heartbeat.delay()  # eager in the tests: the same signals as in a worker
    result = scrape()
    task = beat_heartbeat.name
    assert result.value(TASKS, task=task, state="succeeded") == 1
    assert result.value(TASKS, task=task, state="failed") == 0
    assert result.value(f"{RUNTIME}_count", task=task) == 1
    assert result.value(f"{RUNTIME}_bucket", task=task, le="+Inf") == 1
    assert 0 <= result.value(f"{RUNTIME}_sum", task=task) < 5


@pytest.fixture
def like_a_worker():
    """Eager tasks that do not propagate errors, as in a worker: only then Celery sends task_failure and
    task_retry (an eager task that propagates raises before the signals)."""
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    try:
        yield
    finally:
        app.conf.task_eager_propagates = propagates


def test_a_failed_task_is_counted(scrape, like_a_worker):
    explode.delay()
    result = scrape()
    assert result.value(TASKS, task="tests.ops.explode", state="failed") == 1
    assert result.value(TASKS, task="tests.ops.explode", state="succeeded") == 0
    assert result.value(f"{RUNTIME}_count", task="tests.ops.explode") == 1


def test_a_retry_is_counted_then_the_final_failure(scrape, like_a_worker):
    always_retry.delay()  # the first attempt retries, the second exceeds max_retries=1
    result = scrape()
    assert result.value(TASKS, task="tests.ops.always_retry", state="retried") == 1
    assert result.value(TASKS, task="tests.ops.always_retry", state="failed") == 1
    assert result.value(f"{RUNTIME}_count", task="tests.ops.always_retry") == 2


def test_registered_tasks_are_listed_at_zero_before_they_run(scrape):
    result = scrape()
    assert result.value(TASKS, task="maintenance_site.events.tasks.prune_events", state="succeeded") == 0
    assert not any(task.startswith("celery.") for task in result.label_values(TASKS, "task"))


def test_runtime_buckets_are_cumulative(scrape):
    for seconds in (0.003, 0.2, 0.2, 7.0, 1000.0):
        metrics.record_task_runtime("tests.ops.timed", seconds)
    result = scrape()
    bucket = f"{RUNTIME}_bucket"
    assert result.value(bucket, task="tests.ops.timed", le="0.01") == 1
    assert result.value(bucket, task="tests.ops.timed", le="0.25") == 3
    assert result.value(bucket, task="tests.ops.timed", le="10.0") == 4
    assert result.value(bucket, task="tests.ops.timed", le="300.0") == 4
    assert result.value(bucket, task="tests.ops.timed", le="+Inf") == 5
    assert result.value(f"{RUNTIME}_sum", task="tests.ops.timed") == pytest.approx(1007.403)


@pytest.mark.slow
def test_counts_recorded_by_another_process_are_served(scrape):
    """The worker is another process (another container in the full run): it writes, the web reads."""
    code = (
        "import django; django.setup()\n"
        "from maintenance_site.ops import metrics\n"
        "metrics.record_task_state('tests.ops.elsewhere', 'succeeded')\n"
        "metrics.record_task_runtime('tests.ops.elsewhere', 0.2)\n"
        "metrics.websocket_opened()\n"
    )
    # The test settings: the subprocess finds this process's cache namespace (tests/settings.py).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "-c", code], cwd=django_settings.BASE_DIR, env=env, check=True, timeout=600)
    result = scrape()
    assert result.value(TASKS, task="tests.ops.elsewhere", state="succeeded") == 1
    assert result.value(f"{RUNTIME}_count", task="tests.ops.elsewhere") == 1
    assert result.value("maintenance_websocket_connections") == 1


def test_concurrent_increments_are_not_lost():
    key = f"{metrics.KEY_PREFIX}:tests:concurrency"
    threads, per_thread = 8, 40

    def work():
        for _ in range(per_thread):
            metrics._incr(key)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert cache.get(key) == threads * per_thread


def test_shared_counters_do_not_expire():
    """Django's generic incr re-sets the key with the default timeout (300 s): counters must not vanish."""
    metrics.record_task_state("tests.ops.kept", "succeeded")
    metrics.record_task_state("tests.ops.kept", "succeeded")  # the second goes through the increment path
    metrics.websocket_opened()
    keys = [metrics.task_key("tests.ops.kept", "succeeded"), metrics.WEBSOCKETS_KEY, metrics.TASK_NAMES_KEY]
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(None)
        assert [client.ttl(backend.make_key(key)) for key in keys] == [-1, -1, -1]  # -1: no expiry
    else:
        with mock.patch("time.time", return_value=time.time() + 30 * 86400):
            assert [cache.get(key) for key in keys] == [2, 1, ["tests.ops.kept"]]


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError):
        metrics.record_task_state("tests.ops.x", "exploded")


# --- Websockets, outbox, heartbeats ---------------------------------------------------------------------


def test_websocket_connections_follow_the_hooks(scrape):
    assert scrape().value("maintenance_websocket_connections") == 0
    metrics.websocket_opened()
    metrics.websocket_opened()
    metrics.websocket_closed()
    assert scrape().value("maintenance_websocket_connections") == 1
    metrics.websocket_closed()
    metrics.websocket_closed()  # more closes than opens (the cache was flushed): never below zero
    assert scrape().value("maintenance_websocket_connections") == 0


def test_websocket_changes_are_handed_over_as_one_net_count(scrape):
    metrics.websockets_changed(1000)  # a thousand handshakes, one cache round trip
    metrics.websockets_changed(-998)
    metrics.websockets_changed(0)
    assert scrape().value("maintenance_websocket_connections") == 2


def test_websocket_hooks_never_raise(cache_down):
    metrics.websocket_opened()
    metrics.websocket_closed()
    metrics.websockets_changed(3)


def test_outbox_lag_and_undelivered_events(scrape, org_a):
    assert scrape().value("maintenance_outbox_lag_seconds") == 0
    old = Event.objects.create(organization=org_a, type="work-order:created")
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    Event.objects.create(organization=org_a, type="work-order:created")
    delivered = Event.objects.create(organization=org_a, type="work-order:closed")
    Event.objects.filter(pk=delivered.pk).update(
        created_at=timezone.now() - timedelta(hours=1), dispatched_at=timezone.now()
    )
    result = scrape()
    assert 120 <= result.value("maintenance_outbox_lag_seconds") < 180
    assert result.value("maintenance_outbox_undelivered_events") == 2


def test_beat_heartbeat_age(scrape):
    assert is_inf(scrape().value("maintenance_heartbeat_age_seconds", component="beat"))  # never seen
    record_heartbeat("beat")
    record_heartbeat("worker")
    result = scrape()
    assert 0 <= result.value("maintenance_heartbeat_age_seconds", component="beat") < 60
    assert result.value("maintenance_heartbeat_age_seconds", component="worker") is not None


# --- Failures of a source, formats --------------------------------------------------------------------


def test_sources_are_reported_up(scrape):
    result = scrape()
    assert result.value("maintenance_metrics_source_up", source="cache") == 1
    assert result.value("maintenance_metrics_source_up", source="database") == 1


def test_metrics_are_served_when_the_cache_is_down(scrape, cache_down):
    result = scrape()
    assert result.value("maintenance_metrics_source_up", source="cache") == 0
    assert result.value("maintenance_metrics_source_up", source="database") == 1
    assert result.value("maintenance_outbox_lag_seconds") is not None
    assert result.value("maintenance_websocket_connections") is None


def test_metrics_are_served_when_the_database_query_fails(scrape, monkeypatch):
    def broken():
        raise RuntimeError("database unavailable")

    monkeypatch.setattr("maintenance_site.events.services.outbox_lag_seconds", broken)
    result = scrape()
    assert result.value("maintenance_metrics_source_up", source="database") == 0
    assert result.value("maintenance_outbox_lag_seconds") is None
    assert result.value("maintenance_websocket_connections") == 0


def test_prometheus_text_format_by_default(client):
    response = client.get("/metrics")
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"process_" in response.content or b"python_info" in response.content


def test_openmetrics_when_asked(client):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.endswith(b"# EOF\n")


def test_only_get_and_head(client):
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200


# --- The token ------------------------------------------------------------------------------------------


def test_no_token_configured_means_open_in_development(client, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True
    assert client.get("/metrics").status_code == 200


def test_no_token_configured_means_closed_in_production(client, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"set METRICS_TOKEN" in response.content
    assert b"maintenance_" not in response.content


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer s3cret-but-longer", "Basic s3cret", "s3cret", "Bearer", "Api-Key s3cret"],
)
def test_the_token_is_required_when_configured(client, settings, authorization):
    settings.METRICS_TOKEN = "s3cret"
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"maintenance_" not in response.content


@pytest.mark.parametrize("authorization", ["Bearer s3cret", "bearer s3cret"])
def test_the_right_token_opens_metrics(client, settings, authorization):
    settings.METRICS_TOKEN = "s3cret"
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 200
    assert b"maintenance_outbox_lag_seconds" in response.content
