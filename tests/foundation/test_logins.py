"""Login lockouts (django-axes, database handler) on every way in with a password, counted per (username, client
address); the client address behind TRUSTED_PROXY_COUNT proxies; failed sign-ins in the log.

The counts live in the database, so each test starts with none (its transaction is rolled back): personas are
never locked across tests.
"""

import logging

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory, override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle

from maintenance_site.security.addresses import client_ip

LIMIT = 10  # AXES_FAILURE_LIMIT's default (LOGIN_FAILURE_LIMIT)
TOKEN_URL = "/api/v1/auth/token/"


class Login:
    """One way in: posts a username and password the way its page or client does."""

    def __init__(self, name: str, url: str, persona: str):
        self.name, self.url, self.persona = name, url, persona

    def __repr__(self):
        return self.name

    def post(self, username: str, password: str, **headers):
        if self.url == TOKEN_URL:
            return APIClient().post(self.url, {"username": username, "password": password}, format="json", **headers)
        return Client().post(self.url, {"username": username, "password": password}, **headers)

    def succeeded(self, response) -> bool:
        if self.url == TOKEN_URL:
            return response.status_code == 200 and "access" in response.json()
        return response.status_code == 302  # signed in: redirected on


LOGINS = [
    Login("api-token", TOKEN_URL, "manager_a"),
    Login("admin", "/admin/login/", "manager_a"),
    Login("technician", "/t/login/", "technician_a"),
    Login("accounts", "/accounts/login/", "technician_a"),
]


def password_of(user) -> str:
    return "pw-" + user.username  # tests.conftest.make_user


def assert_locked(login: Login, response, username: str) -> None:
    assert response.status_code == 429, (login, response.status_code)
    assert int(response["Retry-After"]) == 15 * 60
    if login.url == TOKEN_URL:
        error = response.json()["error"]
        assert (error["status"], error["code"]) == (429, "locked_out")
        message = error["message"]
    else:
        message = response.content.decode()
        assert "<form" in message  # the login page itself, with the reason on it
    assert f"Too many failed sign-ins for “{username}” from your address" in message
    assert "Wait 15 minutes and try again, or ask an administrator to unlock the account." in message


@pytest.mark.parametrize("login", LOGINS, ids=repr)
def test_thirty_wrong_passwords_then_the_right_one_is_refused(login, request, db):
    user = request.getfixturevalue(login.persona)
    for attempt in range(30):
        response = login.post(user.username, f"guess-{attempt}")
        if attempt < LIMIT - 1:
            assert response.status_code in (200, 401), (attempt, response.status_code)  # an ordinary refusal
        else:
            assert_locked(login, response, user.username)
    response = login.post(user.username, password_of(user))
    assert not login.succeeded(response)
    assert_locked(login, response, user.username)
    # the lock is for this username from this address: another person signs in from the same address
    other = request.getfixturevalue("planner_a")
    assert login.succeeded(login.post(other.username, password_of(other)))


@pytest.mark.parametrize("login", LOGINS, ids=repr)
def test_a_successful_sign_in_clears_the_count(login, request, db):
    user = request.getfixturevalue(login.persona)
    for round_ in range(3):
        for attempt in range(LIMIT - 1):
            assert not login.succeeded(login.post(user.username, f"guess-{round_}-{attempt}"))
        assert login.succeeded(login.post(user.username, password_of(user))), round_
    assert not AccessAttempt.objects.filter(username=user.username).exists()


