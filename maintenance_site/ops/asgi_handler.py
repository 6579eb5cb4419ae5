"""Django's ASGI handler with the middleware chain run synchronously, in one thread hop per request.

Django's own handler builds an async chain and adapts each middleware to it: ours are synchronous but two (django-
simple-history's and django-axes', which can do both, and sit innermost), so a request crossed from the event loop
into the worker thread for the outer middleware, back to the event loop for the inner two (`async_to_sync`), and into
the thread again for the view: three crossings, each a hand-over between threads and the loop, about 1 ms of CPU of
the ~5 ms a short API answer costs. Here the chain is loaded in sync mode (each middleware on its synchronous path, as
under WSGI and in the tests) and the whole of it runs in the one thread-sensitive worker Django's handler runs sync
views in: one crossing. Reading the body, the disconnect watch, sending the response (streamed or not) and the
request signals are Django's, unchanged. The project has no async views (an async view would still work, run
through `async_to_sync`).
"""

import gc
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse

# Idle request threads kept for the next requests; more at once are made as needed and ended on their return.
IDLE_THREADS = 32


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


class SyncChainASGIHandler(ASGIHandler):
    threads = RequestThreads()

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

    async def run_get_response(self, request):
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):  # as Django's: the server chunks the file
            response.block_size = self.chunk_size
        return response


def freeze_startup_objects() -> None:
    """Move everything loaded at startup (modules, models, URL patterns, settings: ~250,000 objects) out of the
    garbage collector's reach, for the process's life (`gc.freeze`). A full collection otherwise walks them all, and
    under load one came every few thousand answers and stopped the process for 150-300 ms, holding every request in
    flight: the latency tail of a server that answers in milliseconds. What is made after startup is collected as
    before; garbage made before (none, after the `gc.collect` here) would never be."""
    gc.collect()
    gc.freeze()
