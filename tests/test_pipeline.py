"""The archive pipeline end to end: real pages over loopback, the real archive (each test on both backends:
SQLite, and a real PostgreSQL server), the real CLI.

Fetch -> extract -> validate -> store against the local page server serving the real corpus versions wrapped
in page chrome with randomised noise, plus failed captures and faults.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from support.corpus import render_page
from support.harness import Site, cli, cycle, open_archive, write_config
from support.pageserver import PageServer, Reply
from support.replay import corpus_text

APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
IG = "milestones/instagram-privacy-policy-en-eu/"

pytestmark = pytest.mark.usefixtures("each_backend")


def page(relative: str, seed: int = 0) -> bytes:
    return render_page(corpus_text(relative), seed=seed)


def test_baseline_noise_and_a_real_wording_change(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", page(APRIL, seed=1), etag=False)
    (first,) = cycle(config)
    assert (first.status, first.version, first.change, first.alerted) == ("new", "fb@v1", None, False)

    page_server.set("/policy", page(APRIL, seed=2), etag=False)  # same policy, new noise (params, nonces)
    (second,) = cycle(config)
    assert (second.status, second.version, second.change) == ("unchanged", "fb@v1", None)

    page_server.set("/policy", page(MAY, seed=3), etag=False)  # the May 2025 "AI at Meta" change
    (third,) = cycle(config)
    assert (third.status, third.version, third.change) == ("changed", "fb@v2", "fb@c1")
    assert {"ai-training", "legal-basis"} <= set(third.topics)
    _config, store = open_archive(config)
    with store:
        assert [v.id for v in store.archive.versions("fb")] == ["fb@v2", "fb@v1"]
        assert "Develop and improve artificial intelligence technology" in store.archive.version_text("fb@v2")
        assert "Develop and improve artificial intelligence technology" not in store.archive.version_text(
            "fb@v1"
        )


def test_conditional_get_304_is_unchanged_without_parsing(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", page(APRIL), etag=True)
    assert cycle(config)[0].status == "new"
    assert cycle(config)[0].status == "unchanged"
    last = page_server.requests_to("/policy")[-1]
    assert last.headers.get("if-none-match"), "the server's own ETag was replayed"
    _config, store = open_archive(config)
    with store:
        assert len(store.archive.snapshots("fb")) == 1, "a 304 stores no snapshot"


FAILED_CAPTURES = [
    pytest.param(IG + "2025-05-21.md", "too-short", id="29-byte-capture"),
    pytest.param(IG + "2024-04-16.md", None, id="headings-only"),
    pytest.param(IG + "2025-08-08.md", None, id="error-page-and-cookie-dialog"),
]


@pytest.mark.parametrize(("relative", "code"), FAILED_CAPTURES)
def test_real_failed_captures_never_become_versions(
    page_server: PageServer, tmp_path: Path, relative: str, code: str | None
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("ig", "/ig")])
    page_server.set("/ig", page(IG + "2023-12-27.md"))
    assert cycle(config)[0].status == "new"
    page_server.set("/ig", page(relative, seed=5))
    (outcome,) = cycle(config)
    assert outcome.status == "rejected" and outcome.reason
    assert outcome.version == "ig@v1" and outcome.change is None
    if code:
        assert outcome.extra["code"] == code
    _config, store = open_archive(config)
    with store:
        assert len(store.archive.versions("ig")) == 1
        (rejected,) = store.archive.snapshots("ig", outcome="rejected")
        assert rejected.reason == outcome.reason, "the failed capture is kept as evidence, with its reason"


def test_a_failed_first_capture_is_rejected_too(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("ig", "/ig")])
    page_server.set("/ig", page(IG + "2025-08-08.md"))
    (outcome,) = cycle(config)
    assert outcome.status == "rejected" and outcome.version is None


def test_one_broken_target_never_stops_the_others(page_server: PageServer, tmp_path: Path) -> None:
    sites = [Site("down", "/500"), Site("fb", "/policy"), Site("reset", "/reset"), Site("login", "/moved")]
    config = write_config(tmp_path, page_server.base_url, sites)
    page_server.set("/500", Reply(status=500, body="oops"))
    page_server.set("/reset", Reply(fault="reset"))
    page_server.set("/policy", page(APRIL))
    page_server.set(
        "/login",
        "<html><body><div id=root><h1>Log in to Facebook</h1><form>Email or phone"
        "<input><button>Log in</button></form>Forgot password? Create new account</div>",
    )
    page_server.redirect("/moved", "/login")
    outcomes = {o.target_id: o for o in cycle(config)}
    assert outcomes["fb"].status == "new"
    assert outcomes["down"].status == "error" and "500" in (outcomes["down"].reason or "")
    assert outcomes["reset"].status == "error"
    assert outcomes["login"].status == "rejected"


def test_check_json_lines_and_exit_codes(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy"), Site("gone", "/404")])
    page_server.set("/policy", page(APRIL))
    page_server.set("/404", Reply(status=404, body="not found"))
    result = cli("--config", str(config), "check", "--json")
    assert result.returncode == 1, result.stderr  # one target rejected
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["target"] for line in lines] == ["fb", "gone"]
    keys = {"target", "status", "version", "change", "topics", "alerted", "reason"}
    assert all(keys <= set(line) for line in lines)
    assert lines[0] | {"version": None} == {
        **lines[0],
        "status": "new",
        "change": None,
        "topics": [],
        "alerted": False,
        "reason": None,
        "version": None,
    }
    assert lines[1]["status"] == "rejected" and "404" in lines[1]["reason"]
    only = cli("--config", str(config), "check", "fb", "--json")
    assert only.returncode == 0 and json.loads(only.stdout)["status"] == "unchanged"
    unknown = cli("--config", str(config), "check", "nope")
    assert unknown.returncode == 2 and "unknown target nope" in unknown.stderr


def test_reading_commands(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", page(APRIL), etag=False)
    cycle(config)
    page_server.set("/policy", page(MAY), etag=False)
    cycle(config)
    history = cli("--config", str(config), "history", "fb", "--json")
    assert [json.loads(line)["id"] for line in history.stdout.splitlines()] == ["fb@v2", "fb@v1"]
    shown = cli("--config", str(config), "show", "fb@v2")
    assert shown.returncode == 0 and "AI at Meta" in shown.stdout
    targets = cli("--config", str(config), "targets", "--json")
    row = json.loads(targets.stdout)
    assert row["target"] == "fb" and row["state"] == "ok" and row["current_version"] == "fb@v2"
    missing = cli("--config", str(config), "show", "fb@v9")
    assert missing.returncode == 2 and "no version" in missing.stderr and "Traceback" not in missing.stderr


def test_history_shows_a_text_coming_back_after_a_revert(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    for n, version in enumerate((APRIL, MAY, APRIL)):  # A -> B -> A: the third capture is a revert
        page_server.set("/policy", page(version, seed=n), etag=False)
        cycle(config)
    rows = [
        json.loads(line)
        for line in cli("--config", str(config), "history", "fb", "--json").stdout.splitlines()
    ]
    assert [(r["id"], r["current"]) for r in rows] == [("fb@v2", False), ("fb@v1", True)]
    assert [ret["change"] for ret in rows[1]["returns"]] == ["fb@c2"] and rows[1]["returns"][0][
        "from"
    ] == "fb@v2"
    table = cli("--config", str(config), "history", "fb").stdout
    line = next(row for row in table.splitlines() if row.startswith("fb@v1"))
    assert line.endswith(f"current, back {rows[1]['returns'][0]['at'][:10]} (c2)")


def test_reextract_adds_a_technical_version_and_never_alerts(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", page(APRIL), etag=False)
    cycle(config)
    # the operator decides tables are noise: same raw snapshots, different extraction settings
    text = config.read_text().replace('select = ["#root"]', 'select = ["#root"]\nremove = ["table"]')
    config.write_text(text)
    result = cli("--config", str(config), "reextract", "fb")
    assert result.returncode == 0, result.stderr
    assert "added technical version fb@v2" in result.stdout
    _config, store = open_archive(config)
    with store:
        assert store.archive.version("fb@v2").technical and store.archive.changes() == []
    (after,) = cycle(config)
    assert after.status == "unchanged" and after.version == "fb@v2", "the next check compares like with like"


def test_default_config_offline_every_target_errors_readably(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "POLICY_WATCHDOG_CONFIG": ""}
    result = cli("check", "--json", env=env, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 9
    assert all(line["status"] == "error" and line["reason"] for line in lines)
    assert (tmp_path / ".local/state/policy-watchdog/archive.sqlite3").exists()


def test_kill_9_during_check_never_corrupts_the_archive(page_server: PageServer, tmp_path: Path) -> None:
    sites = [Site(f"t{i}", f"/p{i}") for i in range(4)]
    config = write_config(tmp_path, page_server.base_url, sites)
    versions = [APRIL, MAY, APRIL]  # the last round is an A->B->A revert
    for round_ in range(3):
        for i in range(4):
            page_server.set(f"/p{i}", page(versions[round_], seed=i), etag=False)
        with subprocess.Popen(
            [sys.executable, "-m", "watchdog", "--config", str(config), "check"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as proc:
            time.sleep(0.4 + 0.3 * round_)
            os.kill(proc.pid, signal.SIGKILL)
        db = tmp_path / "archive" / "archive.sqlite3"
        if db.exists():
            with closing(sqlite3.connect(db)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        outcomes = cycle(config)  # the next check completes and sees a consistent archive
        assert all(o.status in ("new", "changed", "unchanged") for o in outcomes), outcomes
    verify = cli("--config", str(config), "history", "t0", "--json")
    assert verify.returncode == 0


def _without_second_half(markdown: str) -> str:
    """The policy with its sections from the middle on missing, nothing new: what a failed capture holds."""
    cuts = [i for i, line in enumerate(markdown.split("\n")) if line.startswith("#")]
    lines = markdown.split("\n")
    return "\n".join(lines[: cuts[len(cuts) // 3]])


def test_a_shorter_text_that_persists_becomes_the_new_normal(page_server: PageServer, tmp_path: Path) -> None:
    """A capture with whole sections missing is rejected; if the very same text comes back three times in a
    row it is the page's new normal, accepted as a `capture` change (never announced as a wording change)."""
    config = write_config(tmp_path, page_server.base_url, [Site("fr", "/fr")])
    full = corpus_text("milestones/meta-privacy-policy-fr-fr/2025-06-16.md")
    page_server.set("/fr", render_page(full), etag=False)
    assert cycle(config)[0].status == "new"
    shorter = _without_second_half(full)
    statuses = []
    for seed in range(4):
        page_server.set("/fr", render_page(shorter, seed=seed), etag=False)
        (outcome,) = cycle(config)
        statuses.append((outcome.status, outcome.extra.get("code"), outcome.extra.get("kind")))
    rejected = ("rejected", "shrunk", None)
    assert statuses == [rejected, rejected, ("changed", None, "capture"), ("unchanged", None, None)]


def test_a_shorter_rewrite_is_accepted_at_once(page_server: PageServer, tmp_path: Path) -> None:
    """The French September 2025 policy: half as long as June's, with new prose: a wording change."""
    config = write_config(tmp_path, page_server.base_url, [Site("fr", "/fr")])
    page_server.set("/fr", render_page(corpus_text("milestones/meta-privacy-policy-fr-fr/2025-06-16.md")))
    cycle(config)
    page_server.set("/fr", render_page(corpus_text("milestones/meta-privacy-policy-fr-fr/2025-09-04.md")))
    (outcome,) = cycle(config)
    assert (outcome.status, outcome.extra.get("kind")) == ("changed", "change")


def test_a_shrink_that_keeps_changing_is_never_accepted(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fr", "/fr")])
    full = corpus_text("milestones/meta-privacy-policy-fr-fr/2025-06-16.md")
    page_server.set("/fr", render_page(full))
    cycle(config)
    partial = _without_second_half(full).splitlines()
    for cut in range(4):  # a partial render that stops at a different place each time
        page_server.set("/fr", render_page("\n".join(partial[: len(partial) - 10 * (cut + 1)])), etag=False)
        assert cycle(config)[0].status == "rejected"


def test_identical_bytes_skip_parsing(
    page_server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", page(APRIL), etag=False)  # no ETag: the body comes every time
    assert cycle(config)[0].status == "new"
    import watchdog.extract
    import watchdog.fastread

    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged page was parsed")

    monkeypatch.setattr(watchdog.extract, "extract", must_not_parse)  # the parser of record
    monkeypatch.setattr(watchdog.fastread, "read_page", must_not_parse)  # the fast reader
    (outcome,) = cycle(config)
    assert (outcome.status, outcome.version) == ("unchanged", "fb@v1")


def test_noise_only_captures_skip_validation(
    page_server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", page(APRIL, seed=1), etag=False)
    assert cycle(config)[0].status == "new"
    import watchdog.validate

    def must_not_validate(*args: object, **kwargs: object) -> None:
        raise AssertionError("the text of the current version was validated again")

    monkeypatch.setattr(watchdog.validate, "validate", must_not_validate)
    page_server.set("/policy", page(APRIL, seed=2), etag=False)  # new noise, same text
    assert cycle(config)[0].status == "unchanged"
