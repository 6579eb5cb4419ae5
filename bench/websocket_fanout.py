"""Benchmark: the event websocket `/ws/events/` at scale, beside channels-redis alone in the same run (issue 31).

    DATABASE_URL=postgres://…/maint_x REDIS_URL=redis://127.0.0.1:6379/4 python bench/websocket_fanout.py \
        --sockets 100,1000 --samples 20 --rate 50 --seconds 60 --idle 600

One daphne process serves the platform as docker-compose starts it (`maintenance_site.ops.webserver`, the
connection pool on; --no-direct-writes runs it with EVENTS_DAPHNE_DIRECT_WRITES=false). The clients are --clients
processes (default 2) of bare asyncio websocket clients (bench/ws_clients.py: handshake by hand, the server's frames
parsed in bulk per received chunk, only each event's sequence read; 3-8 µs of CPU per frame received, against ~20
for the aiohttp client this bench used before), driven by this process, which plays the dispatcher (the after-commit
task's `events.services.dispatch`, run in a thread right after each commit). The sockets belong to one
organisation of its own (`bench-fanout`, created with 20 technicians on first use) and open with tickets from the
ticket service. The sustained phase also reports the CPU per frame of the clients and of the server (user /
system), and how long the server and the clients were on a CPU against runnable but waiting for one
(/proc/<pid>/task/*/schedstat): on a shared machine, the second tells a starved process from a busy one.

For each socket count:

- **connect**: tickets issued, then every socket's handshake, at most 100 under way at a time: the time until all
  are open, how many handshakes failed, and the server's CPU seconds.
- **fan-out**: --samples events one after another; for each, the time from its commit to the first and to the last
  socket's receipt (p50 / p99). The floor: channels-redis `group_send` of one message to a group of as many
  channels, received in the client processes (as many channels each as sockets) with channels-redis's own
  `receive` (no server, no consumer, no database), first and last receipt. It measures channels-redis's delivery
  to one channel per receiver (a message per channel, one BZPOPMIN and one decode each: ~90-130 µs of CPU per
  message received), which the platform no longer does (one message per process and group, LocalFanout): at 50/s
  to 1,000 channels it falls behind and loses what the receipt wait (120 s) does not cover. --no-floor skips it.
- **sustained**: --rate events/s for --seconds, committed by one thread and dispatched by another (a worker that
  takes, at each dispatch, whatever was committed since the last); delay commit → receipt over every (event,
  socket), p50 / p99 / max, and per client what was lost, duplicated or out of order. Its floor: `group_send` at
  the same rate to as many channels.
- **idle**: --idle seconds without events; how many sockets closed, then one event must reach all of them.
- **mass disconnect**: every socket closes at once; the organisation's group must then empty (the time it took is
  reported; what is still there after --drain seconds would stay until group_expiry).

Targets (issue 31): fan-out to 1,000 sockets, last receipt p99 ≤ 5× the floor's; sustained p99 ≤ 2 s with nothing
lost, duplicated or reordered; no socket dropped while idle; no dead group member after a mass disconnect.
bench/ is not part of the test suite. `--json FILE` writes the figures.

Figures, 1,000 sockets of one organisation, 50/s for 60 s, 2 shared cores (p99; load = uptime's 1-minute average
at the start and end of the run, the other helpers' work and the lead's test suite beside it):

- before this pass (LocalFanout, daphne's send; these clients), load 6.6-7.8: one event, last receipt 334 ms vs
  floor 2,023; sustained 73.6 s vs floor 76.4 s, 0 lost / duplicated / reordered; server 10.0 µs of CPU per frame,
  clients 3.2 µs. The aiohttp client of the earlier figures, same machine (load 9.0-12.6, 30 s, 31/s kept): 10.4
  µs per frame in one process.
- frames written straight to daphne's protocols (EVENTS_DAPHNE_DIRECT_WRITES), run 1, load 6.8-12.6: last receipt
  178 ms vs floor 1,443 (0.1x); sustained 33.1 s vs floor 97.4 s, 0 lost / duplicated / reordered; server 12.8 µs
  per frame (user 6.1, system 6.7), clients 8.7 µs; over the 99 s until the last receipt the server was on a CPU
  38.3 s and runnable but waiting for one 60.9 s (clients 27.1 / 63.6 s).
- run 2, load 9.2-11.9: last receipt 320 ms vs floor 1,055; sustained 70.4 s vs floor 101.5 s, 0 lost / duplicated
  / reordered; server 10.3 µs per frame (user 6.1, system 4.2), clients 6.6 µs; server on a CPU 30.9 s, waiting
  119.7 s of 129 s; handshakes of the 1,000 sockets 6.1 s (2.5 s in run 1).
- --no-direct-writes against direct writes, 30 s runs one after another, load 10.5-15.9: server 13.4 and 11.7 µs
  per frame (user 10.8, system 0.9) against 12.0 and 11.2: daphne's send costs ~4.7 µs more Python per frame, but
  its buffered writes leave several frames per send under a backlog (catch-up), where direct writes paid a send
  each (system 4-7 µs per frame); the total is within the runs' noise.

- and the frames a socket is sent together in one send (a batch, a catch-up read), load 5.1-6.7: one event, last
  receipt 117 ms vs floor 2,472; **sustained 747 ms vs floor 81.9 s**, 50/s kept, 0 lost / duplicated / reordered,
  no backlog (the last receipt 3 s after the last commit); server 7.1 µs per frame (user 4.3, system 2.8), on a CPU
  21.3 s and waiting 30.3 s over 63 s; clients 6.5 µs per frame. A 30 s run before it, load 5.5-6.7: 604 ms, server
  5.6 µs per frame.
- run 2 just after, load 5.1-3.7: last receipt 126 ms vs floor 379; sustained p50 606 ms, **p99 5.3 s** vs floor
  101.6 s, 0 lost / duplicated / reordered, the last receipt 5 s after the last commit (fell behind, caught up);
  server 9.4 µs per frame (user 6.1, system 3.3), on a CPU 28.3 s, waiting 36.8 s; publisher and dispatcher 19.7 s
  of CPU (15.2 in run 1).
- run 3, load 2.7-3.2: last receipt 85 ms vs floor 288; sustained p50 491 ms, **p99 3.8 s** vs floor 65.3 s, 0 lost
  / duplicated / reordered; every part dearer per unit of work than in run 1 (server 13.2 µs per frame, user 8.3,
  system 4.9; clients 11.5 µs; publisher and dispatcher 25.2 s): the server on a CPU 39.6 s and waiting 25.3 s,
  the whole bench ~100 s of CPU over 65 s (1.5 of the 2 cores) besides the other helpers' work.

The sustained target (p99 <= 2 s) is met when the server gets its share of a core (1 run of 3 here): 50,000
frames/s take ~0.35 of a core in the server once nothing is behind (7 µs per frame, about 40 % of it the kernel's
send), ~0.3 in the clients and ~0.25 for the publisher and dispatcher. Once behind, it costs more per frame (9-13
µs: each socket's periodic re-join reads and sends what it missed from the database, one read per socket since
their re-joins are spread), so a server starved by the machine's other load (load 7-16: runnable but not running
1.6-3.9 times as long as it ran) falls behind and does not catch up within the run. Neither the clients (each
process under a third of a core) nor Redis nor the dispatcher (50/s kept whenever it got a CPU) was the limit in
any run; the floor (channels-redis delivery to 1,000 channels, ~110-135 µs of client CPU per message) falls behind
in every run.

On an idle machine (2026-12-07, `--sockets 1000 --idle 600`, load 3.1 over the sustained phase): one event, last
receipt p99 45 ms vs floor 178 ms (0.3×); sustained 50/s for 60 s: p50 19 ms, **p99 59 ms** (floor 25.8 s), 3,001,000
frames, 0 lost / duplicated / reordered, server 11.3 µs per frame, on a CPU 34.0 s and waiting 14.3 s; 1,000
sockets connected in 1.4 s (tickets 0.17 s, handshakes 1.20 s, 0 failed); 600 s idle: 0 dropped; mass close: the
group empty 0.25 s after, 0 left. 100 sockets: last receipt p99 55 ms vs 15 ms (3.7×), sustained p99 15 ms.
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from bench.ws_clients import ClientPool  # noqa: E402
from maintenance_site import progress  # noqa: E402
from maintenance_site.events import services as events  # noqa: E402
from maintenance_site.events.models import Event  # noqa: E402

ORG_SLUG = "bench-fanout"
MEMBERS = 20


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _organization():
    from maintenance_site.tenancy import services as tenancy
    from maintenance_site.tenancy.models import Organization
    from maintenance_site.tenancy.roles import Role

    org = Organization.objects.filter(slug=ORG_SLUG).first()
    if org is None:
        org = tenancy.create_organization(name="Fan-out bench", slug=ORG_SLUG)
        for n in range(MEMBERS):
            user = tenancy.create_user(f"bench-fanout-{n}")
            tenancy.add_member(org, user, Role.TECHNICIAN)
    return org


def _tickets(org, count: int) -> list[str]:
    from maintenance_site.tenancy.models import Membership

    members = [m.user for m in Membership.objects.active().filter(organization=org).select_related("user")]
    return [events.issue_websocket_ticket(members[i % len(members)], org)["ticket"] for i in range(count)]


def start_server(direct_writes: bool = True) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "maintenance_site.settings",
        "DATABASE_POOL": "true",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "EVENTS_DAPHNE_DIRECT_WRITES": "true" if direct_writes else "false",
    }
    command = [sys.executable, "-m", "maintenance_site.ops.webserver", "-b", "127.0.0.1", "-p", str(port)]
    log = open(ROOT / "var" / "bench-websocket.log", "ab")  # noqa: SIM115 (the server writes to it until stopped)
    server = subprocess.Popen(
        [*command, "maintenance_site.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=log
    )  # noqa: S603
    import http.client

    deadline = time.monotonic() + 180
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit("the server did not start: see var/bench-websocket.log")
        time.sleep(0.5)


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far: a cost that the machine's load inflates far
    less than wall-clock times (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process so far: the system part is mostly the kernel's TCP send."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_queue(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of all the process's threads so far
    (/proc/<pid>/task/*/schedstat; zeros elsewhere): the second tells a process starved by the machine's other load
    from one that is simply busy."""
    running = waiting = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                on_cpu, queued, _ = (int(v) for v in (task / "schedstat").read_text().split())
                running += on_cpu
                waiting += queued
    return running / 1e9, waiting / 1e9


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "n": len(ordered),
    }


