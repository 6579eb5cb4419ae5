"""Reading PostgreSQL `timestamptz` values in C instead of a regular expression.

Django (USE_TZ) gives every psycopg connection its own `timestamptz` loader, a Python subclass of psycopg's Python
loader that parses each value with a regular expression and then replaces its time zone: ~10 µs a value, which
psycopg's C loader does in well under 1 µs but Django cannot use (it reads a `timezone` attribute off the loader
class, which a C type cannot carry). A 50-row page of the work-order list holds ~250 of them: a tenth of the
list's CPU (bench/list_api.py).

`UTCLoader` is Django's loader with `datetime.fromisoformat` (C) doing the parsing, for connections whose time zone
is UTC (the platform's: `TIME_ZONE` of the database unset, USE_TZ on). PostgreSQL writes a `timestamptz` in the
session's zone, here "2026-06-01 08:30:00.123456+00"; `fromisoformat` reads that form exactly, and anything it
does not read (`infinity`, years past 9999, BC dates) goes to Django's loader, which answers as before (a value or
its error). The values are equal, and of the same type and zone, as Django's (tests/ops/test_db_datetimes.py).
"""

from datetime import UTC, datetime

from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.db.backends.signals import connection_created
from psycopg.pq import Format

TIMESTAMPTZ_OID = 1184


class UTCLoader(BaseTzLoader):
    """Django's `timestamptz` loader for a UTC connection, parsing in C."""

    timezone = UTC

    def load(self, data):
        try:
            value = datetime.fromisoformat(str(data, "ascii"))  # (a value not in ASCII is a ValueError too)
        except ValueError:
            return super().load(data)
        # "+00" is read as `UTC` itself (the one `timezone.utc`): the value is already what the replace below makes,
        # and `replace` costs several times the parse (~1 µs; ~250 values a page).
        return value if value.tzinfo is UTC else value.replace(tzinfo=UTC)


def use_on(sender, connection, **kwargs) -> None:
    """On each connection Django opens (or takes from the pool) to PostgreSQL in UTC: `UTCLoader` for timestamptz."""
    if connection.vendor != "postgresql" or connection.timezone is not UTC:
        return
    adapters = connection.connection.adapters
    if adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is not UTCLoader:
        adapters.register_loader(TIMESTAMPTZ_OID, UTCLoader)


def install() -> None:
    connection_created.connect(use_on, dispatch_uid="ops-db-datetimes")
