"""The static HTML archive: pages and permalinks, diffs, provenance, hostile text, CSP, incremental writes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

import lxml.html
import pytest
from hypothesis import given
from hypothesis import strategies as st

import watchdog.publish.site
from support.archives import Builder, corpus_archive, make_config, open_store
from support.corpus import render_page
from support.harness import Site, cycle, write_config
from support.pageserver import PageServer
from support.replay import corpus_text
from watchdog.config import load_config
from watchdog.models import Target
from watchdog.publish import after_cycle, export_site, publish
from watchdog.publish.output import MANIFEST, Page, write_pages
from watchdog.publish.site import CSP
from watchdog.storage import open_store as open_store_of
from watchdog.storage.sqlite import SqliteStorage

APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
META = Target(id="meta", url="https://example.org/policy", name="Meta Privacy Policy")
BASE = "Our policy explains how we use information.\nYou can contact us at any time.\n"


def small_archive(storage: Path) -> tuple[SqliteStorage, Builder]:
    store = open_store(storage, [META])
    meta = Builder(store, META)
    meta.version(BASE)
    meta.change(BASE + "We may use public posts to train artificial intelligence.\n", topics=["ai-training"])
    return store, meta


def pages_of(root: Path) -> dict[str, lxml.html.HtmlElement]:
    return {str(p.relative_to(root)): lxml.html.parse(str(p)).getroot() for p in sorted(root.rglob("*.html"))}


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- pages, links, provenance


def test_every_record_has_its_permalink_and_every_link_resolves(tmp_path: Path) -> None:
    store, meta = small_archive(tmp_path / "a")
    with store:
        meta.revert("meta@v1")
        meta.version(BASE.replace("time.", "time ."), technical=True)
        meta.event("failing", "HTTP 503")
        export_site(make_config(tmp_path / "a", [META]), store, tmp_path / "out")
    pages = pages_of(tmp_path / "out")
    assert set(pages) == {
        "index.html",
        "targets/meta.html",
        "changes/meta@c1.html",
        "changes/meta@c2.html",
        "versions/meta@v1.html",
        "versions/meta@v2.html",
        "versions/meta@v3.html",
        "compare/meta@v1--meta@v2.html",
        "compare/meta@v2--meta@v3.html",
        "compare/meta@v1--meta@v3.html",
    }
    for name, page in pages.items():
        for href in page.xpath("//a/@href | //link/@href"):
            if urlsplit(href).scheme:
                assert href == META.url, f"{name}: only the watched page is linked outside"
                continue
            path, _, fragment = href.partition("#")
            target = (tmp_path / "out" / Path(name).parent / unquote(path)).resolve() if path else None
            assert target is None or target.is_file(), (name, href)
            if fragment and target is not None and target.suffix == ".html":
                assert lxml.html.parse(str(target)).getroot().get_element_by_id(fragment) is not None, href
    timeline = pages["targets/meta.html"].text_content()
    assert "could no longer be read: HTTP 503" in timeline and "reverted to v1" in timeline
    assert "meta@v3: technical re-extraction (not a change at the source)" in timeline
    assert "came back after a revert" in pages["versions/meta@v1.html"].text_content()


def test_a_change_page_has_an_inline_and_a_side_by_side_diff(tmp_path: Path) -> None:
    store, _meta = small_archive(tmp_path)
    with store:
        after_cycle(make_config(tmp_path, [META]), store)
        record_hash = store.archive.change("meta@c1").record_hash
    page = pages_of(tmp_path / "site")["changes/meta@c1.html"]
    inline = page.find_class("diff")[0]
    inserted = "".join(n.text_content() for n in inline.iter("ins"))
    assert inserted.strip() == "We may use public posts to train artificial intelligence."
    side = page.find_class("side")[0]
    assert [th.text_content() for th in side.iter("th")] == ["Before (meta@v1)", "After (meta@v2)"]
    left, right = side.xpath(".//tbody/tr[1]/td")
    assert left.xpath(".//ins") == [] and right.xpath(".//ins"), "insertions on the right only"
    assert page.findtext(".//h1") == (
        '[Meta Privacy Policy] Added: "We may use public posts to train artificial intelligence."'
        " · ai-training"
    ), "the headline the alerts carry"
    assert record_hash in page.text_content()
    body = page.find("body").text_content()
    assert body.index("What changed") < body.index("About this change") < body.index("Full diff"), (
        "phone first: what changed, then the facts, then the whole diff"
    )


def test_a_version_page_shows_the_text_and_its_provenance(tmp_path: Path) -> None:
    store, meta = small_archive(tmp_path)
    with store:
        after_cycle(make_config(tmp_path, [META]), store)
        version = store.archive.version("meta@v2")
        snapshot = store.archive.snapshot(version.snapshot_id or 0)
    page = pages_of(tmp_path / "site")["versions/meta@v2.html"]
    facts = dict(
        zip(
            [dt.text_content() for dt in page.iter("dt")],
            [dd.text_content() for dd in page.iter("dd")],
            strict=True,
        )
    )
    assert facts["Text SHA-256"] == version.text_hash
    assert facts["Record hash"] == version.record_hash
    assert facts["Previous record hash"] == version.prev_hash
    assert facts["Snapshot body SHA-256"] == snapshot.body_hash
    assert facts["HTTP status"] == "200" and facts["URL"] == META.url and facts["Fetcher"] == "http"
    assert facts["Fetched at"] == snapshot.fetched_at.strftime("%Y-%m-%d %H:%M UTC")
    shown = page.find_class("text")[0].text_content()
    assert all(line in shown for line in meta.texts["meta@v2"].splitlines())
    text_file = tmp_path / "site" / "texts" / "meta@v2.txt"
    assert text_file.read_text("utf-8") == meta.texts["meta@v2"], "the archived text, byte for byte"
    assert hashlib.sha256(text_file.read_bytes()).hexdigest() == version.text_hash


def test_the_may_2025_change_page_from_the_real_pipeline(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, _ = corpus_archive(tmp_path_factory, page_server, "may-2025")
    page = pages_of(config.storage_dir / "site")["changes/fb@c1.html"]
    inserted = " ".join(n.text_content() for n in page.find_class("diff")[0].iter("ins"))
    assert "Develop and improve artificial intelligence technology (also called AI at Meta)" in inserted
    said = [p.text_content() for p in page.xpath("//section[@class='what-changed']/section")]
    assert "artificial intelligence" in said[0], "the passages a topic matched are quoted first"
    assert all(" under " in p.strip().split("\n")[0] for p in said), "every passage names its section"
    index = pages_of(config.storage_dir / "site")["index.html"]
    assert index.xpath("//a[@href='changes/fb@c1.html']"), "the index links the last change"


def test_the_june_2024_delay_banner_page(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, _ = corpus_archive(tmp_path_factory, page_server, "delay-2024")
    page = pages_of(config.storage_dir / "site")["changes/ig@c1.html"]
    inserted = " ".join(" ".join(n.text_content().split()) for n in page.iter("ins"))
    assert (
        "we're delaying our change to the use of your information to develop and improve AI at Meta"
        in inserted
    )


# --------------------------------------------------------------------------- hostile text


HOSTILE = [
    pytest.param("<script>window.__pwned=1</script>", id="script-element"),
    pytest.param('<img src=x onerror="window.__pwned=2">', id="onerror-attribute"),
    pytest.param("[opt out here](javascript:window.__pwned=3)", id="markdown-javascript-link"),
    pytest.param('<a href="javascript:window.__pwned=4">object</a>', id="html-javascript-link"),
    pytest.param('"><svg onload=window.__pwned=5>', id="attribute-breakout"),
    pytest.param("</textarea></style></title><script>window.__pwned=6</script>", id="rawtext-breakout"),
    pytest.param("<!--<script>window.__pwned=7</script>-->", id="comment-trick"),
    pytest.param(
        '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=8">', id="meta-refresh"
    ),
    pytest.param("[x]: javascript:window.__pwned=9 'reference link'", id="markdown-reference-link"),
    pytest.param("<base href='https://evil.example/'>", id="base-element"),
]


@pytest.mark.parametrize("snippet", HOSTILE)
def test_hostile_page_text_stays_text_on_every_page(tmp_path: Path, snippet: str) -> None:
    with open_store(tmp_path, [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        meta.change(f"{BASE}Opt out: {snippet} \x00\x1b[31m\u202e\n", topics=["opt-out"])
        after_cycle(make_config(tmp_path, [META]), store)
    for name, page in pages_of(tmp_path / "site").items():
        forms = page.xpath("//form")
        # only serve's two read-only GET endpoints: /compare and /search
        assert all(
            f.get("action", "") in ("compare", "../compare", "search") and f.get("method") == "get"
            for f in forms
        )
        dangerous = page.xpath(
            "//script | //iframe | //object | //embed | //svg | //img | //base"
            " | //meta[@http-equiv][not(@http-equiv='Content-Security-Policy')]"
            " | //@*[starts-with(name(), 'on')]"
            " | //@href[contains(translate(., 'JAVSCRIPT', 'javscript'), 'javascript:')]"
        )
        assert dangerous == [], name
    change = pages_of(tmp_path / "site")["changes/meta@c1.html"]
    assert snippet in change.text_content(), "shown literally, as text"
    assert "␀␛[31m" in change.text_content(), "control characters shown as symbols"


def test_every_page_has_a_strict_csp_that_allows_exactly_its_stylesheet(tmp_path: Path) -> None:
    store, _meta = small_archive(tmp_path)
    with store:
        after_cycle(make_config(tmp_path, [META]), store)
    for name, page in pages_of(tmp_path / "site").items():
        head = page.find("head")
        first = head[0], head[1]
        assert first[0].get("charset") == "utf-8" and first[1].get("http-equiv") == "Content-Security-Policy"
        policy = first[1].get("content")
        assert policy == CSP and "default-src 'none'" in policy and "script-src" not in policy, name
        (style,) = page.iter("style")
        digest = base64.b64encode(hashlib.sha256(style.text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy, f"{name}: the inline stylesheet's hash is allowed"
        assert page.xpath("//@style") == [], "no style attribute: the CSP would block it"
        assert page.xpath("//meta[@name='viewport']/@content") == ["width=device-width, initial-scale=1"]
        assert "@media print" in style.text and "max-width" in style.text


# --------------------------------------------------------------------------- determinism, incremental


def test_two_exports_are_byte_identical(tmp_path: Path) -> None:
    store, _meta = small_archive(tmp_path / "a")
    with store:
        config = make_config(tmp_path / "a", [META])
        export_site(config, store, tmp_path / "one")
        export_site(config, store, tmp_path / "two")
    one = {
        p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()
    }
    two = {
        p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()
    }
    assert one == two and len(one) > 6


def test_only_what_changed_is_rewritten_and_one_diff_is_computed(tmp_path: Path) -> None:
    store, meta = small_archive(tmp_path)
    config = make_config(tmp_path, [META])
    site = tmp_path / "site"
    with store:
        after_cycle(config, store)
        first = mtimes(site)
        after_cycle(config, store)
        assert mtimes(site) == first, "unchanged archive: nothing rewritten (not even the manifest)"
        meta.change(BASE + "We may use public posts to train AI models.\n", topics=["ai-training"])
        report = publish(
            config, store, site_dir=site, feeds_dir=tmp_path / "feeds", cache_dir=tmp_path / "cache" / "diffs"
        )
    second = mtimes(site)
    rewritten = {p for p in first if second[p] != first[p]}
    created = set(second) - set(first)
    assert created == {
        "changes/meta@c2.html",
        "versions/meta@v3.html",
        "texts/meta@v3.txt",
        "compare/meta@v2--meta@v3.html",
        "compare/meta@v1--meta@v3.html",
        next(p for p in second if p.startswith("raw/") and p not in first),
    }
    # neighbours gain a "newer" link; the index and timeline list the change; the chain heads move on
    assert rewritten == {
        "index.html",
        "targets/meta.html",
        "changes/meta@c1.html",
        "versions/meta@v2.html",
        "versions/meta@v1.html",  # the first version lists its comparison with each later one
        "chain-heads.json",
        MANIFEST,
    }
    # the new change, and the new version against the first one: the others came from the on-disk cache
    assert report.diffs_computed == 2


def test_a_damaged_page_is_repaired_and_a_stale_one_removed(tmp_path: Path) -> None:
    calls: list[str] = []

    def page(path: str, body: bytes) -> Page:
        def render() -> bytes:
            calls.append(path)
            return body

        return Page(path, "k-" + path, render)

    write_pages(tmp_path, [page("a.html", b"A"), page("b/c.html", b"C")], generator="g")
    (tmp_path / "mine.txt").write_text("not generated")
    (tmp_path / "a.html").write_bytes(b"")  # truncated by a crash, say
    report = write_pages(tmp_path, [page("a.html", b"A")], generator="g")
    assert (report.written, report.skipped, report.removed) == (1, 0, 1)
    assert (tmp_path / "a.html").read_bytes() == b"A" and not (tmp_path / "b" / "c.html").exists()
    assert (tmp_path / "mine.txt").exists(), "files the generator never wrote are left alone"
    write_pages(tmp_path, [page("a.html", b"A")], generator="other code")
    assert calls == ["a.html", "b/c.html", "a.html", "a.html"], "new generator code re-renders"
    with pytest.raises(ValueError, match="outside"):
        write_pages(tmp_path, [page("../escape.html", b"x")], generator="g")


def test_a_missing_text_blob_is_reported_on_the_page_not_fatal(tmp_path: Path) -> None:
    store, _meta = small_archive(tmp_path)
    with store:
        store.blobs.path(store.archive.version("meta@v2").text_hash).unlink()
        after_cycle(make_config(tmp_path, [META]), store)
    pages = pages_of(tmp_path / "site")
    assert "cannot be read" in pages["changes/meta@c1.html"].text_content()
    assert "policy-watchdog verify" in pages["versions/meta@v2.html"].text_content()
    assert re.search(r"Our policy explains", pages["versions/meta@v1.html"].text_content())


def test_the_version_page_is_citable_and_every_passage_links_to_its_section(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, _ = corpus_archive(tmp_path_factory, page_server, "may-2025")
    site = config.storage_dir / "site"
    pages = pages_of(site)
    version = pages["versions/fb@v2.html"]
    citation = version.find_class("cite")[0].text_content()
    with SqliteStorage.open(config.storage_dir, writer=False) as store:
        record = store.archive.version("fb@v2")
        snapshot = store.archive.snapshot(record.snapshot_id or 0)
        body = store.blobs.get(snapshot.body_hash)
    assert citation.startswith("fb (effective May 27, 2025), version 2 as first seen ")
    assert record.text_hash in citation and f"at {snapshot.final_url}." in citation
    assert citation.endswith("versions/fb@v2.html in this archive")
    facts = dict(
        zip(
            [dt.text_content() for dt in version.iter("dt")],
            [dd.text_content() for dd in version.iter("dd")],
            strict=True,
        )
    )
    assert facts["Effective (as the text states)"] == "May 27, 2025 (2025-05-27)"
    raw = version.xpath("//a[@download and starts-with(@href, '../raw/')]/@href")[0]
    assert gzip.decompress((site / "versions" / raw).read_bytes()) == body, "the raw capture, as fetched"
    change = pages["changes/fb@c1.html"]
    places = change.xpath("//section[@class='what-changed']//p[@class='where']/a/@href")
    assert places and all(h.startswith("../versions/fb@v2.html#s-") for h in places)
    for href in places:
        anchor = href.split("#", 1)[1]
        assert version.get_element_by_id(anchor).tag in {"h2", "h3", "h4", "h5", "h6", "tr", "th"}
    compare = pages["compare/fb@v1--fb@v2.html"]
    assert compare.findtext(".//h1") == "fb: fb@v1 → fb@v2" and compare.find_class("passage")
    assert "fb@v1 (previous)" in version.text_content() or "fb@v1 (first version)" in version.text_content()


def test_a_version_text_is_rendered_once_and_its_page_stays_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unchanged check moves the current version's "last seen", so its page is rendered again after every
    cycle; the full text, the bulk of the page, is rendered once per text (kept under the storage dir's
    cache) and the page is byte for byte what a rendering from scratch gives. A damaged entry is rendered
    again."""
    import watchdog.publish.site

    rendered: list[int] = []
    original = watchdog.publish.site.text_blocks

    def counting(text: str) -> list[dict[str, object]]:
        rendered.append(len(text))
        return original(text)

    monkeypatch.setattr(watchdog.publish.site, "text_blocks", counting)
    store, meta = small_archive(tmp_path / "a")
    config = make_config(tmp_path / "a", [META])
    site = tmp_path / "a" / "site"
    with store:
        after_cycle(config, store)
        assert len(rendered) == 2, "each version's text, once"
        for _ in range(2):
            meta.record(meta.tick(), seen="meta@v2")  # "last seen" moves
            before = (site / "versions" / "meta@v2.html").read_bytes()
            after_cycle(config, store)
            page = (site / "versions" / "meta@v2.html").read_bytes()
            assert page != before, "the page shows the new last-seen time"
        assert len(rendered) == 2, "the texts were not rendered again"
        export_site(config, store, tmp_path / "fresh")  # no cache: every text rendered
        assert page == (tmp_path / "fresh" / "versions" / "meta@v2.html").read_bytes()

        for entry in (tmp_path / "a" / "cache" / "full-texts").rglob("*.html"):
            entry.write_bytes(b"\xff\xfe damaged")
        meta.record(meta.tick(), seen="meta@v2")
        rendered.clear()
        after_cycle(config, store)
        assert len(rendered) == 1, "the damaged entry of the re-rendered page is rendered again"
        export_site(config, store, tmp_path / "fresh2")
    page = (site / "versions" / "meta@v2.html").read_bytes()
    assert page == (tmp_path / "fresh2" / "versions" / "meta@v2.html").read_bytes()
    assert b"We may use public posts to train artificial intelligence." in page


