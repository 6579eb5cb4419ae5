"""The ASGI handler daphne serves (maintenance_site.ops.asgi_handler): the middleware chain runs synchronously in one
thread hop per request; requests still run side by side, each on a thread of its own, and those threads are kept and
reused rather than started and joined per request."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.http import HttpResponse, StreamingHttpResponse

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


class TimingHandler(SyncChainASGIHandler):
    """The handler answering each request after `pause(n)` seconds (n: the request's arrival), noting when each
    request's synchronous part began and ended."""

    def __init__(self, pause):
        super().__init__()
        self.threads = RequestThreads()
        self.pause = pause
        self.spans = {}

    def get_response(self, request):
        n = int(request.GET["n"])
        began = time.monotonic()
        time.sleep(self.pause(n))
        self.spans[n] = (began, time.monotonic())
        return HttpResponse(b"ok")


def _numbered_get(handler, n, disconnect_after=None):
    scope = {**_scope("/any/"), "query_string": f"n={n}".encode()}
    return _exchange(handler, scope, disconnect_after=disconnect_after)


def test_short_requests_take_turns_in_the_order_they_arrived():
    handler = TimingHandler(lambda n: 0.01)

    async def eight():
        return await asyncio.gather(*(_numbered_get(handler, n) for n in range(8)))

    answers = async_to_sync(eight)()
    assert all(sent[0]["status"] == 200 for sent in answers)
    spans = [handler.spans[n] for n in range(8)]
    assert spans == sorted(spans)  # began in arrival order
    # one at a time: each began after the one before it ended
    assert all(ended <= next_began for (_, ended), (next_began, _) in zip(spans, spans[1:], strict=False))


def test_a_slow_request_lets_the_next_ones_go_on_beside_it():
    handler = TimingHandler(lambda n: 0.5 if n == 0 else 0.01)

    async def slow_then_short():
        return await asyncio.gather(*(_numbered_get(handler, n) for n in range(3)))

    async_to_sync(slow_then_short)()
    (slow_began, slow_ended), (short_began, short_ended) = handler.spans[0], handler.spans[1]
    assert short_began - slow_began < 0.3  # after the turn's patience (0.05 s), not after the slow answer
    assert short_ended < slow_ended and handler.spans[2][1] < slow_ended


def test_a_client_gone_while_waiting_for_its_turn_starts_nothing():
    handler = TimingHandler(lambda n: 0.03)

    async def second_leaves():
        return await asyncio.gather(_numbered_get(handler, 0), _numbered_get(handler, 1, disconnect_after=0.01))

    with SignalRecorder() as recorder:
        first, second = async_to_sync(second_leaves)()
    assert first[0]["status"] == 200 and second == []
    assert list(handler.spans) == [0]  # the second request's view never ran
    assert [name for name, _ in recorder.events] == ["started", "finished"]  # the first request's signals only


def test_threads_beyond_the_idle_limit_are_ended_when_given_back():
    threads = RequestThreads(idle_limit=1)
    first, second = threads.take(), threads.take()
    assert first is not second
    threads.give_back(first)
    threads.give_back(second)
    assert threads.idle == [first]
    assert second._shutdown
    assert threads.take() is first


# --- one thread trip per request (SyncChainASGIHandler.handle) -------------------------------------------------


class SignalRecorder:
    """Notes each request signal (and the answer's close) with the thread it came on, in order."""

    def __init__(self):
        self.events = []

    def __enter__(self):
        request_started.connect(self.started)
        request_finished.connect(self.finished)
        return self

    def __exit__(self, *exc):
        request_started.disconnect(self.started)
        request_finished.disconnect(self.finished)

    def started(self, **kwargs):
        self.events.append(("started", threading.get_ident()))

    def finished(self, **kwargs):
        self.events.append(("finished", threading.get_ident()))


class AnsweringHandler(SyncChainASGIHandler):
    """The handler with `answer()` in place of the middleware chain and the views (noting the view's thread)."""

    def __init__(self, answer, recorder=None, pause=0.0):
        super().__init__()
        self.threads = RequestThreads()
        self.answer, self.recorder, self.pause = answer, recorder, pause

    def get_response(self, request):
        if self.recorder:
            self.recorder.events.append(("view", threading.get_ident()))
        time.sleep(self.pause)
        return self.answer()


async def _exchange(handler, scope=None, body=b"", disconnect_after=None):
    """Send one request; the messages the handler sent. With `disconnect_after` (seconds), the client goes away
    then, before the answer is ready."""
    sent, received = [], []

    async def receive():
        if not received:
            received.append(True)
            return {"type": "http.request", "body": body, "more_body": False}
        if disconnect_after is not None:
            await asyncio.sleep(disconnect_after)
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    await handler(scope or _scope(), receive, send)
    return sent


def test_each_request_signal_is_sent_once_on_the_view_thread_around_the_view():
    with SignalRecorder() as recorder:
        handler = AnsweringHandler(lambda: HttpResponse(b"hello"), recorder)
        sent = async_to_sync(_exchange)(handler)
    assert [name for name, _ in recorder.events] == ["started", "view", "finished"]
    assert len({thread for _, thread in recorder.events}) == 1  # one thread trip: the signals on the view's thread
    assert recorder.events[0][1] != threading.get_ident()
    assert sent[0]["status"] == 200 and sent[-1]["body"] == b"hello"


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_a_streamed_answer_is_closed_after_it_is_sent():
    closed_when = []

    def answer():
        response = StreamingHttpResponse(iter([b"a", b"b"]))
        response._resource_closers.append(lambda: closed_when.append(len(sent_so_far)))
        return response

    sent_so_far = []

    class Watching(AnsweringHandler):
        async def send_response(self, response, send):
            async def noting(message):
                sent_so_far.append(message)
                await send(message)

            await super().send_response(response, noting)

    with SignalRecorder() as recorder:
        sent = async_to_sync(_exchange)(Watching(answer, recorder))
    assert b"".join(message.get("body", b"") for message in sent) == b"ab"
    assert closed_when == [len(sent)]  # closed once, after the last message
    assert [name for name, _ in recorder.events] == ["started", "view", "finished"]


def test_the_answers_are_djangos_byte_for_byte():
    """The same requests through Django's `handle` and ours: the same messages (status, headers, body)."""

    class Djangos(SyncChainASGIHandler):
        handle = ASGIHandler.handle

    for path in ("/no-such-page/", "/api/v1/", "/healthz"):
        ours = async_to_sync(_exchange)(SyncChainASGIHandler(), _scope(path))
        theirs = async_to_sync(_exchange)(Djangos(), _scope(path))
        strip = [(name, value) for name, value in ours[0]["headers"] if name.lower() != b"x-correlation-id"]
        assert strip == [(name, value) for name, value in theirs[0]["headers"] if name.lower() != b"x-correlation-id"]
        assert ours[0]["status"] == theirs[0]["status"]
        assert [message.get("body") for message in ours[1:]] == [message.get("body") for message in theirs[1:]]


def test_a_request_that_cannot_be_read_is_answered_as_django_answers_it():
    scope = {**_scope(), "query_string": b"q=\xff"}  # not UTF-8: Django answers 400 without a view
    with SignalRecorder() as recorder:
        handler = AnsweringHandler(lambda: HttpResponse(b"not reached"), recorder)
        sent = async_to_sync(_exchange)(handler, scope)
    djangos = type("Djangos", (AnsweringHandler,), {"handle": ASGIHandler.handle})
    theirs = async_to_sync(_exchange)(djangos(lambda: HttpResponse(b"not reached")), scope)
    assert sent[0]["status"] == theirs[0]["status"] == 400
    assert sent[0]["headers"] == theirs[0]["headers"]
    assert [message.get("body") for message in sent[1:]] == [message.get("body") for message in theirs[1:]]
    assert [name for name, _ in recorder.events] == ["started", "finished"]


def test_a_client_gone_before_the_answer_gets_nothing_and_the_answer_is_closed_once():
    closed = []

    def answer():
        response = HttpResponse(b"late")
        response._resource_closers.append(lambda: closed.append(threading.get_ident()))
        return response

    with SignalRecorder() as recorder:
        handler = AnsweringHandler(answer, recorder, pause=0.3)
        sent = async_to_sync(_exchange)(handler, disconnect_after=0.05)
    assert sent == []  # nothing sent to a client that left
    assert len(closed) == 1
    # the handler returned only once the request's thread was done with it (its thread is idle again)
    assert [name for name, _ in recorder.events] == ["started", "view", "finished"]
    assert len(handler.threads.idle) == 1


def test_a_streamed_answer_made_for_a_client_gone_is_closed_all_the_same():
    closed = []

    def answer():
        response = StreamingHttpResponse(iter([b"a"]))
        response._resource_closers.append(lambda: closed.append(True))
        return response

    with SignalRecorder() as recorder:
        sent = async_to_sync(_exchange)(AnsweringHandler(answer, recorder, pause=0.3), disconnect_after=0.05)
    assert sent == []
    assert closed == [True]
    assert [name for name, _ in recorder.events] == ["started", "view", "finished"]


# --- URL resolution kept per path (ResolvedPaths) ----------------------------------------------------------------


def _match_fields(match):
    return {
        name: getattr(match, name)
        for name in (
            "func",
            "args",
            "kwargs",
            "url_name",
            "app_names",
            "namespaces",
            "route",
            "captured_kwargs",
            "extra_kwargs",
            "view_name",
            "_func_path",
            "tried",
        )
    }


@pytest.mark.parametrize(
    "path", ["/api/v1/work-orders/", "/api/v1/work-orders/12/", "/api/v1/work-orders/12/history/", "/health", "/t/"]
)
def test_a_kept_resolution_is_what_django_resolves_and_each_request_gets_its_own(path):
    from django.urls import get_resolver

    from maintenance_site.ops.asgi_handler import ResolvedPaths

    resolved = ResolvedPaths()
    resolver = get_resolver()
    first, second = resolved.resolve(resolver, path), resolved.resolve(resolver, path)
    fresh = resolver.resolve(path)
    assert _match_fields(first) == _match_fields(second) == _match_fields(fresh)
    assert len(resolved.kept) == 1
    assert first is not second and first.kwargs is not second.kwargs
    second.kwargs["changed"] = 1  # a request changing its match changes nobody else's
    assert "changed" not in resolved.resolve(resolver, path).kwargs


def test_a_path_that_does_not_resolve_is_not_kept_and_still_404s():
    from django.urls import Resolver404, get_resolver

    from maintenance_site.ops.asgi_handler import ResolvedPaths

    resolved = ResolvedPaths()
    for _ in range(2):
        with pytest.raises(Resolver404):
            resolved.resolve(get_resolver(), "/no-such-page/")
    assert resolved.kept == {}


def test_kept_resolutions_are_bounded_and_per_resolver():
    from django.urls import get_resolver

    from maintenance_site.ops.asgi_handler import ResolvedPaths

    resolved = ResolvedPaths(limit=2)
    resolver = get_resolver()
    for pk in (1, 2, 3):
        resolved.resolve(resolver, f"/api/v1/work-orders/{pk}/")
    assert [key[1] for key in resolved.kept] == ["/api/v1/work-orders/2/", "/api/v1/work-orders/3/"]
    other = get_resolver("maintenance_site.api.urls")  # another URL conf: its own entries, its own answer
    assert resolved.resolve(other, "/work-orders/3/").kwargs == {"pk": "3"}
    assert (other, "/work-orders/3/") == next(reversed(resolved.kept))[:2]


def test_the_handler_resolves_through_the_kept_paths_and_sets_the_requests_match():
    handler = RecordingHandler()
    handler.resolved = type(SyncChainASGIHandler.resolved)()
    assert async_to_sync(_get)(handler) == 404  # /no-such-page/: nothing kept
    assert handler.resolved.kept == {}

    from django.test import RequestFactory

    request = RequestFactory().get("/api/v1/work-orders/5/")
    match = handler.resolve_request(request)
    assert request.resolver_match is match and match.kwargs == {"pk": "5"} and match.url_name == "work-order-detail"
    assert len(handler.resolved.kept) == 1
    from django.urls import set_urlconf

    request = RequestFactory().get("/work-orders/7/")
    request.urlconf = "maintenance_site.api.urls"  # a request's own URL conf: Django's resolution, nothing kept
    try:
        assert handler.resolve_request(request).kwargs == {"pk": "7"}
    finally:
        set_urlconf(None)
    assert len(handler.resolved.kept) == 1
