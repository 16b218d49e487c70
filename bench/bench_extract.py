"""Benchmark of stages 2-3 (extract/normalise, validate) on real Meta snapshots; prints figures.

    .venv/bin/python bench/bench_extract.py [--runs N]

Uses the raw snapshots kept for the golden tests (tests/fixtures/extract, Open Terms Archive, ODC-By 1.0).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from watchdog.extract import extract, normalise
from watchdog.models import Capture, Target
from watchdog.validate import validate

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "extract"
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "printable policy, select #root",
        "facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z",
        "https://mbasic.facebook.com/privacy/policy/printable/",
        {"select": ["#root"]},
    ),
    (
        "printable policy, select #root, keep_links",
        "facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z",
        "https://mbasic.facebook.com/privacy/policy/printable/",
        {"select": ["#root"], "keep_links": True},
    ),
    (
        "printable policy, whole body",
        "facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z",
        "https://mbasic.facebook.com/privacy/policy/printable/",
        {},
    ),
    (
        "EU AI terms (React DOM), [role=main] minus footer",
        "meta-ai-terms/2026-01-21T23-36-24Z",
        "https://www.facebook.com/legal/eu-ai-terms",
        {"select": ["[role=main]"], "remove": ["[role=contentinfo]", "div:has(> [role=separator])"]},
    ),
]


def timed(action: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, min) milliseconds over `runs` calls, after one warm-up call."""
    action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    print(f"runs per figure: {runs} (median / min, milliseconds)")
    for label, name, url, options in CASES:
        body = gzip.decompress((FIXTURES / f"{name}.html.gz").read_bytes())
        run = partial(extract, body, content_type="text/html; charset=utf-8", url=url, **options)
        result = run()
        median, best = timed(run, runs)
        rate = len(body) / 1024 / (median / 1000)
        print(
            f"extract  {label:52s} {len(body) / 1024:6.0f} KB -> {len(result.text):7,} chars"
            f"  {median:7.1f} / {best:7.1f} ms  ({rate:,.0f} KB/s)"
        )
    text = (FIXTURES / "printable-2025-12-16.txt").read_text(encoding="utf-8")
    median, best = timed(lambda: normalise(text), runs)
    print(f"normalise {len(text):,} chars of canonical text: {median:.1f} / {best:.1f} ms")
    body = gzip.decompress((FIXTURES / f"{CASES[0][1]}.html.gz").read_bytes())
    capture = Capture("t", CASES[0][2], CASES[0][2], 200, (), body, datetime.now(UTC), "http")
    extracted = extract(body, content_type="text/html", url=CASES[0][2], select=["#root"])
    target = Target(id="t", url=CASES[0][2], name="t", select=("#root",))
    median, best = timed(lambda: validate(capture, extracted, target=target, previous_length=180_000), runs)
    print(f"validate {len(extracted.text):,} chars (all checks pass): {median:.1f} / {best:.1f} ms")


if __name__ == "__main__":
    main()
