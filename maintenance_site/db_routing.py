"""Reads that may go to a read replica (`DATABASE_REPLICA_URL`), and the router that sends them there.

Everything reads from and writes to the primary (`default`) unless a read is marked replica-safe: analytics,
reports and exports, which can live with a replica's lag of a second or so and are the heavy reads worth taking
off the primary. Two ways to mark one, both falling back to the primary when no replica is configured:

    from maintenance_site.db_routing import reading_from_replica, replica_alias

    rows = WorkOrder.objects.using(replica_alias()).filter(...)    # one queryset

    with reading_from_replica():                                     # every ORM read inside the block
        figures = build_report(organization)

Writes never go to the replica, inside the block too (`db_for_write` is always the primary), and the replica is
never migrated (it is a streaming copy of the primary). A related object fetched from a row read on the replica
comes from the replica too (Django follows the instance's database), so a report stays one consistent snapshot
source. Do not mark reads that feed a write (read-then-update, select_for_update, uniqueness checks): a lagging
replica would hand them stale rows.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def replica_configured() -> bool:
    """Whether a replica database is configured (DATABASE_REPLICA_URL): settings.DATABASES as the connections
    know it."""
    return REPLICA in connections.settings


def replica_alias() -> str:
    """The alias replica-safe reads use: the replica when one is configured, else the primary."""
    return REPLICA if replica_configured() else DEFAULT_DB_ALIAS


@contextmanager
def reading_from_replica() -> Iterator[str]:
    """Within the block, ORM reads that name no database go to the replica (when configured); yields the alias.

    A context variable: it follows the code into `sync_to_async`/`async_to_sync` and stays local to its thread
    or task, so one request's block never reroutes another's reads."""
    token = _replica_reads.set(True)
    try:
        yield replica_alias()
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    """settings.DATABASE_ROUTERS: replica-safe reads (see the module) to the replica, everything else to the
    primary."""

    def db_for_read(self, model, **hints):
        if _replica_reads.get() and replica_configured():
            return REPLICA
        return None  # Django's default: the instance's database if a hint names one, else the primary

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the primary's rows: an object read there may be related to one read on the primary.
        aliases = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in aliases and obj2._state.db in aliases:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA
