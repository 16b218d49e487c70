"""`policy-watchdog doctor`: on real pages whose selectors were broken on purpose, the proposal, pasted into
the config, reproduces the last version (the next check is `unchanged`).

Real raw pages (Open Terms Archive snapshots, see the SOURCES.md of tests/fixtures/pages, extract, browser)
are served by the local page server; checks, `doctor` and the failure alert run through the real pipeline,
the real CLI and a real local webhook.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from support.harness import cli, cycle
from support.pageserver import PageServer, Reply
from support.sinks import WebhookSink
from watchdog.doctor import propose, similarity, target_toml
from watchdog.extract import ParsedPage, extract
from watchdog.models import SelectorSet, Target

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GENAI = "pages/meta-genai-privacy.html.gz"
PRINTABLE = "extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz"
AI_TERMS = "browser/meta-ai-terms-2026-05-13T10-32-30Z.html.gz"


def raw(fixture: str) -> bytes:
    return gzip.decompress((FIXTURES / fixture).read_bytes())


# (fixture, the selectors that read it, its remove list, the proposal expected once they are broken)
PAGES = [
    pytest.param(GENAI, ["#AI_at_Meta", "#genai_body"], ['a[href="#"]'], ["#AI_at_Meta", "#genai_body"],
                 id="genai-two-sections"),
    pytest.param(PRINTABLE, ["#root"], ['a[href="#"]'], ["#root"], id="printable-policy"),
    pytest.param(AI_TERMS, ["[role=main]"], ["[role=contentinfo]", "div:has(> [role=separator])"],
                 ["[role=main]"], id="eu-ai-terms-landmark"),
]  # fmt: skip


@pytest.mark.parametrize(("fixture", "select", "remove", "expected"), PAGES)
def test_proposal_reproduces_the_version_and_avoids_generated_classes(
    fixture: str, select: list[str], remove: list[str], expected: list[str]
) -> None:
    body = raw(fixture)
    version = extract(body, content_type="text/html", url="https://www.facebook.com/x", select=select,
                      remove=remove).text  # fmt: skip
    page = ParsedPage(body, content_type="text/html", url="https://www.facebook.com/x", remove=remove)
    proposals = propose(page, version)
    assert list(proposals[0].select) == expected
    assert proposals[0].score == 1.0
    assert page.text(proposals[0].select) == version
    for proposal in proposals:
        for selector in proposal.select:
            assert not any(part.startswith(".x") for part in selector.split()), selector


def test_similarity_is_a_line_level_ratio() -> None:
    assert similarity("a\nb\nc\n", "a\nb\nc\n") == 1.0
    assert similarity("a\nb\n", "c\nd\n") == 0.0
    assert 0.5 < similarity("a\nb\nc\nd\n", "a\nb\nc\nx\n") < 1.0


def test_snippet_is_the_target_with_select_replaced() -> None:
    target = Target(
        id="t",
        url="https://example.org/p",
        name="T",
        select=("#old",),
        remove=('a[href="#"]',),
        accept_language="en-IE",
        watch_links=("https://example.org/form/*",),
        alternatives=(SelectorSet(("main",), ("nav",)),),
    )
    snippet = target_toml(target, select=["#new", "#also"])
    assert snippet.splitlines()[:4] == [
        "[[targets]]",
        'id = "t"',
        'url = "https://example.org/p"',
        'name = "T"',
    ]
    assert 'select = ["#new", "#also"]' in snippet and "#old" not in snippet
    assert """remove = ["a[href=\\"#\\"]"]""" in snippet
    assert 'watch_links = ["https://example.org/form/*"]' in snippet
    assert snippet.endswith('[[targets.alternatives]]\nselect = ["main"]\nremove = ["nav"]\n')


# --------------------------------------------------------------------------- through the CLI


def config_text(base_url: str, block: str, *, channel: str | None = None) -> str:
    head = '[storage]\ndir = "archive"\n[fetch]\nretries = 0\ntimeout = 10\n[alerts]\nfailure_threshold = 1\n'
    channels = f"[[channels]]\nurl = {json.dumps(channel)}\n" if channel else ""
    return f"{head}\n{block}\n{channels}"


def target_block(base_url: str, select: list[str], remove: list[str]) -> str:
    return (
        f'[[targets]]\nid = "page"\nurl = "{base_url}/page"\nselect = {json.dumps(select)}\n'
        f"remove = {json.dumps(remove)}\n" + 'confirm_delay = "0s"\n'
    )


@pytest.mark.parametrize(("fixture", "select", "remove", "expected"), PAGES)
def test_doctor_proposal_pasted_into_the_config_reads_the_page_unchanged(
    page_server: PageServer,
    tmp_path: Path,
    fixture: str,
    select: list[str],
    remove: list[str],
    expected: list[str],
) -> None:
    page_server.set("/page", Reply(body=raw(fixture)), etag=False)
    config = tmp_path / "watchdog.toml"
    config.write_text(config_text(page_server.base_url, target_block(page_server.base_url, select, remove)))
    assert cycle(config)[0].status == "new"

    # Meta's markup "moved": the configured selectors match nothing any more
    broken = target_block(page_server.base_url, ["#policy-content-v2"], remove)
    config.write_text(config_text(page_server.base_url, broken))
    (failed,) = cycle(config)
    assert (failed.status, failed.extra.get("code")) == ("rejected", "no-match")

    result = cli("--config", str(config), "doctor", "page", "--json")
    assert result.returncode == 1, result.stderr
    diagnosis = json.loads(result.stdout)
    assert (diagnosis["status"], diagnosis["code"], diagnosis["last_version"]) == (
        "rejected",
        "no-match",
        "page@v1",
    )
    assert diagnosis["source"].startswith("fetched now from")
    best = diagnosis["proposals"][0]
    assert (best["select"], best["score"]) == (expected, 1.0)

    config.write_text(config_text(page_server.base_url, diagnosis["snippet"]))
    checked = cli("--config", str(config), "check", "--json")
    assert json.loads(checked.stdout)["status"] == "unchanged", checked.stdout + checked.stderr


def test_doctor_offline_reads_the_last_rejected_snapshot_and_prints_a_snippet(
    page_server: PageServer, tmp_path: Path
) -> None:
    page_server.set("/page", Reply(body=raw(GENAI)), etag=False)
    config = tmp_path / "watchdog.toml"
    good = target_block(page_server.base_url, ["#AI_at_Meta", "#genai_body"], ['a[href="#"]'])
    config.write_text(config_text(page_server.base_url, good))
    assert cycle(config)[0].status == "new"
    config.write_text(config_text(page_server.base_url, good.replace("#genai_body", "#genai-body")))
    assert cycle(config)[0].status == "rejected"
    page_server.set("/page", Reply(404, "<h1>Not found</h1>"), etag=False)  # the site is gone meanwhile

    result = cli("--config", str(config), "doctor", "page", "--offline")
    assert result.returncode == 1
    assert "the last rejected snapshot" in result.stdout
    assert 'select = ["#AI_at_Meta", "#genai_body"]' in result.stdout
    assert "[[targets]]" in result.stdout


def test_doctor_says_a_healthy_target_is_fine(page_server: PageServer, tmp_path: Path) -> None:
    page_server.set("/page", Reply(body=raw(PRINTABLE)), etag=False)
    config = tmp_path / "watchdog.toml"
    config.write_text(config_text(page_server.base_url, target_block(page_server.base_url, ["#root"], [])))
    assert cycle(config)[0].status == "new"
    result = cli("--config", str(config), "doctor", "page", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["status"] == "ok"


def test_no_match_failure_alert_carries_the_proposal(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    page_server.set("/page", Reply(body=raw(PRINTABLE)), etag=False)
    config = tmp_path / "watchdog.toml"
    base = page_server.base_url
    config.write_text(config_text(base, target_block(base, ["#root"], []), channel=webhook_sink.url))
    assert cycle(config)[0].status == "new"
    config.write_text(config_text(base, target_block(base, ["#policy-root"], []), channel=webhook_sink.url))
    (failed,) = cycle(config)
    assert failed.status == "rejected" and failed.alerted
    (alert,) = webhook_sink.received
    assert "can no longer read" in alert["title"]
    assert 'select = ["#root"]' in alert["message"]
    assert "page@v1" in alert["message"]
