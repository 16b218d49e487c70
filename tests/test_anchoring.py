"""Issue 11, point 10: the hash chain anchored. Each target's chain verifies on its own, so a rewrite that
recomputes every hash, a trimmed tail or a deleted target passed `verify`; checked against chain heads kept
earlier (`export --chain-heads`, or the copy published beside the feeds and the site), each is caught."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from support.archives import Builder, make_config, open_store
from support.harness import Site, cli, write_config
from watchdog.models import Target
from watchdog.publish import after_cycle
from watchdog.storage import records as rows_of
from watchdog.storage.chain import chain_hash, change_payload, version_payload
from watchdog.storage.sqlite import DB_NAME

META = Target("meta", "https://example.org/policy", "Meta Privacy Policy")
CNIL = Target("cnil", "https://example.org/cnil", "CNIL")
BASE = "Privacy Policy\nWe collect what you share.\n"


def build(directory: Path) -> Path:
    """meta: v1, v2 + c1, v3 + c2; cnil: v1. Returns the config file whose storage dir holds them."""
    config = write_config(directory, "http://127.0.0.1:9", [Site("meta", "/policy"), Site("cnil", "/cnil")])
    with open_store(directory / "archive", [META, CNIL]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        meta.change(BASE + "We use public posts to train AI.\n", topics=["ai-training"])
        meta.change(BASE + "We use public posts to train AI. You can object.\n", topics=["opt-out"])
        Builder(store, CNIL).version("Recommandations\n")
    return config


def sql(directory: Path, *statements: str) -> None:
    with closing(sqlite3.connect(directory / DB_NAME)) as db:  # foreign keys off: as a tamperer would
        for statement in statements:
            db.execute(statement)
        db.commit()


def rechain(directory: Path, target: str) -> None:
    """What a careful tamperer does after editing records: recompute every record hash and link of the
    target, and its chain head and counters, so that the archive verifies on its own again."""
    with closing(sqlite3.connect(directory / DB_NAME)) as db:
        db.row_factory = sqlite3.Row
        snapshots = {r["id"]: rows_of.snapshot(r) for r in db.execute("SELECT * FROM snapshots")}
        records = [
            (r["chain_seq"], "versions", r["id"], version_payload(v, snapshots.get(v.snapshot_id or -1)))
            for r in db.execute("SELECT * FROM versions WHERE target_id = ?", (target,))
            if (v := rows_of.version(r))
        ]
        records += [
            (r["chain_seq"], "changes", r["id"], change_payload(rows_of.change(r)))
            for r in db.execute("SELECT * FROM changes WHERE target_id = ?", (target,))
        ]
        prev = ""
        for position, (_seq, table, record_id, payload) in enumerate(sorted(records), start=1):
            record = chain_hash(prev, payload)
            db.execute(
                f"UPDATE {table} SET chain_seq = ?, prev_hash = ?, record_hash = ? WHERE id = ?",
                (position, prev, record, record_id),
            )
            prev = record
        counts = {t: sum(1 for r in records if r[1] == t) for t in ("versions", "changes")}
        db.execute(
            "UPDATE targets SET chain_head = ?, chain_seq = ?, version_seq = ?, change_seq = ? WHERE id = ?",
            (prev, len(records), counts["versions"], counts["changes"], target),
        )
        db.commit()


def heads_of(config: Path, path: Path) -> dict[str, dict[str, object]]:
    exported = cli("--config", str(config), "export", "--chain-heads", str(path))
    assert exported.returncode == 0 and exported.stdout == "", exported
    assert f"{path}: chain heads of 2 target(s)" in exported.stderr
    targets: dict[str, dict[str, object]] = json.loads(path.read_text("utf-8"))["targets"]
    return targets


def verify(config: Path, *args: str) -> tuple[int, str]:
    result = cli("--config", str(config), "verify", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout + result.stderr


def test_the_chain_heads_name_each_targets_last_record(tmp_path: Path) -> None:
    config = build(tmp_path)
    heads = heads_of(config, tmp_path / "heads.json")
    with closing(sqlite3.connect(tmp_path / "archive" / DB_NAME)) as db:
        last_change = db.execute("SELECT record_hash FROM changes WHERE id = 'meta@c2'").fetchone()[0]
        cnil_v1 = db.execute("SELECT record_hash FROM versions WHERE id = 'cnil@v1'").fetchone()[0]
    assert heads == {"meta": {"head": last_change, "records": 5}, "cnil": {"head": cnil_v1, "records": 1}}
    assert verify(config, "--against", str(tmp_path / "heads.json")) == (
        0,
        "ok: 4 versions, 2 changes, 7 blobs verified\n"
        f"ok: every chain of {tmp_path / 'heads.json'} (2 target(s)) is still whole\n",
    )


def test_a_recomputed_chain_passes_verify_alone_and_fails_against_the_heads(tmp_path: Path) -> None:
    config = build(tmp_path)
    heads_of(config, tmp_path / "heads.json")
    archive = tmp_path / "archive"
    sql(archive, "UPDATE changes SET summary = 'cosmetic edits only', topics = '[]' WHERE id = 'meta@c1'")
    rechain(archive, "meta")
    assert verify(config)[0] == 0, "rehashed with care: the archive verifies on its own"
    code, out = verify(config, "--against", str(tmp_path / "heads.json"))
    assert code == 1 and "target meta: record 5 is" in out and "the chain was rewritten" in out, out
    assert "target cnil" not in out, "an untouched chain is not reported"


def test_a_trimmed_tail_passes_verify_alone_and_fails_against_the_heads(tmp_path: Path) -> None:
    config = build(tmp_path)
    heads_of(config, tmp_path / "heads.json")
    archive = tmp_path / "archive"
    sql(
        archive,
        "DELETE FROM changes WHERE id = 'meta@c2'",
        "DELETE FROM versions WHERE id = 'meta@v3'",
        "UPDATE targets SET current_version = 'meta@v2' WHERE id = 'meta'",
    )
    rechain(archive, "meta")
    assert verify(config)[0] == 0
    code, out = verify(config, "--against", str(tmp_path / "heads.json"))
    assert code == 1 and "the anchor has 5 records, the archive 3: its newest records were removed" in out


def test_a_deleted_target_passes_verify_alone_and_fails_against_the_heads(tmp_path: Path) -> None:
    config = build(tmp_path)
    heads_of(config, tmp_path / "heads.json")
    tables = ("changes", "versions", "snapshots", "outbox", "events", "targets")
    sql(
        tmp_path / "archive",
        *(
            f"DELETE FROM {t} WHERE {'id' if t == 'targets' else 'target_id'} = 'cnil'"
            for t in tables
            if t != "outbox"
        ),
    )
    assert verify(config)[0] == 0
    code, out = verify(config, "--against", str(tmp_path / "heads.json"))
    assert code == 1 and "target cnil: the anchor has 1 records, the archive none: deleted" in out, out


def test_an_archive_that_only_grew_passes_against_older_heads(tmp_path: Path) -> None:
    config = build(tmp_path)
    heads_of(config, tmp_path / "heads.json")
    with open_store(tmp_path / "archive", [META]) as store:
        meta = Builder(store, META, current="meta@v3", texts={"meta@v3": BASE})
        meta.change(BASE + "A newer sentence.\n")
    assert verify(config, "--against", str(tmp_path / "heads.json"))[0] == 0


def test_a_file_that_is_no_chain_heads_is_a_usage_error(tmp_path: Path) -> None:
    config = build(tmp_path)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    result = cli("--config", str(config), "verify", "--against", str(tmp_path / "bad.json"))
    assert result.returncode == 2 and result.stderr.startswith(f"error: {tmp_path / 'bad.json'}: not a chain")
    missing = cli("--config", str(config), "verify", "--against", str(tmp_path / "missing.json"))
    assert missing.returncode == 2 and "No such file or directory" in missing.stderr


def test_the_heads_are_published_beside_the_feeds_and_the_site(tmp_path: Path) -> None:
    config_path = build(tmp_path)
    exported = tmp_path / "heads.json"
    heads_of(config_path, exported)
    config = make_config(tmp_path / "archive", [META, CNIL])
    with open_store(tmp_path / "archive", [META, CNIL]) as store:
        after_cycle(config, store)
    site, feeds = tmp_path / "archive" / "site", tmp_path / "archive" / "feeds"
    assert (site / "chain-heads.json").read_bytes() == exported.read_bytes()
    assert (feeds / "chain-heads.json").read_bytes() == exported.read_bytes()
    index = (site / "index.html").read_text("utf-8")
    assert 'href="chain-heads.json"' in index and "verify --against chain-heads.json" in index
    assert verify(config_path, "--against", str(feeds / "chain-heads.json"))[0] == 0
