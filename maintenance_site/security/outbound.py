"""Where the platform may POST (webhooks, chat channels): SSRF protection, and the HTTP client that sends webhooks.

A target URL is http(s) and every address its host resolves to must be a public one: loopback, private,
link-local (cloud metadata at 169.254.169.254), shared (100.64/10), multicast, reserved and unspecified addresses
are refused, IPv4-mapped IPv6 addresses by their IPv4 meaning. The check runs when a subscription is saved and
again before each send, after DNS resolution (DNS can change), and the connection then goes to the very address
that was checked (no second lookup that a rebinding DNS server could answer differently). Redirects are never
followed (a 3xx is a failed attempt) and no proxy from the environment is used. WEBHOOK_ALLOW_PRIVATE_TARGETS lets
an on-premises installation (and the test suite's local receiver) send to private addresses.
"""

import functools
import http.client
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

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
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED):
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a target URL; raises TargetRefused for anything but http(s) with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("This is not a URL.") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("Webhooks are sent over http or https only.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused("Put no user name or password in the URL: verify the signature instead.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_target(url: str) -> str:
    """The address to connect to for `url`, after checking every address its host resolves to. Raises
    TargetRefused naming the address class when one is not public (and private targets are not allowed)."""
    _, host, port = parse_target(url)
    try:
        infos = _getaddrinfo(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"The host {host} cannot be resolved ({exc}).") from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(info[4][0].split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise TargetRefused(f"The host {host} has no address.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            why = _why_not_public(address)
            if why:
                raise TargetRefused(f"The host {host} resolves to {address}, {why}: webhooks go to public hosts only.")
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
