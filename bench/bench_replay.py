"""Benchmark: a whole replay of real corpus series through the real pipeline, on loopback.

    python bench/bench_replay.py [--series NAME ...]

Each consecutive recorded version of a series (tests/fixtures/replay, Open Terms Archive recordings,
attribution in SOURCES.md there) is rendered into a noisy HTML page, served by the local page server, and
checked with one real cycle (fetch, extract, validate, store, diff, classify, render, outbox) into a fresh
SQLite archive, with a json:// channel to a local webhook. Prints per series: steps, outcomes, total and
per-step wall and CPU time, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.corpus import render_page  # noqa: E402
from support.harness import Site, cycle, write_config  # noqa: E402
from support.pageserver import start_page_server  # noqa: E402
from support.replay import corpus_text, series  # noqa: E402
from support.sinks import WebhookSink  # noqa: E402

DEFAULT = ("facebook-privacy-policy-en", "instagram-privacy-policy-en", "facebook-privacy-policy-fr")


def replay(name: str) -> None:
    files = series(name)
    pages = [render_page(corpus_text(relative), seed=i) for i, relative in enumerate(files)]  # not timed
    server, sink = start_page_server(), WebhookSink()
    sink.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = write_config(Path(folder), server.base_url, [Site("doc", "/doc")], channels=[sink.url])
            statuses: collections.Counter[str] = collections.Counter()
            wall, cpu = time.perf_counter(), time.process_time()
            for page in pages:
                server.set("/doc", page, etag=False)
                statuses.update(o.status for o in cycle(config))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        server.stop()
        sink.stop()
    steps = len(files)
    print(
        f"{name:<32} {steps:>3} steps  wall {wall:6.2f} s ({wall / steps * 1000:6.0f} ms/step)  "
        f"cpu {cpu:6.2f} s  alerts {len(sink.received):>2}  {dict(statuses)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="*", default=list(DEFAULT))
    parser.add_argument("--quick", action="store_true", help="only the first series")
    args = parser.parse_args()
    chosen = args.series[:1] if args.quick else args.series
    print(f"python {sys.version.split()[0]}; replay of {len(chosen)} corpus series through the real pipeline")
    for name in chosen:
        replay(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {peak:.1f} MB")


if __name__ == "__main__":
    main()
