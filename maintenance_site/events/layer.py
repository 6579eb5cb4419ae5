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

import asyncio
import time
from collections import defaultdict

from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _ReaderFailed:
    """What the reader hands a waiting channel when reading from Redis failed."""

    def __init__(self, error: BaseException):
        self.error = error


class LongLivedRedisChannelLayer(RedisChannelLayer):
    """RedisChannelLayer with a blocking, bounded pool, health checks and retries (module docstring)."""

    IDLE_READER_SECONDS = 1.0  # the process's reader stops this long after the last receive ended

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
        self._waiting: dict[str, int] = {}  # this process's channels with a receive under way (how many)
        self._reader: asyncio.Task | None = None
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

    async def receive(self, channel):
        """Receive on one of this process's channels through one reader task per process (`_pump`), instead of
        channels-redis's dance per waiting consumer and message (two tasks, an asyncio.wait and a cancel, to see
        whether it gets the message or the lock): a third of the event loop's time while a thousand sockets get 50
        events/s. Each channel still gets its messages in order from its own buffer; a failure of the reader (Redis
        down) is raised to every consumer waiting then, as channels-redis raises it to the one reading."""
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        real_channel = self.non_local_name(channel)
        assert real_channel.endswith(self.client_prefix + "!"), "Wrong client prefix"
        loop = asyncio.get_running_loop()
        if self.receive_event_loop not in (None, loop) and self._waiting:
            raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
        self.receive_event_loop = loop
        queue = self.receive_buffer[channel]
        self._waiting[channel] = self._waiting.get(channel, 0) + 1
        try:
            reader = self._reader
            if queue.empty() and (reader is None or reader.done() or reader.get_loop() is not loop):
                self._reader = loop.create_task(self._pump(real_channel))
            item = await queue.get()
        except asyncio.CancelledError:
            self.receive_buffer.pop(channel, None)
            raise
        finally:
            count = self._waiting.pop(channel, 1) - 1
            if count:
                self._waiting[channel] = count
            elif not self._waiting:
                # The consumers wake up together and come back one by one: stop reading only if nobody has come
                # back a while later (a cancelled read costs its connection; messages stay in Redis meanwhile).
                loop.call_later(self.IDLE_READER_SECONDS, self._stop_idle_reader)
        # The buffer stays while its consumer lives (channels-redis drops an empty one after each message, and
        # makes a new asyncio.Queue for the next: a tenth of the loop at 50,000 messages/s); a consumer that stops
        # cancels its receive, which drops it (above).
        if isinstance(item, _ReaderFailed):
            raise item.error
        return item

    def _stop_idle_reader(self) -> None:
        if not self._waiting and self._reader is not None and not self._reader.done():
            self._reader.cancel()
            self._reader = None

    async def _pump(self, real_channel: str) -> None:
        """The process's reader: the messages of its channels, from Redis into each channel's buffer, while anyone
        waits; on a failure, every waiting channel gets it (and the next receive starts a new reader)."""
        try:
            while self._waiting:
                message_channel, message = await self.receive_single(real_channel)
                for name in message_channel if isinstance(message_channel, list) else [message_channel]:
                    self.receive_buffer[name].put_nowait(message)  # as channels-redis: a buffer per channel
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (each waiting consumer gets it)
            failure = _ReaderFailed(exc)
            for name in list(self._waiting):
                self.receive_buffer[name].put_nowait(failure)

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
