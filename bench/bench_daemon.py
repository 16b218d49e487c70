"""Benchmark of the daemon stage: `policy-watchdog run` over thousands of check cycles on loopback.

    .venv/bin/python bench/bench_daemon.py [--targets 60] [--seconds 30] [--page small|policy]
                                           [--validators] [--kills 0] [--kills-only]

A real daemon process watches N targets (interval 1 s, confirm_delay 0 s, one json:// alert channel) on a
local site whose pages are made per request. Phases: warm-up (first versions); unchanged pages, first
byte-identical (the pipeline skips parsing), then "noisy" (same text, a new nonce in every response, as
real pages: fetched, parsed, compared); changed pages (every fetch a new revision, so every check diffs,
classifies, stores, alerts and publishes); idle (a SIGHUP reloads the config with 1 h intervals); SIGTERM.
Then the outbox's duplicate window measured per alert and, with --kills, kill -9 at random moments and a
count of alerts sent twice.

Figures, read from /proc/<pid>: RSS (VmRSS) at start-up, at the end of each phase and its peak (VmHWM),
the RSS trend over the steady phases, CPU seconds (utime + stime) per check, where checks are counted from
the site's hits (one request per check: no retries, no confirm re-fetch). The site and the alert sink
run in this process, so their CPU is not counted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.daemon import (  # noqa: E402
    Daemons,
    NotifySocket,
    TimedWebhookSink,
    Watched,
    policy_markdown,
    split_duplicates,
    wait_until,
    write_daemon_config,
)

TICKS = os.sysconf("SC_CLK_TCK")
DUPLICATE_WINDOW = 0.5  # seconds after the channel accepted an alert in which a kill may repeat it
POLICY = "series/facebook-privacy-policy-en/2025-11-08T00-30-48Z.md"
REVISION = b"@@REVISION@@"
NONCE = b"@@NONCE@@"


# --------------------------------------------------------------------------- the site


def page_template(kind: str) -> bytes:
    """An HTML page with a revision paragraph (its number filled in per request) and a policy body."""
    from markdown_it import MarkdownIt

    if kind == "policy":
        from support.replay import corpus_text

        markdown = corpus_text(POLICY)
    else:
        markdown = policy_markdown(0).split("\n\n", 1)[1]
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    revision = (
        "<p>Revision @@REVISION@@: you can object (opt out) to the use of your posts for AI training.</p>"
    )
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Privacy Policy</title>"
        '<script nonce="@@NONCE@@">window.__token = "@@NONCE@@";</script></head>'
        f"<body><nav>Menu</nav><div id=root><h1>Privacy Policy</h1>{revision}{body}</div>"
        "<footer>Footer</footer></body></html>"
    )
    return html.encode("utf-8")


@dataclass
class Site:
    """Pages made per request. mode "identical": the same bytes for ever; "noisy": the same text, new bytes
    each time (a nonce, as real pages have); "changed": a new revision of the text each time."""

    template: bytes
    validators: bool = False
    mode: str = "identical"
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: dict[str, int] = field(default_factory=dict)

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            return self.hits[path]

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits.get(path, 0)

    def total(self) -> int:
        with self.lock:
            return sum(self.hits.values())

    def body(self, path: str, count: int) -> bytes:
        revision = f"{path.strip('/')}.{count if self.mode == 'changed' else 0}".encode()
        nonce = f"{count:08x}" if self.mode != "identical" else "0"
        return self.template.replace(REVISION, revision).replace(NONCE, nonce.encode())


def serve(site: Site) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            body = site.body(self.path, site.hit(self.path))
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            if site.validators and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if site.validators:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a daemon killed mid-request resets its connection: expected here

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --------------------------------------------------------------------------- /proc


@dataclass(frozen=True)
class Sample:
    at: float
    rss_kb: int
    hwm_kb: int
    cpu_s: float


def sample(pid: int) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {
        line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")
    }
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)
    return Sample(time.monotonic(), values["VmRSS"], values["VmHWM"], cpu)


class Sampler:
    """Samples a process every `every` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid = pid
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.samples.append(sample(self.pid))
            except (FileNotFoundError, ProcessLookupError, KeyError):
                return  # gone (a zombie's status has no Vm* lines)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


