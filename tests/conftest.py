"""Shared fixtures: personas (people of organisation A, a stranger of organisation B), API clients,
and the rules for tests that need PostgreSQL or Redis.

In CI (CI set) the suite must reach the real PostgreSQL and Redis: it stops at once, loudly, when it
cannot. Outside CI a test marked `postgres` or `redis` is skipped with the reason printed.

The suite may run in several processes at once (pytest-xdist): each has its own test database (pytest-django
names it test_<name>_gw0, _gw1…; on PostgreSQL each a copy of one migrated template:
tests/shared_test_database.py) and its own namespace in the cache and the channel layer (tests/settings.py), which
is all a test empties.
"""

import os

import pytest
import pytest_timeout
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from maintenance_site.tenancy import services
from maintenance_site.tenancy.roles import Role
from maintenance_site.translations import compile_catalogues
from tests import shared_test_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _redis_reachable() -> tuple[bool, str]:
    if not settings.REDIS_URL:
        return False, "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure to reach Redis means the same thing here
        return False, f"Redis at {settings.REDIS_URL} is unreachable: {exc}"
    return True, ""


def pytest_configure(config):
    # DEBUG is off by default, which picks the manifest storage that only `collectstatic` fills: tests render
    # templates without running it, so they resolve static files the way DEBUG does.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # The .mo files are built from the committed .po files (README, "Languages"): compiled here when stale, so a
    # test run after editing a .po reads the edit (atomic writes: several xdist processes may do it at once).
    compile_catalogues()
    shared_test_database.install(config)


def pytest_sessionfinish(session):
    shared_test_database.drop_template(session.config)


def pytest_sessionstart(session):
    if not IN_CI:
        return
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("CI must run against PostgreSQL: set DATABASE_URL=postgres://...")
    ok, why = _redis_reachable()
    if not ok:
        problems.append(why)
    if problems:
        pytest.exit("CI environment incomplete: " + "; ".join(problems), returncode=3)


# The tests that race real time across processes: Chromium against a live daphne, a live socket fed through Redis
# by another thread's event loop, a started worker or server. Each already waits generously for what must
# arrive; still, about one in a full run on the 2-core CI machine missed its deadline once (a part search that
# never answered, an event that took over 10 s through Redis) and passed in every one of many reruns. They get
# one more try (pytest-rerunfailures), reported in the summary; the thousands of in-process tests get none.
TIMING_SENSITIVE_FILES = ("tests/events/test_websocket", "tests/events/test_socketio")


def _races_real_time(item) -> bool:
    if "browser" in item.keywords or "slow" in item.keywords:
        return True
    return "redis" in item.keywords and item.nodeid.startswith(TIMING_SENSITIVE_FILES)


_first_tries_failed: list = []


def pytest_runtest_logreport(report):
    if report.outcome == "rerun":  # pytest-rerunfailures' report of a failed first try
        _first_tries_failed.append(report)


def pytest_terminal_summary(terminalreporter):
    """The failure of each first try that a rerun then passed: the summary only names the test, and a flaky test is
    found from what went wrong the first time."""
    if not _first_tries_failed:
        return
    terminalreporter.section("first tries of the rerun tests")
    for report in _first_tries_failed:
        lines = report.longreprtext.splitlines()
        terminalreporter.write_line(f"{report.nodeid} ({report.when}):")
        for line in lines[-40:]:
            terminalreporter.write_line(f"    {line}")


def pytest_collection_modifyitems(config, items):
    # The tests that start processes (worker, live server, browser) take minutes on a busy machine: run them
    # first, so that with several pytest-xdist workers the others run alongside instead of after them.
    items.sort(key=lambda item: not ("slow" in item.keywords or "browser" in item.keywords))
    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    redis_ok, redis_why = _redis_reachable() if any("redis" in i.keywords for i in items) else (True, "")
    for item in items:
        if _races_real_time(item):
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        # In CI an unreachable Redis has already stopped the session (pytest_sessionstart).
        if "redis" in item.keywords and not redis_ok and not IN_CI:
            item.add_marker(pytest.mark.skip(reason=f"needs Redis: {redis_why}"))


