"""Benchmark: which ASGI server runs the platform — daphne, uvicorn, granian — on the work-order list and the event
websocket, each figure beside its floor measured in the same run.

    DATABASE_URL=postgres://…/maint_bench10k REDIS_URL=redis://…/8 python bench/servers.py --rounds 2

The database is one `bench/dataset.py` built (the list's organisation is its big one); REDIS_URL is needed for
the websocket part (the channel layer and the tickets). Every server runs --processes processes on ports of their
own (as docker-compose scales `web`), with the connection pool (DATABASE_POOL) like the compose web service;
rounds run the servers in a rotated order so that the machine's drift does not favour one of them.

- HTTP: the list's first page under --connections keep-alive connections for --seconds (bench/list_api.py's load
  generator): throughput, p50, p99; and its floor, `bench.floor:application` (psycopg + orjson, no framework) on
  the same server. The ratio platform / floor tells the platform's cost; the floor's own throughput across servers
  tells the server's.
- websocket fan-out: --sockets sockets open `/ws/events/` (tickets, spread over the processes and over the
  organisation's members), then --events events are published one after another, each committed, numbered and
  delivered by the dispatcher (`events.services.dispatch`, what the after-commit task runs); the time from the
  commit to the last socket's receipt, p50 and p99. Its floor, in the same round: channels-redis `group_send` of
  one message to a group of as many channels, until the last channel received it (no server, no consumer).
  The issue's target: p99 ≤ 5× the floor.

`--only http|ws` runs one part; `--json FILE` writes the figures. bench/ is not part of the test suite; the
websocket client is the `websockets` package (uvicorn[standard] brings it).
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import list_api  # noqa: E402  (sets Django up, unthrottled)
from bench.list_api import LIST, _free_port, load, stop_servers  # noqa: E402
from maintenance_site import progress  # noqa: E402

SERVERS = ("daphne", "uvicorn", "granian")


def server_command(server: str, app: str, port: int) -> list[str]:
    """How each server is started: one process, one event loop, the settings' log level."""
    if server == "daphne":
        # As docker-compose starts it: daphne with the 414/431 channel (maintenance_site/ops/webserver.py).
        return [sys.executable, "-m", "maintenance_site.ops.webserver", "-b", "127.0.0.1", "-p", str(port), app]
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
            *("--no-access-log", "--log-level", "warning", "--lifespan", "off", app),
        ]
    if server == "granian":
        # asginl: ASGI without the lifespan protocol, which Django's handler refuses.
        return [
            *(sys.executable, "-m", "granian", "--interface", "asginl", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log", app),
        ]
    raise ValueError(server)


def start(server: str, app: str, processes: int, extra_env: dict | None = None):
    env = {
        **os.environ,
        **list_api.UNTHROTTLED,
        "DJANGO_SETTINGS_MODULE": "maintenance_site.settings",
        "DATABASE_POOL": "true",
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    servers, ports = [], []
    log = open(ROOT / "var" / "bench-servers.log", "ab")  # noqa: SIM115 (the servers write to it until stopped)
    for _ in range(processes):
        port = _free_port()
        command = server_command(server, app, port)
        servers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))  # noqa: S603
        ports.append(port)
    return servers, ports


def wait_until_serving(ports: list[int], path: str, headers: dict, timeout: float = 180) -> None:
    """Until every process answers `path` with a 200 (Django's start-up takes seconds on a busy machine)."""
    import http.client

    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", path, headers=headers)
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"no server answered on port {port}: see var/bench-servers.log")
            time.sleep(0.5)


# --- HTTP ---------------------------------------------------------------------------------------------------------


def http_round(server: str, args, org_id: int, headers: dict) -> dict:
    sides = {
        "platform": ("maintenance_site.asgi:application", LIST, headers),
        "floor": ("bench.floor:application", f"/work-orders/?organization={org_id}", {}),
    }
    figures = {}
    for side, (app, path, side_headers) in sides.items():
        servers, ports = start(server, app, args.processes)
        try:
            wait_until_serving(ports, path, side_headers)
            figures[side] = load(ports, path, side_headers, args.connections, args.seconds)
        finally:
            stop_servers(servers)
    return figures


# --- websocket fan-out --------------------------------------------------------------------------------------------


def _tickets(org, count: int) -> list[str]:
    from maintenance_site.events import services as events
    from maintenance_site.tenancy.models import Membership

    memberships = Membership.objects.filter(organization=org).select_related("user")
    members = [m.user for m in memberships if events.may_receive_events(m.user_id, org.id)]
    return [events.issue_websocket_ticket(members[i % len(members)], org)["ticket"] for i in range(count)]


