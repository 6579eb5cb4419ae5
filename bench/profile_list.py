"""Profile the API work-order list through the ASGI application daphne serves, in one process, no network:
the CPU per answer and (with --profile) where it goes.

    DATABASE_URL=postgres://…/<a copy of maint_bench10k> python bench/profile_list.py --requests 2000 \
        [--profile out.prof] [--concurrent 8] [--django-handle]

It makes an API key of the dataset's big organisation (it writes: run it on a copy of a shared dataset, never on
one), then sends --requests first-page GETs through `maintenance_site.asgi:application` one after another, as one
keep-alive client would, and prints the median CPU per answer over rounds of 200 and the garbage collections.
`--profile` writes two cProfiles: the event loop's thread (FILE) and the requests' threads' CPU (FILE.thread);
`--concurrent N` sends from N clients at once and prints latency percentiles; `--django-handle` serves through
Django's own `ASGIHandler.handle` (three thread trips a request) for comparison.
"""

import argparse
import asyncio
import cProfile
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "THROTTLE_ORGANIZATION_RATE": "10000000/min",
        "THROTTLE_PRINCIPAL_RATE": "10000000/min",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "maintenance_site.settings",
        "DATABASE_POOL": "true",
    }
)

from maintenance_site.asgi import application  # noqa: E402

LIST = "/api/v1/work-orders/"


def scope(key: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": LIST,
        "raw_path": LIST.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"authorization", f"Api-Key {key}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def one(key: str) -> tuple[int, bytes]:
    sent = []
    done = asyncio.Event()

    async def receive():
        if not sent:
            sent.append(None)
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    messages = []

    async def send(message):
        messages.append(message)

    await application(scope(key), receive, send)
    done.set()
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--profile", help="write a cProfile of the measured requests to this file")
    parser.add_argument("--concurrent", type=int, default=0, help="instead: N clients at once, latency percentiles")
    parser.add_argument("--django-handle", action="store_true", help="Django's ASGIHandler.handle (the comparison)")
    args = parser.parse_args()
    if args.django_handle:
        from django.core.handlers.asgi import ASGIHandler

        from maintenance_site.ops.asgi_handler import SyncChainASGIHandler

        SyncChainASGIHandler.handle = ASGIHandler.handle

    from bench import dataset
    from maintenance_site.tenancy import services as tenancy_services
    from maintenance_site.tenancy.models import Organization

    data = dataset.load()
    api_key, key = tenancy_services.create_api_key(Organization.objects.get(pk=data.big.id), name="profile")
    from django.db import connections

    connections.close_all()

    async def run():
        status, body = await one(key)
        assert status == 200, body[:300]
        for _ in range(100):
            await one(key)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:  # the request's thread: its synchronous part (the event loop's is this thread's, below)
            from maintenance_site.ops.asgi_handler import SyncChainASGIHandler

            exchange = SyncChainASGIHandler._exchange
            thread_profiler = cProfile.Profile(time.thread_time)  # CPU, not waits

            def profiled(self, *a):
                thread_profiler.enable()
                try:
                    return exchange(self, *a)
                finally:
                    thread_profiler.disable()

            SyncChainASGIHandler._exchange = profiled
        rounds = []
        for _ in range(max(1, args.requests // 200)):
            if profiler:
                profiler.enable()
            started = time.process_time()
            for _ in range(200):
                await one(key)
            rounds.append((time.process_time() - started) * 1000 / 200)
            if profiler:
                profiler.disable()
        if profiler:
            profiler.dump_stats(args.profile)
            thread_profiler.dump_stats(args.profile + ".thread")
        return rounds, len(body)

    import gc

    pauses = []
    started_at = {}

    def watch(phase, info):
        if phase == "start":
            started_at["t"] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started_at["t"]) * 1000))

    gc.callbacks.append(watch)

    async def concurrent():
        latencies = []

        async def client():
            for _ in range(args.requests // args.concurrent):
                started = time.perf_counter()
                await one(key)
                latencies.append((time.perf_counter() - started) * 1000)

        for _ in range(50):
            await one(key)
        cpu = time.process_time()
        await asyncio.gather(*(client() for _ in range(args.concurrent)))
        cpu = (time.process_time() - cpu) * 1000 / len(latencies)
        latencies.sort()
        return [cpu], latencies

    if args.concurrent:
        rounds, latencies = asyncio.run(concurrent())
        n = len(latencies)
        print(
            f"p50 {latencies[n // 2]:.1f} p90 {latencies[int(n * 0.9)]:.1f} p99 {latencies[int(n * 0.99)]:.1f} "
            f"max {latencies[-1]:.1f} ms, CPU {rounds[0]:.2f} ms/answer"
        )
        return 0
    rounds, size = asyncio.run(run())
    gc.callbacks.remove(watch)
    for generation in (0, 1, 2):
        times = sorted(t for g, t in pauses if g == generation)
        if times:
            print(f"gc gen {generation}: {len(times)} collections, max {times[-1]:.2f} ms, total {sum(times):.1f} ms")
    print(
        f"CPU per answer: median {statistics.median(rounds):.2f} ms, rounds {', '.join(f'{r:.2f}' for r in rounds)}"
        f" ({size} bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
