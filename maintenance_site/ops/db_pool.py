"""The health check of the web processes' database pool (`DATABASE_POOL=true`).

Django's own check (`CONN_HEALTH_CHECKS` with a pool) sends an empty query each time a request takes a connection
from the pool: one more round trip to PostgreSQL on every request, as many as a list's own queries. Here a
connection is checked when it comes out of the pool only if it has not been checked for `RECHECK_AFTER_SECONDS`: a
connection that is broken by a database restart or a dropped link is still found out before use once it has been
idle that long, while a busy process checks each connection a few times a minute instead of on every request. (The
pool itself discards a connection that comes back from a request broken or inside a transaction.)
"""

import time
import weakref

from django.db import connections
from psycopg_pool import ConnectionPool

RECHECK_AFTER_SECONDS = 5.0

_checked_at: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def check_connection(connection) -> None:
    """The pool's `check`: raise if the connection does not work (psycopg_pool then replaces it), skipped for a
    connection checked within the last RECHECK_AFTER_SECONDS."""
    now = time.monotonic()
    if now - _checked_at.get(connection, float("-inf")) < RECHECK_AFTER_SECONDS:
        return
    ConnectionPool.check_connection(connection)
    _checked_at[connection] = now


def install() -> None:
    """Give every pooled PostgreSQL connection this check (OpsConfig.ready). Django builds the pool with its own check
    or none (CONN_HEALTH_CHECKS, which settings turns off with the pool) and takes no other: set it on the pool, which
    is made here, not yet opened, and shared by the process's threads."""
    for wrapper in connections.all(initialized_only=False):
        if wrapper.vendor == "postgresql" and wrapper.settings_dict.get("OPTIONS", {}).get("pool"):
            wrapper.pool._check = check_connection
