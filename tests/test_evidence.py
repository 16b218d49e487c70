"""Evidence: `verify` names every altered or missing blob and record; `export --format jsonl` lets anyone
re-check the chain with nothing but hashlib and json."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sqlite3
import zlib
from collections.abc import Callable
from contextlib import closing, redirect_stdout
from pathlib import Path

import pytest

from support.archives import Builder, corpus_archive, open_store
from support.harness import Site, cli, write_config
from support.pageserver import PageServer
from watchdog import cli as watchdog_cli
from watchdog.models import Alert, OwedAlert, Target
from watchdog.publish import commands
from watchdog.publish.evidence import check_archive, export_jsonl, verify
from watchdog.storage import records
from watchdog.storage.chain import chain_hash, change_payload
from watchdog.storage.sqlite import DB_NAME, SqliteStorage

META = Target(id="meta", url="https://example.org/policy", name="Meta Privacy Policy")
BASE = "Our policy explains how we use information.\nYou can contact us at any time.\n"


def build(directory: Path) -> Path:
    """v1, v2 + c1, v3 + c2, one owed alert; returns the config file whose storage dir holds it."""
    config = write_config(directory, "http://127.0.0.1:9", [Site("meta", "/policy")])
    with open_store(directory / "archive", [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        meta.change(BASE + "We use public posts to train AI.\n", topics=["ai-training"])
        meta.change(BASE + "We use public posts to train AI. You can object.\n", topics=["opt-out"])
        alert = Alert("meta@c2", "change", "meta", "t", "text", "md", "<p>html</p>", ("opt-out",))
        meta.record(meta.clock, alerts=(OwedAlert(alert.event_id, alert.to_json(), ("mail",)),))
    return config


def run(handler: Callable[[argparse.Namespace], int], config: Path, *argv: str) -> tuple[int, str]:
    """A command's handler, with its arguments parsed by the CLI's parser."""
    command = {commands.cmd_export: "export", commands.cmd_verify: "verify"}[handler]
    args = watchdog_cli.build_parser().parse_args(["--config", str(config), command, *argv])
    out = io.StringIO()
    with redirect_stdout(out):
        code = handler(args)
    return code, out.getvalue()


# --------------------------------------------------------------------------- an intact archive


def test_an_intact_archive_verifies(tmp_path: Path) -> None:
    config = build(tmp_path)
    code, out = run(commands.cmd_verify, config)
    assert (code, out) == (0, "ok: 3 versions, 2 changes, 7 blobs verified\n")  # 3 texts, 3 bodies, 1 alert


def test_a_real_pipeline_archive_verifies_and_exports_its_provenance(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, _ = corpus_archive(tmp_path_factory, page_server, "may-2025")
    with SqliteStorage.open(config.storage_dir, writer=False) as store:
        assert verify(store) == []
        out = io.StringIO()
        assert export_jsonl(store, out) == (2, 1)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["id"] for line in lines] == ["fb@v1", "fb@v2", "fb@c1"], "chain order"
    snapshot = lines[1]["snapshot"]
    assert (snapshot["status"], snapshot["fetcher"]) == (200, "http")
    assert snapshot["url"] == snapshot["final_url"] == config.targets[0].url  # the page server's /policy
    assert snapshot["fetched_at"] == lines[1]["first_seen"] and len(snapshot["body_hash"]) == 64
    assert {"ai-training", "legal-basis"} <= set(lines[2]["topics"])


# --------------------------------------------------------------------------- tampering


def blob_path(store_dir: Path, digest: str) -> Path:
    return store_dir / "blobs" / digest[:2] / digest


def sql(store_dir: Path, statement: str, *params: object) -> None:
    with closing(sqlite3.connect(store_dir / DB_NAME)) as db:  # foreign keys off: as a tamperer would
        db.execute(statement, params)
        db.commit()


def column(store_dir: Path, query: str, *params: object) -> str:
    with closing(sqlite3.connect(store_dir / DB_NAME)) as db:
        return str(db.execute(query, params).fetchone()[0])


def text_hash(d: Path, version: str) -> str:
    return column(d, "SELECT text_hash FROM versions WHERE id = ?", version)


def snapshot_hash(d: Path, version: str) -> str:
    return column(
        d,
        "SELECT s.body_hash FROM snapshots s JOIN versions v ON v.snapshot_id = s.id WHERE v.id = ?",
        version,
    )


def rehash_c1_after_editing_it(d: Path) -> None:
    """A careful tamperer edits c1 and recomputes its record hash; the next record still names the old one."""
    sql(d, "UPDATE changes SET summary = 'nothing to see' WHERE id = 'meta@c1'")
    with closing(sqlite3.connect(d / DB_NAME)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM changes WHERE id = 'meta@c1'").fetchone()
        db.execute(
            "UPDATE changes SET record_hash = ? WHERE id = 'meta@c1'",
            (chain_hash(row["prev_hash"], change_payload(records.change(row))),),
        )
        db.commit()


TAMPERING = [
    pytest.param(
        lambda d: blob_path(d, text_hash(d, "meta@v2")).write_bytes(zlib.compress(b"We never train AI.\n")),
        ["text of version meta@v2", "was altered"],
        id="text-blob-edited",
    ),
    pytest.param(
        lambda d: blob_path(d, text_hash(d, "meta@v2")).unlink(),
        ["text of version meta@v2", "is missing"],
        id="text-blob-deleted",
    ),
    pytest.param(
        lambda d: blob_path(d, text_hash(d, "meta@v1")).write_bytes(b"not zlib at all"),
        ["text of version meta@v1", "unreadable"],
        id="text-blob-garbled",
    ),
    pytest.param(
        lambda d: blob_path(d, snapshot_hash(d, "meta@v3")).write_bytes(
            zlib.compress(b"<html>forged</html>")
        ),
        ["raw body of snapshot", "was altered"],
        id="snapshot-body-edited",
    ),
    pytest.param(
        lambda d: blob_path(d, column(d, "SELECT alert_hash FROM outbox")).unlink(),
        ["alert meta@c2 owed to channel mail", "is missing"],
        id="alert-blob-deleted",
    ),
    pytest.param(
        lambda d: sql(d, "UPDATE changes SET summary = 'cosmetic edits only' WHERE id = 'meta@c1'"),
        ["change meta@c1: record hash mismatch"],
        id="summary-edited",
    ),
    pytest.param(
        lambda d: sql(d, "UPDATE changes SET topics = '[]' WHERE id = 'meta@c2'"),
        ["change meta@c2: record hash mismatch"],
        id="topics-edited",
    ),
    pytest.param(
        lambda d: sql(
            d, "UPDATE changes SET detected_at = '2020-01-01T00:00:00.000000+00:00' WHERE id = 'meta@c1'"
        ),
        ["change meta@c1: record hash mismatch"],
        id="detection-backdated",
    ),
    pytest.param(
        lambda d: sql(d, "UPDATE versions SET text_hash = ? WHERE id = 'meta@v2'", text_hash(d, "meta@v1")),
        ["version meta@v2: record hash mismatch"],
        id="text-hash-swapped",
    ),
    pytest.param(
        lambda d: sql(
            d,
            "UPDATE snapshots SET status = 404 "
            "WHERE id = (SELECT snapshot_id FROM versions WHERE id = 'meta@v2')",
        ),
        ["version meta@v2: record hash mismatch"],
        id="http-status-edited",
    ),
    pytest.param(
        lambda d: sql(d, "UPDATE snapshots SET final_url = 'https://evil.example/' WHERE id = 1"),
        ["version meta@v1: record hash mismatch"],
        id="fetch-url-edited",
    ),
    pytest.param(
        lambda d: sql(d, "UPDATE versions SET length = 3 WHERE id = 'meta@v3'"),
        ["version meta@v3: its length (3) differs"],
        id="length-edited",
    ),
    pytest.param(
        lambda d: sql(d, "DELETE FROM changes WHERE id = 'meta@c2'"),
        ["target meta: its chain head", "position(s) 5 missing"],
        id="last-change-deleted",
    ),
    pytest.param(
        lambda d: sql(d, "DELETE FROM versions WHERE id = 'meta@v2'"),
        [
            "position(s) 2 missing",
            "change meta@c1: its prev_hash does not link",
            "to version meta@v2 is missing",
        ],
        id="middle-version-deleted",
    ),
    pytest.param(
        lambda d: sql(
            d, "DELETE FROM snapshots WHERE id = (SELECT snapshot_id FROM versions WHERE id = 'meta@v3')"
        ),
        ["version meta@v3: its raw snapshot", "is missing"],
        id="snapshot-row-deleted",
    ),
    pytest.param(
        rehash_c1_after_editing_it,
        ["version meta@v3: its prev_hash does not link to the record before it (meta@c1)"],
        id="edited-and-rehashed",
    ),
]


@pytest.mark.parametrize(("tamper", "expected"), TAMPERING)
def test_verify_names_what_was_tampered_with(
    tmp_path: Path, tamper: Callable[[Path], None], expected: list[str]
) -> None:
    config = build(tmp_path)
    tamper(tmp_path / "archive")
    code, out = run(commands.cmd_verify, config)
    assert code == 1
    for words in expected:
        assert words in out, out
    assert out.splitlines()[-1].startswith("verify: ") and "problem(s)" in out.splitlines()[-1]
    with SqliteStorage.open(tmp_path / "archive", writer=False) as store:
        report = check_archive(store)
    assert not report.ok and len(report.problems) == len(out.splitlines()) - 1


# --------------------------------------------------------------------------- export


def test_the_export_is_enough_to_recheck_every_hash_independently(tmp_path: Path) -> None:
    config = build(tmp_path)
    code, out = run(commands.cmd_export, config, "--format", "jsonl", "--with-text")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["type"], line["id"]) for line in lines] == [
        ("version", "meta@v1"),
        ("version", "meta@v2"),
        ("change", "meta@c1"),
        ("version", "meta@v3"),
        ("change", "meta@c2"),
    ]
    previous = ""
    for line in lines:
        canonical = json.dumps(
            {"prev": line["prev_hash"], **line["payload"]},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == line["record_hash"], line["id"]
        assert line["prev_hash"] == previous, "each record names the one before it"
        previous = line["record_hash"]
        if line["type"] == "version":
            assert hashlib.sha256(line["text"].encode("utf-8")).hexdigest() == line["text_hash"]
            assert line["snapshot"]["url"] == META.url and line["snapshot"]["status"] == 200
    assert lines[2]["summary"] and lines[2]["topics"] == ["ai-training"] and lines[2]["evidence"]


def test_export_to_a_file(tmp_path: Path) -> None:
    config = build(tmp_path)
    target = tmp_path / "evidence.jsonl"
    assert run(commands.cmd_export, config, "--output", str(target))[0] == 0
    lines = target.read_text("utf-8").splitlines()
    assert len(lines) == 5 and all("text" not in json.loads(line) for line in lines), "texts only on request"
    assert not list(tmp_path.glob(".evidence.jsonl.*")), "no temporary file left behind"


@pytest.mark.skipif(
    "verify" not in watchdog_cli.COMMANDS,
    reason="the lead has not registered the publish commands in cli.COMMANDS yet",
)
def test_the_real_command_line(tmp_path: Path) -> None:
    config = build(tmp_path)
    ok = cli("--config", str(config), "verify")
    assert (ok.returncode, ok.stdout) == (0, "ok: 3 versions, 2 changes, 7 blobs verified\n")
    exported = cli("--config", str(config), "export", "--format", "jsonl")
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 5
    sql(tmp_path / "archive", "UPDATE changes SET summary = 'x' WHERE id = 'meta@c2'")
    broken = cli("--config", str(config), "verify")
    assert broken.returncode == 1 and "change meta@c2: record hash mismatch" in broken.stdout
    assert "Traceback" not in broken.stderr
