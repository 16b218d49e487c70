"""`import ota`: real history from Open Terms Archive, through the real command line.

tests/fixtures/ota/ota-excerpt.bundle holds nine real commits of pga-versions ("Facebook/Privacy Policy.md")
and genai-eu-versions ("Meta AI/Terms of Service.md"); its SOURCES.md lists them and the git commands that
established every fact asserted here (first version, the commit introducing "also called AI at Meta", the
technical commit, the commit that only rotates signed links). The archive is a real SQLite file, the
channels a real webhook receiver, live checks fetch real raw pages from a local server.
"""

from __future__ import annotations

import gzip
import json
import os
import pty
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from support.harness import Site, cli, cycle, open_archive, write_config
from support.pageserver import PageServer
from support.postgres import Backend
from support.sinks import WebhookSink
from watchdog.config import bundled_config_dir, load_config
from watchdog.extract import text_hash
from watchdog.models import Capture
from watchdog.pipeline import read_capture
from watchdog.storage.sqlite import DB_NAME

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUNDLE = FIXTURES / "ota" / "ota-excerpt.bundle"
POLICY = "Facebook/Privacy Policy.md"
AI_TERMS = "Meta AI/Terms of Service.md"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# Read from the full datasets with git (tests/fixtures/ota/SOURCES.md says how):
FIRST_RECORDED = at("2022-07-11T14:58:05+00:00")  # a3689b38, "Start tracking Facebook Privacy Policy"
ONLY_SIGNED_LINKS = at("2022-09-07T18:30:01+00:00")  # 088186fa: rotating `h=AT...` link parameters only
BEFORE_TECHNICAL = at("2025-04-23T12:30:54+00:00")  # 0663b553
TECHNICAL = at("2025-04-23T12:31:08+00:00")  # 71f203ba, "Apply technical or declaration upgrade ..."
AI_AT_META_INTRODUCED = at("2025-05-28T00:30:56+00:00")  # 4c6177e7: git log -S'also called AI at Meta'
AI_AT_META = (
    "Develop and improve artificial intelligence technology (also called AI at Meta) on Meta Products and "
    "for third parties."
)
AI_TERMS_RECORDED = [
    at("2026-01-21T23:36:24+00:00"),
    at("2026-04-21T10:32:37+00:00"),
    at("2026-05-13T10:32:30+00:00"),
]
AI_TERMS_SNAPSHOTS = [  # the raw pages OTA extracted those three versions from
    "extract/meta-ai-terms/2026-01-21T23-36-24Z.html.gz",
    "extract/meta-ai-terms/2026-04-21T10-32-37Z.html.gz",
    "browser/meta-ai-terms-2026-05-13T10-32-30Z.html.gz",
]
PRINTABLE = "extract/facebook-privacy-policy-printable-html/2025-12-16T11-35-42Z.html.gz"
PRINTABLE_DEC_2025 = "extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz"


def raw(fixture: str) -> bytes:
    return gzip.decompress((FIXTURES / fixture).read_bytes())


