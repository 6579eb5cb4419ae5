"""Seed 001's environment variables where they mean something here: MAINTENANCE_PORT / SERVICE_PORT → the run
command's port, SERVICE_NAME → the service in JSON logs and traces (ENABLE_CALENDAR: in the scenarios' tests)."""

import importlib
import json
import logging

import pytest
from django.core.management.base import CommandError

from maintenance_site.ops import logging as platform_logging
from maintenance_site.ops.management.commands import runplatform


def port_of(monkeypatch, **variables) -> int:
    for name in ("MAINTENANCE_PORT", "SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runplatform.Command().create_parser("manage.py", "runplatform").parse_args([]).port


def test_the_run_commands_port_comes_from_the_seeds_variables(monkeypatch):
    assert port_of(monkeypatch) == 8000
    assert port_of(monkeypatch, SERVICE_PORT="3250") == 3250
    assert port_of(monkeypatch, MAINTENANCE_PORT="3251", SERVICE_PORT="3250") == 3251


def test_a_port_that_is_not_one_is_refused_with_the_variable_named(monkeypatch):
    with pytest.raises(CommandError, match="MAINTENANCE_PORT='http' is not a port") as refused:
        port_of(monkeypatch, MAINTENANCE_PORT="http")
    assert refused.value.returncode == 2


def test_service_name_is_in_every_json_log_line(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "plant-7-maintenance")
    reloaded = importlib.reload(platform_logging)
    try:
        record = logging.LogRecord("scheduling", logging.INFO, __file__, 1, "tick", (), None)
        assert json.loads(reloaded.JsonFormatter().format(record))["service"] == "plant-7-maintenance"
    finally:
        monkeypatch.delenv("SERVICE_NAME")
        importlib.reload(platform_logging)
