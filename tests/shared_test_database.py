"""One migrated test database per run on PostgreSQL, copied for each pytest-xdist process.

Creating a test database runs every migration of every app: about a minute of one core's CPU (the migration state's
rendering), and each xdist process created its own, all at once, at the start of the run: two minutes of both
cores on the 2-core CI machine. Here the first process to need one migrates a template database
(`test_<name>_template`) while the others wait for it, then each process copies it (`CREATE DATABASE … TEMPLATE`,
a file copy: a few seconds) under its usual name (test_<name>_gw0, …). The controller drops the template when the
run ends; each process drops its copy even if a session is still connected to it.

Applies only to PostgreSQL runs under xdist that create their databases (not --reuse-db); anything else creates
its database as pytest-django does.
"""

import fcntl
import tempfile
import warnings
from pathlib import Path

from django.db.backends.postgresql.creation import DatabaseCreation

_create_test_db = DatabaseCreation.create_test_db
_run: dict = {}


def install(config) -> None:
    """Called from pytest_configure: in an xdist process, copy the run's template rather than migrate."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    _run["id"] = workerinput["testrunuid"]
    DatabaseCreation.create_test_db = _create_from_template
    DatabaseCreation._destroy_test_db = _destroy_even_if_still_connected


def template_name(worker_database: str) -> str:
    base = worker_database.rsplit("_gw", 1)[0]
    return f"{base}_template"[:63]


def _create_from_template(self, verbosity=1, autoclobber=False, serialize=True, keepdb=False):
    if keepdb:
        return _create_test_db(self, verbosity, autoclobber, serialize, keepdb)
    test_settings = self.connection.settings_dict["TEST"]
    worker_database = self._get_test_db_name()
    template = template_name(worker_database)
    marker = Path(tempfile.gettempdir(), f"maintenance-test-db-{_run['id']}-{template}")
    with open(f"{marker}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while the first migrates the template
        if not marker.exists():
            test_settings["NAME"] = template
            try:
                _create_test_db(self, verbosity, autoclobber, serialize=False, keepdb=False)
            finally:
                test_settings["NAME"] = worker_database
            self.connection.close()  # no session may be connected to a template while it is copied
            marker.touch()
        quoted = self.connection.ops.quote_name
        with self._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted(worker_database)}")
            cursor.execute(f"CREATE DATABASE {quoted(worker_database)} TEMPLATE {quoted(template)}")
    self.connection.close()
    from django.conf import settings

    settings.DATABASES[self.connection.alias]["NAME"] = worker_database
    self.connection.settings_dict["NAME"] = worker_database
    if serialize:
        self.connection._test_serialized_contents = self.serialize_db_to_string()
    self.connection.ensure_connection()
    return worker_database


def _destroy_even_if_still_connected(self, test_database_name, verbosity):
    """Django's drop at the end of the run, with FORCE: a session some test left open (a thread's, a child
    process's) no longer keeps the process's database on the server after the run (a CI run left
    test_<name>_gw0 behind with a warning)."""
    self.connection.close_pool()
    with self._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT application_name, backend_start, state, left(query, 200) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [test_database_name],
        )
        if lingering := cursor.fetchall():  # named, so that the test that left them can be found
            warnings.warn(f"{test_database_name} still had sessions at the end of the run: {lingering}", stacklevel=1)
        cursor.execute(f"DROP DATABASE {self.connection.ops.quote_name(test_database_name)} WITH (FORCE)")


def drop_template(config) -> None:
    """Called from pytest_sessionfinish in the controller: drop the run's template, if one was made."""
    if getattr(config, "workerinput", None) is not None or getattr(config.option, "reuse_db", False):
        return
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not getattr(config.option, "numprocesses", None):
        return
    import psycopg

    database = settings.DATABASES["default"]
    worker_database = database.get("TEST", {}).get("NAME") or f"test_{database['NAME']}"
    # psycopg itself: pytest-django blocks the ORM's connections outside tests
    parameters = {**connection.get_connection_params(), "dbname": "postgres"}
    parameters.pop("cursor_factory", None)
    with psycopg.connect(**parameters, autocommit=True) as server:
        template = connection.ops.quote_name(template_name(worker_database))
        server.execute(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
