"""Benchmark: the browser fetcher versus the plain fetcher, per page, on loopback.

    .venv/bin/python bench/bench_browser.py [--rounds 5] [--chromium /usr/bin/chromium]

Serves three pages from the test page server on 127.0.0.1: Meta's EU AI Terms as a raw snapshot (457 KB of
real Meta markup and scripts), a page rendered by JavaScript after 300 ms, and a small server-rendered
page. For each it prints the plain fetch time (HttpFetcher), the browser fetch time (the first, cold
fetch includes starting the Playwright driver and Chromium; then the median of warm fetches), and the
peak memory of the browser's processes, sampled from /proc every 25 ms: the sum of RSS (overcounts the
shared libraries) and the sum of PSS (shares them out: the better estimate of what the browser costs),
plus the peak number of threads (systemd's TasksMax counts threads). The Python process's own RSS is
printed for reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import jspages  # noqa: E402
from support.pageserver import Reply, start_page_server  # noqa: E402
from watchdog.fetchers.browser import BrowserFetcher, find_chromium  # noqa: E402
from watchdog.fetchers.http import HttpFetcher  # noqa: E402
from watchdog.models import FetchSettings, Target  # noqa: E402

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_EVERY = 0.025


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    body: str | bytes
    select: tuple[str, ...]
    ready: str | None


PAGES = (
    Page(
        "Meta AI Terms snapshot (457 KB)",
        "/legal/eu-ai-terms",
        jspages.meta_ai_terms_html(),
        ('[role="main"]',),
        "#ssr-finished-successfully",
    ),
    Page(
        "JS-rendered after 300 ms",
        "/rendered",
        jspages.js_rendered_page(delay_ms=300),
        ("#root",),
        f"#{jspages.READY_ID}",
    ),
    Page(
        "server-rendered, small",
        "/plain",
        jspages.server_rendered_page(),
        ("#root",),
        f"#{jspages.READY_ID}",
    ),
)


@dataclass
class Peak:
    rss: int = 0
    pss: int = 0
    threads: int = 0
    samples: int = 0
    processes: int = 0


def _status_field(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _browser_processes() -> list[int]:
    """Chromium and the Playwright driver (node) below this process."""
    return [p.pid for p in jspages.descendants() if p.state != "Z"]


@dataclass
class Sampler:
    peak: Peak = field(default_factory=Peak)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            pids = _browser_processes()
            rss = sum(_status_field(pid, "VmRSS") for pid in pids) * 1024
            pss = sum(_pss_kb(pid) for pid in pids) * 1024
            threads = sum(_status_field(pid, "Threads") for pid in pids)
            peak = self.peak
            peak.rss, peak.pss = max(peak.rss, rss), max(peak.pss, pss)
            peak.threads, peak.processes = max(peak.threads, threads), max(peak.processes, len(pids))
            peak.samples += 1


@contextmanager
def sampling() -> Iterator[Peak]:
    sampler = Sampler()
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        yield sampler.peak
    finally:
        sampler._stop.set()
        thread.join()


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def mib(value: int) -> str:
    return f"{value / 1048576:.0f} MiB"


def bench_page(page: Page, url: str, rounds: int, chromium: str, settings: FetchSettings) -> None:
    target = Target(id="bench", url=url, name=page.label, select=page.select, ready=page.ready)
    with HttpFetcher(settings=settings) as http:
        plain = [timed(lambda: http.fetch(target)) for _ in range(rounds)]
    browser = BrowserFetcher(settings=settings, executable_path=chromium)
    try:
        with sampling() as peak:
            cold = timed(lambda: browser.fetch(target))
            warm = [timed(lambda: browser.fetch(target)) for _ in range(rounds)]
    finally:
        browser.close()
    print(f"\n{page.label}  ({url})")
    print(f"  plain fetch, median of {rounds}:      {statistics.median(plain) * 1000:8.1f} ms")
    print(f"  browser, first fetch (cold start):  {cold * 1000:8.1f} ms")
    print(f"  browser, median of {rounds} warm fetches: {statistics.median(warm) * 1000:8.1f} ms")
    print(
        f"  browser peak: RSS sum {mib(peak.rss)}, PSS sum {mib(peak.pss)}, "
        f"{peak.threads} threads in {peak.processes} processes ({peak.samples} samples)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chromium", default=find_chromium())
    args = parser.parse_args()
    if not args.chromium:
        sys.exit("no Chromium found: apt-get install chromium, or pass --chromium PATH")
    settings = FetchSettings(user_agent="policy-watchdog-bench/1", timeout=30.0, retries=0)
    with start_page_server() as server:
        for page in PAGES:
            server.set(page.path, Reply(body=page.body))
            bench_page(page, server.url(page.path), args.rounds, args.chromium, settings)
    print(f"\nPython process RSS at the end: {mib(_status_field(os.getpid(), 'VmRSS') * 1024)}")
    print(
        f"Chromium: {args.chromium}; {os.cpu_count()} CPUs; "
        "the settle wait (0.5 s without DOM mutations) adds ~0.5 s per page"
    )


if __name__ == "__main__":
    main()