def test_compiled_templates_are_kept_and_a_damaged_one_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` is a new process every cycle: the templates' compiled code is kept under the storage dir's
    cache, so the next process loads it instead of compiling the templates again; a damaged entry is
    compiled again, and the pages are byte for byte what an export without any cache gives."""
    import jinja2

    from watchdog.render.html import archive, mail

    compiled: list[str | None] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: object, name: str | None = None, *args: object) -> object:
        compiled.append(name)
        return original(self, source, name, *args)  # type: ignore[call-overload]

    def forget() -> None:  # what a new process starts with: no template loaded
        archive().cache.clear()  # type: ignore[union-attr]
        mail().cache.clear()  # type: ignore[union-attr]
        compiled.clear()

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    store, _meta = small_archive(tmp_path / "a")
    config = make_config(tmp_path / "a", [META])
    kept = tmp_path / "a" / "cache" / "templates"
    with store:
        forget()
        after_cycle(config, store)
        assert "site/version.html" in compiled
        assert len(list(kept.rglob("*.cache"))) == len({name for name in compiled if name})
        forget()
        (tmp_path / "a" / "site" / "index.html").unlink()
        (tmp_path / "a" / "site" / "versions" / "meta@v2.html").unlink()
        after_cycle(config, store)
        assert (tmp_path / "a" / "site" / "index.html").is_file()
        assert [name for name in compiled if name] == [], "every template loaded from its kept code"
        for entry in kept.rglob("*.cache"):
            entry.write_bytes(entry.read_bytes()[:40] + b"\x00damaged")
        forget()
        (tmp_path / "a" / "site" / "versions" / "meta@v2.html").unlink()
        after_cycle(config, store)
        assert "site/version.html" in compiled, "a damaged entry is compiled again"
        export_site(config, store, tmp_path / "fresh")
    for page in ("index.html", "versions/meta@v2.html", "versions/meta@v1.html"):
        assert (tmp_path / "a" / "site" / page).read_bytes() == (tmp_path / "fresh" / page).read_bytes()


# --------------------------------------------------------------------------- after a real check


def published(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every published file (site and feeds under the storage dir `root`): its inode, its mtime and its bytes
    (a rewrite replaces the file: a new inode)."""
    found = {}
    for path in sorted([*(root / "site").rglob("*"), *(root / "feeds").rglob("*")]):
        if path.is_file() and path.suffix != ".lock":
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_ino, stat.st_mtime_ns, path.read_bytes())
    return found


def moved(before: dict[str, tuple[int, int, bytes]], after: dict[str, tuple[int, int, bytes]]) -> set[str]:
    return {p for p in after if before.get(p) != after[p]} | (set(before) - set(after))


UNCHANGED_CHECKS = [
    pytest.param(True, 1, id="304"),
    pytest.param(False, 1, id="same-bytes"),
    pytest.param(False, 2, id="new-noise"),
]


@pytest.mark.parametrize(("etag", "seed"), UNCHANGED_CHECKS)
def test_an_unchanged_check_rewrites_only_the_pages_showing_its_time(
    page_server: PageServer, tmp_path: Path, etag: bool, seed: int
) -> None:
    """After a check that finds the text unchanged (a 304, the same bytes, new page noise), publishing
    leaves every feed and every page untouched (same inode, mtime and bytes), except the three that show
    the check's time: the index and the target's timeline ("last check"), the current version's page
    ("last seen")."""
    config_path = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    config = load_config(config_path, environ={})
    page_server.set("/policy", render_page(corpus_text(APRIL), seed=1), etag=etag)
    assert cycle(config_path)[0].status == "new"
    with open_store_of(config) as store:
        after_cycle(config, store)
    root = config.storage_dir
    first = published(root)
    time.sleep(1.1)  # the next check's time differs to the second shown in the pages
    page_server.set("/policy", render_page(corpus_text(APRIL), seed=seed), etag=etag)
    assert cycle(config_path)[0].status == "unchanged"
    with open_store_of(config) as store:
        after_cycle(config, store)
    assert moved(first, published(root)) == {
        "site/index.html",
        "site/targets/fb.html",
        "site/versions/fb@v1.html",
        f"site/{MANIFEST}",
    }


def test_a_real_change_rewrites_exactly_the_pages_it_touches(page_server: PageServer, tmp_path: Path) -> None:
    """A real wording change: its change page, its version's page, text, raw capture and comparison are
    created; the previous version's page (its "newer" link, "replaced by"), the index and the timeline are
    rewritten, and so are the feeds that carry the change (all, the target's, its topics'); nothing else."""
    config_path = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    config = load_config(config_path, environ={})
    page_server.set("/policy", render_page(corpus_text(APRIL), seed=1), etag=False)
    assert cycle(config_path)[0].status == "new"
    with open_store_of(config) as store:
        after_cycle(config, store)
    root = config.storage_dir
    first = published(root)
    page_server.set("/policy", render_page(corpus_text(MAY), seed=1), etag=False)
    outcome = cycle(config_path)[0]
    assert outcome.status == "changed" and outcome.topics
    with open_store_of(config) as store:
        after_cycle(config, store)
    after = published(root)
    raw = {p for p in after if p.startswith("site/raw/")} - set(first)
    assert len(raw) == 1
    topic_feeds = {f"feeds/topic/{topic}.atom" for topic in outcome.topics}
    assert moved(first, after) == {
        "site/changes/fb@c1.html",
        "site/versions/fb@v2.html",
        "site/texts/fb@v2.txt",
        "site/compare/fb@v1--fb@v2.html",
        *raw,
        "site/versions/fb@v1.html",
        "site/index.html",
        "site/targets/fb.html",
        "site/chain-heads.json",
        f"site/{MANIFEST}",
        "feeds/all.atom",
        "feeds/target/fb.atom",
        *topic_feeds,
        "feeds/chain-heads.json",
        f"feeds/{MANIFEST}",
    }


MOMENTS = st.sampled_from(
    [datetime(2024, 6, 14, 12, tzinfo=UTC), datetime(2024, 6, 14, 14, tzinfo=timezone(timedelta(hours=2))),
     datetime(2025, 5, 27, tzinfo=UTC), datetime(2025, 5, 27, 0, 0, 1, tzinfo=UTC)]
)  # fmt: skip
SINCE = st.dictionaries(st.integers(0, 2**63), MOMENTS, max_size=12).map(lambda d: tuple(sorted(d.items())))


@given(SINCE, st.data())
def test_a_full_text_is_kept_per_since_dates_each_its_own_key(
    first: tuple[tuple[int, datetime], ...], data: st.DataObject
) -> None:
    """The key of a version's rendered full text tells apart any two different since-dates of its
    sentences (also the same instant written with another UTC offset, which prints otherwise)."""
    second = list(first)
    if second:  # one sentence's date replaced by any date (often an equal one)
        index = data.draw(st.integers(0, len(second) - 1))
        second[index] = (second[index][0], data.draw(MOMENTS))
    else:
        second = list(data.draw(SINCE))
    key = watchdog.publish.site._since_key
    same_print = [(i, m.isoformat()) for i, m in first] == [(i, m.isoformat()) for i, m in second]
    assert (key(first) == key(tuple(second))) == same_print


def since_key_as_defined(since: tuple[tuple[int, datetime], ...]) -> str:
    """site._since_key before it grouped the dates by object first (70a71c9): the definition."""
    by_date: dict[tuple[datetime, timedelta | None], list[int]] = {}
    for sentence, moment in since:
        by_date.setdefault((moment, moment.utcoffset()), []).append(sentence)
    groups = sorted((moment.isoformat(), ids) for (moment, _), ids in by_date.items())
    return hashlib.sha256(repr(groups).encode()).hexdigest()[:32]


# equal dates as one object or as several (the first two), and the same instant with another offset
COPIES = st.sampled_from(
    [datetime(2024, 6, 14, 12, tzinfo=UTC), datetime(2024, 6, 14, 12, tzinfo=UTC),
     datetime(2024, 6, 14, 14, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 5, 27, tzinfo=UTC)]
)  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 40), COPIES), max_size=14))
def test_a_since_key_is_its_definition(since: list[tuple[int, datetime]]) -> None:
    assert watchdog.publish.site._since_key(tuple(since)) == since_key_as_defined(tuple(since))
