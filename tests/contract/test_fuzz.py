"""Schema-driven fuzzing of the whole API (issue 16): schemathesis generates requests from the OpenAPI
schema and sends them in-process (WSGI, no server) as a manager of the seeded demo organisation."""

import os
import re
import time
from collections import Counter

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from werkzeug.test import Client as WsgiClient
from hypothesis import HealthCheck, settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup

from maintenance_site.wsgi import application

pytestmark = [pytest.mark.postgres]

SEED = 16
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": int(os.environ.get("FUZZ_EXAMPLES", 3)), "no-shrink": True, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
CHECKS = [not_a_server_error, response_schema_conformance]
STATS = Counter()
FAILURES = []
SURVEY = os.environ.get("FUZZ_SURVEY")

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        outer = transaction.atomic()
        outer.__enter__()
        try:
            call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
            from django.contrib.auth import get_user_model

            manager = get_user_model().objects.get(username="acme-manager")
            headers = {"Authorization": f"Bearer {AccessToken.for_user(manager)}", "X-Organization": "acme"}
            started = time.monotonic()
            yield headers
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
            print("\nFUZZ", dict(STATS), "seconds", round(time.monotonic() - started))
            for f in FAILURES:
                print("FAIL", f)


@pytest.fixture
def headers(seeded, db, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"organization": None, "principal": None, "anon": None})
    return seeded


REAL_IDS = {}


def real_path_parameters(path, headers):
    """Ids of existing objects for a path template: each `{param}` resolved from its parent collection."""
    if path not in REAL_IDS:
        client = WsgiClient(application)
        resolved = {}
        for match in re.finditer(r"\{(\w+)\}", path):
            prefix = path[: match.start()].format(**resolved)
            response = client.get(prefix, headers=headers)
            rows = response.json if response.status_code == 200 else []
            rows = rows.get("results", []) if isinstance(rows, dict) else rows
            ids = [row["id"] for row in rows if isinstance(row, dict) and "id" in row]
            if not ids:
                break
            resolved[match.group(1)] = ids[0]
        REAL_IDS[path] = resolved
    return REAL_IDS[path]


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_api(case, headers):
    STATS[case.operation.label] += 1
    if case.path_parameters and STATS[case.operation.label] % 2 == 0:
        case.path_parameters.update(real_path_parameters(case.operation.path, headers))
    with transaction.atomic():
        response = case.call(headers=headers)
        if response.status_code >= 500:
            transaction.set_rollback(True)
    STATS["requests"] += 1
    STATS[f"status_{response.status_code // 100}xx"] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            STATS[failure.title] += 1
            FAILURES.append(
                (case.operation.label, response.status_code, failure.title, str(failure.message)[:400],
                 case.path_parameters, case.query, str(case.body)[:200], response.text[:300] if response.status_code >= 500 else "")
            )
        if not SURVEY:
            raise
