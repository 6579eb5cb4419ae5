"""The ASGI handler daphne serves (maintenance_site.ops.asgi_handler): the middleware chain runs synchronously in one
thread hop per request; requests still run side by side, each on a thread of its own, and those threads are kept and
reused rather than started and joined per request."""

import asyncio
import threading
import time

from asgiref.sync import async_to_sync, iscoroutinefunction

from maintenance_site.ops.asgi_handler import RequestThreads, SyncChainASGIHandler


def _scope(path="/no-such-page/"):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def _get(handler) -> int:
    sent, received = [], []

    async def receive():
        if not received:
            received.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the answer is made

    async def send(message):
        sent.append(message)

    await handler(_scope(), receive, send)
    return sent[0]["status"]


class RecordingHandler(SyncChainASGIHandler):
    """The handler, noting the thread each request's middleware chain ran on (and taking `pause` seconds there)."""

    pause = 0.0

    def __init__(self):
        super().__init__()
        self.threads = RequestThreads()
        self.ran_on = []

    def get_response(self, request):
        self.ran_on.append(threading.get_ident())
        time.sleep(self.pause)
        return super().get_response(request)


def test_the_middleware_chain_is_synchronous_and_answers():
    handler = RecordingHandler()
    assert not iscoroutinefunction(handler._middleware_chain)  # no async_to_sync inside the chain
    assert async_to_sync(_get)(handler) == 404
    assert handler.ran_on and handler.ran_on[0] != threading.get_ident()  # off the event loop's thread


def test_requests_one_after_another_reuse_one_thread():
    handler = RecordingHandler()
    for _ in range(3):
        async_to_sync(_get)(handler)
    assert len(set(handler.ran_on)) == 1
    assert len(handler.threads.idle) == 1


def test_requests_at_the_same_time_run_side_by_side_on_threads_of_their_own():
    handler = RecordingHandler()
    handler.pause = 0.3

    async def both():
        started = time.monotonic()
        await asyncio.gather(_get(handler), _get(handler))
        return time.monotonic() - started

    elapsed = async_to_sync(both)()
    assert len(set(handler.ran_on)) == 2
    assert elapsed < 0.55  # together, not one after the other (0.6 s)
    assert len(handler.threads.idle) == 2


def test_threads_beyond_the_idle_limit_are_ended_when_given_back():
    threads = RequestThreads(idle_limit=1)
    first, second = threads.take(), threads.take()
    assert first is not second
    threads.give_back(first)
    threads.give_back(second)
    assert threads.idle == [first]
    assert second._shutdown
    assert threads.take() is first
