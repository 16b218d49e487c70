"""Benchmark of the meaning-preserving normaliser's cost per change, next to the diff it rides on.

    python bench/bench_normalise.py [--quick]

Over every consecutive pair of the replay corpus (tests/fixtures: Open Terms Archive recordings of Meta's
policies, attribution in the SOURCES.md files there) whose texts differ, as the pipeline sees them (each
version rendered as a page and extracted), it times per change:

- diff: `diff_texts` (the reference: what a change costs anyway);
- normaliser: everything the normaliser adds to a change: `editorial_reason` of each hunk, the meaning
  keys of the changed sentences in `classify` (its cost over the old classifier), and `change_kind`;
- meaning_key of a whole policy never seen (what the validator's content rule pays, only when a capture is
  much shorter or longer than the last version).

The normaliser's line cache is cleared before each change: the figures are those of a process that meets
the change's texts for the first time (a daemon that has seen the old version already does less).

Prints the median and p95 over the changes, and the ratio to the diff.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.replay import load_expectations  # noqa: E402
from watchdog import normalise  # noqa: E402
from watchdog.classify import CompiledTopics, classify, compile_topics  # noqa: E402
from watchdog.diff import diff_texts  # noqa: E402
from watchdog.extract import extract  # noqa: E402
from watchdog.kinds import change_kind  # noqa: E402
from watchdog.models import Topic  # noqa: E402
from watchdog.normalise import editorial_reason, meaning_key  # noqa: E402

T = TypeVar("T")


def load_topics() -> CompiledTopics:
    import tomllib

    data = tomllib.loads((ROOT / "config" / "topics.toml").read_text(encoding="utf-8"))
    return compile_topics(
        [Topic(t["id"], t["title"], t["severity"], tuple(t["patterns"])) for t in data["topics"]]
    )


def clear_caches() -> None:
    """Forget every line seen: each change below is timed as if its texts were new to the process."""
    normalise._line_key.cache_clear()
    normalise.is_chrome_line.cache_clear()


def timed(function: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def pairs(limit: int | None) -> list[tuple[str, str, str]]:
    """(label, old text, new text) for each change the pipeline diffs in the replay: a step judged
    "changed" against the last accepted version before it (rejected captures are never diffed)."""
    found: list[tuple[str, str, str]] = []
    for folder in load_expectations():
        last: str | None = None
        for step in folder.steps:
            if step.status == "rejected":
                continue
            page = folder.page(step, seed=1)
            text = extract(
                page,
                content_type="text/html",
                url="https://x.example/",
                select=folder.select,
                remove=folder.remove,
            ).text
            if last is not None and step.status == "changed" and text != last:
                found.append((f"{folder.label} {step.file}", last, text))
            last = text
        if limit and len(found) >= limit:
            return found[:limit]
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a dozen pairs")
    args = parser.parse_args()
    topics = load_topics()
    rows = pairs(12 if args.quick else None)
    diffs: list[float] = []
    reasons: list[float] = []
    classifies: list[float] = []
    kinds: list[float] = []
    for _label, old, new in rows:
        clear_caches()
        diff_time, diff = timed(lambda old=old, new=new: diff_texts(old, new))  # type: ignore[misc]
        diffs.append(diff_time)
        clear_caches()
        reasons.append(timed(lambda d=diff: [editorial_reason(h.before, h.after) for h in d.hunks])[0])  # type: ignore[misc]
        clear_caches()
        classify_time, classification = timed(lambda d=diff: classify(d, topics))  # type: ignore[misc]
        classifies.append(classify_time)
        kinds.append(
            timed(lambda d=diff, c=classification: change_kind(d, c, shape_problem=None, earlier_texts=list))[
                0
            ]  # type: ignore[misc]
        )
    print(f"over {len(rows)} real changes of the replay corpus (ms per change: median / p95):")
    for name, values in (
        ("diff_texts (reference)", diffs),
        ("editorial_reason of every hunk", reasons),
        ("classify (topics; with the hunks' reasons and the sentences' meaning keys)", classifies),
        ("change_kind (kind; restored-content rule)", kinds),
    ):
        print(f"  {name}: {statistics.median(values) * 1000:.1f} / {percentile(values, 0.95) * 1000:.1f}")
    share = [(c + k) / d for c, k, d in zip(classifies, kinds, diffs, strict=True) if d > 0]
    median, p95 = statistics.median(share), percentile(share, 0.95)
    print(f"  classify + kind / diff: median {median:.2f}x, p95 {p95:.2f}x")
    longest = max((new for _, _, new in rows), key=len)
    times = []
    for _ in range(3 if args.quick else 7):
        clear_caches()  # a policy never seen: every line keyed afresh
        times.append(timed(lambda: meaning_key(longest))[0])
    cold = statistics.median(times) * 1000
    print(f"meaning_key of a whole {len(longest):,}-character policy never seen: {cold:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
