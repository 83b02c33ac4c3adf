"""Hostile HTTP at the socket: oversized headers, broken chunked framing, pipelined requests, bytes that
are not HTTP, idle connections and headers that trickle in (slowloris). The server answers each with a
4xx (or closes the connection), never a 5xx or a hang, and keeps answering normal requests.

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_hostile_http.py
"""
import json
import signal
import socket
import time
import urllib.request

import pytest

from tally_e2e import start_server

BODY = b'{"prompt": "Hi", "max_tokens": 2}'
REQUEST = (b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
           % (len(BODY), BODY))


@pytest.fixture(scope="module")
def server():
    base, proc = start_server("--no-metering", "--idle-timeout", "1")
    yield base, int(base.rsplit(":", 1)[1])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def exchange(port, data, wait=5.0):
    """Sends `data` on a fresh connection and reads until the server closes it (or `wait` passes)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(wait)
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            pass
    return out


def status(reply):
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def healthy(base):
    with urllib.request.urlopen(base + "/health", timeout=10) as r:
        return r.status == 200


@pytest.mark.parametrize("name,data", [
    ("headers past 32 KiB", b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"),
    # Still being sent when the server answers: read and dropped, so the client gets the 400, not a reset.
    ("a 1 MB header", b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"),
    ("101 header fields", b"GET /health HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"),
    ("not HTTP", b"\x00\x01\x02 hello\r\n\r\n"),
    ("a bad request line", b"GET\r\n\r\n"),
    ("both Content-Length and chunked", b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                                       b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
])
def test_malformed_http_is_a_400_envelope_and_closed(server, name, data):
    base, port = server
    reply = exchange(port, data)
    assert status(reply) == 400, (name, reply[:200])
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] in ("headers_too_large", "invalid_http"), error
    assert healthy(base)


def test_broken_chunked_body_is_a_400_envelope(server):
    base, port = server
    reply = exchange(port, b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n")
    assert status(reply) == 400
    error = json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    # The parser's refusal (invalid_http) or the route's failed body read (invalid_body), whichever answers first.
    assert error["type"] == "invalid_request_error" and error["code"] in ("invalid_http", "invalid_body")
    assert healthy(base)


def test_pipelined_requests_are_each_answered_in_order(server):
    base, port = server
    reply = exchange(port, REQUEST * 3, wait=3.0)
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    ids = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["id"] for part in reply.split(b"HTTP/1.1 200 OK")[1:]]
    assert len(set(ids)) == 3


def test_idle_connections_and_trickled_headers_are_closed(server):
    base, port = server
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.settimeout(10)
        assert idle.recv(1) == b""  # closed by the server
    assert time.monotonic() - start < 5
    start = time.monotonic()
    closed = False
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.settimeout(10)
        try:
            for byte in b"GET /health HTTP/1.1\r\nHost: " + b"t" * 200 + b"\r\n\r\n":
                slow.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            closed = True
    assert closed and time.monotonic() - start < 10


def test_a_thousand_idle_connections_leave_normal_requests_answered(server):
    base, port = server
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
    try:
        start = time.monotonic()
        assert healthy(base)
        with urllib.request.urlopen(urllib.request.Request(base + "/v1/completions", data=BODY,
                                    headers={"Content-Type": "application/json"}), timeout=30) as r:
            assert r.status == 200
        assert time.monotonic() - start < 10
    finally:
        for s in idle:
            s.close()
