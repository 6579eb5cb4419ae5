"""Where the platform may POST (webhooks, chat channels): SSRF protection, and the HTTP client that sends webhooks.

A target URL is http(s) and every address its host resolves to must be a public one: loopback, private,
link-local (cloud metadata at 169.254.169.254), shared (100.64/10), multicast, reserved and unspecified addresses
are refused, IPv4-mapped IPv6 addresses by their IPv4 meaning. The check runs when a subscription is saved and
again before each send, after DNS resolution (DNS can change), and the connection then goes to the very address
that was checked (no second lookup that a rebinding DNS server could answer differently). Redirects are never
followed (a 3xx is a failed attempt) and no proxy from the environment is used. WEBHOOK_ALLOW_PRIVATE_TARGETS lets
an on-premises installation (and the test suite's local receiver) send to private addresses.
"""

import asyncio
import concurrent.futures
import functools
import http.client
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from django.conf import settings
from django.utils.translation import gettext

EXCERPT_BYTES = 2048


class TargetRefused(ValueError):
    """The URL is not a place the platform sends webhooks to; the message says why."""


def _getaddrinfo(host: str, port: int):
    """DNS (a module-level function so that tests resolve names without the network)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _why_not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return gettext("a loopback address")
    if address.is_link_local:
        return gettext("a link-local address (such as the cloud metadata service)")
    if address.is_unspecified:
        return gettext("the unspecified address")
    if address.is_multicast:
        return gettext("a multicast address")
    if address.is_private or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED):
        return gettext("a private address")
    if address.is_reserved or not address.is_global:
        return gettext("a reserved address")
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a target URL; raises TargetRefused for anything but http(s) with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused(gettext("This is not a URL.")) from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(gettext("Webhooks are sent over http or https only."))
    if not parts.hostname:
        raise TargetRefused(gettext("The URL has no host."))
    if parts.username or parts.password:
        raise TargetRefused(gettext("Put no user name or password in the URL: verify the signature instead."))
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_target(url: str) -> str:
    """The address to connect to for `url`, after checking every address its host resolves to. Raises
    TargetRefused naming the address class when one is not public (and private targets are not allowed)."""
    _, host, port = parse_target(url)
    try:
        infos = _getaddrinfo(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(
            gettext("The host %(host)s cannot be resolved (%(reason)s).") % {"host": host, "reason": exc}
        ) from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(info[4][0].split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise TargetRefused(gettext("The host %(host)s has no address.") % {"host": host})
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            why = _why_not_public(address)
            if why:
                raise TargetRefused(
                    gettext("The host %(host)s resolves to %(address)s, %(why)s: webhooks go to public hosts only.")
                    % {"host": host, "address": address, "why": why}
                )
    return str(addresses[0])


# --- sending -----------------------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, pinned_address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._pinned_address = pinned_address

    def connect(self):
        self.sock = socket.create_connection((self._pinned_address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, pinned_address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._pinned_address = pinned_address

    def connect(self):
        sock = socket.create_connection((self._pinned_address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # the certificate is the host's


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, address: str):
        super().__init__()
        self._address = address

    def http_open(self, req):
        return self.do_open(functools.partial(_PinnedHTTPConnection, pinned_address=self._address), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address: str):
        super().__init__()
        self._address = address

    def https_open(self, req):
        return self.do_open(
            functools.partial(_PinnedHTTPSConnection, pinned_address=self._address), req, context=self._context
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx: a failed attempt


@dataclass
class PostResult:
    status_code: int | None
    response_excerpt: str
    latency_ms: int
    error: str


def post(url: str, body: bytes, headers: dict) -> PostResult:
    """POST `body` to `url` (checked again, connected to the checked address), with WEBHOOK_TIMEOUT seconds for
    the whole exchange's socket operations. Never raises for network trouble: the result says what happened."""
    started = time.monotonic()

    def result(status=None, excerpt=b"", error=""):
        latency = int((time.monotonic() - started) * 1000)
        return PostResult(status, excerpt.decode("utf-8", "replace"), latency, error)

    try:
        address = resolve_target(url)
    except TargetRefused as exc:
        return result(error=f"refused: {exc}")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), _PinnedHTTPHandler(address), _PinnedHTTPSHandler(address), _NoRedirects()
    )
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked above
    try:
        with opener.open(request, timeout=settings.WEBHOOK_TIMEOUT) as response:
            return result(response.status, response.read(EXCERPT_BYTES))
    except urllib.error.HTTPError as exc:
        try:
            excerpt = exc.read(EXCERPT_BYTES)
        except OSError:
            excerpt = b""
        return result(exc.code, excerpt)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return result(error=f"{type(reason).__name__}: {reason}"[:500])


