"""Benchmark of the diff -> classify -> render stages on real ~200 KB policy versions.

    python bench/bench_diff.py [--runs N]

Pairs (from tests/fixtures/texts, Open Terms Archive recordings of Meta's EU privacy policy, attribution in
SOURCES.md there): 2025-04-23 -> 2025-05-28 (a small change: the "AI at Meta" rows) and 2025-05-28 ->
2025-06-16 (a big rewrite), plus the worst case the size cap allows: one block of max_block_chars of
unrelated prose on each side (every word differs, so the word diff does its maximum work).

Prints, per case, the median CPU time over N runs of each stage (time.process_time: on a shared machine,
wall time would mostly measure the other processes), the diff's shape and the topics, then the process's
peak resident memory (resource.getrusage; it covers the whole run).
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from watchdog.classify import CompiledTopics, classify, compile_topics  # noqa: E402
from watchdog.diff import diff_texts  # noqa: E402
from watchdog.extract import normalise  # noqa: E402
from watchdog.models import (  # noqa: E402
    ChangeMessage,
    TextDiff,
    Topic,
)
from watchdog.render import html, markdown, text  # noqa: E402
from watchdog.render.compose import Links, compose  # noqa: E402

TEXTS = ROOT / "tests" / "fixtures" / "texts" / "series" / "facebook-privacy-policy-en"
PAIRS = {
    "small change 2025-04-23 -> 2025-05-28": ("2025-04-23T12-31-08Z", "2025-05-28T00-30-56Z"),
    "big rewrite 2025-05-28 -> 2025-06-16": ("2025-05-28T00-30-56Z", "2025-06-16T12-31-49Z"),
}
_LINK = re.compile(r"!?\[((?:\\.|[^\]\\])*)\]\((?:[^()\s]|\([^)]*\))*\)")
T = TypeVar("T")


def canonical(name: str) -> str:
    """The corpus Markdown in the extractor's shape: link targets dropped, characters normalised."""
    markdown = gzip.decompress((TEXTS / f"{name}.md.gz").read_bytes()).decode("utf-8")
    return normalise(_LINK.sub(r"\1", markdown.replace("<br>", " ")))


def load_topics() -> CompiledTopics:
    import tomllib

    data = tomllib.loads((ROOT / "config" / "topics.toml").read_text(encoding="utf-8"))
    topics = [Topic(t["id"], t["title"], t["severity"], tuple(t["patterns"])) for t in data["topics"]]
    return compile_topics(topics)


def timed(runs: int, work: Callable[[], T]) -> tuple[float, T]:
    """Median seconds over `runs` calls, and the last result."""
    times, result = [], None
    for _ in range(runs):
        start = time.process_time()
        result = work()
        times.append(time.process_time() - start)
    assert result is not None
    return statistics.median(times), result


def worst_case_block(size: int) -> tuple[str, str]:
    """Two unrelated paragraphs of real policy words that together just fit under the cap."""
    words = canonical("2025-05-28T00-30-56Z").split()

    def prose(seed: int) -> str:
        rng = random.Random(seed)
        out, length = [], 0
        while length < size // 2:
            out.append(rng.choice(words))
            length += len(out[-1]) + 1
        return " ".join(out)[: size // 2 - 1]

    return f"Intro.\n\n{prose(1)}\n\nOutro.\n", f"Intro.\n\n{prose(2)}\n\nOutro.\n"


def bench_case(label: str, before: str, after: str, topics: CompiledTopics, runs: int) -> None:
    diff_s, diff = timed(runs, lambda: diff_texts(before, after))
    classify_s, result = timed(runs, lambda: classify(diff, topics))
    message = _message(diff, result)

    def render_all() -> tuple[str, str, str]:
        story, links = compose(message), Links.published("https://archive.example.org", message)
        return (
            text.render_text(story, links),
            markdown.render_markdown(story, links),
            html.render_email(story, links),
        )

    render_s, _ = timed(runs, render_all)
    print(f"\n{label}")
    print(f"  sizes        {len(before):>9,} -> {len(after):,} characters")
    print(f"  diff         {diff_s * 1000:9.1f} ms   {_shape(diff)}")
    print(f"  classify     {classify_s * 1000:9.1f} ms   topics {', '.join(result.topics) or '-'}")
    print(f"               {len(result.matches)} evidence matches, severity {result.severity}")
    print(f"  render x3    {render_s * 1000:9.1f} ms   (compose + text + Markdown + HTML e-mail, no limit)")


def _shape(diff: TextDiff) -> str:
    truncated = ", a block over the cap (line mode)" if diff.truncated else ""
    return f"{len(diff.hunks)} hunks, +{diff.inserted_chars:,}/-{diff.deleted_chars:,} chars{truncated}"


def _message(diff: TextDiff, result: object) -> ChangeMessage:
    from watchdog.models import Classification

    assert isinstance(result, Classification)
    return ChangeMessage(
        event_id="meta-privacy-policy@c1",
        kind="change",
        target_id="meta-privacy-policy",
        target_name="Meta Privacy Policy",
        url="https://mbasic.facebook.com/privacy/policy/printable/",
        from_version="meta-privacy-policy@v1",
        to_version="meta-privacy-policy@v2",
        detected_at=datetime.now(UTC),
        diff=diff,
        classification=result,
        archive_url="https://archive.example.org",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported)")
    args = parser.parse_args()
    topics = load_topics()
    print(f"median of {args.runs} runs; Python {sys.version.split()[0]}")
    for label, (old, new) in PAIRS.items():
        bench_case(label, canonical(old), canonical(new), topics, args.runs)
    before, after = worst_case_block(20_000)
    label = "worst case the cap allows: one block, 2 x 10,000 characters (cap 20,000), all words differ"
    bench_case(label, before, after, topics, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"\npeak RSS of the whole run: {peak / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
