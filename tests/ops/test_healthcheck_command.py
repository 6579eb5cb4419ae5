"""`manage.py healthcheck`: a table or JSON, exit status 1 when a check fails."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("healthcheck", *args, stdout=out)
    return out.getvalue()


def failing(*args):
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("healthcheck", *args, stdout=out)
    return out.getvalue(), raised.value


def test_prints_a_table_when_everything_is_up(beat_alive):
    lines = run().splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "LATENCY", "DETAIL"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["database", "ok"],
        ["cache", "ok"],
        ["broker", "ok"],
        ["beat", "ok"],
    ]


def test_exits_1_naming_what_failed():
    out, error = failing()
    assert error.returncode == 1
    assert str(error) == "unhealthy: beat"
    assert any(line.split()[:2] == ["beat", "FAIL"] for line in out.splitlines())


def test_json(beat_alive):
    body = json.loads(run("--json"))
    assert body["status"] == "ok"
    assert body["down"] == []
    assert set(body["checks"]) == {"database", "cache", "broker", "beat"}
    assert all(check["ok"] for check in body["checks"].values())


def test_json_when_something_fails_is_still_json_on_stdout(beat_alive, broker_down):
    out, error = failing("--json")
    body = json.loads(out)
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker"]
    assert error.returncode == 1


def test_only_the_chosen_checks():
    body = json.loads(run("--json", "--check", "database", "--check", "cache", "--check", "database"))
    assert list(body["checks"]) == ["database", "cache"]  # no beat heartbeat, but beat is not asked for


def test_an_unknown_check_is_refused():
    with pytest.raises(CommandError):
        call_command("healthcheck", "--check", "nonsense")
