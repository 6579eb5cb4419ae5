"""The API's shared behaviour: errors, pagination, updated_after, ETag / If-Match, Idempotency-Key,
throttling, and the list query count."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assets import services as asset_services
from assets.models import Asset


def test_validation_errors_have_a_message_and_fields(api, manager_a):
    response = api(manager_a).post("/api/v1/assets/", {"code": "", "criticality": "urgent"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) >= {"code", "name", "criticality"}
    assert "criticality" in error["message"]


def test_page_size_is_capped(api, manager_a, org_a, settings):
    settings.API_MAX_PAGE_SIZE = 3
    for i in range(5):
        asset_services.create_asset(org_a, code=f"A{i}", name=f"a{i}")
    body = api(manager_a).get("/api/v1/assets/?page_size=1000").json()
    assert len(body["results"]) == 3
    assert body["next"]
    assert api(manager_a).get("/api/v1/assets/?page=1&page_size=1000").json()["count"] == 5


def test_updated_after_returns_only_later_changes(api, manager_a, org_a):
    old = asset_services.create_asset(org_a, code="OLD", name="old")
    Asset.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    asset_services.create_asset(org_a, code="NEW", name="new")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = api(manager_a).get("/api/v1/assets/", {"updated_after": since})
    assert [r["code"] for r in response.json()["results"]] == ["NEW"]


def test_malformed_updated_after_is_a_400_that_shows_the_format(api, manager_a):
    response = api(manager_a).get("/api/v1/assets/?updated_after=yesterday")
    assert response.status_code == 400
    assert "2026-01-31T12:00:00Z" in response.json()["error"]["fields"]["updated_after"][0]


def test_asset_list_query_count_does_not_grow(api, manager_a, org_a):
    client = api(manager_a)
    location = asset_services.create_location(org_a, name="Hall")
    kind = asset_services.create_asset_type(org_a, name="Pump")

    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/assets/?page_size=200").status_code == 200
        return len(ctx.captured_queries)

    for i in range(5):
        asset_services.create_asset(org_a, code=f"S{i}", name="s", location=location, asset_type=kind)
    small = count_queries()
    for i in range(100):
        asset_services.create_asset(org_a, code=f"L{i}", name="l", location=location, asset_type=kind)
    # user, membership + organisation, throttle-free cache, count, page: the same for 5 and 105 rows
    assert count_queries() == small


class TestETag:
    def test_detail_has_an_etag_that_changes_with_the_row(self, api, manager_a, org_a):
        asset = asset_services.create_asset(org_a, code="E1", name="e")
        client = api(manager_a)
        first = client.get(f"/api/v1/assets/{asset.pk}/")
        assert first["ETag"]
        updated = client.patch(f"/api/v1/assets/{asset.pk}/", {"name": "e2"}, HTTP_IF_MATCH=first["ETag"])
        assert updated.status_code == 200
        assert updated["ETag"] != first["ETag"]
        assert client.get(f"/api/v1/assets/{asset.pk}/")["ETag"] == updated["ETag"]

    def test_stale_if_match_is_412_and_changes_nothing(self, api, manager_a, org_a):
        asset = asset_services.create_asset(org_a, code="E1", name="e")
        client = api(manager_a)
        etag = client.get(f"/api/v1/assets/{asset.pk}/")["ETag"]
        client.patch(f"/api/v1/assets/{asset.pk}/", {"name": "someone else"})
        response = client.patch(f"/api/v1/assets/{asset.pk}/", {"name": "mine"}, HTTP_IF_MATCH=etag)
        assert response.status_code == 412
        assert "changed since you read it" in response.json()["error"]["message"]
        asset.refresh_from_db()
        assert asset.name == "someone else"

    def test_stale_if_match_blocks_delete(self, api, manager_a, org_a):
        asset = asset_services.create_asset(org_a, code="E1", name="e")
        response = api(manager_a).delete(f"/api/v1/assets/{asset.pk}/", HTTP_IF_MATCH='"nope"')
        assert response.status_code == 412
        assert Asset.objects.filter(pk=asset.pk).exists()


class TestIdempotencyKey:
    def test_replay_returns_the_first_response_and_creates_once(self, api, manager_a):
        client = api(manager_a)
        body = {"code": "IK-1", "name": "once"}
        first = client.post("/api/v1/assets/", body, HTTP_IDEMPOTENCY_KEY="k-1")
        second = client.post("/api/v1/assets/", body, HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second["Idempotent-Replayed"] == "true"
        assert Asset.objects.filter(code="IK-1").count() == 1

    def test_same_key_different_request_is_422(self, api, manager_a):
        client = api(manager_a)
        client.post("/api/v1/assets/", {"code": "IK-1", "name": "a"}, HTTP_IDEMPOTENCY_KEY="k-2")
        response = client.post("/api/v1/assets/", {"code": "IK-2", "name": "b"}, HTTP_IDEMPOTENCY_KEY="k-2")
        assert response.status_code == 422
        assert Asset.objects.filter(code="IK-2").count() == 0

    def test_errors_are_replayed_too(self, api, manager_a):
        client = api(manager_a)
        first = client.post("/api/v1/assets/", {"code": ""}, HTTP_IDEMPOTENCY_KEY="k-3")
        second = client.post("/api/v1/assets/", {"code": ""}, HTTP_IDEMPOTENCY_KEY="k-3")
        assert first.status_code == second.status_code == 400

    def test_keys_are_per_principal(self, api, manager_a, planner_a):
        body = {"code": "IK-9", "name": "x"}
        assert api(manager_a).post("/api/v1/assets/", body, HTTP_IDEMPOTENCY_KEY="same").status_code == 201
        # another user with the same key is a different request: it really runs (and hits the duplicate code)
        assert api(planner_a).post("/api/v1/assets/", body, HTTP_IDEMPOTENCY_KEY="same").status_code == 400


def test_throttle_per_organisation_is_shared_by_its_members(api, manager_a, planner_a, monkeypatch):
    from maintenance_site.api.throttling import OrganizationRateThrottle

    monkeypatch.setattr(OrganizationRateThrottle, "THROTTLE_RATES", {"organization": "3/min"})
    statuses = [api(user).get("/api/v1/assets/").status_code for user in (manager_a, planner_a) * 2]
    assert statuses == [200, 200, 200, 429]
    response = api(manager_a).get("/api/v1/assets/")
    assert response.status_code == 429
    assert response["Retry-After"]
    assert "try again in" in response.json()["error"]["message"]


def test_throttle_does_not_cross_organisations(api, manager_a, manager_b, monkeypatch):
    from maintenance_site.api.throttling import OrganizationRateThrottle

    monkeypatch.setattr(OrganizationRateThrottle, "THROTTLE_RATES", {"organization": "1/min"})
    assert api(manager_a).get("/api/v1/assets/").status_code == 200
    assert api(manager_b).get("/api/v1/assets/").status_code == 200


@pytest.fixture
def redis_cache():
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("the shared cache is not Redis here")
    return caches["default"]


def test_a_requests_limits_are_checked_in_one_redis_round_trip(api, manager_a, monkeypatch, redis_cache):
    import redis

    client = api(manager_a)
    assert client.get("/api/v1/assets/").status_code == 200  # the script is loaded once per Redis
    commands = []
    original = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    assert client.get("/api/v1/assets/").status_code == 200
    assert commands == ["EVALSHA"]


def test_a_refused_request_counts_against_no_limit(api, manager_a, planner_a, monkeypatch, redis_cache):
    """The request is recorded in its windows only when none refuses it: a client held back by its own limit does
    not use up its organisation's."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"organization": "3/min", "principal": "2/min", "anon": None}
    )
    statuses = [api(manager_a).get("/api/v1/assets/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api(planner_a).get("/api/v1/assets/").status_code == 200  # the organisation's third
    refused = api(planner_a).get("/api/v1/assets/")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60


def test_every_request_is_recorded_under_a_name_of_its_own(api, manager_a, monkeypatch, redis_cache):
    """Each request counts once in its windows: the names are distinct in a process, from thread to thread, and
    a forked process (a worker) does not repeat its parent's."""
    import os
    import threading

    from maintenance_site.api.throttling import request_names

    client = api(manager_a)
    for _ in range(3):
        assert client.get("/api/v1/assets/").status_code == 200
    # this test's own windows (the cache's key prefix): not another xdist worker's or a benchmark's on the same Redis
    pattern = redis_cache.make_and_validate_key("w:throttle_principal_") + "*"
    key = next(iter(redis_cache._cache.get_client().scan_iter(match=pattern)))
    assert redis_cache._cache.get_client().zcard(key) == 3  # three requests, three members

    names = []
    threads = [threading.Thread(target=lambda: names.extend(request_names.next() for _ in range(500))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 1000

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next name, to the parent
        os.write(write, request_names.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    os.close(write)
    assert child.split(":")[0] != request_names.next().split(":")[0]


@pytest.mark.django_db
def test_openapi_schema_documents_the_api(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/assets/" in schema["paths"]
    assert {"ApiKeyAuth", "jwtAuth"} <= set(schema["components"]["securitySchemes"])
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_openapi_31_publishes_every_event_type_as_a_webhook(client):
    from drf_spectacular.validation import validate_schema

    from maintenance_site.events.types import all_event_types

    schema = client.get("/api/schema/?format=json").json()
    assert schema["openapi"].startswith("3.1")
    validate_schema(schema)  # the OpenAPI 3.1 meta-schema
    assert "x-webhooks" not in schema
    assert set(schema["webhooks"]) == {event_type.name for event_type in all_event_types()}
    created = schema["webhooks"]["work-order:created"]["post"]["requestBody"]["content"]["application/json"]
    assert created["schema"]["properties"]["type"] == {"type": "string", "const": "work-order:created"}
    assert '"nullable"' not in json.dumps(schema)  # JSON Schema 2020-12 says type: [..., "null"]
    page = schema["components"]["schemas"]["PaginatedWorkOrderListList"]["properties"]
    assert page["count"]["type"] == ["integer", "null"] and "null" in page["next"]["type"]


def test_expired_idempotency_keys_are_forgotten(api, manager_a, settings):
    from maintenance_site.api.models import IdempotencyRecord
    from maintenance_site.api.tasks import prune_idempotency_keys

    api(manager_a).post("/api/v1/assets/", {"code": "OLD", "name": "x"}, HTTP_IDEMPOTENCY_KEY="old")
    api(manager_a).post("/api/v1/assets/", {"code": "NEW", "name": "y"}, HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS + 1)
    )
    assert prune_idempotency_keys.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
