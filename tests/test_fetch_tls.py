"""The plain fetcher over real TLS on 127.0.0.1: certificates are verified (the store is loaded with the first
https request, not at start-up, but it is the same store httpx uses by default).

The server's certificate is made for the test by the openssl command line (a self-signed one for
127.0.0.1, valid for a day).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from watchdog.errors import FetchError
from watchdog.fetchers.http import HttpFetcher
from watchdog.models import Capture, FetchSettings, Target

SETTINGS = FetchSettings(user_agent="policy-watchdog-tests/1", timeout=5.0, retries=0, backoff=0.01)
PAGE = b"<html><body><p>We may use public posts to train AI.</p></body></html>"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        del args


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and its key, in the same file) for 127.0.0.1."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command (Debian's openssl package) makes the test certificate"
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
         "-out", str(folder / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder


@pytest.fixture
def https_url(certificate: Path) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/policy"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fetch(url: str) -> bytes:
    with HttpFetcher(settings=SETTINGS) as fetcher:
        capture = fetcher.fetch(Target(id="t", url=url, name="t"))
    assert isinstance(capture, Capture)
    return capture.body


def test_an_untrusted_certificate_is_refused(https_url: str) -> None:
    with pytest.raises(FetchError, match=r"(?i)certificate"):
        fetch(https_url)


def test_the_store_httpx_trusts_by_default_is_the_one_used(
    https_url: str, certificate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate / "cert.pem"))  # httpx's own setting (trust_env)
    assert fetch(https_url) == PAGE


def test_plain_http_needs_no_certificate_store(page_server_url: str) -> None:
    assert fetch(page_server_url) == PAGE


@pytest.fixture
def page_server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/policy"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_certificates_are_loaded_by_the_first_https_request_only(
    https_url: str, page_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[datetime] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loaded.append(datetime.now(UTC))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    target = Target(id="t", url=page_server_url, name="t")
    with HttpFetcher(settings=SETTINGS) as fetcher:
        fetcher.fetch(target)
        assert loaded == [], "a plain http fetch loaded the certificate store"
        with pytest.raises(FetchError):
            fetcher.fetch(Target(id="s", url=https_url, name="s"))
        assert len(loaded) == 1
