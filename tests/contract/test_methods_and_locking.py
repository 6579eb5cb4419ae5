"""Every route answers methods it does not serve with 405, never 500 (issue 16, finding 4), and no detail route
takes a row lock outside a transaction (finding 3). Both walk the URL conf, so a new route is covered."""

import pytest

from tests.contract.routes import all_routes

ROUTES = all_routes()
API_ROUTES = [route for route in ROUTES if route.is_api]
WRITE_METHODS = ("put", "patch", "delete")


def test_the_walk_finds_the_routes():
    # guards the tests below against passing because the walk found nothing
    assert len(API_ROUTES) > 100 and len(ROUTES) > 300
    assert "/api/v1/meters/999999/" in {route.path for route in API_ROUTES}


@pytest.mark.django_db
def test_trace_is_405_on_every_route(client):
    failures = {}
    for route in ROUTES:
        response = client.generic("TRACE", route.path)
        if response.status_code != 405:
            failures[route.path] = response.status_code
    assert not failures, sorted(failures.items())


@pytest.mark.django_db
def test_every_unsupported_method_on_every_api_route_is_a_405_in_the_envelope(api, org_a, manager_a):
    manager_a.is_superuser = True  # scenarios and presets are platform-wide: anyone else gets 403 for any method
    manager_a.save()
    client = api(manager_a)
    failures = {}
    checked = 0
    for route in API_ROUTES:
        allowed = route.allowed_methods()
        if allowed is None:
            continue
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in allowed:
                continue
            checked += 1
            response = client.generic(method, route.path)
            body = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
            if response.status_code != 405 or body.get("error", {}).get("code") != "method_not_allowed":
                failures[f"{method} {route.path}"] = response.status_code
    assert checked > 200
    assert not failures, sorted(failures.items())


def test_me_and_events_refuse_delete_with_405(api, org_a, manager_a):
    # the two the issue named: DELETE /api/v1/me/ and DELETE /api/v1/events/ were 500s
    client = api(manager_a)
    assert client.delete("/api/v1/me/").status_code == 405
    assert client.delete("/api/v1/events/").status_code == 405


# --- row locks (finding 3): PostgreSQL refuses SELECT ... FOR UPDATE outside a transaction; SQLite has none ---


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # no test transaction around the requests: as in production
def test_options_and_writes_on_every_detail_route_never_lock_outside_a_transaction(api, org_a, manager_a):
    client = api(manager_a)
    failures = {}
    detail_routes = [r for r in API_ROUTES if r.path.rstrip("/").endswith("999999")]
    assert len(detail_routes) > 20
    for route in detail_routes:
        allowed = route.allowed_methods() or set()
        for method in ("options", *WRITE_METHODS):
            if method != "options" and method.upper() not in allowed:
                continue
            response = getattr(client, method)(route.path, {}, format="json")
            if response.status_code >= 500:
                failures[f"{method.upper()} {route.path}"] = response.status_code
    assert not failures, sorted(failures.items())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_meter_put_patch_delete_lock_inside_the_transaction(api, org_a, manager_a):
    from assets import meters
    from assets.models import Meter
    from assets.services import create_asset

    asset = create_asset(org_a, name="Pump", code="P-1")
    meter = meters.create_meter(org_a, asset=asset, actor=manager_a, name="Hours", unit="h", kind="cumulative")
    client = api(manager_a)
    url = f"/api/v1/meters/{meter.pk}/"
    assert client.options(url).status_code == 200
    assert client.patch(url, {"name": "Run hours"}, format="json").status_code == 200
    response = client.put(url, {"name": "Hours run", "unit": "h", "kind": "cumulative"}, format="json")
    assert response.status_code == 200, response.json()
    assert client.delete(url).status_code == 204
    assert not Meter.objects.filter(pk=meter.pk).exists()
    assert client.patch("/api/v1/meters/999999/", {"name": "x"}, format="json").status_code == 404