# The first database test of each process creates its test database: every migration of every app, which takes a
# minute on an idle 2-core machine and more than the 300 s per-test limit when the machine is loaded (the state
# rendering is CPU-bound). That one set-up gets DATABASE_SETUP_TIMEOUT; every other test keeps the usual limit.
DATABASE_SETUP_TIMEOUT = 1800
_test_database_ready = False


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    global _test_database_ready
    _test_database_ready = True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item, settings):
    if _test_database_ready or not settings.timeout:
        return None  # pytest-timeout's own timer, with the configured limit
    return pytest_timeout.pytest_timeout_set_timer(item, settings._replace(timeout=DATABASE_SETUP_TIMEOUT))


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete_on_postgresql():
    """Transactional tests (django_db(transaction=True)) empty every table afterwards. On PostgreSQL Django does
    it with one TRUNCATE of all ~130 tables, which makes new files for every table and index: about 5 s each
    time on this machine. DELETE of the few rows a test leaves takes milliseconds. The order of the DELETEs does
    not matter: Django's foreign keys are DEFERRABLE INITIALLY DEFERRED, checked when the flush commits."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


@pytest.fixture(autouse=True)
def _isolated_run(settings):
    """Unit tests run Celery tasks eagerly and start with an empty cache (throttles, heartbeats)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast personas
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    from maintenance_site.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True)
def _offline_dns(monkeypatch):
    """Webhook targets resolve without the network: IP literals are themselves, `localhost` is 127.0.0.1, any
    other name does not resolve (a test that needs one maps it: tests/webhooks)."""
    import socket

    from maintenance_site.security import outbound as targets

    def resolve(host, port):
        if host == "localhost":
            host = "127.0.0.1"
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            socket.inet_pton(family, host)
        except OSError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (tests resolve no names)") from None
        return [(family, socket.SOCK_STREAM, 6, "", (host, port))]

    monkeypatch.setattr(targets, "_getaddrinfo", resolve)


def clear_cache():
    """Empty this process's cache. In Redis only the keys under its prefix: RedisCache.clear() empties the whole
    Redis database, the other pytest-xdist workers' keys (and another run's) included."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    prefix = "".join(f"\\{c}" if c in "*?[]\\" else c for c in cache.key_prefix)  # glob-escaped
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))  # Django's keys are PREFIX:VERSION:KEY
    if keys:
        client.delete(*keys)


# --- personas ---------------------------------------------------------------------------------------


def make_user(username, **extra):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, f"{username}@example.com", "pw-" + username, **extra)


@pytest.fixture
def org_a(db):
    return services.create_organization(name="Org A", slug="org-a", time_zone="Europe/Berlin")


@pytest.fixture
def org_b(db):
    return services.create_organization(name="Org B", slug="org-b", time_zone="America/New_York")


def _member(org, username, role, **extra):
    user = make_user(username, **extra)
    services.add_member(org, user, role)
    return user


@pytest.fixture
def manager_a(org_a):
    return _member(org_a, "manager-a", Role.MANAGER, is_staff=True)


@pytest.fixture
def planner_a(org_a):
    return _member(org_a, "planner-a", Role.PLANNER, is_staff=True)


@pytest.fixture
def storekeeper_a(org_a):
    return _member(org_a, "storekeeper-a", Role.STOREKEEPER, is_staff=True)


@pytest.fixture
def technician_a(org_a):
    return _member(org_a, "technician-a", Role.TECHNICIAN)


@pytest.fixture
def technician2_a(org_a):
    """A second technician of organisation A: work assigned to someone else."""
    return _member(org_a, "technician2-a", Role.TECHNICIAN)


@pytest.fixture
def viewer_a(org_a):
    return _member(org_a, "viewer-a", Role.VIEWER)


@pytest.fixture
def integrator_a(org_a):
    return _member(org_a, "integrator-a", Role.INTEGRATOR)


@pytest.fixture
def manager_b(org_b):
    """A stranger to organisation A: must never see any of it."""
    return _member(org_b, "manager-b", Role.MANAGER, is_staff=True)


@pytest.fixture
def member_of_both(org_a, org_b):
    """Planner in A, viewer in B."""
    user = make_user("consultant", is_staff=True)
    services.add_member(org_a, user, Role.PLANNER)
    services.add_member(org_b, user, Role.VIEWER)
    return user


@pytest.fixture
def api():
    """`api(user, org=None)`: an API client authenticated as `user` (JWT), optionally naming the organisation."""
    from rest_framework_simplejwt.tokens import AccessToken

    def make(user=None, org=None):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        if org is not None:
            client.defaults["HTTP_X_ORGANIZATION"] = org.slug
        return client

    return make
