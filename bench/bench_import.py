"""Benchmark of `import ota` and of the sentence index it fills: a real document's whole history.

    python bench/bench_import.py [--bundle PATH] [--document PATH] [--target ID] [--queries N] [--quick]
                                 [--postgres [URL]]

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
`--postgres` imports into PostgreSQL instead (`[storage] url`): a throwaway server started in a temporary
folder (Debian's `postgresql` package, as the tests do), or the empty database at URL; the archive's size is
then the database's (`pg_database_size`, less an empty archive database's), and search is PostgreSQL's
full-text index.
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

from bench_cluster import database_size, postgres_cpu, postmaster_pid  # noqa: E402

from watchdog.config import bundled_config_dir, load_config  # noqa: E402
from watchdog.storage import open_store  # noqa: E402
from watchdog.storage.interfaces import Storage  # noqa: E402
from watchdog.storage.search import sentences_of  # noqa: E402

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


def queries(store: Storage, target: str, count: int) -> list[str]:
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


def search_figures(store: Storage, target: str, count: int) -> tuple[list[float], int, int]:
    """Latencies (ms) of seeded searches, sentences answered, distinct sentences indexed."""
    latencies, answered = [], 0
    for query in queries(store, target, count):
        started = time.perf_counter()
        hits = store.archive.search(query, target=target)
        latencies.append((time.perf_counter() - started) * 1000)
        answered += len(hits)
    sentences = len({i for p in store.archive.sentence_presence(target) for i in p.sentence_ids})
    return latencies, answered, sentences


def measure(
    args: argparse.Namespace, bundle: Path, root: Path, url: str | None, postmaster: int | None = None
) -> list[str]:
    """Import into an empty archive (SQLite under `root`, or PostgreSQL at `url`), then search it.
    `postmaster`: the throwaway server's pid, whose CPU (backends included) the import's is counted with."""
    config = root / "watchdog.toml"
    bundled = (bundled_config_dir() / "watchdog.toml").read_text(encoding="utf-8")
    storage = '[storage]\ndir = "archive"\n' + (f"url = {json.dumps(url)}\n" if url else "")
    config.write_text(bundled.replace("[[targets]]", storage + "\n[[targets]]", 1))
    empty = database_size(url) if url else 0
    server_before = postgres_cpu(postmaster)
    result, wall, cpu = run_import(config, bundle, args.document, args.target)
    server_cpu = postgres_cpu(postmaster) - server_before
    archive = root / "archive"
    with open_store(load_config(config), writer=False) as store:
        versions = store.archive.versions(args.target)
        changes = store.archive.changes(target=args.target)
        live_kinds = {"change": 0, "editorial": 0, "capture": 0}
        for change in changes:
            prefix = change.summary.split(":", 1)[0]
            live_kinds[prefix if prefix in live_kinds else "change"] += 1
        count = max(1, 2 if args.quick else args.queries)
        latencies, answered, sentences = search_figures(store, args.target, count)
    if url:
        stored_line = (
            f"{(database_size(url) - empty) / 1e6:.1f} MB (the PostgreSQL database, less an empty one's)"
        )
    else:
        stored = size_of(*archive.glob("archive.sqlite3*"), archive / "blobs")
        stored_line = f"{stored / 1e6:.1f} MB (SQLite file and blobs)"
    published = size_of(archive / "site", archive / "feeds")
    cache = size_of(archive / "cache")
    commits = int(str(result["commits"]))
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    backend = "PostgreSQL" if url else "SQLite"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"import ota: {bundle.name}, {args.document!r} -> {args.target} ({backend}, CPUs: {os.cpu_count()}, "
        f"load average at the end: {load})",
        f"  commits read        {commits}",
        f"  import time         {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({wall / max(1, commits) * 1000:.0f} ms a commit)"
        + (f"; the PostgreSQL server {server_cpu:.1f} s CPU more" if postmaster else ""),
        f"  archive size        {stored_line}; the whole bundle, every platform: "
        f"{bundle.stat().st_size / 1e6:.1f} MB; published site and feeds "
        f"{published / 1e6:.1f} MB, diff cache {cache / 1e6:.1f} MB",
        f"  versions            {len(versions)} ({result['technical']} technical); commits collapsed "
        f"into the version before: {result['collapsed']}; rejected: {result['rejected']}",
        f"  imported changes    {len(changes)}: {live_kinds['change']} change, {live_kinds['editorial']} "
        f"editorial, {live_kinds['capture']} capture (the kind a live check would have given)",
        f"  sentence index      {sentences} distinct sentences",
        f"  search latency      p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {max(latencies):.2f} ms over "
        f"{len(latencies)} queries ({answered / len(latencies):.1f} sentences each)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--document", default="Facebook/Privacy Policy.md")
    parser.add_argument("--target", default="meta-privacy-policy")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="the tests' small fixture bundle")
    parser.add_argument(
        "--postgres", nargs="?", const="", metavar="URL", help="into PostgreSQL (a throwaway server, or URL)"
    )
    args = parser.parse_args()
    bundle = FIXTURE if args.quick else (args.bundle or default_bundle())
    with tempfile.TemporaryDirectory(prefix="bench-import-") as temporary:
        if args.postgres is None:
            lines = measure(args, bundle, Path(temporary), None)
        elif args.postgres:
            lines = measure(args, bundle, Path(temporary), args.postgres)
        else:
            lines = with_throwaway_postgres(args, bundle, Path(temporary))
    print("\n".join(lines))
    return 0


def with_throwaway_postgres(args: argparse.Namespace, bundle: Path, root: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.postgres import PostgresServer, pg_bindir  # the tests' throwaway server

    server = PostgresServer(pg_bindir())
    server.start()
    try:
        return measure(args, bundle, root, server.create_database(), postmaster_pid(server.data))
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
