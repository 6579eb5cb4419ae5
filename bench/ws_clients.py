"""Websocket clients for bench/websocket_fanout.py that are cheap enough not to be what the bench measures.

A thousand sockets receiving 50 events/s each is 50,000 frames/s. One Python process with one aiohttp task per
socket spent ~20 µs per frame (its reader, its message object, a task wake-up each): about all of one core of the
two, beside the server. Here:

- each socket is a bare `asyncio.Protocol`: the handshake written by hand, then the server's frames (unmasked)
  parsed in bulk from each `data_received` chunk, reading only an event frame's sequence number (the frame starts
  `{"type": "event", "event": {"sequence": N,`, services.event_frame); anything else is decoded as JSON. Every
  frame of a chunk gets the chunk's arrival time. Pings are answered (daphne closes a socket that does not pong),
  a close frame is answered and its code kept.
- the sockets are spread over several client processes (`ClientPool`), each with its own event loop, driven by
  the bench's process through a pipe: open sockets with these tickets, wait for a sequence, hand back the delays.
  Receipt times are `time.perf_counter()` (CLOCK_MONOTONIC on Linux: the same clock in every process).
- per socket (`Recorder`), the receipt time of each sequence in an array (8 bytes a receipt) and what was wrong:
  duplicates, and sequences that did not follow the previous one (out of order; a hole later filled counts once).

The floor's receivers (channels-redis `receive` on channels of a group) run in the same processes and record the
same way, so both sides of the comparison have the same receiving capacity.
"""

import asyncio
import base64
import contextlib
import functools
import json
import multiprocessing
import os
import struct
import threading
import time
from array import array

EVENT_PREFIX = b'{"type": "event", "event": {"sequence": '
PREFIX_LENGTH = len(EVENT_PREFIX)
NAN = float("nan")


class Recorder:
    """What one receiver got: receipt time per sequence (from the first one received on), and the anomalies."""

    def __init__(self):
        self.base: int | None = None
        self.times = array("d")
        self.duplicates = 0
        self.out_of_order = 0
        self.frames = 0
        self.last: int | None = None

    def record(self, sequence: int, now: float) -> None:
        self.frames += 1
        if self.base is None:
            self.base = sequence
        times = self.times
        index = sequence - self.base
        size = len(times)
        if index == size:
            times.append(now)
            if self.last is not None and sequence != self.last + 1:
                self.out_of_order += 1
        elif index < 0:
            self.out_of_order += 1
        elif index < size:
            if times[index] == times[index]:  # not NaN: already received
                self.duplicates += 1
                return
            times[index] = now
            self.out_of_order += 1
        else:  # ahead of what follows: a hole (later filled, or lost)
            times.extend([NAN] * (index - size))
            times.append(now)
            self.out_of_order += 1
        if self.last is None or sequence > self.last:
            self.last = sequence

    def receipt(self, sequence: int) -> float:
        """The receipt time of `sequence`, NaN if not (yet) received."""
        if self.base is None:
            return NAN
        index = sequence - self.base
        if 0 <= index < len(self.times):
            return self.times[index]
        return NAN


