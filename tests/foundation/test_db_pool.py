"""The web processes' pool checks a connection before handing it out only when it has been idle a while
(maintenance_site.ops.db_pool): no extra round trip per request, a dead connection still found out."""

import pytest

from maintenance_site.ops import db_pool


class FakeConnection:
    def __init__(self, works=True):
        self.works, self.autocommit, self.checks = works, True, 0

    def execute(self, sql):
        self.checks += 1
        if not self.works:
            raise OSError("server closed the connection")


def test_a_connection_checked_moments_ago_is_not_checked_again(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(db_pool.time, "monotonic", lambda: clock[0])
    connection = FakeConnection()
    db_pool.check_connection(connection)
    clock[0] += db_pool.RECHECK_AFTER_SECONDS / 2
    db_pool.check_connection(connection)
    assert connection.checks == 1
    clock[0] += db_pool.RECHECK_AFTER_SECONDS
    db_pool.check_connection(connection)
    assert connection.checks == 2


def test_an_idle_connection_that_no_longer_works_is_refused():
    with pytest.raises(OSError):
        db_pool.check_connection(FakeConnection(works=False))


def test_the_pool_gets_the_check(monkeypatch):
    class Pool:
        _check = None

    class Wrapper:
        vendor = "postgresql"
        settings_dict = {"OPTIONS": {"pool": {"max_size": 4}}}
        pool = Pool()

    class Unpooled(Wrapper):
        settings_dict = {"OPTIONS": {}}
        pool = Pool()

    monkeypatch.setattr(db_pool.connections, "all", lambda initialized_only=False: [Wrapper(), Unpooled()])
    db_pool.install()
    assert Wrapper.pool._check is db_pool.check_connection
    assert Unpooled.pool._check is None
