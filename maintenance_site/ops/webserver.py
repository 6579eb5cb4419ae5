"""The web server: daphne, whose HTTP/1.1 parser (Twisted's `HTTPChannel`) answers a request it will not read
instead of dropping the connection.

Twisted reads the request line and each header line with a `LineReceiver` limited to 16 KiB, and on a longer line
it closes the connection without a word (twisted/twisted#4229, open since 2010): a client sending a long query
string saw its connection reset, and nothing reached Django or the log. RFC 9112 §3 wants a 414 (URI Too Long)
for a request-target longer than the server will parse, and RFC 6585 a 431 for a header field too large. This
module is daphne's command line with one change, a channel that answers both in the API's JSON error envelope
and then closes gently (RFC 9112 §9.6: stop sending, drain what the client was still sending, then close, so
that the answer is not destroyed by a connection reset).

    python -m maintenance_site.ops.webserver -b 0.0.0.0 -p 8000 maintenance_site.asgi:application

takes every option of `daphne` (docker-compose.yml and `manage.py runplatform` start the platform this way). A
TLS proxy in front usually has a shorter limit of its own (nginx: 8 KiB) and answers 414 itself.

Why daphne rather than uvicorn or granian: `bench/servers.py` measured the three on the work-order list and the
event websocket fan-out (README, "Scaling out"): daphne served the list at least as fast as either (the platform's
own cost dominates: one ORM thread per process whatever the server), the fan-out within the run's noise of the
best, and of the three only this launcher answers every over-long request line with a 414 in the API's envelope
(uvicorn answers 400 beyond its parser's buffer; granian 414 above 64 KiB but 431 for a longer line, in plain text).
"""

import json
import re
import sys
from http import HTTPStatus

from daphne.cli import CommandLineInterface
from twisted.web import http

MAX_LINE = 16384  # bytes of the request line, and of each header line: Twisted's own limit, kept
# Bytes of the request line and all the headers together. Twisted's default is 16 KiB, so a request line near
# MAX_LINE followed by ordinary headers would get a bare 400; beyond this total it still does.
MAX_HEADER_SECTION = 4 * MAX_LINE
LINGER_SECONDS = 5  # how long a refused client may go on sending before the connection is cut

# A request line starts with its method (an HTTP token) and a space; a header line has no space before its colon.
REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ ")


def refusal(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying the API's error envelope, after which the connection closes."""
    body = json.dumps({"error": {"status": status, "code": code, "message": message, "fields": {}}}).encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


URI_TOO_LONG = refusal(
    414,
    "uri_too_long",
    f"The request line (method, address and query string) is longer than the {MAX_LINE} bytes this server reads. "
    "Shorten the query string: fewer or shorter filter values, or several requests.",
)
HEADER_TOO_LARGE = refusal(
    431,
    "header_too_large",
    f"A request header is longer than the {MAX_LINE} bytes this server reads: shorten it (often: clear this "
    "site's cookies).",
)


class Channel(http.HTTPChannel):
    """Twisted's HTTP channel, answering 414 or 431 where it would hang up."""

    MAX_LENGTH = MAX_LINE
    totalHeadersSize = MAX_HEADER_SECTION
    _refused = False

    def lineLengthExceeded(self, line):
        if self._refused:
            return
        self._refused = True
        self.transport.write(URI_TOO_LONG if REQUEST_LINE.match(line) else HEADER_TOO_LARGE)
        close_sending = getattr(self.transport, "loseWriteConnection", None)
        if close_sending is None:
            self.loseConnection()
            return
        close_sending()  # the answer goes out with a FIN; the client's close, or the timeout, ends the connection
        self.setTimeout(LINGER_SECONDS)

    def dataReceived(self, data):
        if self._refused:
            return  # the rest of a refused request: read and dropped (no timeout reset either)
        super().dataReceived(data)


def install() -> None:
    """Make the HTTP factory that daphne listens with build our channel: Twisted's factory builds `HTTPChannel()`
    from the `twisted.web.http` module, and nothing in daphne's options reaches the channel."""
    http.HTTPChannel = Channel


def main(argv: list[str]) -> None:
    install()
    CommandLineInterface().run(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
