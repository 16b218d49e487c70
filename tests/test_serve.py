"""`serve`: a real HTTP server on 127.0.0.1; validators and 304s, HEAD, 405, traversal attempts, bad input."""

from __future__ import annotations

import email.utils
import gzip
import http.client
import logging
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.archives import Builder, make_config, open_store
from watchdog.config import Config
from watchdog.models import Target
from watchdog.publish.serve import ArchiveServer, make_server, serve

META = Target(id="meta", url="https://example.org/policy", name="Meta Privacy Policy")
BASE = "Our policy explains how we use information.\nYou can contact us at any time.\n"


def build_archive(directory: Path) -> Config:
    with open_store(directory / "data", [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        meta.change(BASE + "We use public posts to train AI.\n", topics=["ai-training"])
    (directory / "secret.txt").write_text("outside the archive")
    return make_config(directory / "data", [META])


@contextmanager
def running(config: Config) -> Iterator[ArchiveServer]:
    server = make_server(config, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def archive(tmp_path: Path) -> Config:
    """An archive of the test's own (for tests that change files)."""
    return build_archive(tmp_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveServer]:
    """One server for the read-only tests of this module."""
    with running(build_archive(tmp_path_factory.mktemp("served"))) as shared:
        yield shared


def request(
    server: ArchiveServer, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def raw(server: ArchiveServer, data: bytes) -> bytes:
    """Bytes on a socket, for requests http.client refuses to send (NUL, backslashes, junk)."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- serving


def test_it_serves_pages_and_feeds_with_types_validators_and_security_headers(server: ArchiveServer) -> None:
    for path, kind in [
        ("/", "text/html; charset=utf-8"),
        ("/changes/meta@c1.html", "text/html; charset=utf-8"),
        ("/changes/meta%40c1.html", "text/html; charset=utf-8"),
        ("/feeds/all.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/target/meta.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/all.atom?utm_source=reader", "application/atom+xml; charset=utf-8"),
    ]:
        status, headers, body = request(server, "GET", path)
        assert (status, headers["content-type"]) == (200, kind), path
        assert headers["etag"].startswith('"') and email.utils.parsedate_to_datetime(headers["last-modified"])
        assert int(headers["content-length"]) == len(body) > 0
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"


def test_head_is_get_without_a_body(server: ArchiveServer) -> None:
    _status, got, body = request(server, "GET", "/feeds/all.atom")
    status, headed, nothing = request(server, "HEAD", "/feeds/all.atom")
    assert (status, nothing) == (200, b"")
    assert {k: headed[k] for k in ("etag", "last-modified", "content-length", "content-type")} == {
        k: got[k] for k in ("etag", "last-modified", "content-length", "content-type")
    }
    assert int(headed["content-length"]) == len(body)


CONDITIONS = [
    pytest.param(lambda h: {"If-None-Match": h["etag"]}, 304, id="same-etag"),
    pytest.param(lambda h: {"If-None-Match": f'"other", W/{h["etag"]}'}, 304, id="weak-etag-in-a-list"),
    pytest.param(lambda h: {"If-None-Match": "*"}, 304, id="any-etag"),
    pytest.param(lambda h: {"If-None-Match": '"stale"'}, 200, id="stale-etag"),
    pytest.param(lambda h: {"If-Modified-Since": h["last-modified"]}, 304, id="not-modified-since"),
    pytest.param(lambda h: {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 200, id="modified-since"),
    pytest.param(lambda h: {"If-Modified-Since": "yesterday-ish"}, 200, id="unparseable-date-ignored"),
    pytest.param(
        lambda h: {"If-None-Match": '"stale"', "If-Modified-Since": h["last-modified"]}, 200, id="etag-wins"
    ),
]


@pytest.mark.parametrize(("conditions", "expected"), CONDITIONS)
def test_conditional_requests(server: ArchiveServer, conditions, expected: int) -> None:  # type: ignore[no-untyped-def]
    _status, headers, _body = request(server, "GET", "/feeds/all.atom")
    status, answer, body = request(server, "GET", "/feeds/all.atom", conditions(headers))
    assert status == expected
    if status == 304:
        assert body == b"" and answer["etag"] == headers["etag"]


def test_an_unchanged_archive_keeps_its_validators_across_restarts(archive: Config) -> None:
    first = make_server(archive, port=0)
    first.server_close()
    stamp = (archive.storage_dir / "feeds" / "all.atom").stat().st_mtime_ns
    again = make_server(archive, port=0)  # regenerates: nothing changed, nothing rewritten
    again.server_close()
    assert (archive.storage_dir / "feeds" / "all.atom").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "BREW"])
def test_only_get_and_head(server: ArchiveServer, method: str) -> None:
    status, headers, _body = request(server, method, "/index.html")
    assert status == 405 and headers["allow"] == "GET, HEAD"


# --------------------------------------------------------------------------- hostile requests


TRAVERSALS = [
    pytest.param("/../secret.txt", id="dot-dot"),
    pytest.param("/%2e%2e/secret.txt", id="encoded-dot-dot"),
    pytest.param("/%2E%2E%2Fsecret.txt", id="encoded-dot-dot-slash-upper"),
    pytest.param("/feeds/..%2f..%2fsecret.txt", id="encoded-slash-in-feeds"),
    pytest.param("/feeds/..%2f..%2f..%2f..%2fetc/passwd", id="etc-passwd"),
    pytest.param("/changes/../../archive.sqlite3", id="the-database"),
    pytest.param("/..%5c..%5csecret.txt", id="encoded-backslash"),
    pytest.param("/%00", id="encoded-nul"),
    pytest.param("/index.html%00.txt", id="nul-truncation"),
    pytest.param("/%c0%ae%c0%ae/secret.txt", id="overlong-utf8-dot"),
    pytest.param("/.manifest.json", id="hidden-manifest"),
    pytest.param("/feeds/.manifest.json", id="hidden-feeds-manifest"),
    pytest.param("/.publish.lock", id="hidden-lock"),
    pytest.param("/changes//meta@c1.html", id="empty-segment"),
    pytest.param("//etc/passwd", id="scheme-relative"),
    pytest.param("/" + "a" * 5000, id="very-long"),
    pytest.param("/%ff%fe", id="not-utf8"),
    pytest.param("/site/index.html", id="no-such-prefix"),
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_and_junk_paths_get_a_4xx(server: ArchiveServer, path: str) -> None:
    status, _headers, body = request(server, "GET", path)
    assert 400 <= status < 500, path
    assert b"outside the archive" not in body and b"SQLite" not in body


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"GET /\x00/../secret.txt HTTP/1.1", id="raw-nul"),
        pytest.param(b"GET /..\\..\\secret.txt HTTP/1.1", id="raw-backslash"),
        pytest.param(b"GET ../secret.txt HTTP/1.1", id="relative-target"),
        pytest.param(b"GARBAGE", id="no-request-line"),
        pytest.param(b"GET / HTTP/9.9", id="bad-version"),
        pytest.param(b"GET /\x1b[31m HTTP/1.1", id="terminal-escape"),
    ],
)
def test_malformed_requests_get_a_4xx_and_no_traceback(
    server: ArchiveServer, line: bytes, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = raw(server, line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500 or status == 505, answer[:80]
    assert b"outside the archive" not in answer and b"Traceback" not in answer
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_symlink_out_of_the_site_is_not_followed(archive: Config) -> None:
    with running(archive) as server:
        os.symlink(archive.storage_dir.parent / "secret.txt", archive.storage_dir / "site" / "leak.html")
        os.symlink(archive.storage_dir / "site" / "index.html", archive.storage_dir / "site" / "home.html")
        assert request(server, "GET", "/leak.html")[0] == 404
        assert request(server, "GET", "/home.html")[0] == 200, "a link that stays inside is fine"


def test_unknown_paths_are_404(server: ArchiveServer) -> None:
    for path in ("/nope.html", "/changes/meta@c9.html", "/feeds/topic/nope.atom", "/feeds/", "/targets/"):
        assert request(server, "GET", path)[0] == 404, path


# --------------------------------------------------------------------------- starting up


def test_serve_regenerates_binds_loopback_and_stops(archive: Config) -> None:
    shutil.rmtree(archive.storage_dir / "site", ignore_errors=True)
    urls: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, args=(archive,), kwargs={"port": 0, "ready": urls.append, "stop": stop}
    )
    thread.start()
    try:
        for _ in range(200):
            if urls:
                break
            stop.wait(0.05)
        assert urls and urls[0].startswith("http://127.0.0.1:")
        connection = http.client.HTTPConnection(urls[0].removeprefix("http://").rstrip("/"), timeout=5)
        connection.request("GET", "/changes/meta@c1.html")
        assert connection.getresponse().status == 200, "the site was regenerated at start"
        connection.close()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


# --------------------------------------------------------------------------- compare, downloads


def test_compare_any_two_versions_on_demand(server: ArchiveServer) -> None:
    status, headers, body = request(server, "GET", "/compare?from=meta%40v1&to=meta@v2")
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    page = body.decode()
    assert "<h1>Meta Privacy Policy: meta@v1 → meta@v2</h1>" in page
    assert "<ins>We use public posts to train AI.</ins>" in page
    assert "form-action 'self'" in headers["content-security-policy"], "the compare form may submit here"
    for path, expected in [
        ("/compare", 400),
        ("/compare?from=meta@v1", 400),
        ("/compare?from=meta@v1&to=../../etc/passwd", 400),
        ("/compare?from=meta@v1&to=meta@v9", 404),
        ("/compare?from=other@v1&to=meta@v1", 404),
    ]:
        status, headers, body = request(server, "GET", path)
        assert (status, headers["content-type"]) == (expected, "text/plain; charset=utf-8"), path


def test_the_raw_capture_and_the_text_download(server: ArchiveServer) -> None:
    _status, _headers, page = request(server, "GET", "/versions/meta@v2.html")
    raw_href = re.search(r'href="\.\./(raw/[0-9a-f]{64}\.gz)" download', page.decode())
    assert raw_href is not None
    status, headers, body = request(server, "GET", "/" + raw_href.group(1))
    assert (status, headers["content-type"]) == (200, "application/gzip"), "downloaded, never rendered"
    assert gzip.decompress(body).startswith(b"<html>")
    status, headers, body = request(server, "GET", "/texts/meta@v2.txt")
    assert (status, headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert body.decode() == BASE + "We use public posts to train AI.\n"