# --- the clients ----------------------------------------------------------------------------------------------------


async def open_clients(pool: ClientPool, org, count: int) -> dict:
    started = time.perf_counter()
    tickets = await sync_to_async(_tickets)(org, count)
    issued = time.perf_counter()
    window = max(1, 100 // len(pool.connections))  # at most 100 handshakes under way in all (a sliding window)
    results = await pool.call_each("open", [(share, window) for share in pool.split(tickets)])
    opened = time.perf_counter()
    return {
        "tickets_s": issued - started,
        "handshakes_s": opened - issued,
        "total_s": opened - started,
        "failed": sum(r["failed"] for r in results),
    }


async def receipts(pool: ClientPool, kind: str, sequence: int, timeout: float = 120) -> list[float]:
    """Every open receiver's receipt time of `sequence`, once all have it (TimeoutError after `timeout`)."""
    times = [t for share in await pool.call("wait", kind, sequence, timeout) for t in share]
    if any(t != t for t in times):
        raise TimeoutError(f"sequence {sequence} not received by {sum(t != t for t in times)} of {len(times)}")
    return times


async def delays(pool: ClientPool, kind: str, committed: dict[int, float]) -> dict:
    results = await pool.call("delays", kind, committed)
    values = [v for r in results for v in r["delays"]]
    return {
        "delay": _summary(values),
        "lost": sum(r["lost"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "out_of_order": sum(r["out_of_order"] for r in results),
    }


async def client_load(pool: ClientPool) -> tuple[float, int]:
    """(CPU seconds of the client processes, frames they received) so far."""
    stats = await pool.call("stats")
    return pool.cpu(), sum(s["frames"] for s in stats)


# --- publishing -----------------------------------------------------------------------------------------------------


def publish_one(org) -> tuple[int, float]:
    """Commit one event, then dispatch as the after-commit task does. Returns (sequence, commit time)."""
    with transaction.atomic():
        event = Event.objects.create(organization=org, type="bench:fan-out", payload={"n": 1})
    committed = time.perf_counter()
    events.dispatch()
    return Event.objects.values_list("sequence", flat=True).get(pk=event.pk), committed


async def fan_out(pool: ClientPool, org, samples: int) -> dict:
    firsts, lasts = [], []
    await sync_to_async(events.dispatch)()  # number what an interrupted run left unnumbered, before counting
    for _ in range(samples):
        expected = await sync_to_async(events.last_sequence)(org.id) + 1
        sequence, committed = await sync_to_async(publish_one, thread_sensitive=False)(org)
        assert sequence == expected, (sequence, expected)
        received = await receipts(pool, "sockets", sequence)
        firsts.append(min(received) - committed)
        lasts.append(max(received) - committed)
        await asyncio.sleep(0.2)
    return {"first": _summary(firsts), "last": _summary(lasts)}


def _publisher(org, rate: float, seconds: float, commits: dict, stop: threading.Event) -> None:
    """Commit one event every 1/`rate` s for `seconds`, recording the commit times."""
    from django.db import connection

    interval = 1 / rate
    start = time.perf_counter()
    n = 0
    try:
        while time.perf_counter() - start < seconds and not stop.is_set():
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with transaction.atomic():
                event = Event.objects.create(organization=org, type="bench:sustained", payload={"n": n})
            commits[event.pk] = time.perf_counter()
            n += 1
    finally:
        connection.close()


def _dispatcher(publishing: threading.Thread) -> None:
    """The worker: dispatch again and again while events are committed, each dispatch taking whatever was committed
    since the last (as the after-commit tasks do when they queue up behind a running one)."""
    from django.db import connection

    try:
        while True:
            # Read before dispatching: once the publisher has ended, this dispatch sees all it committed.
            published_all = not publishing.is_alive()
            result = events.dispatch()
            if not result["numbered"] and not result["delivered"]:
                if published_all:
                    return
                time.sleep(0.002)
    finally:
        connection.close()


async def sustained(pool: ClientPool, org, rate: float, seconds: float) -> dict:
    first = await sync_to_async(events.last_sequence)(org.id) + 1
    commits: dict[int, float] = {}
    stop = threading.Event()
    thread = threading.Thread(target=_publisher, args=(org, rate, seconds, commits, stop))
    dispatcher = threading.Thread(target=_dispatcher, args=(thread,))
    cpu, frames = await client_load(pool)
    bench_cpu = time.process_time()
    thread.start()
    dispatcher.start()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    await asyncio.get_running_loop().run_in_executor(None, dispatcher.join)
    bench_cpu = time.process_time() - bench_cpu
    ids = sorted(commits)
    sequences = dict(
        await sync_to_async(lambda: list(Event.objects.filter(pk__in=ids).values_list("pk", "sequence")))()
    )
    # wait for the tail to arrive (bounded)
    with contextlib.suppress(TimeoutError):
        await receipts(pool, "sockets", max(sequences.values()))
    cpu_after, frames_after = await client_load(pool)
    published = len(ids)
    return {
        "events": published,
        "rate": published / seconds,
        **await delays(pool, "sockets", {sequences[pk]: commits[pk] for pk in ids}),
        "first_sequence": first,
        "client_cpu_s": cpu_after - cpu,
        "client_frames": frames_after - frames,
        "publisher_cpu_s": bench_cpu,
    }


# --- the floor ------------------------------------------------------------------------------------------------------


async def floor(pool: ClientPool, count: int, samples: int, rate: float, seconds: float) -> dict:
    """channels-redis alone: `group_send` from this process to `count` channels of the client processes (the same
    share each as the sockets), each read by channels-redis's own `receive` (one BZPOPMIN per message and process:
    channels-redis's receiving, not the project's per-process reader) until each received. No server, no consumer,
    no database."""
    layer = get_channel_layer()
    group = f"bench-floor-{os.getpid()}"
    await pool.call_each("floor_open", [(group, len(share)) for share in pool.split(list(range(count)))])
    frame = events.channel_message(
        {
            "sequence": 0,
            "type": "bench:floor",
            "organization": 0,
            "user": None,
            "payload": {"n": 1},
            "created_at": None,
            "correlation_id": "",
        }
    )
    try:
        await asyncio.sleep(0.5)
        firsts, lasts = [], []
        for n in range(1, samples + 1):
            sent = time.perf_counter()
            await layer.group_send(group, {**frame, "sequence": n})
            times = await receipts(pool, "floor", n)
            firsts.append(min(times) - sent)
            lasts.append(max(times) - sent)
            await asyncio.sleep(0.2)
        sent_at: dict[int, float] = {}
        start = time.perf_counter()
        n = samples
        cpu, frames = await client_load(pool)
        while time.perf_counter() - start < seconds:
            n += 1
            due = start + (n - samples - 1) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[n] = time.perf_counter()
            await layer.group_send(group, {**frame, "sequence": n})
        with contextlib.suppress(TimeoutError):
            await receipts(pool, "floor", n)
        cpu_after, frames_after = await client_load(pool)
        return {
            "first": _summary(firsts),
            "last": _summary(lasts),
            "sustained": {
                "events": len(sent_at),
                **await delays(pool, "floor", sent_at),
                "client_cpu_s": cpu_after - cpu,
                "client_frames": frames_after - frames,
            },
        }
    finally:
        await pool.call("floor_close")


# --- the run --------------------------------------------------------------------------------------------------------


async def group_members(org) -> int:
    layer = get_channel_layer()
    group = events.organization_group(org.id)
    return await layer.connection(layer.consistent_hash(group)).zcard(layer._group_key(group))


async def platform(pool: ClientPool, org, count: int, args, step, server_pid: int) -> dict:
    figures: dict = {}
    cpu = server_cpu(server_pid)
    figures["connect"] = await open_clients(pool, org, count)
    figures["connect"]["server_cpu_s"] = server_cpu(server_pid) - cpu
    step.advance()
    await asyncio.sleep(1)
    figures["group_members_open"] = await group_members(org)
    figures["fan_out"] = await fan_out(pool, org, args.samples)
    step.advance()
    if args.seconds > 0:
        cpu = server_cpu(server_pid)
        split = server_cpu_split(server_pid)
        pids = {"server": [server_pid], "clients": [p.pid for p in pool.processes]}
        queues = {name: [run_queue(pid) for pid in group] for name, group in pids.items()}
        started = time.perf_counter()
        figures["sustained"] = await sustained(pool, org, args.rate, args.seconds)
        figures["sustained"]["server_cpu_s"] = server_cpu(server_pid) - cpu
        figures["sustained"]["wall_s"] = time.perf_counter() - started
        user, system = (after - before for after, before in zip(server_cpu_split(server_pid), split, strict=True))
        figures["sustained"]["server_user_s"], figures["sustained"]["server_system_s"] = user, system
        figures["sustained"]["run_queue"] = {}
        for name, group in pids.items():
            now = [run_queue(pid) for pid in group]
            figures["sustained"]["run_queue"][name] = {
                "on_cpu_s": sum(a[0] - b[0] for a, b in zip(now, queues[name], strict=True)),
                "waiting_s": sum(a[1] - b[1] for a, b in zip(now, queues[name], strict=True)),
            }
        figures["sustained"]["load"] = os.getloadavg()
    step.advance()
    if args.idle > 0:
        await asyncio.sleep(args.idle)
        dropped = sum(s["done"] for s in await pool.call("stats"))
        after_idle = await fan_out(pool, org, 1)
        figures["idle"] = {"seconds": args.idle, "dropped": dropped, "then_one_event": after_idle["last"]}
    step.advance()
    figures["lost_connections"] = sum(s["done"] for s in await pool.call("stats"))
    cpu = server_cpu(server_pid)
    closing = time.perf_counter()
    closed = max(await pool.call("close"))
    # The server handles the closes after the clients sent them: wait (bounded) until the group is empty, so a
    # slow drain is told apart from members that stay (those leave only by group_expiry).
    members = await group_members(org)
    while members and time.perf_counter() - closed < args.drain:
        await asyncio.sleep(0.25)
        members = await group_members(org)
    figures["mass_close"] = {
        "clients_s": closed - closing,
        "empty_after_s": time.perf_counter() - closed if not members else None,
        "members_left": members,
        "server_cpu_s": server_cpu(server_pid) - cpu,
    }
    figures["group_members_after_mass_close"] = members
    step.advance()
    return figures


def print_figures(results: dict, args) -> None:
    def pair(s):
        return f"{s['p50_ms']:8.1f} / {s['p99_ms']:8.1f}" if s.get("n") else "       – /        –"

    for count, row in results.items():
        p, f = row["platform"], row["floor"]
        print(f"\n{count} sockets (p50 / p99 ms)          platform                floor      p99 ratio")
        for key in ("first", "last"):
            ratio = p["fan_out"][key]["p99_ms"] / f[key]["p99_ms"] if f[key].get("n") else float("nan")
            print(f"  one event, {key} receipt   {pair(p['fan_out'][key])}   {pair(f[key])}   {ratio:6.1f}×")
        if "sustained" in p:
            s, fs = p["sustained"], f["sustained"]
            ratio = s["delay"]["p99_ms"] / fs["delay"]["p99_ms"] if fs["delay"].get("n") else float("nan")
            print(
                f"  sustained {s['rate']:.0f}/s, delay    {pair(s['delay'])}   {pair(fs['delay'])}   {ratio:6.1f}×"
                f"   lost {s['lost']} dup {s['duplicates']} out-of-order {s['out_of_order']} "
                f"(floor lost {fs['lost']}), server CPU {s['server_cpu_s']:.1f} s"
            )
            print(
                f"    over {s['wall_s']:.0f} s until the last receipt (load {s['load'][0]:.1f}), "
                "on a CPU / runnable but waiting for one: "
                + ", ".join(
                    f"{name} {q['on_cpu_s']:.1f} / {q['waiting_s']:.1f} s" for name, q in s["run_queue"].items()
                )
            )
            for name, row in (("platform", s), ("floor", fs)) if args.floor else (("platform", s),):
                per_frame = row["client_cpu_s"] / row["client_frames"] * 1e6 if row["client_frames"] else float("nan")
                print(
                    f"    {name}: {row['client_frames']} frames received, client CPU {row['client_cpu_s']:.1f} s "
                    f"({per_frame:.1f} µs per frame)"
                    + (
                        f", server CPU {row['server_cpu_s'] / row['client_frames'] * 1e6:.1f} µs per frame "
                        f"(user {row['server_user_s'] / row['client_frames'] * 1e6:.1f}, "
                        f"system {row['server_system_s'] / row['client_frames'] * 1e6:.1f}), "
                        f"publisher + dispatcher CPU {row['publisher_cpu_s']:.1f} s"
                        if name == "platform" and row["client_frames"]
                        else ""
                    )
                )
        c = p["connect"]
        print(
            f"  connect: tickets {c['tickets_s']:.2f} s, handshakes {c['handshakes_s']:.2f} s, failed {c['failed']}, "
            f"server CPU {c['server_cpu_s']:.2f} s; "
            f"group members open {p['group_members_open']}"
        )
        m = p["mass_close"]
        drained = f"empty {m['empty_after_s']:.2f} s after" if m["empty_after_s"] is not None else "not empty"
        print(
            f"  mass close: clients closed in {m['clients_s']:.2f} s; group {drained}; left {m['members_left']}; "
            f"server CPU {m['server_cpu_s']:.2f} s"
        )
        if "idle" in p:
            i = p["idle"]
            print(
                f"  idle {i['seconds']:.0f} s: dropped {i['dropped']}; "
                f"then one event, last receipt {pair(i['then_one_event'])}"
            )
        print(f"  sockets lost during the run: {p['lost_connections']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="100,1000", help="socket counts, comma-separated (default 100,1000)")
    parser.add_argument("--samples", type=int, default=20, help="fan-out samples per count (default 20)")
    parser.add_argument("--rate", type=float, default=50, help="sustained events per second (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="sustained seconds (default 60; 0 skips)")
    parser.add_argument("--idle", type=float, default=600, help="idle seconds (default 600; 0 skips)")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for the group to empty (default 60)")
    parser.add_argument(
        "--floor", action=argparse.BooleanOptionalAction, default=True, help="measure the floor (default: yes)"
    )
    parser.add_argument(
        "--direct-writes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the server's EVENTS_DAPHNE_DIRECT_WRITES (default: on; --no-direct-writes for daphne's send)",
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not settings.REDIS_URL:
        raise SystemExit("Needs REDIS_URL (the channel layer) and a migrated DATABASE_URL.")
    counts = [int(n) for n in args.sockets.split(",")]
    results: dict = {}
    server, port = start_server(args.direct_writes)
    pool = ClientPool(args.clients, port)  # forked before this process opens database or Redis connections
    try:
        org = _organization()
        with progress.bars() as bars, bars.step("phases", total=len(counts) * 6) as step:
            for count in counts:
                floor_figures = (
                    asyncio.run(floor(pool, count, args.samples, args.rate, args.seconds))
                    if args.floor
                    else {"first": {"n": 0}, "last": {"n": 0}, "sustained": {"delay": {"n": 0}, "lost": 0}}
                )
                step.advance()
                results[count] = {
                    "floor": floor_figures,
                    "platform": asyncio.run(platform(pool, org, count, args, step, server.pid)),
                }
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        pool.stop()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    print_figures(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
