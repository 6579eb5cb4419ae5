"""Schema-driven fuzzing of the whole API (issue 16): schemathesis generates requests from the OpenAPI schema
and sends them in-process through the WSGI application (no server), as the manager of the seeded demo
organisation. It fails on any 5xx and on any response that does not match the schema.

Phases `examples` and `fuzzing` only, 3 examples per operation, a fixed seed: the same requests every run.
Every other example of an operation with path parameters is sent to objects that exist (ids read from their
parent lists), so detail routes are reached and not only their 404. Each operation runs in its own savepoint
over the seeded data, rolled back after it. `FUZZ_MAX_EXAMPLES=50` explores further on a developer's machine.

A 5xx found here gets its own named regression test (tests/contract/test_bad_input.py).
"""

import os
import re
import time
from collections import Counter

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import not_a_server_error, response_schema_conformance
from werkzeug.test import Client as WsgiClient

from maintenance_site.wsgi import application

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

SEED = 16
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": int(os.environ.get("FUZZ_MAX_EXAMPLES", "3")),
            "no-shrink": True,
            "database": "none",  # no example database: each run sends exactly the seed's requests
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
CHECKS = [not_a_server_error, response_schema_conformance]

# Operations that change platform-wide state run after all the others, so that whatever they leave outside
# the rolled-back database (a maintenance mode kept in the cache, stopped scenarios) cannot change the answers
# of the rest. (As an organisation's manager, not a superuser, the scenario and preset ones are refused.)
PLATFORM_WIDE = r"/maintenance/mode/|/scenarios/stop-all/|/presets/\{[^}]+\}/apply/"

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)
STATS = Counter()  # shown at the end of the run (conftest.py)


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo data, once for the module, inside a transaction rolled back at the end."""
    with django_db_blocker.unblock():
        # Django's test client does the same: the test's transaction must outlive each request.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        outer = transaction.atomic()
        outer.__enter__()
        started = time.monotonic()
        try:
            call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115 (closed at exit)
            manager = get_user_model().objects.get(username="acme-manager")
            yield {"Authorization": f"Bearer {AccessToken.for_user(manager)}", "X-Organization": "acme"}
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
            STATS["seconds"] = round(time.monotonic() - started)


@pytest.fixture
def headers(seeded, db, monkeypatch):
    """Each operation in its own savepoint over the seeded data; no rate limit counts the fuzzer's requests."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"organization": None, "principal": None, "anon": None})
    STATS["operations"] += 1
    return seeded


EXISTING_IDS: dict[str, dict] = {}


def existing_path_parameters(path: str, headers: dict) -> dict:
    """Ids of existing objects for a path template, each `{name}` taken from the first row of its parent list."""
    if path not in EXISTING_IDS:
        client = WsgiClient(application)
        resolved = {}
        for match in re.finditer(r"\{(\w+)\}", path):
            response = client.get(path[: match.start()].format(**resolved), headers=headers)
            rows = response.json if response.status_code == 200 else []
            rows = rows.get("results", []) if isinstance(rows, dict) else rows
            ids = [row.get("id", row.get("key", row.get("prefix"))) for row in rows if isinstance(row, dict)]
            if not ids or ids[0] is None:
                break
            resolved[match.group(1)] = ids[0]
        EXISTING_IDS[path] = resolved
    return EXISTING_IDS[path]


def call_and_check(case, headers):
    STATS[case.operation.label] += 1
    if case.path_parameters and STATS[case.operation.label] % 2 == 0:
        case.path_parameters.update(existing_path_parameters(case.operation.path, headers))
    with transaction.atomic():  # a failed request must not poison the rest of the operation's savepoint
        response = case.call(headers=headers)
        if response.status_code >= 500:
            transaction.set_rollback(True)
    STATS["requests"] += 1
    STATS[f"{response.status_code // 100}xx"] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)


@schema.exclude(path_regex=PLATFORM_WIDE).parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_api(case, headers):
    call_and_check(case, headers)


@schema.include(path_regex=PLATFORM_WIDE).parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_platform_wide_operations_last(case, headers):
    call_and_check(case, headers)
