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

Figures, one process per group fanned out locally (consumers.LocalFanout), 1,000 sockets, 20 samples, 50/s for 60 s,
maint_bench10k copy, 2 shared cores (p99; the main branch's code run just after, same machine, for comparison):

- fan-out, load 4.8-6.7: one event, last receipt 307 ms vs floor 408 (0.8x); sustained 24.9 s vs floor 12.3 s
  (2.0x), 50/s kept, 0 lost / duplicated / reordered; server CPU 36.9 s (12.3 ms per event).
- fan-out, load 5.7-7.3 (a test run beside it): last receipt 577 ms vs floor 1,479 (0.4x); sustained 28.8 s vs
  floor 12.4 s (2.3x), 0 lost / duplicated / reordered; server CPU 54.1 s.
- main, load 3.1-9.3: last receipt 645 ms vs floor 188 (3.4x); sustained 69.2 s vs floor 18.8 s (3.7x), the
  publisher kept only 38/s; server CPU 34.1 s (14.8 ms per event).
- a second pair after the CI run, load 2.6-4.4: fan-out last receipt 203 ms vs floor 351 (0.6x), sustained 47/s
  36.9 s vs floor 14.3 s (2.6x), server CPU 35.0 s; main just after: 308 ms vs 299 (1.0x), sustained 43/s 54.3 s
  vs floor 15.2 s (3.6x), server CPU 67.4 s (26.2 ms per event; fan-out 12.5).

The sustained target (p99 <= 2 s) is out of reach here whatever the server does: the floor itself (channels-redis
alone, no server) is 12-19 s, and the server used ~60 % of one core while the delay grew: the clients (this one
Python process reading 50,000 frames/s) and the shared cores are the limit in these runs.
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
            result = events.dispatch()
            if not result["numbered"] and not result["delivered"]:
                if not publishing.is_alive():
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
