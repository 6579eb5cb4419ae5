"""Django's ASGI handler with the middleware chain run synchronously, in one thread hop per request.

Django's own handler builds an async chain and adapts each middleware to it: ours are synchronous but two (django-
simple-history's and django-axes', which can do both, and sit innermost), so a request crossed from the event loop
into the worker thread for the outer middleware, back to the event loop for the inner two (`async_to_sync`), and into
the thread again for the view: three crossings, each a hand-over between threads and the loop, about 1 ms of CPU of
the ~5 ms a short API answer costs. Here the chain is loaded in sync mode (each middleware on its synchronous path, as
under WSGI and in the tests) and the whole of it runs in the one thread-sensitive worker Django's handler runs sync
views in. Django's `handle` still crossed three times around it (the `request_started` signal, the response,
its `close`); `handle` here (Django 5.2's, rewritten around one call, `_exchange`) makes the signal, the request,
the response and, for an answer held in memory, its close in one trip, and sends the bytes after: about 0.6 ms of
CPU less per short answer (bench/profile_list.py --django-handle, 3.7-4.2 -> 3.1 ms in-process). Reading the body,
the disconnect watch, the answer to a request that cannot be read (400/413), sending (streamed or not) and closing
a streamed answer after it is sent are as in Django (tests/ops/test_asgi_handler.py compares the bytes). The
project has no async views (an async view would still work, run through `async_to_sync`).
"""

import asyncio
import contextlib
import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import get_resolver, set_script_prefix
from django.utils import translation

# Idle request threads kept for the next requests; more at once are made as needed and ended on their return.
IDLE_THREADS = 32
# Paths whose resolution a process keeps (the oldest forgotten first).
RESOLVED_PATHS = 1024
# How long a request's synchronous part runs before the next request of its process may start beside it (seconds).
TURN_PATIENCE = 0.05


class RequestThreads:
    """The threads requests run their synchronous part in, one request at a time each, kept from one request to the
    next. Django's handler gives every request a thread of its own (a `ThreadSensitiveContext`, so that requests do
    not wait for one another's queries) and starts and joins a new one each time: about 15 % of a short answer's CPU.
    Here a request takes an idle thread, or a new one when all are busy, and gives it back when it ends: concurrency
    as before, without a thread start and join per request. A thread serving requests one after another is what
    every WSGI server does."""

    def __init__(self, idle_limit: int = IDLE_THREADS):
        self.idle: list[ThreadPoolExecutor] = []
        self.idle_limit = idle_limit
        self.lock = threading.Lock()

    def take(self) -> ThreadPoolExecutor:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self.lock:
            if len(self.idle) < self.idle_limit:
                self.idle.append(executor)
                return
        executor.shutdown(wait=False)


class ArrivalTurns:
    """Requests of a process take turns at their synchronous part, in the order they arrived, one at a time; a
    request still running after `patience` seconds (a report, an export) gives up its turn and goes on beside the
    next, so that nothing slow holds a process up.

    Short requests run side by side gain nothing on two cores: the threads share one GIL, each waits for it after
    every query, in no particular order, and every answer is as late as the slowest of the batch. Taken in turn, on
    the 1M dataset (bench/list_api.py, 16 connections, 2 processes), the API list's p90 went from 55 to 45 ms and its
    p99 from 80-95 to 60-70 ms at the same throughput. One gate per event loop (asyncio's primitives belong to the
    loop that first awaits them; tests run several loops)."""

    def __init__(self, patience: float = TURN_PATIENCE):
        self.patience = patience
        self.gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def run(self, work):
        """Await `work` (a coroutine) in its turn; the turn ends when it finishes or `patience` has passed."""
        loop = asyncio.get_running_loop()
        gate = self.gates.get(loop)
        if gate is None:
            gate = self.gates[loop] = asyncio.Semaphore(1)
        try:
            await gate.acquire()
        except asyncio.CancelledError:
            work.close()  # never started: the client left while it waited for its turn
            raise
        task = asyncio.ensure_future(work)
        try:
            await asyncio.wait({task}, timeout=self.patience)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            gate.release()
        try:
            return await task
        except asyncio.CancelledError:
            task.cancel()
            raise


class ResolvedPaths:
    """The URL resolutions of the paths a process answered, kept: resolving `/api/v1/work-orders/` walks ~20 patterns
    through four nested resolvers, each making its own `ResolverMatch`, ~0.18 ms of a short API answer's CPU. A
    path's match depends on the resolver (a new one after `clear_url_caches`, e.g. a test's ROOT_URLCONF: its own
    entries), the path and the active language (a translated pattern); only matches are kept (a 404 is resolved
    every time), at most `limit` of them, the oldest forgotten first. Each request gets a copy of the kept match,
    with its own kwargs and lists, as a fresh resolution would give it."""

    def __init__(self, limit: int = RESOLVED_PATHS):
        self.limit = limit
        self.kept: dict = {}
        self.lock = threading.Lock()

    def resolve(self, resolver, path: str):
        key = (resolver, path, translation.get_language())
        kept = self.kept.get(key)
        if kept is None:
            kept = resolver.resolve(path)
            with self.lock:
                if len(self.kept) >= self.limit:
                    self.kept.pop(next(iter(self.kept)), None)
                self.kept[key] = _copy(kept)
            return kept
        return _copy(kept)