async def _open_sockets(ports: list[int], org, count: int) -> tuple[list, int]:
    """`count` open sockets, 25 handshakes at a time; a refused or dropped handshake is tried again with a new
    ticket (daphne drops a connect its application has not accepted within 5 s, which a loaded machine sees).
    Returns the sockets and how many handshakes failed on the way."""
    import websockets
    from asgiref.sync import sync_to_async

    sockets, failures = [], 0
    while len(sockets) < count and failures < count:
        tickets = await sync_to_async(_tickets)(org, min(25, count - len(sockets)))
        results = await asyncio.gather(
            *(
                websockets.connect(
                    f"ws://127.0.0.1:{ports[(len(sockets) + i) % len(ports)]}/ws/events/?ticket={ticket}",
                    max_queue=None,
                    open_timeout=120,
                    ping_interval=None,
                )
                for i, ticket in enumerate(tickets)
            ),
            return_exceptions=True,
        )
        sockets += [result for result in results if not isinstance(result, BaseException)]
        failures += sum(isinstance(result, BaseException) for result in results)
    if len(sockets) < count:
        raise SystemExit(f"only {len(sockets)} of {count} sockets opened ({failures} handshakes failed)")
    return sockets, failures


async def _first_event(socket, sequence: int) -> float:
    while True:
        message = json.loads(await socket.recv())
        if message.get("type") == "event" and message["event"]["sequence"] >= sequence:
            return time.perf_counter()


def _next_sequence(org) -> int:
    from maintenance_site.events import services as events

    return events.last_sequence(org.id) + 1


def _publish_and_dispatch(org) -> tuple[int, float]:
    """Commit one event and dispatch it as the after-commit task would; returns (sequence, commit time)."""
    from django.db import transaction

    from maintenance_site.events import services as events

    with transaction.atomic():
        event = events.Event.objects.create(organization=org, type="bench:fan-out", payload={"n": 1})
    committed = time.perf_counter()
    events.dispatch()
    event.refresh_from_db()
    return event.sequence, committed


def ws_platform(server: str, args, org) -> dict:
    extra = {"EVENTS_PERMISSION_RECHECK_SECONDS": str(args.recheck_seconds)} if args.recheck_seconds else {}
    servers, ports = start(server, "maintenance_site.asgi:application", args.processes, extra)
    try:
        wait_until_serving(ports, "/health", {})
        return asyncio.run(_fan_out(ports, args, org))
    finally:
        stop_servers(servers)


async def _fan_out(ports: list[int], args, org) -> dict:
    from asgiref.sync import sync_to_async

    sockets, failures = await _open_sockets(ports, org, args.sockets)
    await asyncio.sleep(1)  # the last sockets finish their connect (last_sequence) before the first event
    latencies = []
    for _ in range(args.events):
        expected = await sync_to_async(_next_sequence)(org)
        waits = [asyncio.ensure_future(_first_event(socket, expected)) for socket in sockets]
        _, committed = await sync_to_async(_publish_and_dispatch)(org)
        received = await asyncio.wait_for(asyncio.gather(*waits), timeout=120)
        latencies.append(max(received) - committed)
        await asyncio.sleep(0.2)
    await asyncio.gather(*(socket.close() for socket in sockets))
    return {**_summary(latencies), "handshake_failures": failures}