class Socket(asyncio.Protocol, Recorder):
    """One websocket client (module docstring)."""

    def __init__(self, path: str, host: str, opened: asyncio.Future):
        Recorder.__init__(self)
        self.path = path
        self.host = host
        self.opened = opened
        self.buffer = bytearray()
        self.handshaken = False
        self.fragments: bytearray | None = None
        self.closed_code: int | None = None
        self.errors: list[dict] = []
        self.done = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc):
        self.done = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buffer
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode("latin1")))
                self.transport.close()
                return
            self.handshaken = True
            del buf[: end + 4]
            self.opened.set_result(self)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first = buf[pos]
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            if first == 0x81:  # a whole text frame: the usual case
                if buf.startswith(EVENT_PREFIX, start):
                    number = start + PREFIX_LENGTH
                    self.record(int(buf[number : buf.find(b",", number, end)]), now)
                else:
                    self._text(bytes(buf[start:end]), now)
            else:
                self._other(first, bytes(buf[start:end]), now)
            pos = end
        if pos:
            del buf[:pos]

    def _text(self, payload: bytes, now: float) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if data.get("type") == "event":
            self.record(data["event"]["sequence"], now)
        elif data.get("type") == "error":
            self.errors.append(data)

    def _other(self, first: int, payload: bytes, now: float) -> None:
        opcode = first & 0x0F
        final = first & 0x80
        if opcode in (1, 2, 0) and not final:  # fragmented: kept until the last fragment
            self.fragments = (self.fragments or bytearray()) + payload
        elif opcode == 0:
            whole, self.fragments = bytes((self.fragments or b"") + payload), None
            self._text(whole, now)
        elif opcode == 1:
            self._text(payload, now)
        elif opcode == 9:  # ping: pong with the same payload
            self._write(0xA, payload)
        elif opcode == 8:
            self.closed_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self._write(0x8, payload[:2])
            self.transport.close()

    def _write(self, opcode: int, payload: bytes) -> None:
        """A client frame (masked, as RFC 6455 requires), payload under 126 bytes."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self, code: int = 1000) -> None:
        self._write(0x8, struct.pack("!H", code))


# --- one client process --------------------------------------------------------------------------------------------


class Worker:
    """The sockets (and floor receivers) of one client process, and the commands the bench sends it."""

    def __init__(self, port: int):
        self.port = port
        self.sockets: list[Socket] = []
        self.floor: list[Recorder] = []
        self.floor_tasks: list[asyncio.Task] = []
        self.layer = None
        self.group = None

    def receivers(self, kind: str) -> list[Recorder]:
        return self.sockets if kind == "sockets" else self.floor

    async def open(self, tickets: list[str], window: int) -> dict:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(window)

        async def one(ticket):
            async with slots:
                opened = loop.create_future()
                await loop.create_connection(
                    lambda: Socket(f"/ws/events/?ticket={ticket}", f"127.0.0.1:{self.port}", opened),
                    "127.0.0.1",
                    self.port,
                )
                return await asyncio.wait_for(opened, 60)

        failed = 0
        for result in await asyncio.gather(*(one(t) for t in tickets), return_exceptions=True):
            if isinstance(result, BaseException):
                failed += 1
            else:
                self.sockets.append(result)
        return {"failed": failed, "opened": len(self.sockets)}

    async def wait(self, kind: str, sequence: int, timeout: float) -> list[float]:
        """Once every open receiver has `sequence` (or `timeout`): their receipt times (NaN: not received)."""
        deadline = time.monotonic() + timeout
        while True:
            receivers = [r for r in self.receivers(kind) if not getattr(r, "done", False)]
            times = [r.receipt(sequence) for r in receivers]
            if all(t == t for t in times) or time.monotonic() > deadline:
                return times
            await asyncio.sleep(0.005)

    async def delays(self, kind: str, committed: dict[int, float]) -> dict:
        """Delay commit → receipt of every (sequence, receiver), and what was lost / duplicated / out of order."""
        delays, lost = array("d"), 0
        for receiver in self.receivers(kind):
            for sequence, at in committed.items():
                received = receiver.receipt(sequence)
                if received == received:
                    delays.append(received - at)
                else:
                    lost += 1
        receivers = self.receivers(kind)
        return {
            "delays": delays,
            "lost": lost,
            "duplicates": sum(r.duplicates for r in receivers),
            "out_of_order": sum(r.out_of_order for r in receivers),
        }

    async def stats(self) -> dict:
        return {
            "cpu_s": time.process_time(),
            "frames": sum(s.frames for s in self.sockets) + sum(r.frames for r in self.floor),
            "done": sum(s.done for s in self.sockets),
            "close_codes": [s.closed_code for s in self.sockets if s.done],
        }

    async def close(self) -> float:
        for socket in self.sockets:
            socket.close()
        deadline = time.monotonic() + 60
        while not all(s.done for s in self.sockets) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for socket in self.sockets:
            if not socket.done:
                socket.transport.abort()
        self.sockets = []
        return time.perf_counter()

    async def floor_open(self, group: str, count: int) -> int:
        """`count` channels of channels-redis in `group`, each read by channels-redis's own `receive`."""
        from channels.layers import get_channel_layer
        from channels_redis.core import RedisChannelLayer

        self.layer = get_channel_layer()
        self.layer.receive = functools.partial(RedisChannelLayer.receive, self.layer)
        self.group = group
        channels = [await self.layer.new_channel() for _ in range(count)]
        await asyncio.gather(*(self.layer.group_add(group, channel) for channel in channels))

        async def listen(channel, recorder):
            while True:
                message = await self.layer.receive(channel)
                recorder.record(message["sequence"], time.perf_counter())

        self.floor = [Recorder() for _ in channels]
        self.floor_channels = channels
        self.floor_tasks = [asyncio.ensure_future(listen(c, r)) for c, r in zip(channels, self.floor, strict=True)]
        return len(channels)

    async def floor_close(self) -> None:
        for task in self.floor_tasks:
            task.cancel()
        await asyncio.gather(*self.floor_tasks, return_exceptions=True)
        await asyncio.gather(*(self.layer.group_discard(self.group, c) for c in self.floor_channels))
        self.floor, self.floor_tasks = [], []


def _worker_main(connection, port: int) -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    asyncio.run(_serve(connection, port))


async def _serve(connection, port: int) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue = asyncio.Queue()

    def read():
        while True:
            try:
                command = connection.recv()
            except EOFError:
                command = ("stop",)
            loop.call_soon_threadsafe(commands.put_nowait, command)
            if command[0] == "stop":
                return

    threading.Thread(target=read, daemon=True).start()
    worker = Worker(port)
    while True:
        name, *args = await commands.get()
        if name == "stop":
            return
        try:
            result = await getattr(worker, name)(*args)
        except Exception as exc:  # noqa: BLE001 (reported to the bench)
            result = exc
        connection.send(result)


class ClientPool:
    """`processes` client processes (forked: start it before the bench opens database or Redis connections)."""

    def __init__(self, processes: int, port: int):
        context = multiprocessing.get_context("fork")
        self.connections, self.processes = [], []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, port), daemon=True)
            process.start()
            self.connections.append(parent)
            self.processes.append(process)

    async def call(self, name: str, *args) -> list:
        """Send the command `name` with the same `args` to every worker; their results, in worker order."""
        return await self.call_each(name, [args] * len(self.connections))

    async def call_each(self, name: str, args_per_worker: list[tuple]) -> list:
        """Send the command `name` to each worker with its own args; their results (a worker's exception raised)."""
        loop = asyncio.get_running_loop()
        for connection, args in zip(self.connections, args_per_worker, strict=True):
            connection.send((name, *args))
        results = await asyncio.gather(*(loop.run_in_executor(None, c.recv) for c in self.connections))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    def split(self, items: list) -> list[list]:
        """`items` dealt out round-robin, one list per worker."""
        n = len(self.connections)
        return [items[i::n] for i in range(n)]

    def cpu(self) -> float:
        """CPU seconds the client processes have used so far (user + system, from /proc)."""
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(OSError):
                fields = open(f"/proc/{process.pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.send(("stop",))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
