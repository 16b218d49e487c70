"""Test support: the real corpus versions kept under tests/fixtures/ (gzip; attribution alongside), and the
replay expectations (tests/fixtures/replay/expectations.toml) that say what each step should give."""

from __future__ import annotations

import gzip
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from support.corpus import corpus_markdown, render_page

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REPLAY = FIXTURES / "replay"
# Where a corpus folder's files may be: replay/ (series, milestones), corpus/ (other milestones), extract/
# (raw HTML snapshots the extraction tests share).
_SNAPSHOT_DIRS = (REPLAY / "series", FIXTURES / "extract")


def corpus_text(relative: str) -> str:
    """e.g. corpus_text("series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md")."""
    return gzip.decompress((REPLAY / f"{relative}.gz").read_bytes()).decode("utf-8")


def series(name: str) -> list[str]:
    """The consecutive captures of one series, oldest first, as relative names for corpus_text()."""
    return [f"series/{name}/{p.name[:-3]}" for p in sorted((REPLAY / "series" / name).glob("*.md.gz"))]


def snapshot(folder: str, name: str) -> bytes:
    """A raw HTML snapshot of a series folder, e.g. snapshot("meta-ai-terms", "2026-01-21T23-36-24Z.html")."""
    for directory in _SNAPSHOT_DIRS:
        path = directory / folder / f"{name}.gz"
        if path.is_file():
            return gzip.decompress(path.read_bytes())
    raise FileNotFoundError(f"{folder}/{name} is in none of {[str(d) for d in _SNAPSHOT_DIRS]}")


@dataclass(frozen=True)
class Step:
    """What one file of a folder should give when checked after the ones before it."""

    file: str
    status: str
    why: str
    kind: frozenset[str] = frozenset()  # empty: no change record (new / unchanged / rejected)
    alert: bool = False
    topics: frozenset[str] = frozenset()
    code: str | None = None
    correction: bool = False


@dataclass(frozen=True)
class Folder:
    name: str  # "milestones/<document>" or "series/<document>"
    steps: tuple[Step, ...]
    format: str = "md"  # md: corpus Markdown served as a noisy page; html: the raw snapshot as recorded
    select: tuple[str, ...] = ("#root",)
    remove: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}" + (" (html)" if self.format == "html" else "")

    def page(self, step: Step, seed: int) -> bytes:
        """The page the local server serves for this step; `seed` varies the noise of md pages."""
        if self.format == "html":
            return snapshot(self.name.removeprefix("series/"), step.file)
        return render_page(corpus_markdown(f"{self.name}/{step.file}"), seed=seed)


def load_expectations(path: Path = REPLAY / "expectations.toml") -> list[Folder]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        Folder(
            name=f["name"],
            steps=tuple(_step(s) for s in f["steps"]),
            format=f.get("format", "md"),
            select=tuple(f.get("select", ("#root",))),
            remove=tuple(f.get("remove", ())),
        )
        for f in data["folder"]
    ]


def _step(raw: dict[str, object]) -> Step:
    kind = raw.get("kind", ())
    kinds = frozenset([kind] if isinstance(kind, str) else kind)  # type: ignore[arg-type]
    return Step(
        file=str(raw["file"]),
        status=str(raw["status"]),
        why=str(raw["why"]),
        kind=kinds,
        alert=bool(raw.get("alert", False)),
        topics=frozenset(raw.get("topics", ())),  # type: ignore[arg-type]
        code=raw.get("code"),  # type: ignore[arg-type]
        correction=bool(raw.get("correction", False)),
    )
