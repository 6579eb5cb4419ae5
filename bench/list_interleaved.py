"""The API list under load, several code trees side by side with the floor, in interleaved rounds.

    DATABASE_URL=postgres://…/<a copy of maint_bench1m> python bench/list_interleaved.py /tmp/main-tree /work/wt/x

`bench/list_api.py` measures the platform, then the floor, each for one stretch: on a machine shared with other
work the load moves between the two and the ratios with it (the floor's own throughput moved 2× from one minute
to the next). Here every tree's servers (`maintenance_site.asgi`, 2 daphne processes each, started from that tree:
e.g. `git archive main | tar -x -C /tmp/main-tree`, with the compiled translations copied in) and the floor's are up
at once, and --rounds rounds measure each in turn for --seconds (16 connections): per round, throughput, p50/p99
and the servers' CPU per answer; at the end the medians and the median per-round ratios to the floor. It writes an
API key of the dataset's big organisation (revoked at the end): run it on a copy of a shared dataset.
"""

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.list_api as la  # noqa: E402  (sets Django up)
from bench import dataset  # noqa: E402
from maintenance_site.tenancy import services as tenancy_services  # noqa: E402


def start(tree: str, app: str, processes: int) -> tuple[list[subprocess.Popen], list[int]]:
    env = {**os.environ, **la.UNTHROTTLED, "DJANGO_SETTINGS_MODULE": "maintenance_site.settings"}
    env.update({"DATABASE_POOL": "true", "PYTHONPATH": tree})
    Path(tree, "var").mkdir(exist_ok=True)
    log = open(Path(tree, "var", "bench-servers.log"), "ab")  # noqa: SIM115 (the servers write to it until stopped)
    servers, ports = [], []
    for _ in range(processes):
        port = la._free_port()
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
        servers.append(subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=log))  # noqa: S603
        ports.append(port)
    return servers, ports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", help="directories holding the code to serve (one side each)")
    parser.add_argument("--seconds", type=float, default=6, help="measured seconds per side and round (default 6)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    data = dataset.load()
    api_key, key = tenancy_services.create_api_key(la._org(data.big.id), name="interleaved benchmark")
    headers = {"Authorization": f"Api-Key {key}"}
    sides = {}
    for tree in args.trees:
        sides[os.path.basename(tree.rstrip("/"))] = (
            *start(tree, "maintenance_site.asgi:application", args.processes),
            la.LIST,
            headers,
        )
    floor_path = f"/work-orders/?organization={data.big.id}"
    sides["floor"] = (*start(args.trees[0], "bench.floor:application", args.processes), floor_path, {})
    results = {name: [] for name in sides}
    try:
        for _servers, ports, path, side_headers in sides.values():
            la.wait_until_serving(ports, path, side_headers)
        for round_ in range(args.rounds):
            for name, (servers, ports, path, side_headers) in sides.items():
                before = la._cpu_seconds([server.pid for server in servers])
                result = la.load(ports, path, side_headers, args.connections, args.seconds, warm=1.0)
                cpu = la._cpu_seconds([server.pid for server in servers]) - before
                result["cpu_ms"] = cpu * 1000 / (result["rps"] * (args.seconds + 1.0)) if result["rps"] else 0.0
                result["load"] = os.getloadavg()[0]
                results[name].append(result)
                print(
                    f"r{round_} {name:14s} {result['rps']:5.0f} req/s  p50 {result['p50_ms']:5.0f}  "
                    f"p99 {result['p99_ms']:5.0f} ms  CPU {result['cpu_ms']:.2f} ms/answer  load {result['load']:.1f}",
                    flush=True,
                )
    finally:
        for servers, *_ in sides.values():
            la.stop_servers(servers)
        tenancy_services.revoke_api_key(api_key)
    floor = results["floor"]
    print("medians (ratios: the median of the rounds' ratios to the floor):")
    for name, rounds in results.items():
        rps_ratio = statistics.median(f["rps"] / r["rps"] for r, f in zip(rounds, floor, strict=True))
        p99_ratio = statistics.median(r["p99_ms"] / f["p99_ms"] for r, f in zip(rounds, floor, strict=True))
        print(
            f"{name:14s} {statistics.median(r['rps'] for r in rounds):5.0f} req/s  "
            f"p99 {statistics.median(r['p99_ms'] for r in rounds):5.0f} ms  "
            f"CPU {statistics.median(r['cpu_ms'] for r in rounds):.2f} ms/answer  "
            f"vs floor: throughput {rps_ratio:.2f}×, p99 {p99_ratio:.2f}×"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