def import_ota(config: Path, document: str, target: str, *extra: str) -> list[dict[str, object]]:
    done = cli(
        "--config",
        str(config),
        "import",
        "ota",
        str(BUNDLE),
        "--document",
        document,
        "--target",
        target,
        *extra,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def policy_config(tmp_path: Path, base_url: str, *, channels: tuple[str, ...] = ()) -> Path:
    """Target `fb`: the printable policy, read as config/watchdog.toml reads it; channels that take every
    change (`notify = "all"`), so that anything sent would reach them."""
    path = write_config(tmp_path, base_url, [Site("fb", "/printable/", "remove = ['a[href=\"#\"]']")])
    blocks = "".join(f'\n[[channels]]\nurl = "{url}"\nnotify = "all"\n' for url in channels)
    path.write_text(path.read_text(encoding="utf-8") + blocks, encoding="utf-8")
    return path


def progress_and_result(lines: list[dict[str, object]]) -> tuple[list[dict[str, object]], dict[str, object]]:
    assert lines and lines[-1]["event"] == "done", lines
    return lines[:-1], lines[-1]


# --------------------------------------------------------------------------- the whole history


def test_a_real_history_is_imported_once_with_its_dates_technical_commits_and_no_alert(
    tmp_path: Path, page_server: PageServer, webhook_sink: WebhookSink, each_backend: Backend
) -> None:
    config = policy_config(tmp_path, page_server.base_url, channels=(webhook_sink.url,))
    progress, result = progress_and_result(import_ota(config, POLICY, "fb"))
    # six commits touch the policy: four versions, one technical version, one that repeats the text before it
    assert [p["done"] for p in progress] == [1, 2, 3, 4, 5, 6] and {p["total"] for p in progress} == {6}
    assert {k: result[k] for k in ("versions", "technical", "collapsed", "rejected", "changes")} == {
        "versions": 4, "technical": 1, "collapsed": 1, "rejected": 0, "changes": 3,
    }  # fmt: skip

    _, store = open_archive(config)
    with store:
        versions = list(reversed(store.archive.versions("fb")))  # oldest first
        changes = store.archive.changes(target="fb")
        hits = store.archive.search(f'"{AI_AT_META}"', target="fb")
        pending = store.outbox.all_pending()
    first = versions[0]
    assert first.first_seen == first.recorded_at == FIRST_RECORDED and first.source == "ota"
    assert (
        first.provenance is not None and first.provenance["title"] == "Start tracking Facebook Privacy Policy"
    )
    assert first.provenance["repository"] == str(BUNDLE) and first.provenance["path"] == POLICY
    assert first.provenance["snapshots"][0].startswith(
        "https://github.com/OpenTermsArchive/pga-snapshots/commit/"
    )
    assert len(first.provenance["commit"]) == 40

    # the commit that only rotated signed links made no version: the one before it was seen until then
    assert ONLY_SIGNED_LINKS not in [v.first_seen for v in versions]
    assert versions[1].last_seen == ONLY_SIGNED_LINKS

    # the technical commit is a technical version, and no change leads to it
    technical = next(v for v in versions if v.first_seen == TECHNICAL)
    assert technical.technical and [v.technical for v in versions].count(True) == 1
    assert technical.id not in {c.to_version for c in changes}
    into_next = next(c for c in changes if c.detected_at == AI_AT_META_INTRODUCED)
    assert into_next.from_version == technical.id

    # the known phrase was first seen at the commit that introduced it, and is still there
    assert [h.sentence for h in hits] == [AI_AT_META]
    assert hits[0].first_seen == AI_AT_META_INTRODUCED and hits[0].last_seen is None
    assert "ai-training" in into_next.topics  # classified like a live change...
    assert {c.kind for c in changes} == {"imported"} and not any(
        c.alerted for c in changes
    )  # ...never pushed
    assert pending == [] and webhook_sink.received == []

    verified = cli("--config", str(config), "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "5 versions, 3 changes" in verified.stdout
    delivered = cli("--config", str(config), "deliver")
    assert delivered.returncode == 0 and webhook_sink.received == []

    rows = [
        json.loads(line)
        for line in cli("--config", str(config), "history", "fb", "--json").stdout.splitlines()
    ]
    assert [r["source"] for r in rows] == ["ota"] * 5
    assert rows[-1]["recorded_at"] == "2022-07-11T14:58:05Z"

    # a second import adds nothing: every commit is in the ledger already
    _, again = progress_and_result(import_ota(config, POLICY, "fb"))
    assert again["covered"] == 6 and again["versions"] == again["changes"] == 0, again
    _, store = open_archive(config)
    with store:
        assert [v.id for v in store.archive.versions("fb")] == [v.id for v in reversed(versions)]
        assert len(store.archive.changes(target="fb")) == len(changes)
    assert cli("--config", str(config), "verify").returncode == 0


def table_counts(db: Path) -> dict[str, object]:
    with closing(sqlite3.connect(db)) as connection:
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("versions", "changes", "snapshots", "sentences", "import_ledger", "chain_relinks")
        }
        counts["heads"] = connection.execute("SELECT id, chain_head, chain_seq FROM targets").fetchall()
    return counts


# --------------------------------------------------------------------------- imported and live, compared


def test_an_imported_version_has_the_text_hash_of_a_live_capture_of_the_same_page(tmp_path: Path) -> None:
    """OTA's Markdown of the Meta AI terms, rendered and extracted, gives byte for byte the text our own
    reading of the raw snapshot OTA extracted it from gives, with the bundled target's selectors."""
    config_path = tmp_path / "watchdog.toml"
    bundled = (bundled_config_dir() / "watchdog.toml").read_text(encoding="utf-8")
    config_path.write_text(bundled.replace("[[targets]]", '[storage]\ndir = "archive"\n\n[[targets]]', 1))
    import_ota(config_path, AI_TERMS, "meta-ai-terms")
    config = load_config(config_path, environ={"HOME": str(tmp_path)})
    target = config.target("meta-ai-terms")
    assert target is not None
    _, store = open_archive(config_path)
    with store:
        imported = list(reversed(store.archive.versions("meta-ai-terms")))
    assert [v.first_seen for v in imported] == AI_TERMS_RECORDED
    for version, fixture in zip(imported, AI_TERMS_SNAPSHOTS, strict=True):
        page = Capture(target.id, target.url, target.url, 200, (("content-type", "text/html"),), raw(fixture),
                       version.first_seen, "http")  # fmt: skip
        assert text_hash(read_capture(target, page).text) == version.text_hash, fixture


def test_the_live_watch_starts_after_the_imported_history_without_an_alert(
    tmp_path: Path, page_server: PageServer, webhook_sink: WebhookSink
) -> None:
    """Imported first: the first live capture is a baseline; how it differs from the last imported version
    (OTA read another part of the page) is an `imported` change, never pushed; the next real change alerts."""
    config = policy_config(tmp_path, page_server.base_url, channels=(webhook_sink.url,))
    import_ota(config, POLICY, "fb")
    page_server.set("/printable/", raw(PRINTABLE))
    [first] = cycle(config)
    assert first.status == "new" and not first.alerted
    assert webhook_sink.received == []
    page_server.set("/printable/", raw(PRINTABLE_DEC_2025))
    [second] = cycle(config)
    assert second.status == "changed" and second.alerted, "the live watch alerts on the next real change"
    assert len(webhook_sink.received) == 1

    _, store = open_archive(config)
    with store:
        versions = store.archive.versions("fb")
        changes = {c.id: c for c in store.archive.changes(target="fb")}
    live = [v for v in versions if v.source == "live"]
    assert [v.id for v in live] == [second.version, first.version]
    bridge = next(c for c in changes.values() if c.to_version == first.version)
    assert bridge.kind == "imported" and not bridge.alerted
    assert bridge.from_version == next(v for v in versions if v.source == "ota").id  # the last imported one
    assert (
        changes[str(second.change)].kind == "change"
        and changes[str(second.change)].from_version == first.version
    )
    assert cli("--config", str(config), "verify").returncode == 0


def test_importing_into_a_target_already_watched_relinks_its_chain_and_verify_proves_both(
    tmp_path: Path, page_server: PageServer, each_backend: Backend
) -> None:
    """The live watch began first: the imported history goes before it in the chain (recording order),
    the live records are re-linked, and the chain as it was before the import still verifies."""
    config = policy_config(tmp_path, page_server.base_url)
    page_server.set("/printable/", raw(PRINTABLE))
    [baseline] = cycle(config)
    _, store = open_archive(config)
    with store:
        [(old_head, old_count)] = [(h.head, h.count) for h in store.archive.chain_heads()]
    anchor = tmp_path / "chain-heads.json"  # as a reader of the archive kept them before the import
    assert cli("--config", str(config), "export", "--chain-heads", str(anchor)).returncode == 0

    _, result = progress_and_result(import_ota(config, POLICY, "fb"))
    assert result["versions"] == 4 and result["relinked"] == 1  # the one live record, the baseline

    _, store = open_archive(config)
    with store:
        chain = [e for e in store.archive.chain() if e.target_id == "fb"]
        [relink] = store.archive.relinks()
    kinds = [(e.kind, e.version.source if e.version else e.change.kind if e.change else "") for e in chain]
    assert kinds[:5] == [("version", "ota"), ("version", "ota"), ("change", "imported"), ("version", "ota"),
                         ("change", "imported")]  # fmt: skip
    assert kinds[-2:] == [("version", "live"), ("change", "imported")]  # the baseline, then the bridge to it
    assert chain[-2].id == baseline.version
    assert [e.chain_seq for e in chain] == list(range(1, len(chain) + 1))
    assert (relink.old_head, relink.old_count, relink.position) == (old_head, old_count, 1)
    assert [s[0] for s in relink.superseded] == [baseline.version]
    assert cli("--config", str(config), "verify").returncode == 0
    anchored = cli("--config", str(config), "verify", "--against", str(anchor))
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr  # the head kept before still stands

    # the superseded link is evidence too: altering it is caught
    tamper = "UPDATE chain_superseded SET record_hash = 'x' || substr(record_hash, 2)"
    if each_backend.url is None:
        with closing(sqlite3.connect(tmp_path / "archive" / DB_NAME)) as connection, connection:
            connection.execute(tamper)
    else:
        with psycopg.connect(each_backend.url, autocommit=True) as connection:
            connection.execute(tamper)
    broken = cli("--config", str(config), "verify")
    assert broken.returncode == 1 and "the chain before the import" in broken.stdout + broken.stderr


@pytest.mark.postgres
def test_an_import_and_its_relink_travel_with_copy_archive(
    tmp_path: Path, page_server: PageServer, postgres_url: str
) -> None:
    """copy-archive carries the import ledger and the superseded links: on PostgreSQL the copy verifies,
    against the chain heads kept before the import too, and importing again there adds nothing."""
    config = policy_config(tmp_path, page_server.base_url)
    page_server.set("/printable/", raw(PRINTABLE))
    cycle(config)
    anchor = tmp_path / "chain-heads.json"
    assert cli("--config", str(config), "export", "--chain-heads", str(anchor)).returncode == 0
    import_ota(config, AI_TERMS, "fb")
    copied = cli("--config", str(config), "copy-archive", "--to", postgres_url, timeout=300)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    postgres = tmp_path / "postgres.toml"
    postgres.write_text(
        config.read_text(encoding="utf-8").replace(
            'dir = "archive"', f'dir = "pg"\nurl = "{postgres_url}"', 1
        )
    )
    verified = cli("--config", str(postgres), "verify", "--against", str(anchor))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with closing(sqlite3.connect(tmp_path / "archive" / DB_NAME)) as connection:
        ledger = connection.execute("SELECT count(*) FROM import_ledger").fetchone()[0]
    again = cli(
        "--config", str(postgres), "import", "ota", str(BUNDLE), "--document", AI_TERMS, "--target", "fb"
    )
    assert again.returncode == 0 and ledger == 3, again.stderr
    assert '"covered": 3' in again.stdout


# --------------------------------------------------------------------------- bad input, progress


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            (str(BUNDLE), "--document", "Nope/Nothing.md", "--target", "fb"),
            "no commit touches",
            id="unknown-document",
        ),
        pytest.param(
            ("/nonexistent/repo", "--document", POLICY, "--target", "fb"),
            "no such repository",
            id="no-repository",
        ),
        pytest.param(
            (str(BUNDLE), "--document", POLICY, "--target", "nope"), "unknown target", id="unknown-target"
        ),
    ],
)
def test_bad_arguments_are_one_clear_line(tmp_path: Path, arguments: tuple[str, ...], message: str) -> None:
    config = policy_config(tmp_path, "http://127.0.0.1:9")
    done = cli("--config", str(config), "import", "ota", *arguments)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert (
        not (tmp_path / "archive" / DB_NAME).exists()
        or table_counts(tmp_path / "archive" / DB_NAME)["versions"] == 0
    )


def test_not_a_repository_is_named(tmp_path: Path) -> None:
    config = policy_config(tmp_path, "http://127.0.0.1:9")
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(b"this is no git bundle\n")
    done = cli("--config", str(config), "import", "ota", str(junk), "--document", POLICY, "--target", "fb")
    assert done.returncode == 1 and str(junk) in done.stderr and "Traceback" not in done.stderr


def test_a_terminal_gets_a_progress_bar_and_a_summary(tmp_path: Path) -> None:
    config = policy_config(tmp_path, "http://127.0.0.1:9")
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "watchdog",
                "--config",
                str(config),
                "import",
                "ota",
                str(BUNDLE),
                "--document",
                AI_TERMS,
                "--target",
                "fb",
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            check=False,
            timeout=120,
        )
        os.close(follower)
        bar = _drain(leader)
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert "fb [" in bar and "3/3" in bar and "\r" in bar
    assert done.stdout.startswith("fb: imported 3 version(s) from ota") and "nothing was sent" in done.stdout
    assert "{" not in done.stdout  # no JSON lines on a terminal


def _drain(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
