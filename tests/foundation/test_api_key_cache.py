"""A verified API key is read from Redis, with the request's rate limits, in one round trip (issue 17): no key query
on the next request, while revocation, expiry and changes take effect at once, a forged key is never taken for a
cached one, and Redis down falls back to the database."""

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from maintenance_site.api import throttling
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import ApiKeyScope, Membership, OrganizationAPIKey
from tests.conftest import make_user

KEY_TABLE = OrganizationAPIKey._meta.db_table


@pytest.fixture
def redis_cache():
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("the shared cache is not Redis here")
    throttling.throttle_cache._shared_down_until = 0.0
    return caches["default"]


def key_client(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def key_queries(context) -> list[str]:
    return [q["sql"] for q in context.captured_queries if KEY_TABLE in q["sql"]]


@pytest.fixture
def manager(org_a):
    user = make_user("keys-manager")
    services.add_member(org_a, user, "manager")
    return user


def test_a_key_used_again_is_not_read_from_the_database(org_a, redis_cache):
    _, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/assets/").status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get("/api/v1/assets/").status_code == 200
    assert key_queries(first)  # read (and stamped) once
    assert key_queries(second) == []
    assert len(second.captured_queries) < len(first.captured_queries)


def test_the_key_and_the_limits_are_one_redis_round_trip(org_a, redis_cache, monkeypatch):
    import redis

    _, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    commands = []
    original = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    assert client.get("/api/v1/assets/").status_code == 200
    assert commands == ["EVALSHA"]


def test_the_cache_holds_no_secret(org_a, redis_cache):
    api_key, key = services.create_api_key(org_a, name="ERP")
    assert key_client(key).get("/api/v1/assets/").status_code == 200
    client = redis_cache._cache.get_client()
    stored = b"".join(client.get(name) or b"" for name in client.scan_iter(match="*apikey:*"))
    names = b"".join(client.scan_iter(match="*apikey:*"))
    assert stored and names
    for secret in (key, key.split(".")[1]):
        assert secret.encode() not in stored and secret.encode() not in names
    # named by neither the prefix nor the stored hash (the entry holds the key's id, which the library makes of
    # both: what the database row holds, from which the key cannot be found)
    assert api_key.prefix.encode() not in names and api_key.hashed_key.split("$")[-1].encode() not in names


def test_a_revoked_key_is_refused_on_the_very_next_request(org_a, redis_cache, django_capture_on_commit_callbacks):
    api_key, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    assert client.get("/api/v1/assets/").status_code == 200  # from the cache
    with django_capture_on_commit_callbacks(execute=True):
        services.revoke_api_key(api_key)
    response = client.get("/api/v1/assets/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_a_deleted_key_is_refused_on_the_next_request(org_a, redis_cache):
    api_key, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    api_key.delete()
    response = client.get("/api/v1/assets/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key."


def test_a_scope_change_applies_on_the_next_request(org_a, manager, redis_cache):
    api_key, key = services.create_api_key(org_a, name="ERP", scope=ApiKeyScope.READ_WRITE)
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    services.update_api_key(api_key, actor=manager, scope=ApiKeyScope.READ)
    response = client.post("/api/v1/assets/", {"code": "X", "name": "x"})
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


def test_a_deactivated_membership_applies_on_the_next_request(org_a, manager, redis_cache):
    api_key, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    membership = Membership.objects.get(user=api_key.service_user)
    services.update_membership(membership, actor=manager, is_active=False)
    assert client.get("/api/v1/assets/").status_code == 403


def test_a_deactivated_service_user_applies_on_the_next_request(org_a, redis_cache):
    api_key, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    user = api_key.service_user
    user.is_active = False
    user.save()
    assert client.get("/api/v1/assets/").status_code in (401, 403)


def test_an_expired_key_is_refused_even_when_cached(org_a, redis_cache, monkeypatch):
    _, key = services.create_api_key(org_a, name="temp", expiry_date=timezone.now() + timedelta(minutes=1))
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200  # cached, with its expiry
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with CaptureQueriesContext(connection) as refused:
        response = client.get("/api/v1/assets/")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]
    assert key_queries(refused) == []  # refused from the cached entry


def test_a_forged_key_with_a_cached_keys_prefix_is_refused(org_a, redis_cache):
    api_key, key = services.create_api_key(org_a, name="ERP")
    assert key_client(key).get("/api/v1/assets/").status_code == 200
    assert key_client(key).get("/api/v1/assets/").status_code == 200  # cached
    forged = f"{api_key.prefix}.{'x' * 32}"
    with CaptureQueriesContext(connection) as context:
        response = key_client(forged).get("/api/v1/assets/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key."
    assert key_queries(context)  # checked against the stored hash, as before
    assert key_client(key).get("/api/v1/assets/").status_code == 200  # the real one still works


def test_a_cached_key_still_acts_in_its_own_organisation_only(org_a, org_b, redis_cache):
    _, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    for _ in range(2):
        response = client.get("/api/v1/me/", HTTP_X_ORGANIZATION=org_b.slug)
        assert response.status_code == 200
        assert response.json()["organization"] == org_a.slug


def test_limits_still_count_and_refuse_with_a_cached_key(org_a, redis_cache, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"organization": "4/min", "principal": "2/min", "anon": None}
    )
    _, first = services.create_api_key(org_a, name="one")
    _, second = services.create_api_key(org_a, name="two")
    statuses = [key_client(first).get("/api/v1/assets/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # the key's own limit; the refused one counts against none
    assert key_client(second).get("/api/v1/assets/").status_code == 200  # the organisation's third
    assert key_client(second).get("/api/v1/assets/").status_code == 200  # its fourth (from the cache)
    refused = key_client(second).get("/api/v1/assets/")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60


def test_the_last_use_stamp_is_still_written_from_the_cache(org_a, redis_cache, monkeypatch):
    api_key, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    with CaptureQueriesContext(connection) as again:
        assert client.get("/api/v1/assets/").status_code == 200
    assert [q for q in key_queries(again) if "UPDATE" in q] == []
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    monkeypatch.setattr("maintenance_site.api.authentication._stamped", {})  # (this process's memo: a minute later)
    monkeypatch.setattr(
        "maintenance_site.api.authentication.KEY_CACHE_SECONDS", 60
    )  # the entry is still there: the stamp comes from the cached key
    with CaptureQueriesContext(connection) as stale:
        assert client.get("/api/v1/assets/").status_code == 200
    assert [q for q in key_queries(stale) if "UPDATE" in q]
    api_key.refresh_from_db()
    assert api_key.last_used_at == later


def test_an_entry_that_cannot_be_read_falls_back_to_the_database(org_a, redis_cache):
    _, key = services.create_api_key(org_a, name="ERP")
    client = key_client(key)
    assert client.get("/api/v1/assets/").status_code == 200
    redis = redis_cache._cache.get_client()
    for name in redis.scan_iter(match="*apikey:*"):
        redis.set(name, f"{org_a.pk}||not a pickle".encode(), ex=60)
    with CaptureQueriesContext(connection) as context:
        assert client.get("/api/v1/assets/").status_code == 200
    assert key_queries(context)