# --- many sends at once ------------------------------------------------------------------------------------


class _RefusedAddress(OSError):
    """Raised by the pinned resolver: aiohttp wraps it (ClientConnectorDNSError) and the sender reports it."""


class _PinnedResolver(AbstractResolver):
    """aiohttp's name resolution for the Sender: `resolve_target`'s check, then only the checked address."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        try:
            address = await asyncio.to_thread(resolve_target, f"http://{_bracketed(host)}:{port}/")
        except TargetRefused as exc:
            raise _RefusedAddress(str(exc)) from None
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [{"hostname": host, "host": address, "port": port, "family": family, "proto": 0, "flags": 0}]

    async def close(self):
        pass


class Sender:
    """Many POSTs at once from synchronous code: an asyncio loop with one aiohttp session in a thread of its own.

    `submit()` returns a concurrent.futures.Future of a PostResult; the caller (the webhook job, which keeps the
    database on its own thread) waits on them. Connections are kept alive and reused per (host, port, address) for
    the sender's life (one job run), at most `concurrency` POSTs at once; the others queue, and each one's
    WEBHOOK_TIMEOUT starts when its turn comes (a queue is not the receiver's slowness). SSRF: every new connection
    resolves its host through `resolve_target`'s check (a refused address never gets a connection) and connects to
    the very address that was checked; no redirect is followed, no proxy from the environment used, WEBHOOK_TIMEOUT
    bounds each exchange. A sender lives one job run, so a host's DNS is checked again at the next run at the latest.
    """

    def __init__(self, concurrency: int = 64):
        self._loop = asyncio.new_event_loop()
        self._concurrency = concurrency
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-sender", daemon=True)
        self._thread.start()
        self._session = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result()

    async def _open(self):
        self._slots = asyncio.Semaphore(self._concurrency)
        connector = aiohttp.TCPConnector(
            limit=self._concurrency, limit_per_host=0, resolver=_PinnedResolver(), use_dns_cache=False
        )
        timeout = aiohttp.ClientTimeout(total=settings.WEBHOOK_TIMEOUT)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False, auto_decompress=False, skip_auto_headers=["Accept"]
        )

    async def _post(self, url: str, body: bytes, headers: dict, not_after: float | None = None) -> PostResult:
        async with self._slots:  # POSTs beyond `concurrency` wait here: their WEBHOOK_TIMEOUT starts with their turn
            if not_after is not None and time.monotonic() > not_after:
                return PostResult(None, "", 0, NOT_SENT)
            return await self._post_now(url, body, headers)

    async def _post_now(self, url: str, body: bytes, headers: dict) -> PostResult:
        started = time.monotonic()

        def result(status=None, excerpt=b"", error=""):
            latency = int((time.monotonic() - started) * 1000)
            return PostResult(status, excerpt.decode("utf-8", "replace"), latency, error)

        try:
            _, host, _ = parse_target(url)
            if _is_ip_literal(host):  # aiohttp connects to an address without asking the resolver: check it here
                resolve_target(url)
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                excerpt = await response.content.read(EXCERPT_BYTES)
                return result(response.status, excerpt)
        except TargetRefused as exc:
            return result(error=f"refused: {exc}")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, _RefusedAddress):
                return result(error=f"refused: {exc.os_error}")
            return result(error=f"{type(exc).__name__}: {exc}"[:500])
        except TimeoutError:
            return result(error=f"TimeoutError: timed out, no answer within {settings.WEBHOOK_TIMEOUT:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return result(error=f"{type(exc).__name__}: {exc}"[:500])

    def submit(self, url: str, body: bytes, headers: dict):
        """Start one POST; a concurrent.futures.Future of its PostResult (never an exception for network trouble)."""
        return asyncio.run_coroutine_threadsafe(self._post(url, body, headers), self._loop)

    def submit_many(self, posts: list[tuple[str, bytes, dict]], not_after: float | None = None) -> list:
        """Start many POSTs with one hand-over to the loop; a concurrent.futures.Future of each one's PostResult. One
        whose turn comes after `not_after` (time.monotonic()) is not sent: its result is an error, NOT_SENT (the
        webhook job's claim would have run out, and another job may send it)."""
        futures = [concurrent.futures.Future() for _ in posts]

        def start():
            for (url, body, headers), future in zip(posts, futures, strict=True):
                future.set_running_or_notify_cancel()
                task = self._loop.create_task(self._post(url, body, headers, not_after))
                task.add_done_callback(functools.partial(_settle, future))

        self._loop.call_soon_threadsafe(start)
        return futures

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


NOT_SENT = "not sent: the job's claim ran out while the POST waited for a connection"


def _settle(future, task) -> None:
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
