"""Profile the API work-order list through the ASGI application daphne serves, in one process, no network:
the CPU per answer and (with --profile) where it goes.

    DATABASE_URL=postgres://…/<a copy of maint_bench10k> python bench/profile_list.py --requests 2000 \
        [--profile out.prof] [--concurrent 8] [--django-handle] [--layers]

It makes an API key of the dataset's big organisation (it writes: run it on a copy of a shared dataset, never on
one), then sends --requests first-page GETs through `maintenance_site.asgi:application` one after another, as one
keep-alive client would, and prints the median CPU per answer over rounds of 200 and the garbage collections.
`--profile` writes two cProfiles: the event loop's thread (FILE) and the requests' threads' CPU (FILE.thread);
`--concurrent N` sends from N clients at once and prints latency percentiles; `--django-handle` serves through
Django's own `ASGIHandler.handle` (three thread trips a request) for comparison; `--layers` prints the request
thread's CPU per answer by layer (each middleware, DRF's steps, authentication, the list's parts, rendering: each
layer's own time, its wrapped callees' taken out; after the warm-up), a breakdown without cProfile's distortion.
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


LAYERS: dict = {}


def time_layers() -> dict:
    """Wrap each layer a request goes through (the handler's exchange, the signals, each middleware, URL resolution,
    DRF's steps, authentication, the list's parts, rendering) so that each adds its own thread CPU (its time minus its
    wrapped callees') to the returned totals (nanoseconds; "_requests": the answers counted). The innermost
    middleware's own time includes Django's `_get_response` around the view (bound when the chain is built)."""
    import functools

    from django.conf import settings
    from django.dispatch import Signal
    from django.http import HttpResponseBase
    from django.urls import resolvers
    from rest_framework import negotiation, views
    from rest_framework.response import Response

    from maintenance_site import i18n
    from maintenance_site.api import authentication, pagination, permissions, prepared, throttling
    from maintenance_site.ops.asgi_handler import ResolvedPaths, SyncChainASGIHandler
    from scheduling.windows import permissions as window_permissions
    from workorders import api as workorders_api

    totals = LAYERS
    totals["_requests"] = 0
    stack: list = []
    clock = time.thread_time_ns

    def wrap(owner, name, label):
        original = owner.__dict__.get(name) or getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            stack.append(0)
            started = clock()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = clock() - started
                children = stack.pop()
                totals[label] = totals.get(label, 0) + elapsed - children
                if stack:
                    stack[-1] += elapsed

        setattr(owner, name, timed)

    exchange = SyncChainASGIHandler._exchange

    def counted(self, *args):
        totals["_requests"] += 1
        return exchange(self, *args)

    SyncChainASGIHandler._exchange = counted
    wrap(SyncChainASGIHandler, "_exchange", "handler: signals, request, close")
    seen = set()
    for path in settings.MIDDLEWARE:
        module, _, name = path.rpartition(".")
        cls = getattr(__import__(module, fromlist=[name]), name)
        if cls not in seen:
            seen.add(cls)
            wrap(cls, "__call__", f"mw {name}")
    for name in (
        "initialize_request",
        "perform_authentication",
        "check_permissions",
        "check_throttles",
        "perform_content_negotiation",
        "determine_version",
        "finalize_response",
        "handle_exception",
    ):
        wrap(views.APIView, name, f"drf {name}")
    wrap(views.APIView, "dispatch", "drf dispatch (own)")
    wrap(workorders_api.WorkOrderViewSet, "list", "view list (own)")
    wrap(pagination.CursorPagination, "prepared_key", "list: shape key")
    wrap(pagination.CursorPagination, "paginate_prepared", "list: paginate_prepared (own)")
    wrap(prepared.PageQuery, "rows", "list: kept query, rows")
    wrap(workorders_api.WorkOrderListSerializer, "items", "list: items")
    wrap(pagination.CursorPagination, "get_paginated_response", "list: paginated response")
    wrap(HttpResponseBase, "close", "response close")
    wrap(throttling, "read_key_and_check", "auth: redis key + throttle")
    wrap(authentication.ApiKeyAuthentication, "authenticate", "auth: api key (own)")

    class _Holder:  # the `rendered_content` property's getter, wrapped
        render = Response.rendered_content.fget

    wrap(_Holder, "render", "render (renderer + headers)")
    Response.rendered_content = property(_Holder.render)
    wrap(Signal, "send", "signals (request started, finished)")
    wrap(resolvers.URLResolver, "resolve", "URL resolution")
    wrap(ResolvedPaths, "resolve", "URL resolution")
    wrap(negotiation.DefaultContentNegotiation, "select_renderer", "drf negotiation: select_renderer")
    wrap(views.APIView, "get_renderers", "drf negotiation: get_renderers")
    wrap(permissions, "resolve_request_tenant", "permissions: resolve tenant")
    wrap(window_permissions, "resolve_request_tenant", "permissions: resolve tenant")
    wrap(i18n, "activate_for_request", "activate language")
    wrap(permissions, "activate_for_request", "activate language")
    wrap(pagination.CursorPagination, "_next_link", "list: next link")
    wrap(authentication, "_from_entry", "auth: unpickle key")
    wrap(views.APIView, "get_authenticators", "drf initialize: get_authenticators")
    wrap(views.APIView, "get_parser_context", "drf initialize: parser context")
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--profile", help="write a cProfile of the measured requests to this file")
    parser.add_argument("--concurrent", type=int, default=0, help="instead: N clients at once, latency percentiles")
    parser.add_argument("--django-handle", action="store_true", help="Django's ASGIHandler.handle (the comparison)")
    parser.add_argument("--layers", action="store_true", help="the request thread's CPU per layer (own time)")
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
        LAYERS.clear()  # the warm-up's (the URL conf's import, the first compilations) left out
        LAYERS["_requests"] = 0
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
    if args.layers:
        layers = time_layers()
    rounds, size = asyncio.run(run())
    if args.layers:
        total = sum(layers.values())
        count = layers.pop("_requests")
        print(f"request thread CPU per answer by layer (own time, µs; {count} answers):")
        for label, spent in sorted(layers.items(), key=lambda item: -item[1]):
            print(f"  {spent / count / 1000:8.0f}  {label}")
        print(f"  {(total - count) / count / 1000:8.0f}  total")
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