def _copy(original):
    """A copy of a `ResolverMatch` with mutable parts of its own (`copy.copy` refuses one: it cannot be pickled)."""
    match = object.__new__(type(original))
    match.__dict__.update(original.__dict__)
    match.kwargs = dict(match.kwargs)
    for name in ("captured_kwargs", "extra_kwargs"):
        value = getattr(match, name)
        if value is not None:
            setattr(match, name, dict(value))
    for name in ("app_names", "namespaces", "tried"):
        value = getattr(match, name)
        if value is not None:
            setattr(match, name, list(value))
    return match


class SyncChainASGIHandler(ASGIHandler):
    threads = RequestThreads()
    resolved = ResolvedPaths()
    turns = ArrivalTurns()

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        """Django's, with the request's thread taken from `threads` rather than started for it."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)

    def resolve_request(self, request):
        """Django's, with the match of a path resolved before taken from `ResolvedPaths` (its own copy)."""
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        resolver_match = self.resolved.resolve(get_resolver(), request.path_info)
        request.resolver_match = resolver_match
        return resolver_match

    async def run_get_response(self, request):
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return self._prepared(response)

    def _prepared(self, response):
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):  # as Django's: the server chunks the file
            response.block_size = self.chunk_size
        return response

    def _exchange(self, scope, body_file, exchange: "_Exchange"):
        """A request's synchronous part, in its thread, in one trip: what Django's `handle` does in three (the
        `request_started` signal, the response, then its `close`, each a hop of its own). In Django's order:
        `request_started` (old connections closed), the request made (a malformed one answered 400/413 as Django
        does), the response; then an answer held in memory is closed here (`request_finished`: the connection back to
        the pool) before its bytes are sent, since sending it needs nothing that closing releases. A streamed
        answer (a file, a generator) is closed after it is sent, as in Django, unless the client has gone."""
        exchange.started = True
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            response = error_response
        else:
            response = self._prepared(self.get_response(request))
        exchange.response = response
        if not response.streaming or exchange.abandoned:
            exchange.closed = True
            response.close()
        return request, response

    async def handle(self, scope, receive, send):
        """Django's `ASGIHandler.handle` (5.2) with the request's synchronous part in one thread trip
        (`_exchange`). As there: the body read first (a client gone before: nothing done), the script prefix set,
        the answer made while a task listens for the client's disconnect (and abandoned if it comes first), the
        `request_started` and `request_finished` signals sent once each, in the request's thread."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        exchange = _Exchange()

        async def process_request():
            exchanged = sync_to_async(self._exchange, thread_sensitive=True)(scope, body_file, exchange)
            request, response = await self.turns.run(exchanged)
            with contextlib.suppress(asyncio.CancelledError):  # the client left while it was sent (as Django)
                await self.send_response(response, send)
            return request, response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:  # Django's, unchanged
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            _, response = tasks[1].result()
        except asyncio.CancelledError:
            # The client left before the answer was ready. The request's thread goes on with it (a thread cannot
            # be stopped): wait for it (Django's handler waits too, its `request_finished` queued behind the view),
            # then make sure the answer is closed and `request_finished` sent, once.
            exchange.abandoned = True
            await sync_to_async(_nothing, thread_sensitive=True)()
            if not exchange.started:
                pass  # it left while waiting for its turn: nothing was begun
            elif exchange.response is None:
                await signals.request_finished.asend(sender=self.__class__)
            elif not exchange.closed:
                exchange.closed = True
                await sync_to_async(exchange.response.close)()
        else:
            if not exchange.closed:  # a streamed answer, sent: closed now, as Django closes every answer
                exchange.closed = True
                await sync_to_async(response.close)()
        body_file.close()


class _Exchange:
    """What a request's thread and the event loop share about its answer."""

    __slots__ = ("abandoned", "closed", "response", "started")

    def __init__(self):
        self.started = False
        self.response = None
        self.abandoned = False
        self.closed = False


def _nothing():
    return None


def freeze_startup_objects() -> None:
    """Move everything loaded at startup (modules, models, URL patterns, settings: ~250,000 objects) out of the
    garbage collector's reach, for the process's life (`gc.freeze`). A full collection otherwise walks them all, and
    under load one came every few thousand answers and stopped the process for 150-300 ms, holding every request in
    flight: the latency tail of a server that answers in milliseconds. What is made after startup is collected as
    before; garbage made before (none, after the `gc.collect` here) would never be."""
    gc.collect()
    gc.freeze()