def test_an_invented_forwarded_for_header_does_not_reset_the_count(manager_a):
    """TRUSTED_PROXY_COUNT=0 (the default): X-Forwarded-For is ignored, the socket's address counts."""
    for attempt in range(30):
        APIClient().post(
            TOKEN_URL,
            {"username": "manager-a", "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"10.0.{attempt}.1",
        )
    response = APIClient().post(
        TOKEN_URL, {"username": "manager-a", "password": "pw-manager-a"}, HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_the_address_it_appended_is_the_client(manager_a):
    """The proxy appends the address it saw to whatever the client sent: only that right-most entry counts."""
    for attempt in range(30):
        response = Client().post(
            "/admin/login/",
            {"username": "manager-a", "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"10.0.{attempt}.1, 203.0.113.7",
            REMOTE_ADDR="172.18.0.2",  # the proxy
        )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    from_the_same_client = Client().post(
        "/admin/login/",
        {"username": "manager-a", "password": "pw-manager-a"},
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7",
        REMOTE_ADDR="172.18.0.2",
    )
    assert from_the_same_client.status_code == 429
    from_elsewhere = Client().post(
        "/admin/login/",
        {"username": "manager-a", "password": "pw-manager-a"},
        HTTP_X_FORWARDED_FOR="198.51.100.9",
        REMOTE_ADDR="172.18.0.2",
    )
    assert from_elsewhere.status_code == 302  # the same account from another address is not locked


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "127.0.0.1"),
        (1, None, "127.0.0.1"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (1, "2001:db8::1", "2001:db8::1"),
        (2, "not-an-address, 10.0.0.2", "127.0.0.1"),  # garbled: the socket's address, never the text
    ],
)
def test_client_address_and_drf_throttles_agree(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().post(TOKEN_URL, REMOTE_ADDR="127.0.0.1", **headers)
    assert client_ip(request) == expected
    if "not-an-address" not in (forwarded or ""):
        assert AnonRateThrottle().get_ident(request) == expected  # the anonymous API limit counts the same client


def test_settings_give_drf_the_trusted_proxy_count():
    from django.conf import settings

    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.TRUSTED_PROXY_COUNT == 0


def test_lockouts_work_while_the_cache_is_down(manager_a):
    """The database handler needs no cache: with Redis unreachable the admin login still locks."""
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):
        for attempt in range(LIMIT):
            response = Client().post("/admin/login/", {"username": "manager-a", "password": f"guess-{attempt}"})
        assert response.status_code == 429
        right = Client().post("/admin/login/", {"username": "manager-a", "password": "pw-manager-a"})
        assert right.status_code == 429


def test_failed_sign_ins_and_the_lockout_are_logged(manager_a, caplog):
    with caplog.at_level(logging.WARNING, logger="maintenance_site.logins"):
        for attempt in range(LIMIT):
            Client().post("/admin/login/", {"username": "manager-a", "password": f"guess-{attempt}"})
    messages = [r.getMessage() for r in caplog.records if r.name == "maintenance_site.logins"]
    assert messages[0] == ("Failed sign-in for 'manager-a' from 127.0.0.1 on /admin/login/ (failure 1; locked at 10).")
    assert "Sign-in locked for 'manager-a' from 127.0.0.1 on /admin/login/ for 900 seconds" in messages[-2]
    assert all("guess" not in message for message in messages)  # never the password tried


@pytest.mark.parametrize("url", ["/admin/login/", "/t/login/", "/accounts/login/"])
def test_every_login_page_renders(client, db, url):
    """`/accounts/login/` (where attachment downloads send a signed-out visitor) had no template: a 500."""
    assert client.get(url).status_code == 200


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_public_reports_count_the_same_client_address():
    from workorders.public_views import client_address

    request = RequestFactory().post("/report/x/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="172.18.0.2")
    assert client_address(request) == "203.0.113.7"


def test_under_asgi_the_lockout_shows_the_login_page_with_the_reason(manager_a):
    """daphne runs the middleware chain asynchronously, where axes' own middleware would lose the page."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    client = AsyncClient()
    post = async_to_sync(client.post)
    for attempt in range(LIMIT):
        response = post("/admin/login/", {"username": "manager-a", "password": f"guess-{attempt}"})
    assert response.status_code == 429
    html = response.content.decode()
    assert 'id="login-form"' in html and "Too many failed sign-ins for “manager-a”" in html
