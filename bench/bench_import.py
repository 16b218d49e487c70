"""Benchmark of `import ota` and of the sentence index it fills: a real document's whole history.

    python bench/bench_import.py [--bundle PATH] [--document PATH] [--target ID] [--queries N] [--quick]

Imports every commit of one document of an Open Terms Archive versions repository (default: the 492 commits
of "Facebook/Privacy Policy.md" in ../shared/datasets/pga-versions.bundle, ODC-By 1.0) into an empty SQLite
archive with the bundled config's target (`meta-privacy-policy`), through the real command (`python -m
watchdog import ota ... --json`, one process), and prints:

- the import's wall time and CPU time (the child process's user + system), publishing the site and the
  feeds at its end included, as the command does;
- the archive's size on disk (the SQLite file and its blobs), with the bundle's size for scale;
- what the history became: commits read, versions (technical ones among them), commits collapsed into the
  version before them, rejected ones, and the `imported` change records with the kind a live check would
  have given each (`change`: a wording change; `editorial`: meaning-preserving edits only; `capture`);
- search latency over the result (p50, p95, max): `--queries` queries, alternately a word and a two-word
  phrase drawn (seeded) from the sentences of the imported versions, each answered by the archive's
  sentence index (SQLite FTS5) with up to 50 sentences and their first and last seen versions.

`--quick` imports the small fixture bundle of the tests instead (tests/fixtures/ota), for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from watchdog.config import bundled_config_dir  # noqa: E402
from watchdog.storage.search import sentences_of  # noqa: E402
from watchdog.storage.sqlite import SqliteStorage  # noqa: E402

DATASETS = ("../shared/datasets", "../../shared/datasets")  # beside a clone of the repository, or a worktree
FIXTURE = ROOT / "tests" / "fixtures" / "ota" / "ota-excerpt.bundle"
WORD = re.compile(r"[^\W\d_]{4,}")


def default_bundle() -> Path:
    for relative in DATASETS:
        path = (ROOT / relative / "pga-versions.bundle").resolve()
        if path.exists():
            return path
    raise SystemExit("pga-versions.bundle not found beside the repository: give --bundle PATH")


def size_of(*paths: Path) -> int:
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*"))]
    return sum(f.stat().st_size for f in files if f.is_file())


def run_import(
    config: Path, bundle: Path, document: str, target: str
) -> tuple[dict[str, object], float, float]:
    """The real command in one process: its final JSON line, its wall time and its CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "watchdog",
            "-q",
            "--config",
            str(config),
            "import",
            "ota",
            str(bundle),
            "--document",
            document,
            "--target",
            target,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr.strip()}")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    result = {**lines[-1], "commits": sum(1 for line in lines if line.get("event") == "progress")}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, wall, cpu


def queries(store: SqliteStorage, target: str, count: int) -> list[str]:
    """Seeded: words and two-word phrases of the imported versions' sentences."""
    rng = random.Random(15)
    sentences: list[str] = []
    for version in store.archive.versions(target):
        sentences += [s for _h, s in sentences_of(store.archive.text(version.text_hash))]
    chosen = []
    while len(chosen) < count:
        words = WORD.findall(rng.choice(sentences))
        if len(words) < 2:
            continue
        start = rng.randrange(len(words) - 1)
        chosen.append(words[start] if len(chosen) % 2 == 0 else f'"{words[start]} {words[start + 1]}"')
    return chosen


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--document", default="Facebook/Privacy Policy.md")
    parser.add_argument("--target", default="meta-privacy-policy")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="the tests' small fixture bundle")
    args = parser.parse_args()
    bundle = FIXTURE if args.quick else (args.bundle or default_bundle())
    with tempfile.TemporaryDirectory(prefix="bench-import-") as temporary:
        root = Path(temporary)
        config = root / "watchdog.toml"
        bundled = (bundled_config_dir() / "watchdog.toml").read_text(encoding="utf-8")
        config.write_text(bundled.replace("[[targets]]", '[storage]\ndir = "archive"\n\n[[targets]]', 1))
        result, wall, cpu = run_import(config, bundle, args.document, args.target)
        archive = root / "archive"
        with SqliteStorage.open(archive, writer=False) as store:
            versions = store.archive.versions(args.target)
            changes = store.archive.changes(target=args.target)
            live_kinds = {"change": 0, "editorial": 0, "capture": 0}
            for change in changes:
                prefix = change.summary.split(":", 1)[0]
                live_kinds[prefix if prefix in live_kinds else "change"] += 1
            asked = queries(store, args.target, max(1, 2 if args.quick else args.queries))
            latencies, answered = [], 0
            for query in asked:
                started = time.perf_counter()
                hits = store.archive.search(query, target=args.target)
                latencies.append((time.perf_counter() - started) * 1000)
                answered += len(hits)
            sentences = len({i for p in store.archive.sentence_presence(args.target) for i in p.sentence_ids})
        stored = size_of(*archive.glob("archive.sqlite3*"), archive / "blobs")
        published = size_of(archive / "site", archive / "feeds")
        cache = size_of(archive / "cache")
    commits = int(str(result["commits"]))
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    lines = [
        f"import ota: {bundle.name}, {args.document!r} -> {args.target} (SQLite, CPUs: {os.cpu_count()})",
        f"  commits read        {commits}",
        f"  import time         {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({wall / max(1, commits) * 1000:.0f} ms a commit)",
        f"  archive size        {stored / 1e6:.1f} MB (SQLite file and blobs; the whole bundle, every "
        f"platform: {bundle.stat().st_size / 1e6:.1f} MB); published site and feeds "
        f"{published / 1e6:.1f} MB, diff cache {cache / 1e6:.1f} MB",
        f"  versions            {len(versions)} ({result['technical']} technical); commits collapsed "
        f"into the version before: {result['collapsed']}; rejected: {result['rejected']}",
        f"  imported changes    {len(changes)}: {live_kinds['change']} change, {live_kinds['editorial']} "
        f"editorial, {live_kinds['capture']} capture (the kind a live check would have given)",
        f"  sentence index      {sentences} distinct sentences",
        f"  search latency      p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {max(latencies):.2f} ms over "
        f"{len(latencies)} queries ({answered / len(latencies):.1f} sentences each)",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
