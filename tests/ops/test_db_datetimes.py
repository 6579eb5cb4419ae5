"""The platform's `timestamptz` loader (maintenance_site.ops.db_datetimes) reads every value PostgreSQL can send as
Django's own loader reads it: the same datetime, in UTC, or the same error; and every connection uses it."""

from datetime import UTC

import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

from maintenance_site.ops.db_datetimes import TIMESTAMPTZ_OID, UTCLoader

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VALUES = [
    "2026-06-01 08:30:00+00",
    "2026-06-01 08:30:00.5+00",
    "2026-06-01 08:30:00.123456+00",
    "2026-06-01 08:30:00.000001+00",
    "2026-06-01 10:30:00+02",  # another zone: PostgreSQL answers in the session's (UTC)
    "2026-03-29 01:30:00 Europe/Madrid",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "1970-01-01 00:00:00+00",
]


def read(values: list[str], django_loader: bool):
    with connection.cursor() as cursor:
        if django_loader:
            register_tzloader(UTC, cursor.cursor)  # what Django registers on its connections
        cursor.execute("SELECT v::timestamptz FROM unnest(%s::text[]) v", [values])
        return [row[0] for row in cursor.fetchall()]


def test_connections_read_timestamptz_with_the_c_parser():
    connection.ensure_connection()
    assert connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is UTCLoader


def test_every_value_is_read_as_djangos_loader_reads_it():
    ours, djangos = read(VALUES, False), read(VALUES, True)
    assert ours == djangos
    assert [value.tzinfo for value in ours] == [UTC] * len(VALUES)
    assert all(value.tzinfo is UTC for value in ours)  # the one UTC object, as Django's `replace` makes it
    assert [value.isoformat() for value in ours] == [value.isoformat() for value in djangos]


@pytest.mark.parametrize("value", ["infinity", "-infinity", "0001-01-01 00:00:00+00 BC", "10000-01-01 00:00:00+00"])
def test_a_value_python_cannot_hold_is_the_same_error(value):
    with pytest.raises(DataError) as ours:
        read([value], False)
    with pytest.raises(DataError) as djangos:
        read([value], True)
    assert str(ours.value) == str(djangos.value)
