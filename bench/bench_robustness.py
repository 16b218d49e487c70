"""Robustness figures (issue 11): what a hostile server, a slow channel and slow clients cost.

    .venv/bin/python bench/bench_robustness.py [--quick]

1. `check` over three targets on one host, one of them a server that trickles its body one byte a second
   ([fetch] attempt_deadline and deadline): how long the check takes, and whether the other two are read.
2. One alert to a webhook slower than apprise's read time-out and to an SMTP server that drops the
   connection after DATA, over `check` + `deliver` + `deliver` and then passes after the backoff: how many
   copies each receives.
3. `serve` under 300 connections that send half their headers: handler threads, and how long until
   every one is closed or refused; what HTTP/0.9 and a GET with a body get.

Everything runs on 127.0.0.1 (tests/support's real servers); `check` and `deliver` are real processes.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.archives import Builder, make_config, open_store  # noqa: E402
from support.corpus import render_page  # noqa: E402
from support.harness import deliver_at  # noqa: E402
from support.pageserver import PageServer, Reply, start_page_server  # noqa: E402
from support.replay import corpus_text  # noqa: E402
from support.sinks import SmtpSink, WebhookSink, _EphemeralController  # noqa: E402
from watchdog.models import Target  # noqa: E402
from watchdog.notify import default_backoff  # noqa: E402
from watchdog.publish.serve import make_server  # noqa: E402

PAGE = (
    "<html><body><div id='root'><h1>Privacy Policy</h1><p>We may use public posts {}.</p></div></body></html>"
)
CRLF = b"\r\n"
BEFORE = "milestones/meta-privacy-policy-fr-fr/2024-05-21.md"
AFTER = "milestones/meta-privacy-policy-fr-fr/2024-06-26.md"


def watchdog(config: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=config.parent,
    )
    return time.monotonic() - started, result


def target_lines(target_id: str, url: str) -> str:
    return (
        f'[[targets]]\nid = "{target_id}"\nurl = "{url}"\nselect = ["#root"]\nmin_length = 10\n'
        'confirm_delay = "0s"\nnotify = "all"\n'
    )


def trickle(directory: Path, *, attempt: int, deadline: int) -> None:
    with start_page_server() as server:
        server.set("/trickle", Reply(body=PAGE.format(""), fault="trickle"))
        server.set("/b", PAGE.format("and photos"))
        server.set("/c", PAGE.format("and captions"))
        config = directory / "trickle.toml"
        head = '[storage]\ndir = "trickle"\n[fetch]\ntimeout = 5\n'
        head += f"attempt_deadline = {attempt}\ndeadline = {deadline}\n"
        body = "".join(
            target_lines(t, server.url(p)) for t, p in (("slow", "/trickle"), ("b", "/b"), ("c", "/c"))
        )
        config.write_text(head + body, encoding="utf-8")
        took, result = watchdog(config, "check")
        print(
            f"trickling server, attempt_deadline = {attempt}, deadline = {deadline}, timeout = 5: "
            f"`check` of 3 targets took {took:.1f} s"
        )
        for line in result.stdout.splitlines():
            print("   ", line[:150])


def deliveries(directory: Path) -> None:
    with start_page_server() as server:
        hook = WebhookSink(delay=6.0)  # apprise waits 4 s
        hook.start()
        smtp = SmtpSink(drop_after_data=True)
        controller = _EphemeralController(
            smtp, hostname="127.0.0.1", port=0, authenticator=smtp.authenticate, auth_require_tls=False
        )
        controller.start()
        smtp.port = controller.port
        try:
            _deliveries(directory, server, hook, smtp)
        finally:
            hook.stop()
            controller.stop()


def _deliveries(directory: Path, server: PageServer, hook: WebhookSink, smtp: SmtpSink) -> None:
    config = directory / "deliveries.toml"
    channels = f'[[channels]]\nurl = "{hook.url}"\n[[channels]]\nurl = "{smtp.url()}"\n'
    config.write_text('[storage]\ndir = "deliveries"\n' + target_lines("ig", server.url("/ig")) + channels)
    server.set("/ig", render_page(corpus_text(BEFORE)), etag=False)
    watchdog(config, "check")
    server.set("/ig", render_page(corpus_text(AFTER), seed=1), etag=False)
    print(
        "one alert, to a webhook slower than apprise's 4 s read time-out and to an SMTP server that drops "
        "the connection after DATA:"
    )
    for step in ("check", "deliver", "deliver"):
        took, _result = watchdog(config, step)
        print(
            f"    after `{step}` ({took:4.1f} s): webhook {hook.arrivals} copy(ies), "
            f"SMTP {len(smtp.messages)}"
        )
    now = datetime.now(UTC)
    for n in (1, 2, 3):
        deliver_at(config, now + n * default_backoff(1000))
        print(f"    after a pass {n} backoff(s) later: webhook {hook.arrivals}, SMTP {len(smtp.messages)}")


def serve(directory: Path, *, connections: int) -> None:
    meta = Target(id="meta", url="https://example.org/policy", name="Meta Privacy Policy")
    with open_store(directory / "served", [meta]) as store:
        Builder(store, meta).version("Our policy explains how we use information.\n")
    server = make_server(make_config(directory / "served", [meta]), host="127.0.0.1", port=0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        _serve(port, connections)
    finally:
        server.shutdown()
        server.server_close()


def _serve(port: int, connections: int) -> None:
    base = threading.active_count()
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    for sock in slow:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    time.sleep(1.0)
    print(
        f"serve, {connections} connections sending half their headers: {threading.active_count() - base} "
        "handler threads"
    )
    started, left = time.monotonic(), set(range(connections))
    while left and time.monotonic() - started < 60:
        left = {i for i in left if not _answered(slow[i])}
        time.sleep(0.1)
    print(
        f"    all closed or refused {time.monotonic() - started + 1.0:.1f} s after they connected "
        f"({connections - len(left)}/{connections})"
    )
    for sock in slow:
        sock.close()
    print(f"    `GET / HTTP/0.9` gets: {_ask(port, b'GET / HTTP/0.9' + CRLF * 2)[:28]!r}")
    smuggle = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _ask(
        port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggle), smuggle)
    )
    print(
        f"    a GET whose body is a second request gets {answer.count(b'HTTP/1.1 ')} answer(s): "
        f"{answer[:24]!r}"
    )


def _answered(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _ask(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter deadlines, fewer connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-robustness-") as folder:
        directory = Path(folder)
        trickle(directory, attempt=2 if args.quick else 10, deadline=4 if args.quick else 30)
        deliveries(directory)
        serve(directory, connections=60 if args.quick else 300)


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # aiosmtpd's, in the test SMTP server
    main()
