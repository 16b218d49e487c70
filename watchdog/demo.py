"""`policy-watchdog demo`: the whole pipeline, offline, on real recorded versions of Meta's privacy policy.

A local HTTP server on 127.0.0.1 plays the part of mbasic.facebook.com: it serves, one step at a time, real
versions of the Meta Privacy Policy recorded by Open Terms Archive (shipped in watchdog/demo_data/, with their
attribution), wrapped in page noise. The same server is the alert channel (an apprise `json://` webhook), so
what the demo prints is what a channel really received. The archive goes to a temporary folder.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TextIO

from watchdog.config import AlertSettings, Config, default_user_agent
from watchdog.models import Channel, FetchSettings, Target
from watchdog.pipeline import Context, Fetchers, run_cycle
from watchdog.results import Outcome
from watchdog.storage import open_store
from watchdog.storage.interfaces import Storage

ATTRIBUTION = (
    "Policy texts: Meta Platforms. Recorded by Open Terms Archive / Platform Governance Archive "
    "(ODC-By 1.0, https://opentermsarchive.org); see watchdog/demo_data/SOURCES.md."
)


@dataclass(frozen=True)
class Step:
    page: str
    says: str


STEPS = (
    Step("1-baseline", "first capture of the policy (effective April 7, 2025): the baseline, no alert"),
    Step("2-noise", "the same policy with fresh page noise (tracking parameters, nonces, whitespace)"),
    Step("3-failed-capture", "a capture that did not finish rendering (only the heading)"),
    Step("4-ai-at-meta", "May 27, 2025: AI training on 'legitimate interests' ('AI at Meta')"),
    Step("5-signed-url-noise", "the same new policy, with rotating signed media URLs"),
    Step("1-baseline", "the page flips back to the April text for a few hours (A -> B -> A)"),
)


@dataclass
class _Shared:
    """What the demo server serves and what it has received, guarded by one lock."""

    page: bytes = b""
    received: list[dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _DemoServer

    def do_GET(self) -> None:  # the "website"
        with self.server.shared.lock:
            body = self.server.shared.page
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # the alert channel
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        with self.server.shared.lock:
            self.server.shared.received.append(payload)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # quiet: the demo prints its own story


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.shared = _Shared()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def demo_page(name: str) -> bytes:
    data = resources.files("watchdog").joinpath("demo_data", f"{name}.html.gz").read_bytes()
    return gzip.decompress(data)


def demo_config(base_url: str, storage_dir: Path) -> Config:
    from watchdog.config import bundled_config_dir, load_config

    # the bundled config brings the bundled topics; the targets and channel are the demo's own
    bundled = load_config(bundled_config_dir() / "watchdog.toml", environ={"HOME": str(storage_dir)})
    target = Target(
        id="meta-privacy-policy",
        url=f"{base_url}/privacy/policy/printable/",
        name="Meta Privacy Policy",
        select=("#root",),
        confirm_delay=timedelta(0),
    )
    from watchdog.notify import channel_key

    sink = f"json://127.0.0.1:{base_url.rsplit(':', 1)[1]}/alerts"
    channel = Channel(key=channel_key(sink), url=sink, label="demo webhook")
    fetch = FetchSettings(user_agent=default_user_agent(), timeout=10, retries=0)
    return replace(
        bundled,
        path=None,
        storage_dir=storage_dir,
        targets=(target,),
        channels=(channel,),
        fetch=fetch,
        alerts=AlertSettings(),
    )


def run_demo(*, out: TextIO, pause: Callable[[], None] = lambda: None) -> int:
    """Replay the steps; print each outcome and every alert the channel received. Returns an exit code."""
    server = _DemoServer()
    thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="policy-watchdog-demo-") as folder:
            config = demo_config(server.base_url, Path(folder))
            print(
                f"policy-watchdog demo: a local copy of the Meta Privacy Policy at {server.base_url}\n"
                f"{ATTRIBUTION}\n",
                file=out,
            )
            with open_store(config) as store:
                for number, step in enumerate(STEPS, start=1):
                    _play(number, step, server, config, store, out)
                    pause()
                archive = store.archive
                print(
                    f"\n{len(archive.versions('meta-privacy-policy'))} versions and "
                    f"{len(archive.changes())} change records archived; alerts received by the channel: "
                    f"{len(server.shared.received)}.",
                    file=out,
                )
    finally:
        server.shutdown()
        server.server_close()
    return 0


def _play(number: int, step: Step, server: _DemoServer, config: Config, store: Storage, out: TextIO) -> None:
    with server.shared.lock:
        server.shared.page = demo_page(step.page)
        already = len(server.shared.received)
    fetchers = Fetchers(config)
    try:
        (outcome,) = run_cycle(config.targets, Context(config=config, store=store, fetchers=fetchers))
    finally:
        fetchers.close()
    print(f"step {number}: {step.says}\n  -> {_describe(outcome)}", file=out)
    with server.shared.lock:
        new_alerts = server.shared.received[already:]
    for alert in new_alerts:
        _print_alert(alert, out)


def _describe(outcome: Outcome) -> str:
    if outcome.status == "changed" and outcome.extra.get("kind") == "revert":
        said = (
            "no second alert; the channel that got the alert gets one correction"
            if outcome.extra.get("correction")
            else "no alert"
        )
        return f"changed back: recorded as a revert to {outcome.version} ({outcome.change}), {said}"
    if outcome.status == "changed":
        topics = ", ".join(outcome.topics) or "none"
        return f"changed: new version {outcome.version}, change {outcome.change}, topics {topics}"
    if outcome.status in ("rejected", "error"):
        return f"{outcome.status}: {outcome.reason} (kept as evidence, not a version)"
    return f"{outcome.status}: version {outcome.version}"


def _print_alert(payload: dict[str, object], out: TextIO) -> None:
    print("\n  ---- alert received by the channel ----", file=out)
    print(f"  {payload.get('title', '')}", file=out)
    for line in str(payload.get("message", "")).splitlines()[:40]:
        print(f"  | {line}", file=out)
    print("  --------------------------------------\n", file=out)
