"""Benchmark of the publish stage: regenerating the feeds and the static site of a large archive.

    python bench/bench_publish.py [--targets 100] [--changes 100] [--dir PATH]

Builds an archive of targets x changes (default 100 x 100 = 10,000 changes, 10,100 versions) through the
storage's own write (CheckStore.record_check): short synthetic texts made of real sentences from Meta's
privacy policy (the corpus copy in tests/fixtures/replay, Open Terms Archive, ODC-By 1.0, attribution
there), each change swapping, adding or dropping one sentence. Then it times, each phase in a fresh
process (like one `check` run) so the peak RSS is the phase's own:

    from scratch       empty site, feeds and diff cache: every page rendered, every diff computed
    no-op              the same archive again: nothing rendered or written
    one new change     one target gets one more change: only its pages and feeds are rewritten
    rebuild, warm      site and feeds deleted, diff cache kept (e.g. after a template upgrade)

and prints wall time, files written, diffs computed and peak resident memory per phase.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from watchdog.config import Config  # noqa: E402
from watchdog.models import (  # noqa: E402
    Capture,
    CheckRecord,
    FetchSettings,
    NewChange,
    NewSnapshot,
    NewVersion,
    Recorded,
    Target,
    Topic,
)
from watchdog.storage.sqlite import SqliteStorage  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "replay" / "series" / "facebook-privacy-policy-en"
START = datetime(2024, 1, 1, tzinfo=UTC)
TOPICS = (
    Topic("ai-training", "AI training", "high", ("artificial intelligence", r"\bAI\b")),
    Topic("opt-out", "Opt-out and the right to object", "high", ("opt[- ]?out", "object")),
    Topic("legal-basis", "Legal basis", "medium", ("legitimate interest",)),
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def sentences() -> list[str]:
    text = gzip.decompress(next(iter(sorted(CORPUS.glob("*.md.gz")))).read_bytes()).decode("utf-8")
    plain = _LINK.sub(r"\1", text)
    found = re.findall(r"[A-Z][^.!?\n|#*]{30,200}[.!?]", plain)
    return sorted(set(found))


def config_for(directory: Path, targets: int) -> Config:
    return Config(
        path=None,
        storage_dir=directory,
        targets=tuple(target(i) for i in range(targets)),
        channels=(),
        topics=TOPICS,
        fetch=FetchSettings(user_agent="bench"),
    )


def target(index: int) -> Target:
    return Target(id=f"policy-{index:03d}", url=f"https://example.org/policy/{index}", name=f"Policy {index}")


# --------------------------------------------------------------------------- building the archive


def build(directory: Path, targets: int, changes: int) -> None:
    pool = sentences()
    rng = random.Random(2025)
    with SqliteStorage.open(directory) as store:
        store.checks.sync_targets([target(i) for i in range(targets)])
        for index in range(targets):
            text = rng.sample(pool, 12)
            previous = add_version(store, target(index), text, START + timedelta(minutes=index))
            for n in range(changes):
                text = mutate(text, pool, rng)
                at = START + timedelta(days=n + 1, minutes=index)
                previous = add_change(store, target(index), previous, text, at, rng)


def mutate(text: list[str], pool: list[str], rng: random.Random) -> list[str]:
    changed = list(text)
    move = rng.choice(("swap", "add", "drop")) if len(changed) > 6 else "add"
    position = rng.randrange(len(changed))
    if move == "swap":
        changed[position] = rng.choice(pool)
    elif move == "add":
        changed.insert(position, rng.choice(pool))
    else:
        del changed[position]
    return changed


def _record(store: SqliteStorage, tgt: Target, text: list[str], at: datetime, **fields: Any) -> Recorded:
    """One version (and its raw snapshot), written as the pipeline writes a check."""
    body = ("<html><body>" + "".join(f"<p>{s}</p>" for s in text) + "</body></html>").encode()
    capture = Capture(tgt.id, tgt.url, tgt.url, 200, (), body, at, "http")
    record = CheckRecord(
        tgt.id,
        tgt.name,
        tgt.url,
        at,
        None,
        snapshot=NewSnapshot(capture, "bench", "accepted"),
        version=NewVersion(text="\n".join(text) + "\n", seen_at=at),
        **fields,
    )
    return store.checks.record_check(record)


def add_version(store: SqliteStorage, tgt: Target, text: list[str], at: datetime) -> str:
    done = _record(store, tgt, text, at)
    assert done.version is not None
    return done.version.id


def add_change(
    store: SqliteStorage, tgt: Target, previous: str, text: list[str], at: datetime, rng: random.Random
) -> str:
    topics = tuple(rng.sample([t.id for t in TOPICS], rng.randrange(0, 3)))
    change = NewChange(
        from_version=previous,
        kind="change",
        topics=topics,
        severity="high" if topics else "none",
        summary=f"{', '.join(topics) or 'no topic'} · 1 block",
    )
    done = _record(store, tgt, text, at, change=change)
    assert done.version is not None
    return done.version.id


# --------------------------------------------------------------------------- one phase (own process)


def phase(directory: Path, targets: int, name: str) -> dict[str, object]:
    from watchdog.publish import publish

    config = config_for(directory, targets)
    if name == "one new change":
        add_one_change(directory, targets)
    if name == "rebuild, warm":
        shutil.rmtree(directory / "site", ignore_errors=True)
        shutil.rmtree(directory / "feeds", ignore_errors=True)
    started = time.perf_counter()
    with SqliteStorage.open(directory, writer=False) as store:
        report = publish(
            config,
            store,
            site_dir=directory / "site",
            feeds_dir=directory / "feeds",
            cache_dir=directory / "cache" / "diffs",
        )
    elapsed = time.perf_counter() - started
    return {
        "phase": name,
        "seconds": round(elapsed, 2),
        "written": report.site.written + report.feeds.written,
        "skipped": report.site.skipped + report.feeds.skipped,
        "diffs": report.diffs_computed,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def add_one_change(directory: Path, targets: int) -> None:
    with SqliteStorage.open(directory) as store:
        tgt = target(targets // 2)
        state = store.archive.target_state(tgt.id)
        assert state is not None and state.current_version is not None
        text = store.archive.version_text(state.current_version).splitlines()
        text.append("We may use public posts to develop and improve artificial intelligence at Meta.")
        add_change(store, tgt, state.current_version, text, datetime.now(UTC), random.Random(1))


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--changes", type=int, default=100, help="changes per target")
    parser.add_argument("--dir", type=Path, help="archive folder (default: a temporary one, removed)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.dir, args.targets, args.phase)))
        return
    # tmpfs when there is one: the storage fsyncs every blob it writes, and 20,000 fsyncs would make building
    # the archive the whole benchmark; publishing itself never fsyncs, so its figures hold on a disk too
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-publish-", dir=scratch))
    try:
        run_all(directory, args.targets, args.changes)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


def run_all(directory: Path, targets: int, changes: int) -> None:
    started = time.perf_counter()
    build(directory, targets, changes)
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20
    print(
        f"archive: {targets} targets x {changes} changes = {targets * changes} changes, "
        f"{targets * (changes + 1)} versions; built in {time.perf_counter() - started:.1f} s ({size:.0f} MB)"
    )
    print(f"{'phase':<16} {'seconds':>8} {'written':>8} {'skipped':>8} {'diffs':>6} {'peak RSS MB':>12}")
    for name in ("from scratch", "no-op", "one new change", "rebuild, warm"):
        command = [
            sys.executable,
            __file__,
            "--dir",
            str(directory),
            "--targets",
            str(targets),
            "--phase",
            name,
        ]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(
            f"{name:<16} {result['seconds']:>8} {result['written']:>8} {result['skipped']:>8} "
            f"{result['diffs']:>6} {result['peak_rss_mb']:>12}"
        )


if __name__ == "__main__":
    main()
