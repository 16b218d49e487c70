"""Test support: the real corpus versions kept under tests/fixtures/replay (gzip; attribution alongside)."""

from __future__ import annotations

import gzip
from pathlib import Path

REPLAY = Path(__file__).resolve().parent.parent / "fixtures" / "replay"


def corpus_text(relative: str) -> str:
    """e.g. corpus_text("series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md")."""
    return gzip.decompress((REPLAY / f"{relative}.gz").read_bytes()).decode("utf-8")


def series(name: str) -> list[str]:
    """The consecutive captures of one series, oldest first, as relative names for corpus_text()."""
    return [f"series/{name}/{p.name[:-3]}" for p in sorted((REPLAY / "series" / name).glob("*.md.gz"))]
