"""Test support for the publish stage: archives built for feeds, site, serve and evidence tests.

Two ways, both real (SQLite file, content-addressed blobs on disk):
- `pipeline_archive`: the real pipeline (fetch over loopback from the page server, extract, validate, diff,
  classify, store) over a sequence of pages; this is how the corpus and hostile-page archives are made.
- `Builder`: straight through the storage's write (CheckStore.record_check), for shapes the pipeline makes
  only slowly (reverts, failure/recovery events, technical versions, raw control characters, many records).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.corpus import render_page
from support.harness import Site, cycle, write_config
from support.pageserver import PageServer
from support.replay import corpus_text
from watchdog.config import AlertSettings, Config, load_config
from watchdog.diff import diff_texts
from watchdog.models import (
    Capture,
    CheckRecord,
    FetchSettings,
    NewChange,
    NewEvent,
    NewSnapshot,
    NewVersion,
    Outcome,
    Recorded,
    Target,
    Topic,
)
from watchdog.publish import after_cycle
from watchdog.storage.interfaces import Storage
from watchdog.storage.sqlite import SqliteStorage

T0 = datetime(2025, 5, 28, 0, 30, 56, tzinfo=UTC)

TOPICS = (
    Topic("ai-training", "AI training", "high", ("artificial intelligence", r"\bAI\b")),
    Topic("opt-out", "Opt-out and the right to object", "high", ("opt[- ]?out", "right to object")),
    Topic("legal-basis", "Legal basis", "medium", ("legitimate interest",)),
)


def make_config(storage: Path, targets: Sequence[Target], *, archive_url: str | None = None) -> Config:
    return Config(
        path=None,
        storage_dir=storage,
        targets=tuple(targets),
        channels=(),
        topics=TOPICS,
        fetch=FetchSettings(user_agent="policy-watchdog-tests"),
        alerts=AlertSettings(archive_url=archive_url),
    )


@dataclass
class Builder:
    """Adds versions, changes, reverts and events to a target, one CheckRecord each, through the same
    write the pipeline uses (CheckStore.record_check)."""

    store: Storage
    target: Target
    clock: datetime = T0
    current: str | None = None
    texts: dict[str, str] = field(default_factory=dict)

    def tick(self, hours: float = 1) -> datetime:
        self.clock += timedelta(hours=hours)
        return self.clock

    def capture(self, at: datetime, *, status: int = 200, url: str | None = None) -> Capture:
        final = url or self.target.url
        body = f"<html><body>{at.isoformat()}</body></html>".encode()
        return Capture(self.target.id, self.target.url, final, status, (), body, at, "http")

    def record(self, at: datetime, **fields: Any) -> Recorded:
        t = self.target
        return self.store.checks.record_check(CheckRecord(t.id, t.name, t.url, at, None, **fields))

    def _snapshot(self, at: datetime, url: str | None) -> NewSnapshot:
        return NewSnapshot(self.capture(at, url=url), "f", "accepted")

    def version(self, text: str, *, technical: bool = False, url: str | None = None) -> str:
        at = self.tick()
        done = self.record(
            at,
            snapshot=self._snapshot(at, url),
            version=NewVersion(text=text, seen_at=at, technical=technical),
        )
        assert done.version is not None
        self.texts[done.version.id] = text
        self.current = done.version.id
        return done.version.id

    def change(self, text: str, *, topics: Sequence[str] = (), summary: str | None = None) -> str:
        before = self.current
        assert before is not None, "a change needs a first version"
        diff = diff_texts(self.texts[before], text)
        at = self.tick()
        change = NewChange(
            from_version=before,
            kind="change",
            topics=tuple(topics),
            severity="high" if topics else "none",
            summary=summary or f"{len(diff.hunks)} passage(s) changed",
            evidence=tuple(
                {"topic": t, "pattern": t, "side": "inserted", "sentence": text[:80], "hunk": 0}
                for t in topics
            ),
        )
        done = self.record(
            at,
            snapshot=self._snapshot(at, None),
            version=NewVersion(text=text, seen_at=at),
            change=change,
        )
        assert done.version is not None and done.change is not None
        self.texts[done.version.id] = text
        self.current = done.version.id
        return done.change.id

    def revert(self, to_version: str) -> str:
        before = self.current
        assert before is not None
        at = self.tick()
        change = NewChange(
            from_version=before,
            to_version=to_version,
            kind="revert",
            summary=f"reverted to {to_version}",
            reverted_to=to_version,
        )
        done = self.record(at, current=to_version, change=change)
        assert done.change is not None
        self.current = to_version
        return done.change.id

    def event(self, kind: str, reason: str) -> str:
        done = self.record(self.tick(), event=NewEvent(kind, reason))
        assert done.event is not None
        return done.event.id


def open_store(storage: Path, targets: Sequence[Target]) -> SqliteStorage:
    store = SqliteStorage.open(storage)
    store.checks.sync_targets(targets)
    return store


# --------------------------------------------------------------------------- the real pipeline


def html_page(body_markdown: str) -> bytes:
    """A corpus-like page (chrome and noise) whose #root holds the Markdown rendered to HTML."""
    return render_page(body_markdown, seed=7)


APRIL_2025 = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY_2025 = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
IG_DEC_2023 = "milestones/instagram-privacy-policy-en-eu/2023-12-27.md"
IG_AUG_2024 = "milestones/instagram-privacy-policy-en-eu/2024-08-16.md"
CORPUS_CHANGES = {
    # the May 2025 "AI at Meta" legitimate-interest change of Facebook's EU privacy policy
    "may-2025": ("fb", (APRIL_2025, MAY_2025), ""),
    # the June 2024 delay banner; the August 2024 capture is half the size of the 2023 one (OTA's
    # selector changed), so this target accepts a bigger shrink
    "delay-2024": ("ig", (IG_DEC_2023, IG_AUG_2024), "max_shrink = 0.9"),
}


def corpus_archive(
    factory: pytest.TempPathFactory, server: PageServer, name: str
) -> tuple[Config, list[str]]:
    """The archive the real pipeline makes of one corpus change (see CORPUS_CHANGES), built once per test
    session (diffing 200 KB policies takes seconds) and shared READ-ONLY by the tests that read it.
    Returns its config and the statuses of the two checks."""
    root = factory.getbasetemp() / f"corpus-archive-{name}"
    done = root / "statuses.json"
    if not done.is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        target_id, versions, extra = CORPUS_CHANGES[name]
        pages = [html_page(corpus_text(v)) for v in versions]
        _config, outcomes = pipeline_archive(root, server, pages, target_id=target_id, extra=extra)
        done.write_text(json.dumps([o.status for o in outcomes]))
    return load_config(root / "watchdog.toml", environ={}), json.loads(done.read_text())


def pipeline_archive(
    tmp_path: Path, server: PageServer, pages: Sequence[bytes], *, target_id: str = "fb", extra: str = ""
) -> tuple[Config, list[Outcome]]:
    """Serve `pages` one after the other at /policy; for each, one real check cycle, then the publishing
    step the CLI and the daemon run after every cycle."""
    config_path = write_config(tmp_path, server.base_url, [Site(target_id, "/policy", extra)])
    config = load_config(config_path, environ={})
    outcomes: list[Outcome] = []
    for page in pages:
        server.set("/policy", page, etag=False)
        outcomes += cycle(config_path)
        with SqliteStorage.open(config.storage_dir) as store:
            after_cycle(config, store)
    return config, outcomes