async def ws_floor(args) -> dict:
    """channels-redis group_send of one message to a group of --sockets channels, until the last one has it."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    group = f"bench-floor-{os.getpid()}"
    channels = [await layer.new_channel() for _ in range(args.sockets)]
    for channel in channels:
        await layer.group_add(group, channel)
    latencies = []
    try:
        for _ in range(args.events):

            async def receive(channel):
                await layer.receive(channel)
                return time.perf_counter()

            waits = [asyncio.ensure_future(receive(channel)) for channel in channels]
            await asyncio.sleep(0.05)  # every receiver waiting, as the consumers are
            sent = time.perf_counter()
            await layer.group_send(group, {"type": "event.message", "event": {"sequence": 1}})
            received = await asyncio.wait_for(asyncio.gather(*waits), timeout=60)
            latencies.append(max(received) - sent)
    finally:
        for channel in channels:
            await layer.group_discard(group, channel)
    return _summary(latencies)


def _summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "events": len(ordered),
    }


# --- the run ------------------------------------------------------------------------------------------------------


def _attempt(measure, server: str, *args) -> dict:
    """A measurement, or what went wrong (a server that drops sockets under the load is a result too)."""
    try:
        return measure(server, *args)
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def _med(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def print_table(results: dict, args) -> None:
    if results.get("http"):
        print(f"\nHTTP, the list's first page: {args.connections} connections, {args.processes} processes per server")
        columns = (("platform req/s", 15), ("p50 ms", 8), ("p99 ms", 8), ("floor req/s", 12), ("p99 ms", 8))
        print(f"{'server':<9} " + " ".join(f"{name:>{width}}" for name, width in columns) + "  floor ÷ platform")
        for server, all_rounds in results["http"].items():
            rounds = [r for r in all_rounds if "error" not in r]
            for failed in (r for r in all_rounds if "error" in r):
                print(f"{server:<9} failed: {failed['error']}")
            if not rounds:
                continue
            platform = [r["platform"] for r in rounds]
            floor = [r["floor"] for r in rounds]
            ratio = statistics.median(r["floor"]["rps"] / r["platform"]["rps"] for r in rounds)
            print(
                f"{server:<9} {_med(platform, 'rps'):>15.0f} {_med(platform, 'p50_ms'):>8.1f} "
                f"{_med(platform, 'p99_ms'):>8.1f} {_med(floor, 'rps'):>12.0f} {_med(floor, 'p99_ms'):>8.1f} "
                f"{ratio:>7.1f}×"
            )
    if results.get("ws"):
        print(f"\nwebsocket fan-out: {args.sockets} sockets, {args.events} events per round, commit → last socket")
        print(
            f"{'server':<9} {'p50 ms':>8} {'p99 ms':>8} {'floor p50':>10} {'floor p99':>10} {'p99 × floor':>12}"
            "  failed handshakes"
        )
        for server, all_rounds in results["ws"].items():
            rounds = [r for r in all_rounds if "error" not in r]
            for failed in (r for r in all_rounds if "error" in r):
                print(f"{server:<9} failed: {failed['error']}")
            if not rounds:
                continue
            platform = [r["platform"] for r in rounds]
            floor = [r["floor"] for r in rounds]
            ratio = statistics.median(r["platform"]["p99_ms"] / r["floor"]["p99_ms"] for r in rounds)
            print(
                f"{server:<9} {_med(platform, 'p50_ms'):>8.1f} {_med(platform, 'p99_ms'):>8.1f} "
                f"{_med(floor, 'p50_ms'):>10.1f} {_med(floor, 'p99_ms'):>10.1f} {ratio:>11.1f}×"
                f"  {sum(r['platform']['handshake_failures'] for r in rounds)}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated (default: all three)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, servers in rotated order (default 2)")
    parser.add_argument("--processes", type=int, default=2, help="processes per server (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="HTTP connections (default 16)")
    parser.add_argument("--seconds", type=float, default=10, help="HTTP measured seconds per side (default 10)")
    parser.add_argument("--sockets", type=int, default=1000, help="websockets (default 1000)")
    parser.add_argument("--events", type=int, default=20, help="events per websocket round (default 20)")
    parser.add_argument(
        "--recheck-seconds",
        type=float,
        help="EVENTS_PERMISSION_RECHECK_SECONDS for the servers (default: the settings'): a long one takes the "
        "consumer's per-socket membership check out of the figure, leaving server, channel layer and consumer",
    )
    parser.add_argument("--only", choices=["http", "ws"])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from django.conf import settings

    from bench import dataset
    from maintenance_site.tenancy import services as tenancy_services
    from maintenance_site.tenancy.models import Organization

    data = dataset.load()
    if data is None:
        raise SystemExit("No dataset here: build one with bench/dataset.py first.")
    org = Organization.objects.get(pk=data.big.id)
    servers = args.servers.split(",")
    results: dict = {"http": {s: [] for s in servers}, "ws": {s: [] for s in servers}}
    api_key, key = tenancy_services.create_api_key(org, name="server benchmark")
    headers = {"Authorization": f"Api-Key {key}"}
    try:
        with progress.bars() as bars, bars.step("rounds", total=args.rounds * len(servers)) as step:
            for round_number in range(args.rounds):
                order = servers[round_number % len(servers) :] + servers[: round_number % len(servers)]
                for server in order:
                    if args.only in (None, "http"):
                        results["http"][server].append(_attempt(http_round, server, args, org.id, headers))
                    if args.only in (None, "ws"):
                        if not settings.REDIS_URL:
                            raise SystemExit("The websocket part needs REDIS_URL (the channel layer).")
                        floor = asyncio.run(ws_floor(args))
                        platform = _attempt(ws_platform, server, args, org)
                        results["ws"][server].append(
                            {"floor": floor, "platform": platform} if "error" not in platform else platform
                        )
                    step.advance()
                    if args.json:  # as the run goes: a later failure keeps what was measured
                        Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        tenancy_services.revoke_api_key(api_key)
    results = {part: rows for part, rows in results.items() if any(rows.values())}
    print_table(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