def slope_mb_per_min(samples: list[Sample]) -> float:
    if len(samples) < 3:
        return 0.0
    xs = [s.at for s in samples]
    ys = [s.rss_kb / 1024 for s in samples]
    return statistics.linear_regression(xs, ys).slope * 60


# --------------------------------------------------------------------------- phases


@dataclass
class Phase:
    name: str
    seconds: float
    checks: int
    cpu_s: float
    rss_start_kb: int
    rss_end_kb: int
    trend: float

    def line(self) -> str:
        per_check = f"{self.cpu_s / self.checks * 1000:.2f} ms CPU/check" if self.checks else "no checks"
        rate = self.checks / self.seconds
        return (
            f"{self.name:<10} {self.seconds:5.1f} s  {self.checks:6d} checks ({rate:6.1f}/s)  {per_check:<22}"
            f"  RSS {mb(self.rss_start_kb)} -> {mb(self.rss_end_kb)} (trend {self.trend:+.2f} MB/min)"
        )


def measure(name: str, seconds: float, pid: int, site: Site, sampler: Sampler) -> Phase:
    start, hits0, t0 = sample(pid), site.total(), time.monotonic()
    time.sleep(seconds)
    end, hits1 = sample(pid), site.total()
    trend = slope_mb_per_min(sampler.between(t0, time.monotonic()))
    return Phase(
        name, end.at - start.at, hits1 - hits0, end.cpu_s - start.cpu_s, start.rss_kb, end.rss_kb, trend
    )


def run_daemon_phases(args: argparse.Namespace, site: Site, base: str, work: Path) -> None:
    work.mkdir(parents=True)
    sink = TimedWebhookSink()
    sink.start()
    ids = [f"t{i:03d}" for i in range(args.targets)]
    watched = [Watched(t, f"/{t}") for t in ids]
    head = f"[daemon]\nmax_workers = {args.workers}\n"
    config = write_daemon_config(work, base, watched, channels=[sink.url], head=head)
    group = Daemons(config, work)
    with NotifySocket() as notify:
        launched = time.monotonic()
        daemon = group.start(notify=notify, watchdog_usec=10_000_000)
        sampler = Sampler(daemon.pid)
        assert wait_until(lambda: notify.count("READY=1") == 1, 60), group.logs()
        at_ready = sample(daemon.pid)
        print(f"start-up: READY=1 after {at_ready.at - launched:.2f} s, RSS {mb(at_ready.rss_kb)}")
        warm = wait_until(lambda: all(site.count(f"/{t}") >= 2 for t in ids), 120)
        print(
            f"warm-up: every target checked twice ({'ok' if warm else 'TIMED OUT'}), "
            f"RSS {mb(sample(daemon.pid).rss_kb)}"
        )
        phases = []
        for mode in ("identical", "noisy", "changed"):
            site.mode = mode
            phases.append(measure(mode, args.seconds, daemon.pid, site, sampler))
        site.mode = "identical"
        alerts = len(sink.received)
        write_daemon_config(
            work, base, [Watched(t, f"/{t}", interval="1h") for t in ids], channels=[sink.url], head=head
        )
        daemon.send(signal.SIGHUP)
        assert wait_until(lambda: notify.count("READY=1") == 2, 30)
        time.sleep(min(10.0, args.seconds))  # in-flight checks and the last deliveries settle
        phases.append(measure("idle", min(10.0, args.seconds), daemon.pid, site, sampler))
        end = sample(daemon.pid)
        stop_at = time.monotonic()
        code = daemon.stop(timeout=30)
        stopped = time.monotonic() - stop_at
        sampler.stop()
    print()
    for phase in phases:
        print(phase.line())
    print()
    print(f"RSS: start {mb(at_ready.rss_kb)}, end {mb(end.rss_kb)}, peak (VmHWM) {mb(end.hwm_kb)}")
    print(f"alerts received by the sink during the changed phase and after: {alerts}")
    print(f"idle CPU: {phases[-1].cpu_s:.3f} s over {phases[-1].seconds:.1f} s")
    print(f"SIGTERM: exit {code} after {stopped:.2f} s; WATCHDOG=1 pings sent: {notify.count('WATCHDOG=1')}")
    print_duplicate_window(sink, group.logs(), phases[2].seconds)
    sink.stop()


