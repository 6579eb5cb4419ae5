"""Bad input is a 4xx in the API's envelope naming what was wrong, never a 500 nor an HTML page (issue 16,
findings 5 and 10), and the site's own error pages. Each 500 the fuzz run found has its named test here."""

import json

import pytest

pytestmark = pytest.mark.django_db


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


# --- 500s the fuzz run found ------------------------------------------------------------------------------


def test_api_key_without_a_name_is_a_400_naming_it(api, org_a, manager_a):
    error = error_of(api(manager_a).post("/api/v1/api-keys/", {}, format="json"), 400)
    assert "name" in error["fields"]


@pytest.mark.parametrize("offset", ["-22:56", "-18:47", "+16:00"])
def test_updated_after_with_an_offset_postgres_cannot_store_is_read_in_utc(api, org_a, manager_a, offset):
    # PostgreSQL refuses offsets beyond ±15:59; the moment is the same one in UTC
    client = api(manager_a)
    for path in ("/api/v1/inventory/movements/", "/api/v1/work-orders/", "/api/v1/assets/"):
        response = client.get(path, {"updated_after": f"2020-01-27T21:38:31{offset}"})
        assert response.status_code == 200, (path, response.content[:300])


@pytest.mark.parametrize("value", ["2020-01-27T21:38:31+25:00", "0001-01-01T00:00:00+01:00", "yesterday"])
def test_updated_after_that_is_no_moment_is_a_400_naming_it(api, org_a, manager_a, value):
    error = error_of(api(manager_a).get("/api/v1/work-orders/", {"updated_after": value}), 400)
    assert "updated_after" in error["fields"]


def test_moment_filters_of_the_lists_read_in_utc_too(api, org_a, manager_a):
    client = api(manager_a)
    checks = [
        ("/api/v1/inventory/movements/", "created_before"),
        ("/api/v1/work-orders/", "due_after"),
        ("/api/v1/sla/violations/", "detected_after"),
    ]
    for path, parameter in checks:
        assert client.get(path, {parameter: "2020-01-27T21:38:31-22:56"}).status_code == 200, path
        assert parameter in error_of(client.get(path, {parameter: "someday"}), 400)["fields"]
    assert "from" in error_of(client.get("/api/v1/sla/performance/", {"from": "2026-02-30"}), 400)["fields"]


@pytest.mark.parametrize("asset", ["AAA", "true", "1.5"])
def test_a_non_integer_id_in_a_nested_route_is_a_json_404(api, org_a, manager_a, asset):
    error_of(api(manager_a).get(f"/api/v1/assets/{asset}/meters/"), 404)


# --- request bodies ---------------------------------------------------------------------------------------


def test_json_nested_10000_levels_deep_is_a_400(api, org_a, manager_a):
    body = "[" * 10_000 + "]" * 10_000
    response = api(manager_a).post("/api/v1/work-orders/", body, content_type="application/json")
    assert "nests deeper" in error_of(response, 400)["message"]


def test_json_nested_deeper_than_the_limit_is_a_400_even_when_python_could_parse_it(api, org_a, manager_a):
    body = {"title": "Deep"}
    for _ in range(100):
        body = {"nested": body}
    response = api(manager_a).post("/api/v1/work-orders/", body, format="json")
    error_of(response, 400)


def test_a_body_over_the_size_limit_is_a_413_in_the_envelope(api, org_a, manager_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = api(manager_a)
    big = json.dumps({"title": "x" * 2000})
    error = error_of(client.post("/api/v1/work-orders/", big, content_type="application/json"), 413)
    assert error["code"] == "request_too_large"
    # with an Idempotency-Key the body is read before parsing (to fingerprint it): the same answer
    response = client.post("/api/v1/work-orders/", big, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert error_of(response, 413)["code"] == "request_too_large"
    form = "&".join(f"f{i}=1" for i in range(600))
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    response = client.post("/api/v1/work-orders/", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 413) and response["Content-Type"].startswith("application/json")


def test_a_query_string_with_too_many_parameters_is_a_400_in_the_envelope(api, org_a, manager_a, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    query = "&".join(f"p{i}=1" for i in range(200))
    assert error_of(api(manager_a).get(f"/api/v1/work-orders/?{query}"), 400)["code"] == "too_many_fields"


# --- paging and filter values (finding 10) -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "abc", "0", "1.5"])
def test_an_invalid_page_size_is_a_400_naming_it(api, org_a, manager_a, value):
    error = error_of(api(manager_a).get("/api/v1/work-orders/", {"page_size": value}), 400)
    assert "page_size" in error["fields"]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "99999999"])
def test_an_invalid_page_is_a_400_naming_it(api, org_a, manager_a, value):
    error = error_of(api(manager_a).get("/api/v1/work-orders/", {"page": value}), 400)
    assert "page" in error["fields"]


def test_valid_paging_still_works(api, org_a, manager_a, settings):
    client = api(manager_a)
    assert client.get("/api/v1/work-orders/", {"page": "1", "page_size": "10"}).status_code == 200
    assert client.get("/api/v1/work-orders/", {"page": "last"}).status_code == 200  # an empty list has page 1
    big = client.get("/api/v1/work-orders/", {"page_size": str(settings.API_MAX_PAGE_SIZE * 10)})
    assert big.status_code == 200  # above the cap: capped, as documented


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        ("/api/v1/work-orders/", "status", "bogus"),
        ("/api/v1/work-orders/", "asset", "abc"),
        ("/api/v1/work-orders/", "overdue", "perhaps"),
        ("/api/v1/inventory/movements/", "kind", "bogus"),
        ("/api/v1/inventory/parts/", "unit", "bogus"),
        ("/api/v1/assets/", "criticality", "bogus"),
    ],
)
def test_an_invalid_filter_value_is_a_400_naming_the_filter(api, org_a, manager_a, path, parameter, value):
    error = error_of(api(manager_a).get(path, {parameter: value}), 400)
    assert parameter in error["fields"], error


# --- the site's own error pages (DEBUG is off by default) --------------------------------------------------


def test_unknown_api_path_is_a_json_404(client):
    error = error_of(client.get("/api/v1/no-such-thing/"), 404)
    assert "/api/docs/" in error["message"]


def test_unknown_page_is_the_projects_own_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content and b"Traceback" not in response.content


def test_an_api_500_is_the_envelope_and_logged(api, org_a, manager_a, monkeypatch, caplog):
    from maintenance_site.tenancy import api as tenancy_api

    def broken(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(tenancy_api.MeView, "get", broken)
    client = api(manager_a)
    client.raise_request_exception = False
    error = error_of(client.get("/api/v1/me/"), 500)
    assert error["code"] == "server_error" and "boom" not in error["message"]
    assert "Internal Server Error: /api/v1/me/" in caplog.text and "RuntimeError: boom" in caplog.text


def test_the_500_page_is_the_projects_own(rf):
    from maintenance_site.ops.http_errors import server_error

    response = server_error(rf.get("/admin/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    api_response = server_error(rf.get("/api/v1/work-orders/"))
    assert json.loads(api_response.content)["error"]["code"] == "server_error"


def test_the_url_conf_names_the_projects_handlers():
    from maintenance_site import urls

    assert urls.handler404.startswith("maintenance_site.ops.http_errors.")
    assert urls.handler500.startswith("maintenance_site.ops.http_errors.")
