"""The web server answers a request line or header it will not read (issue 16, finding 5): daphne's parser
(Twisted) used to drop the connection without a word on a line over 16 KiB; maintenance_site/ops/webserver.py
answers 414 or 431 in the API's JSON envelope.

First the channel alone (Twisted's in-memory transport), then the real server, started the way
docker-compose.yml starts it, on a free port.
"""

import json
import os
import socket

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import http

from maintenance_site.ops import webserver
from tests.web_process import web_process

LONG_QUERY = "q=" + "x" * 20_000


def _answer(raw: bytes) -> tuple[int, dict, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, json.loads(body) if body else {}


class HalfClosableTransport(StringTransport):
    """A TCP connection's transport: it can stop sending and keep receiving."""

    sending_closed = False

    def loseWriteConnection(self):
        self.sending_closed = True


def _channel(clock: Clock | None = None) -> tuple[webserver.Channel, HalfClosableTransport]:
    channel, transport = webserver.Channel(), HalfClosableTransport()
    channel.callLater = (clock or Clock()).callLater  # timeouts on a clock of the test's, not the reactor
    channel.makeConnection(transport)
    return channel, transport


def test_a_request_line_over_the_limit_is_a_414_in_the_api_envelope():
    channel, transport = _channel()
    channel.dataReceived(f"GET /api/v1/work-orders/?{LONG_QUERY} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, headers, body = _answer(transport.value())
    assert status == 414
    assert headers["Content-Type"] == "application/json" and headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(json.dumps(body).encode())
    assert body["error"]["code"] == "uri_too_long"
    assert "16384 bytes" in body["error"]["message"] and "query string" in body["error"]["message"]


def test_the_answer_is_sent_once_and_the_rest_of_the_request_is_read_and_dropped():
    channel, transport = _channel()
    channel.dataReceived(b"GET /?" + b"x" * 40_000)  # still arriving
    channel.dataReceived(b"x" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().count(b"HTTP/1.1 414") == 1
    assert transport.value().endswith(b"}")  # nothing after the answer (no second answer, no bare 400)
    # a lingering close: the sending side closed, what the client still sends drained rather than reset
    assert transport.sending_closed and not transport.disconnecting


def test_a_header_line_over_the_limit_is_a_431():
    channel, transport = _channel()
    channel.dataReceived(b"GET / HTTP/1.1\r\nCookie: " + b"c" * 20_000 + b"\r\n\r\n")
    status, _, body = _answer(transport.value())
    assert status == 431
    assert body["error"]["code"] == "header_too_large"


def test_a_request_line_just_under_the_limit_with_ordinary_headers_is_read():
    # Twisted's default budget for the whole header section (16 KiB) would refuse this with a bare 400
    channel, transport = _channel()
    line = b"GET /?" + b"x" * (webserver.MAX_LINE - 20) + b" HTTP/1.1\r\n"
    channel.dataReceived(line + b"Host: x\r\nUser-Agent: " + b"u" * 2000 + b"\r\n")
    assert transport.value() == b""  # nothing refused: the request goes on to the application


def test_the_connection_is_cut_if_the_client_goes_on_sending():
    clock = Clock()
    channel, transport = _channel(clock)
    channel.dataReceived(f"GET /?{LONG_QUERY} HTTP/1.1\r\n".encode())
    channel.dataReceived(b"x" * 1000)
    clock.advance(webserver.LINGER_SECONDS + 1)
    assert transport.disconnecting


def test_install_makes_twisteds_factory_build_the_channel(monkeypatch):
    monkeypatch.setattr(http, "HTTPChannel", http.HTTPChannel)  # undone after the test
    webserver.install()
    protocol = http.HTTPFactory().buildProtocol(None)
    assert isinstance(protocol._channel, webserver.Channel)


# --- the real server --------------------------------------------------------------------------------------


def _get(port: int, target: str) -> tuple[int, dict, dict]:
    """One GET over a raw socket, read until the server closes: a dropped connection shows as an empty answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw, f"the server closed the connection without an answer to a {len(target)}-byte target"
    return _answer(raw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The platform's web process as docker-compose.yml runs it (DEBUG off), on a free port."""
    folder = tmp_path_factory.mktemp("webserver")
    env = {
        **{key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"},
        "VAR_DIR": str(folder / "var"),
        "SECRET_KEY": "webserver-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "false",
    }
    with web_process(env, folder / "server.log") as port:
        yield port


@pytest.mark.slow
def test_the_server_answers_a_20000_character_query_string_with_a_414(server):
    status, headers, body = _get(server, f"/api/v1/status/?{LONG_QUERY}")
    assert status == 414
    assert headers["Content-Type"] == "application/json"
    assert body["error"]["status"] == 414 and body["error"]["code"] == "uri_too_long"


@pytest.mark.slow
def test_the_server_still_serves_ordinary_and_long_but_acceptable_requests(server):
    assert _get(server, "/health")[0] == 200
    status, _, body = _get(server, "/health?q=" + "y" * 8_000)
    assert (status, body) == (200, {"status": "ok"})