DELIVERED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO watchdog\.notify: alert (\S+) delivered"
)


def print_duplicate_window(sink: TimedWebhookSink, log: str, seconds: float) -> None:
    """The outbox's duplicate window, measured: from the sink accepting an alert (its clock) to the
    daemon logging "delivered" right after the commit of delivered_at (the log's clock, ms)."""
    arrived = sink.first_arrivals()
    windows = []
    for line in log.splitlines():
        if (m := DELIVERED.match(line)) and m.group(3) in arrived:
            logged = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
            windows.append(max(logged - arrived[m.group(3)], 0.0))
    if not windows:
        return
    windows.sort()
    p99 = windows[min(len(windows) - 1, int(len(windows) * 0.99))]
    print(
        f"duplicate window per alert (channel accepted -> delivered_at committed, +<=1 ms of logging): "
        f"median {statistics.median(windows) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {windows[-1] * 1000:.1f} ms over {len(windows)} alerts; a kill at a random moment of the "
        f"changed phase lands in one with probability ~{min(sum(windows) / seconds, 1.0):.1%}"
    )


def run_kills(args: argparse.Namespace, site: Site, base: str, work: Path) -> None:
    """kill -9 at random moments while every check makes a change and an alert; then count repeats."""
    work.mkdir(parents=True)
    sink = TimedWebhookSink()
    sink.start()
    ids = [f"k{i:03d}" for i in range(args.targets)]
    config = write_daemon_config(work, base, [Watched(t, f"/{t}") for t in ids], channels=[sink.url])
    group = Daemons(config, work)
    site.mode = "changed"
    rng = random.Random(args.seed)
    kills: list[float] = []
    for _ in range(args.kills):
        victim = group.start()
        time.sleep(rng.uniform(0.3, 2.0))
        kills.append(time.monotonic())
        victim.kill()
    site.mode = "identical"
    final = group.start()
    time.sleep(5)
    final.stop(timeout=30)
    delivered = sink.deliveries()
    explained, unexplained = split_duplicates(delivered, kills, window=DUPLICATE_WINDOW)
    print(
        f"\nkill -9: {args.kills} kills, {len(delivered)} alerts received, {len({c for _a, c in delivered})} "
        f"distinct; sent twice: {len(explained)} explained by a kill within {DUPLICATE_WINDOW} s after the "
        f"channel accepted (the outbox's window), {len(unexplained)} unexplained"
    )
    for change in unexplained:
        copies = [at for at, c in delivered if c == change]
        around = [round(k - copies[0], 3) for k in kills if copies[0] - 5 <= k <= copies[-1] + 5]
        print(f"  {change}: copies at +{[round(at - copies[0], 3) for at in copies]} s, kills at {around} s")
    print(group.grep("alert " + unexplained[0]) if unexplained else "", end="")
    sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each measured phase")
    parser.add_argument(
        "--page",
        choices=("small", "policy"),
        default="small",
        help="small: ~1.5 KB of text; policy: the real Facebook privacy policy (~150 KB)",
    )
    parser.add_argument("--validators", action="store_true", help="send ETags: unchanged pages get a 304")
    parser.add_argument("--kills", type=int, default=0, help="then kill -9 this many times (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills-only", action="store_true", help="skip the measured phases")
    args = parser.parse_args()
    site = Site(page_template(args.page), validators=args.validators)
    server, base = serve(site)
    print(
        f"policy-watchdog daemon benchmark: {args.targets} targets, interval 1 s, {args.workers} workers, "
        f"{args.page} page ({len(site.template) // 1024} KB HTML), "
        f"validators {'on' if args.validators else 'off'}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        if not args.kills_only:
            run_daemon_phases(args, site, base, Path(tmp) / "phases")
        if args.kills:
            run_kills(args, site, base, Path(tmp) / "kills")
    server.shutdown()


if __name__ == "__main__":
    main()
