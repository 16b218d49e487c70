"""Every published file (site pages, texts, raw captures, feeds, chain heads) is byte for byte what the
code of main 8a51295 (before the publishing speed-ups of issue 14) wrote for the same archive: real corpus
changes (Facebook's English policy in 2025, the French policy's June 2024 pause and a revert of it), hostile
page text, events, a technical re-extraction; exported with relative and with absolute links, and
published incrementally after each cycle (the caches of full texts, diffs and templates in use). One
intended change since: the raw captures (raw/*.gz) are compressed at gzip level 1 instead of 9, so their
12 digests were regenerated (their uncompressed bytes are the same). And one fix: with relative links (no
archive_url), an entry's content in the target/ and topic/ feeds linked one folder too high (the body
rendered for all.atom was reused there), so the 12 digests of those feeds were regenerated; the feeds with
absolute links (export-absolute) are unchanged.

The reference is the SHA-256 of each file, in tests/fixtures/reference/published-digests.json. A change
that means to alter what is published regenerates it, and says why, with (run as a script, the tests'
support modules are found beside it):
    .venv/bin/python tests/test_published_bytes.py tests/fixtures/reference/published-digests.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from test_sections import canonical

from support.archives import Builder, make_config, open_store
from watchdog.models import Target
from watchdog.publish import after_cycle, export_site

DIGESTS = Path(__file__).parent / "fixtures" / "reference" / "published-digests.json"
EN = [
    "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md",
    "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md",
    "series/facebook-privacy-policy-en/2025-06-16T12-31-49Z.md",
]
FR = [
    "milestones/meta-privacy-policy-fr-fr/2024-05-21.md",
    "milestones/meta-privacy-policy-fr-fr/2024-06-26.md",
]
HOSTILE = (
    '# Policy <script>alert(1)</script>\n\n## Rights \u202eevil\u202c & "more"\n\n'
    "You can object at any time.\n\nA zero\u200bwidth space, a \x1b[31m control and \ufeff a BOM.\n"
)
TARGETS = [
    Target(id="fb-en", url="https://www.facebook.com/privacy/policy/", name="Facebook Privacy Policy"),
    Target(id="fr", url="https://www.facebook.com/privacy/policy/?locale=fr_FR", name="Politique (FR)"),
    Target(id="hostile", url="https://example.org/p?a=1&b=<2>", name="Hostile <b>name</b> \u202e"),
]


def build(storage: Path) -> list[tuple[str, Path]]:
    """The archive, built cycle by cycle and published after each; returns the folders to compare."""
    store = open_store(storage, TARGETS)
    config = make_config(storage, TARGETS)
    with store:
        en, fr, bad = (Builder(store, t) for t in TARGETS)
        en.version(canonical(EN[0]))
        fr.version(canonical(FR[0]))
        bad.version(HOSTILE)
        after_cycle(config, store)
        en.change(canonical(EN[1]), topics=["ai-training", "legal-basis"])
        fr.change(canonical(FR[1]), topics=["ai-training", "opt-out"])
        bad.change(HOSTILE.replace("at any time", "\u202eat no time\u202c <i>ever</i>"), topics=["opt-out"])
        after_cycle(config, store)
        en.change(canonical(EN[2]))
        fr.revert(f"{fr.target.id}@v1")
        bad.event("failing", "HTTP 503 <b>Service</b> \u202eUnavailable")
        bad.version(HOSTILE.replace("\n\n", "\n\n\n"), technical=True)
        after_cycle(config, store)
        export_site(config, store, storage.parent / "export")
        absolute = make_config(storage, TARGETS, archive_url="https://archive.example.org/watch/")
        export_site(absolute, store, storage.parent / "export-absolute")
    return [
        ("site", storage / "site"),
        ("feeds", storage / "feeds"),
        ("export", storage.parent / "export"),
        ("export-absolute", storage.parent / "export-absolute"),
    ]


def digests(folders: list[tuple[str, Path]]) -> dict[str, str]:
    """SHA-256 of every published file (not the manifest: it names the generating code's fingerprint)."""
    found = {}
    for name, folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name not in (".manifest.json", ".publish.lock"):
                relative = f"{name}/{path.relative_to(folder).as_posix()}"
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_every_published_file_is_what_the_code_before_the_speed_ups_wrote(tmp_path: Path) -> None:
    expected = json.loads(DIGESTS.read_text("utf-8"))
    found = digests(build(tmp_path / "archive"))
    assert sorted(found) == sorted(expected), "the same files"
    assert [p for p in expected if found[p] != expected[p]] == [], "the same bytes"
    assert len(found) > 100


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = digests(build(Path(tmp) / "archive"))
    Path(sys.argv[1]).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(result)} files")
