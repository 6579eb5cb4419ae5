"""The channel layer for long-lived event sockets: channels-redis with its connections set for sockets that stay
open for hours (settings.CHANNEL_LAYERS names it).

- **Read timeout above the blocking wait.** Each web process receives all its sockets' messages with one BZPOPMIN
  that waits `brpop_timeout` (5 s) for a message; redis-py 8 reads with a 5 s socket timeout unless told otherwise,
  so an idle wait ended in a `TimeoutError` that closed the socket holding the receive lock (1011). The layer
  refuses a `socket_timeout` that is not above the wait.
- **Health checks**: a connection idle for `health_check_interval` seconds is PINGed before use, so a connection a
  firewall or a Redis restart dropped is replaced instead of failing a send.
- **A bounded, blocking pool**: at most `max_connections` connections per process and event loop; when all are
  busy a command waits for one (up to `pool_timeout` seconds) instead of failing with `MaxConnectionsError` — what
  lost `group_discard`s when a thousand clients closed at once and left dead channels in the groups.
- **Retries**: a command that meets a dropped connection or a timeout is retried `retries` times with a short
  exponential backoff (capped at `retry_backoff_cap` seconds), so a Redis that is down is still reported within a
  second or two (the socket then closes 1013).
- **Group changes in one round trip**: `group_add_many` / `group_discard_many` put a socket in (or take it out of)
  all its groups with one pipeline per Redis host, where `group_add` costs two round trips per group: a thousand
  sockets connecting or closing at once wait for a quarter of the replies (and hold a pool connection a quarter
  as long). `group_add_channels` / `group_discard_channels` do the same for many sockets in one pipeline (one ZADD
  or ZREM per group naming all of them): what the consumer uses for the handshakes and closes it serves together.
"""

import time
from collections import defaultdict

from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class LongLivedRedisChannelLayer(RedisChannelLayer):
    """RedisChannelLayer with a blocking, bounded pool, health checks and retries (module docstring)."""

    def __init__(
        self,
        hosts=None,
        *,
        max_connections: int = 100,
        pool_timeout: float = 10.0,
        socket_timeout: float = 15.0,
        socket_connect_timeout: float = 5.0,
        health_check_interval: float = 30.0,
        retries: int = 3,
        retry_backoff_cap: float = 0.5,
        brpop_timeout: float = 5,
        **kwargs,
    ):
        if socket_timeout <= brpop_timeout:
            raise ValueError(
                f"The channel layer's socket_timeout ({socket_timeout} s) must be above its blocking wait "
                f"({brpop_timeout} s): an idle socket's wait would end in a TimeoutError."
            )
        super().__init__(hosts=hosts, **kwargs)
        self.brpop_timeout = brpop_timeout
        self.pool_options = {
            "max_connections": max_connections,
            "timeout": pool_timeout,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "socket_keepalive": True,
            "health_check_interval": health_check_interval,
            "retry": Retry(ExponentialBackoff(cap=retry_backoff_cap, base=0.05), retries),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        }

    async def group_add_many(self, groups, channel) -> None:
        """`group_add` of `channel` to every group, one pipeline (ZADD and EXPIRE per group) per Redis host."""
        now = time.time()
        for index, keys in self._group_keys_by_host(groups, channel).items():
            pipeline = self.connection(index).pipeline(transaction=False)
            for key in keys:
                pipeline.zadd(key, {channel: now})
                pipeline.expire(key, self.group_expiry)
            await pipeline.execute()

    async def group_discard_many(self, groups, channel) -> None:
        """`group_discard` of `channel` from every group, one pipeline (ZREM per group) per Redis host."""
        for index, keys in self._group_keys_by_host(groups, channel).items():
            pipeline = self.connection(index).pipeline(transaction=False)
            for key in keys:
                pipeline.zrem(key, channel)
            await pipeline.execute()

    async def group_add_channels(self, memberships) -> None:
        """`group_add_many` for several channels at once, `memberships` a list of (groups, channel): one pipeline per
        Redis host, one ZADD (all the channels joining that group) and one EXPIRE per group. The handshakes and
        re-joins a web process serves together (consumers.Batched) cost one round trip, not one each."""
        now = time.time()
        by_host: dict[int, dict[bytes, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for groups, channel in memberships:
            for index, keys in self._group_keys_by_host(groups, channel).items():
                for key in keys:
                    by_host[index][key][channel] = now
        for index, members in by_host.items():
            pipeline = self.connection(index).pipeline(transaction=False)
            for key, mapping in members.items():
                pipeline.zadd(key, mapping)
                pipeline.expire(key, self.group_expiry)
            await pipeline.execute()

    async def group_discard_channels(self, memberships) -> None:
        """`group_discard_many` for several channels at once (list of (groups, channel)): one ZREM per group."""
        by_host: dict[int, dict[bytes, list[str]]] = defaultdict(lambda: defaultdict(list))
        for groups, channel in memberships:
            for index, keys in self._group_keys_by_host(groups, channel).items():
                for key in keys:
                    by_host[index][key].append(channel)
        for index, members in by_host.items():
            pipeline = self.connection(index).pipeline(transaction=False)
            for key, channels in members.items():
                pipeline.zrem(key, *channels)
            await pipeline.execute()

    def _group_keys_by_host(self, groups, channel) -> dict[int, list[bytes]]:
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        by_host: dict[int, list[bytes]] = defaultdict(list)
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host[self.consistent_hash(group)].append(self._group_key(group))
        return by_host

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address", None)
        options = {**self.pool_options, **host}  # a host's own options win
        if address is not None:
            return aioredis.BlockingConnectionPool.from_url(address, **options)
        return aioredis.BlockingConnectionPool(**options)
