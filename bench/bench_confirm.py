"""Benchmark: what confirming a new text before announcing it costs, and what it would catch, on the replay.

    python bench/bench_confirm.py [--folder NAME ...] [--quick]

Two general ways to keep a variant's first appearance (a page flipping between texts) from being announced:

1. **Re-fetch after `confirm_delay`** (the pipeline's own rule: the new text must come back identical). Every
   folder of the replay (tests/fixtures/replay/expectations.toml, the real corpus) is played through the real
   pipeline twice, on loopback, with page noise on every request: with `confirm_delay = "0s"` and with
   `"60s"` (the default; the sleep itself is skipped and counted, not waited). Printed per run: requests to
   the page server, CPU seconds, wording alerts sent, false alerts against the expectations, and the waiting
   the delay adds (60 s per new text).
2. **Hold a new text until a later check sees it again** (seen at two consecutive checks): counted on the
   expectations, not run: how many due alerts the corpus could confirm at all, i.e. whose next capture is
   the same text. The corpus holds one capture per version, months apart, so the replay cannot tell such a
   rule's cost (one check interval of delay for every change) from a miss.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from test_replay import classify_messages, write_config  # noqa: E402

from support.pageserver import start_page_server  # noqa: E402
from support.replay import Folder, load_expectations  # noqa: E402
from support.sinks import WebhookSink  # noqa: E402
from watchdog.config import load_config  # noqa: E402
from watchdog.pipeline import Context, Fetchers, run_cycle  # noqa: E402
from watchdog.storage import open_store  # noqa: E402


@dataclass
class Run:
    requests: int = 0
    cpu: float = 0.0
    alerts: int = 0
    false_alerts: int = 0
    waited: float = 0.0  # seconds of confirm_delay the pipeline asked to sleep


def play(folder: Folder, delay: str, run: Run) -> None:
    server, sink = start_page_server(), WebhookSink()
    sink.start()
    path = "/" + re.sub(r"\W+", "-", folder.label)
    try:
        with tempfile.TemporaryDirectory() as directory:
            config_path = write_config(Path(directory), server.url(path), folder, sink)
            text = config_path.read_text(encoding="utf-8").replace(
                'confirm_delay = "0s"', f'confirm_delay = "{delay}"'
            )
            config_path.write_text(text, encoding="utf-8")
            config = load_config(config_path, environ={})

            def sleep(seconds: float) -> None:
                run.waited += seconds

            for number, step in enumerate(folder.steps):
                server.set(path, *(folder.page(step, seed=1000 * number + k) for k in range(3)), etag=False)
                before, cpu = len(sink.received), time.process_time()
                with open_store(config) as store:
                    fetchers = Fetchers(config, sleep=lambda _s: None)
                    try:
                        run_cycle(config.targets, Context(config, store, fetchers, sleep=sleep))
                    finally:
                        fetchers.close()
                run.cpu += time.process_time() - cpu
                wording, _corrections, _other = classify_messages(sink.received[before:])
                run.alerts += bool(wording)
                run.false_alerts += bool(wording) and not step.alert
            run.requests += server.hits(path)
    finally:
        server.stop()
        sink.stop()


def held(folders: list[Folder]) -> tuple[int, int]:
    """(due alerts, those whose next capture in the corpus is the same text)."""
    due = [(f, i) for f in folders for i, s in enumerate(f.steps) if s.alert]
    seen_again = sum(1 for f, i in due if i + 1 < len(f.steps) and f.steps[i + 1].status == "unchanged")
    return len(due), seen_again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", nargs="*", help="folder names (default: every folder of the replay)")
    parser.add_argument(
        "--quick", action="store_true", help="only the US policy folder (the flipping variant)"
    )
    args = parser.parse_args()
    chosen = ["milestones/meta-privacy-policy-en-us"] if args.quick else args.folder
    folders = [f for f in load_expectations() if not chosen or f.name in chosen]
    steps = sum(len(f.steps) for f in folders)
    print(f"python {sys.version.split()[0]}; {len(folders)} folders, {steps} steps of the replay corpus")
    play(folders[0], "0s", Run())  # warm-up, not counted: lazy imports, compiled patterns, word maps
    for delay in ("0s", "60s"):
        run = Run()
        for folder in folders:
            play(folder, delay, run)
        print(
            f"confirm_delay {delay:>3}: {run.requests} requests, CPU {run.cpu:6.1f} s, {run.alerts} wording "
            f"alerts, {run.false_alerts} false; waiting added {run.waited / 60:.0f} min in all"
        )
    due, seen_again = held(folders)
    print(
        f"hold until seen again: of {due} due alerts, {seen_again} have a next capture with the same text in "
        f"the corpus ({due - seen_again} could not be confirmed by the replay at all)"
    )


if __name__ == "__main__":
    main()
