"""`serve` against clients that hold on, speak HTTP/0.9 or smuggle a request in a body (issue 11, point 8).

Before: 300 connections that sent their headers slowly held 180-213 threads, each until the client gave
up; `GET / HTTP/0.9` was answered with a bare body (no status line, no security headers); the body of a
GET was parsed as a second request. Real sockets against the real server on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from support.archives import Builder, make_config, open_store
from support.daemon import wait_until
from watchdog.models import Target
from watchdog.publish.serve import ArchiveServer, Limits, Roots, regenerate

META = Target(id="meta", url="https://example.org/policy", name="Meta Privacy Policy")
LIMITS = Limits(header_timeout=2.0, idle_timeout=4.0, max_connections=64)
SLACK = 2.0  # seconds a loaded machine may add to a time-out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveServer]:
    directory = tmp_path_factory.mktemp("served")
    with open_store(directory / "data", [META]) as store:
        Builder(store, META).version("Our policy explains how we use information.\n")
    config = make_config(directory / "data", [META])
    regenerate(config)
    running = ArchiveServer(
        ("127.0.0.1", 0), Roots(directory / "data" / "site", directory / "data" / "feeds"), LIMITS
    )
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join()


def connect(server: ArchiveServer) -> socket.socket:
    host, port = server.server_address[:2]
    return socket.create_connection((str(host), port), timeout=10)


def exchange(server: ArchiveServer, data: bytes) -> bytes:
    """Send `data`, read until the server closes the connection."""
    with connect(server) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def handler_threads() -> int:
    return sum(
        1 for t in threading.enumerate() if t.name.startswith("Thread-") and "process_request" in t.name
    )


def closed_by_server(sock: socket.socket) -> bool:
    """The server answered (a 503) or closed: there is something to read, or the end of the stream."""
    try:
        return sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT) is not None
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_300_slow_header_connections_are_capped_and_closed_by_the_header_timeout(
    server: ArchiveServer,
) -> None:
    before = handler_threads()
    slow = [connect(server) for _ in range(300)]
    try:
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and the rest never comes
        time.sleep(0.5)
        peak = handler_threads() - before
        assert peak <= LIMITS.max_connections, f"{peak} threads for 300 slow clients"
        started = time.monotonic()
        assert wait_until(lambda: all(closed_by_server(s) for s in slow), LIMITS.header_timeout + SLACK + 1)
        assert time.monotonic() - started <= LIMITS.header_timeout + SLACK
        answers = [s.recv(65536) for s in slow]
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")]
        assert len(refused) >= 300 - LIMITS.max_connections, "past the cap: a 503 at once"
        assert all(b"Content-Security-Policy: default-src 'none'" in a for a in refused)
        assert wait_until(lambda: handler_threads() - before == 0, SLACK), "every thread is given back"
    finally:
        for sock in slow:
            sock.close()
    status = exchange(server, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")[:15]
    assert status == b"HTTP/1.1 200 OK", "served again once they are gone"


def test_headers_trickled_byte_by_byte_end_at_the_header_timeout(server: ArchiveServer) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        try:
            while time.monotonic() - started < LIMITS.header_timeout + SLACK + 2:
                sock.sendall(b"a")  # one byte every 0.25 s: the idle time-out alone would never end it
                time.sleep(0.25)
        except OSError:
            pass  # the server closed the connection: what is wanted
        assert time.monotonic() - started <= LIMITS.header_timeout + SLACK
        sock.settimeout(1)
        with pytest.raises(OSError):  # reset or end of stream: nothing more is read from us
            for _ in range(3):
                if not sock.recv(65536):
                    raise ConnectionResetError("closed")


def test_an_idle_connection_is_closed_after_the_idle_timeout(server: ArchiveServer) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        assert sock.recv(65536) == b""
        assert LIMITS.idle_timeout - 0.5 <= time.monotonic() - started <= LIMITS.idle_timeout + SLACK


@pytest.mark.parametrize("line", [b"GET / HTTP/0.9\r\n\r\n", b"GET /\r\n", b"GET / HTTP/2.0\r\n\r\n"])
def test_only_http_1_0_and_1_1_are_spoken(server: ArchiveServer, line: bytes) -> None:
    answer = exchange(server, line)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:80]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert (
        b"Content-Security-Policy: default-src 'none'" in head and b"X-Content-Type-Options: nosniff" in head
    )
    assert b"only HTTP/1.0 and HTTP/1.1" in body and b"<html" not in body


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        pytest.param(
            f"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n", 400, id="get-length"
        ),
        pytest.param(
            f"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n", 400, id="head-length"
        ),
        pytest.param(
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400, id="get-chunked"
        ),
        pytest.param(
            f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n", 405, id="post"
        ),
    ],
)
def test_a_request_body_is_refused_and_never_read_as_a_second_request(
    server: ArchiveServer, request_head: str, status: int
) -> None:
    answer = exchange(server, request_head.encode() + SMUGGLED)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
    assert answer.count(b"HTTP/1.1 ") == 1, "one answer: the body was not taken for a request"
    assert b"Connection: close" in answer


def test_keep_alive_still_serves_requests_one_after_another(server: ArchiveServer) -> None:
    two = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = exchange(server, two)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
