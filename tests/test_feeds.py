"""Atom feeds: RFC 4287 validity (RELAX NG grammar and the prose rules), stable ids, determinism, content.

The grammar is RFC 4287 Appendix B (tests/fixtures/spec/, IETF Trust licence, see its README.md). The
archives come from the real pipeline over loopback (corpus pages) or straight through the storage's write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
from lxml import etree

from support.archives import T0, Builder, corpus_archive, make_config, open_store
from support.corpus import render_page
from support.harness import Site, cycle, open_archive, write_config
from support.pageserver import PageServer
from support.replay import corpus_text, series
from watchdog.config import Config
from watchdog.models import Target, iso
from watchdog.pipeline import archive_link
from watchdog.publish import after_cycle, publish
from watchdog.publish.feeds import FEED_LIMIT
from watchdog.storage.sqlite import SqliteStorage

SPEC = Path(__file__).parent / "fixtures" / "spec" / "atom.rng"
A = "{http://www.w3.org/2005/Atom}"
META = Target(id="meta", url="https://example.org/policy", name='Meta <Privacy> & "AI"')
INSTA = Target(id="insta", url="https://example.org/ig", name="Instagram")
BASE = "Our policy explains how we use information.\nYou can contact us at any time.\n"


@pytest.fixture(scope="module")
def grammar() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SPEC)))


def busy_archive(storage: Path) -> SqliteStorage:
    """Two targets: topic changes, a change with no topic, a revert, a technical version, events, and
    page text with markup, quotes and raw control characters."""
    store = open_store(storage, [META, INSTA])
    meta, insta = Builder(store, META), Builder(store, INSTA, clock=T0 + timedelta(hours=10))
    first = meta.version(BASE)
    meta.change(
        BASE + "We use public posts to train artificial intelligence <b>models</b>.\n", topics=["ai-training"]
    )
    meta.change(BASE.replace("any time", "any time \x1b[31m\x00"), topics=[])
    meta.revert(first)
    meta.event("failing", "HTTP 503 <html>")
    meta.event("recovered", "capture accepted again")
    insta.version("Instagram policy.\n")
    insta.version("Instagram policy, re-read with new settings.\n", technical=True)
    insta.change(
        "Instagram policy.\nYou have the right to object & opt out.\n", topics=["opt-out", "legal-basis"]
    )
    return store


def child(node: etree._Element | None, path: str) -> etree._Element:
    """node.find(path), which must exist."""
    assert node is not None
    found = node.find(path)
    assert found is not None, path
    return found


def feeds_of(root: Path) -> dict[str, etree._ElementTree]:
    return {str(p.relative_to(root)): etree.parse(str(p)) for p in sorted(root.rglob("*.atom"))}


def publish_to(config: Config, store: SqliteStorage, out: Path) -> None:
    publish(config, store, site_dir=out, feeds_dir=out / "feeds", cache_dir=None)


# --------------------------------------------------------------------------- the RFC's prose rules


def rule_entry_without_content_has_alternate(feed: etree._Element) -> list[str]:
    return [
        "entry without content and without alternate link"
        for entry in feed.iter(f"{A}entry")
        if entry.find(f"{A}content") is None
        and not any(link.get("rel", "alternate") == "alternate" for link in entry.iter(f"{A}link"))
    ]


def rule_ids_are_absolute_iris(feed: etree._Element) -> list[str]:
    bad = []
    for node in feed.iter(f"{A}id"):
        text = node.text or ""
        scheme = urlsplit(text).scheme
        if not scheme or any(c.isspace() for c in text) or text != text.strip() or ":" not in text:
            bad.append(f"id {text!r} is not an absolute IRI")
        if scheme == "tag" and not text.startswith("tag:policy-watchdog,2024:"):
            bad.append(f"tag URI {text!r} lacks its tagging entity")
    return bad


def rule_authors(feed: etree._Element) -> list[str]:
    feed_authors = feed.findall(f"{A}author")
    entries = feed.findall(f"{A}entry")
    if len(feed_authors) == 1 or (entries and all(e.find(f"{A}author") is not None for e in entries)):
        return []
    return ["neither exactly one feed author nor an author on every entry"]


def rule_unique_entry_ids(feed: etree._Element) -> list[str]:
    ids = [e.findtext(f"{A}id") for e in feed.findall(f"{A}entry")]
    return [] if len(ids) == len(set(ids)) else ["duplicate entry ids"]


def rule_one_self_link(feed: etree._Element) -> list[str]:
    selves = [link for link in feed.findall(f"{A}link") if link.get("rel") == "self"]
    return [] if len(selves) == 1 else [f"{len(selves)} self links"]


def rule_feed_updated_is_newest_entry(feed: etree._Element) -> list[str]:
    entries = [e.findtext(f"{A}updated") or "" for e in feed.findall(f"{A}entry")]
    expected = max(entries, default="1970-01-01T00:00:00Z")
    return [] if feed.findtext(f"{A}updated") == expected else ["feed updated is not its newest entry's"]


def rule_no_duplicate_alternate_per_type(feed: etree._Element) -> list[str]:
    problems = []
    for node in [feed, *feed.findall(f"{A}entry")]:
        alternates = [
            (link.get("type"), link.get("hreflang"))
            for link in node.findall(f"{A}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        if len(alternates) != len(set(alternates)):
            problems.append("two alternate links with the same type and hreflang")
    return problems


PROSE_RULES: list[Callable[[etree._Element], list[str]]] = [
    rule_entry_without_content_has_alternate,
    rule_ids_are_absolute_iris,
    rule_authors,
    rule_unique_entry_ids,
    rule_one_self_link,
    rule_feed_updated_is_newest_entry,
    rule_no_duplicate_alternate_per_type,
]


def test_the_prose_rules_catch_what_they_claim_to() -> None:
    """The checks themselves can fail: each broken feed below trips exactly its rule."""
    ns = 'xmlns="http://www.w3.org/2005/Atom"'
    broken = {
        rule_entry_without_content_has_alternate: f"<feed {ns}><entry><id>tag:x,2024:a</id></entry></feed>",
        rule_ids_are_absolute_iris: f"<feed {ns}><id>not an iri</id></feed>",
        rule_authors: f"<feed {ns}><entry/></feed>",
        rule_unique_entry_ids: f"<feed {ns}><entry><id>x:1</id></entry><entry><id>x:1</id></entry></feed>",
        rule_one_self_link: f"<feed {ns}/>",
        rule_feed_updated_is_newest_entry: f"<feed {ns}><updated>2020-01-01T00:00:00Z</updated></feed>",
        rule_no_duplicate_alternate_per_type: f'<feed {ns}><link href="a"/><link href="b"/></feed>',
    }
    for rule, xml in broken.items():
        assert rule(etree.fromstring(xml)), rule.__name__


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize(
    "archive_url", [None, "https://archive.example.org/watch/"], ids=["relative-links", "archive-url"]
)
def test_every_feed_is_valid_atom(tmp_path: Path, grammar: etree.RelaxNG, archive_url: str | None) -> None:
    with busy_archive(tmp_path / "a") as store:
        after_cycle(make_config(tmp_path / "a", [META, INSTA], archive_url=archive_url), store)
    feeds = feeds_of(tmp_path / "a" / "feeds")
    assert set(feeds) == {
        "all.atom",
        "target/meta.atom",
        "target/insta.atom",
        "topic/ai-training.atom",
        "topic/opt-out.atom",
        "topic/legal-basis.atom",
        "archive.atom",
    }
    for name, tree in feeds.items():
        assert grammar.validate(tree), f"{name}: {grammar.error_log}"
        problems = [p for rule in PROSE_RULES for p in rule(tree.getroot())]
        assert problems == [], name


def test_an_empty_archive_still_has_valid_feeds_dated_at_the_epoch(
    tmp_path: Path, grammar: etree.RelaxNG
) -> None:
    with open_store(tmp_path, [META]) as store:
        after_cycle(make_config(tmp_path, [META]), store)
    for name, tree in feeds_of(tmp_path / "feeds").items():
        assert grammar.validate(tree), f"{name}: {grammar.error_log}"
        assert tree.getroot().findtext(f"{A}updated") == "1970-01-01T00:00:00Z"
        assert tree.getroot().findall(f"{A}entry") == []


# --------------------------------------------------------------------------- what goes in which feed


def entry_titles(tree: etree._ElementTree) -> list[str]:
    return [e.findtext(f"{A}title") or "" for e in tree.getroot().findall(f"{A}entry")]


def test_entries_are_changes_reverts_and_notices_never_technical_versions(tmp_path: Path) -> None:
    with busy_archive(tmp_path) as store:
        after_cycle(make_config(tmp_path, [META, INSTA]), store)
    feeds = feeds_of(tmp_path / "feeds")
    ai_change = (
        '[Meta <Privacy> & "AI"] Added: "We use public posts to train artificial intelligence <b>models</b>."'
        " · ai-training"
    )
    assert entry_titles(feeds["all.atom"]) == [
        '[Instagram] Changed: "Instagram policy." · opt-out, legal-basis',
        'Meta <Privacy> & "AI" is readable again',
        'Meta <Privacy> & "AI" can no longer be read',
        '[Meta <Privacy> & "AI"] reverted to v1 (withdraws meta@c2: no topic)',
        '[Meta <Privacy> & "AI"] Changed: "You can contact us at any time [31m."',
        ai_change,
    ], "newest first, titled by the alerts' headline; the technical re-extraction of insta is no entry"
    assert len(entry_titles(feeds["target/meta.atom"])) == 3, "target feeds: changes and reverts only"
    # the revert withdraws c2 (no topic), not the AI change: it stays out of the ai-training feed
    assert entry_titles(feeds["topic/ai-training.atom"]) == [ai_change]
    kinds = [
        c.get("term")
        for c in feeds["all.atom"].getroot().iter(f"{A}category")
        if "kinds" in c.get("scheme", "")
    ]
    assert kinds == ["change", "revert", "change", "change"], "each entry says its kind"
    assert entry_titles(feeds["topic/opt-out.atom"]) == entry_titles(feeds["topic/legal-basis.atom"])


def test_a_revert_appears_wherever_the_change_it_withdraws_appeared(tmp_path: Path) -> None:
    with open_store(tmp_path, [META]) as store:
        meta = Builder(store, META)
        first = meta.version(BASE)
        change = meta.change(
            BASE + "We rely on legitimate interest to train AI.\n", topics=["ai-training", "legal-basis"]
        )
        meta.revert(first)
        after_cycle(make_config(tmp_path, [META]), store)
    for name in ("topic/ai-training.atom", "topic/legal-basis.atom", "target/meta.atom", "all.atom"):
        titles = entry_titles(feeds_of(tmp_path / "feeds")[name])
        assert (
            titles[0]
            == f'[Meta <Privacy> & "AI"] reverted to v1 (withdraws {change}: AI training, Legal basis)'
        )
    ai = feeds_of(tmp_path / "feeds")["topic/ai-training.atom"].getroot()
    assert [c.get("term") for c in child(ai, f"{A}entry").findall(f"{A}category")] == [
        "ai-training",
        "legal-basis",
        "revert",
    ]


def test_feeds_keep_the_newest_entries_only(tmp_path: Path) -> None:
    with open_store(tmp_path, [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        for n in range(FEED_LIMIT + 5):
            meta.change(BASE + f"Clause {n}.\n")
        after_cycle(make_config(tmp_path, [META]), store)
    titles = feeds_of(tmp_path / "feeds")["target/meta.atom"].getroot().findall(f"{A}entry")
    assert len(titles) == FEED_LIMIT
    assert f"Clause {FEED_LIMIT + 4}." in (titles[0].findtext(f"{A}summary") or "")
    with open_store(tmp_path, [META]) as store:  # `[alerts] feed_entries = 3`: the three newest
        config = make_config(tmp_path, [META])
        after_cycle(replace(config, alerts=replace(config.alerts, feed_entries=3)), store)
    fewer = feeds_of(tmp_path / "feeds")["target/meta.atom"].getroot().findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in fewer] == [e.findtext(f"{A}title") for e in titles[:3]]


# --------------------------------------------------------------------------- stability, determinism


def entry_ids(tree: etree._ElementTree) -> dict[str, str]:
    """alternate link -> entry id"""
    return {
        child(e, f"{A}link[@rel='alternate']").get("href", ""): e.findtext(f"{A}id") or ""
        for e in tree.getroot().findall(f"{A}entry")
    }


def test_entry_ids_never_change_and_name_the_change(tmp_path: Path) -> None:
    config = make_config(tmp_path, [META])
    with open_store(tmp_path, [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        first = meta.change(BASE + "New sentence about AI.\n", topics=["ai-training"])
        after_cycle(config, store)
        before = entry_ids(feeds_of(tmp_path / "feeds")["all.atom"])
        meta.change(BASE + "Another one about opt-out.\n", topics=["opt-out"])
        after_cycle(config, store)
        after = entry_ids(feeds_of(tmp_path / "feeds")["all.atom"])
        record = store.archive.change(first)
    assert len(after) == 2 and all(after[href] == ident for href, ident in before.items())
    assert (
        before[f"../changes/{first}.html"]
        == f"tag:policy-watchdog,2024:change/{first}/{record.record_hash[:16]}"
    )


def test_an_unchanged_archive_gives_byte_identical_feeds_and_rewrites_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path / "a", [META, INSTA])
    with busy_archive(tmp_path / "a") as store:
        after_cycle(config, store)
        stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "a" / "feeds").rglob("*")}
        contents = {p: p.read_bytes() for p in stamps if p.is_file()}
        after_cycle(config, store)
        publish_to(config, store, tmp_path / "elsewhere")
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a" / "feeds").rglob("*")} == stamps
    for path, data in contents.items():
        assert path.read_bytes() == data
        relative = path.relative_to(tmp_path / "a" / "feeds")
        if path.suffix == ".atom":
            assert (tmp_path / "elsewhere" / "feeds" / relative).read_bytes() == data, (
                "same in another folder"
            )


def test_links_point_to_the_change_pages(tmp_path: Path) -> None:
    """Relative links resolve (from the feed's own place) to the exported page; with archive_url the link
    is the one the alerts carry."""
    with busy_archive(tmp_path / "a") as store:
        config = make_config(tmp_path / "a", [META, INSTA])
        publish_to(config, store, tmp_path / "site")
        hosted = make_config(tmp_path / "a", [META, INSTA], archive_url="https://archive.example.org/pw")
        publish_to(hosted, store, tmp_path / "hosted")
    for name, tree in feeds_of(tmp_path / "site" / "feeds").items():
        base = (tmp_path / "site" / "feeds" / name).as_uri()
        for link in tree.getroot().iter(f"{A}link"):
            assert Path(urlsplit(urljoin(base, link.get("href"))).path).is_file(), (name, link.get("href"))
    hosted_all = feeds_of(tmp_path / "hosted" / "feeds")["all.atom"].getroot()
    assert {name for name in feeds_of(tmp_path / "site" / "feeds") if "/" in name}, "no feed in a subfolder"
    links = [child(e, f"{A}link").get("href") for e in hosted_all.findall(f"{A}entry")]
    assert archive_link(hosted, "insta@c1") in links
    assert (
        child(hosted_all, f"{A}link[@rel='self']").get("href")
        == "https://archive.example.org/pw/feeds/all.atom"
    )


def test_links_in_entry_content_resolve_from_every_feed(tmp_path: Path) -> None:
    """An entry's content is the same in every feed it is in, but its relative links are relative to each
    feed file: all.atom sits one folder above target/ and topic/ feeds. Every link of every entry's HTML
    resolves to an exported page from the feed it is read in."""
    with busy_archive(tmp_path / "a") as store:
        publish_to(make_config(tmp_path / "a", [META, INSTA]), store, tmp_path / "site")
    checked: set[str] = set()
    for name, tree in feeds_of(tmp_path / "site" / "feeds").items():
        base = (tmp_path / "site" / "feeds" / name).as_uri()
        for content in tree.getroot().iter(f"{A}content"):
            for anchor in lxml.html.fragment_fromstring(content.text or "", create_parent="div").iter("a"):
                href = anchor.get("href") or ""
                target = Path(urlsplit(urljoin(base, href)).path)
                assert target.is_file(), (name, href)
                checked.add(name.split("/")[0])
    assert {"all.atom", "target", "topic"} <= checked  # links were checked at both depths


# --------------------------------------------------------------------------- content: escaped, quoted


def test_hostile_text_is_escaped_text_in_summary_and_content(tmp_path: Path) -> None:
    hostile = (
        'Click <a href="javascript:alert(1)">here</a> <img src=x onerror=alert(2)> <script>alert(3)</script>'
    )
    with open_store(tmp_path, [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        meta.change(BASE + hostile + " [opt out](javascript:alert(4)) \x00\x07\x1b.\n", topics=["opt-out"])
        after_cycle(make_config(tmp_path, [META]), store)
    entry = child(feeds_of(tmp_path / "feeds")["all.atom"].getroot(), f"{A}entry")
    assert hostile in (entry.findtext(f"{A}summary") or ""), "summary: the text, as text"
    assert "␀␇␛" in (entry.findtext(f"{A}summary") or ""), "control characters shown, not dropped"
    content = lxml.html.fragment_fromstring(entry.findtext(f"{A}content") or "", create_parent="div")
    assert content.xpath("//script|//img|//@*[starts-with(name(), 'on')]") == []
    assert [a.get("href") for a in content.iter("a")] == [
        "../versions/meta@v2.html",
        "../changes/meta@c1.html",
    ], "links to our own pages only: the passage's place in the version, the change page"
    assert hostile in content.text_content()


def test_the_may_2025_ai_at_meta_change_from_the_real_pipeline(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, statuses = corpus_archive(tmp_path_factory, page_server, "may-2025")
    assert statuses == ["new", "changed"]
    # the change is in the AI-training topic feed
    entry = child(feeds_of(config.storage_dir / "feeds")["topic/ai-training.atom"].getroot(), f"{A}entry")
    summary = entry.findtext(f"{A}summary") or ""
    first = summary.splitlines()[:3]
    assert first[0].startswith("Added under ") and "artificial intelligence" in first[0], (
        "the passage a topic matched first, under its section"
    )
    assert "Develop and improve artificial intelligence technology (also called AI at Meta)" in summary
    assert "line" not in summary.lower().replace("online", ""), "no line numbers"
    title = entry.findtext(f"{A}title", "")
    assert title.startswith('[fb] Added under "') and "Develop and improve artificial intelligence" in title
    diff = lxml.html.fragment_fromstring(entry.findtext(f"{A}content") or "", create_parent="div")
    inserted = " ".join(node.text_content() for node in diff.iter("ins"))
    assert "Interactions with Meta" in inserted
    assert {c.get("term") for c in entry.findall(f"{A}category")} >= {"ai-training", "legal-basis"}
    with SqliteStorage.open(config.storage_dir, writer=False) as store:
        detected = iso(store.archive.change("fb@c1").detected_at)
    assert entry.findtext(f"{A}published") == entry.findtext(f"{A}updated") == detected


def test_the_june_2024_delay_banner_is_quoted(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, statuses = corpus_archive(tmp_path_factory, page_server, "delay-2024")
    assert statuses == ["new", "changed"]
    entry = child(feeds_of(config.storage_dir / "feeds")["all.atom"].getroot(), f"{A}entry")
    content = lxml.html.fragment_fromstring(entry.findtext(f"{A}content") or "", create_parent="div")
    inserted = " ".join(" ".join(node.text_content().split()) for node in content.iter("ins"))
    assert "delaying our change to the use of your information to develop and improve AI at Meta" in inserted


# --------------------------------------------------------------------------- bounded: a reader can poll them

SERIES = ("facebook-privacy-policy-en", "facebook-privacy-policy-fr", "facebook-privacy-policy-genai")


@pytest.mark.slow
def test_feeds_stay_small_after_replaying_long_real_series(page_server: PageServer, tmp_path: Path) -> None:
    """Every recorded version of three real series, one check each (39 captures, big rewrites among
    them): no feed file reaches 1 MB, no entry 20 KB, and each feed keeps its newest entries."""
    sites = [Site(name, f"/{name}", 'notify = "all"') for name in SERIES]
    config_path = write_config(tmp_path, page_server.base_url, sites, head="[validate]\nmax_growth = 20.0\n")
    captures = {name: series(name) for name in SERIES}
    for step in range(max(len(c) for c in captures.values())):
        for name, versions in captures.items():
            page_server.set(
                f"/{name}",
                render_page(corpus_text(versions[min(step, len(versions) - 1)]), seed=step),
                etag=False,
            )
        cycle(config_path)
    config, store = open_archive(config_path)
    with store:
        changes = store.archive.changes()
        after_cycle(config, store)
    assert len(changes) >= 15, "a long series of real changes"
    sizes = {
        p.relative_to(config.storage_dir / "feeds"): p.stat().st_size
        for p in (config.storage_dir / "feeds").rglob("*.atom")
    }
    assert max(sizes.values()) < 1_000_000, sizes
    for name in sizes:
        tree = etree.parse(str(config.storage_dir / "feeds" / name))
        entries = tree.getroot().findall(f"{A}entry")
        assert len(entries) <= FEED_LIMIT
        for entry in entries:
            assert len(etree.tostring(entry)) < 20_000, (name, entry.findtext(f"{A}title"))
    print(
        "feed sizes after the replay:",
        {str(k): v for k, v in sorted(sizes.items())},
        f"({len(changes)} changes)",
    )


def test_no_feed_file_exceeds_1_mb_however_big_its_entries(tmp_path: Path) -> None:
    with open_store(tmp_path, [META]) as store:
        meta = Builder(store, META)
        meta.version(BASE)
        for n in range(FEED_LIMIT + 10):
            clauses = "\n\n".join(
                f"## Clause {n}-{i}\n\nWe may use public posts {n}-{i} to train AI." for i in range(60)
            )
            meta.change(f"{BASE}\n{clauses}\n", topics=["ai-training"])
        after_cycle(make_config(tmp_path, [META]), store)
    for path in (tmp_path / "feeds").rglob("*.atom"):
        assert path.stat().st_size < 1_000_000, path
    entries = feeds_of(tmp_path / "feeds")["all.atom"].getroot().findall(f"{A}entry")
    assert 0 < len(entries) <= FEED_LIMIT
    content = entries[0].findtext(f"{A}content") or ""
    assert "more passages in the archive" in content and "changes/meta@c" in content, "cut, with the link"
