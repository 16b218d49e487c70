"""Publishing reuses what the same process already computed (issue 14), and only where that is provably
what computing it again gives: a diff the pipeline wrote to the diff cache, a line of a change printed for
another page, the since-dates of a version page standing in its key by their digest. Each test compares
the reused result with a fresh one, and checks that the reuse stops where it would no longer be equal."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from test_render import EN_MAY, FR_REWRITE, compose_cuts, real
from test_render_units import hostile_story

from support.archives import Builder, make_config, open_store
from watchdog.diff import diff_texts
from watchdog.messages import TextDiff
from watchdog.models import Target
from watchdog.publish import after_cycle
from watchdog.publish.archive import PROCESS_DIFFS, DiffCache, diff_cache_dir, load_archive
from watchdog.publish.feeds import escaped_size
from watchdog.publish.output import Page
from watchdog.publish.site import SiteBuilder
from watchdog.render import html
from watchdog.render.compose import Cut, Links, Passage, Story, compose
from watchdog.render.html import render_fragment
from watchdog.render.text import render_text, texts
from watchdog.storage.reader import SqlArchive

BEFORE, AFTER = "# Policy\n\nYou can object.\n", "# Policy\n\nYou can no longer object.\n"


TEXTS = {"a": BEFORE, "b": AFTER}


def reading(read: list[str]) -> Callable[[str], str]:
    """The texts by hash, noting each one read."""

    def text(digest: str) -> str:
        read.append(digest)
        return TEXTS[digest]

    return text


def test_a_diff_on_disk_is_shared_in_the_process_while_its_entry_is_there(tmp_path: Path) -> None:
    read: list[str] = []
    first = DiffCache(texts=reading(read), directory=tmp_path / "diffs")
    computed = first.diff("a", "b")
    assert computed == diff_texts(BEFORE, AFTER) and read == ["a", "b"]
    second = DiffCache(texts=reading(read), directory=tmp_path / "diffs")
    assert second.diff("a", "b") is computed and read == ["a", "b"], "neither computed nor read back"
    assert second.computed == 0

    elsewhere = DiffCache(texts=reading(read), directory=tmp_path / "other")
    assert elsewhere.diff("a", "b") == computed and elsewhere.computed == 1, "another folder: its own"
    for entry in (tmp_path / "diffs").rglob("*.json"):
        entry.unlink()  # what reading the folder back would no longer find: computed again, as before
    third = DiffCache(texts=reading(read), directory=tmp_path / "diffs")
    assert third.diff("a", "b") == computed and third.computed == 1


def test_a_diff_of_a_callers_own_function_or_without_a_folder_is_never_shared(tmp_path: Path) -> None:
    def own(before: str, after: str) -> TextDiff:
        return diff_texts(before, after + "Added by the caller.\n")

    read: list[str] = []
    DiffCache(texts=reading(read), directory=tmp_path / "diffs").diff("a", "b")
    mine = DiffCache(texts=reading(read), directory=tmp_path / "own", compute=own)
    assert mine.diff("a", "b") == own(BEFORE, AFTER) != diff_texts(BEFORE, AFTER)
    again = DiffCache(texts=reading(read), directory=tmp_path / "diffs")
    assert again.diff("a", "b") == diff_texts(BEFORE, AFTER) and again.computed == 0
    memory = DiffCache(texts=reading(read))
    assert memory.diff("a", "b") == diff_texts(BEFORE, AFTER) and memory.computed == 1


def test_the_process_keeps_a_bounded_number_of_diffs(tmp_path: Path) -> None:
    texts = {f"t{n}": f"# Policy\n\nLine {n}.\n" for n in range(PROCESS_DIFFS + 5)}
    cache = DiffCache(texts=texts.__getitem__, directory=tmp_path)
    for n in range(1, PROCESS_DIFFS + 5):
        cache.diff("t0", f"t{n}")
    fresh = DiffCache(texts=texts.__getitem__, directory=tmp_path)
    fresh.diff("t0", f"t{PROCESS_DIFFS + 4}")
    assert fresh.computed == 0, "the newest is kept"
    fresh.diff("t0", "t1")
    assert fresh.computed == 0, "the oldest is still read back from the folder"
    assert fresh.diff("t0", "t1") == diff_texts(texts["t0"], texts["t1"])


# --------------------------------------------------------------------------- a change's lines, printed once


SITE = "{% for p in story.passages %}{{ passage(p, links, {}, '#full-' ~ p.index) }}{% endfor %}"
MAIL = "{{ passages(story, story.passages, links, css, none) }}"


def printed_afresh(story: Story, links: Links, env_name: str, css: dict[str, str]) -> str:
    html.KEPT_LINES.clear()
    return printed(story, links, env_name, css)


def printed(story: Story, links: Links, env_name: str, css: dict[str, str]) -> str:
    env = html.mail() if env_name == "mail" else html.archive()
    return env.from_string(SITE if not css else MAIL).render(story=story, links=links, css=css)


@pytest.mark.parametrize("pair", [EN_MAY, FR_REWRITE], ids=["en-may", "fr-rewrite"])
def test_a_line_kept_for_the_process_is_printed_as_afresh_in_every_environment_and_style(
    pair: tuple[str, str],
) -> None:
    """The site's pages and the feed entries print the same lines (compose keeps them per hunk): each line
    is kept once printed, without CSS, per transform. In any order of environments (inert, visible) and
    styles (none, e-mail CSS), every print is what a print with nothing kept gives."""
    message = real(pair)
    stories = [(compose(message), Links.published(message.archive_url, message)), hostile_story()]
    ways = [("archive", {}), ("mail", {}), ("mail", dict(html.EMAIL_CSS)), ("archive", dict(html.EMAIL_CSS))]
    expected = {
        (i, env, bool(css)): printed_afresh(story, links, env, css)
        for i, (story, links) in enumerate(stories)
        for env, css in ways
    }
    html.KEPT_LINES.clear()
    for order in (ways, ways[::-1]):
        for index, (story, links) in enumerate(stories):
            for env, css in order:
                assert printed(story, links, env, css) == expected[(index, env, bool(css))]
    assert html.KEPT_LINES, "lines printed without CSS are kept"


def test_the_kept_lines_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    message = real(EN_MAY)
    story, links = compose(message), Links.published(message.archive_url, message)
    monkeypatch.setattr(html, "LINES_KEPT", 5)
    html.KEPT_LINES.clear()
    assert printed(story, links, "archive", {}) == printed_afresh(story, links, "archive", {})
    assert 0 < len(html.KEPT_LINES) <= 5


@pytest.mark.parametrize("pair", [EN_MAY, FR_REWRITE], ids=["en-may", "fr-rewrite"])
def test_the_cuts_of_one_story_are_each_rendered_as_afresh(
    pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose.fit renders one story's whole body, then shorter cuts: `fragments` and `texts` render each
    whole passage once for all of them, and every cut, in any order, is what rendering it alone gives."""
    message = real(pair)
    story, links = compose(message), Links.published(message.archive_url, message)
    cuts: list[Cut | None] = [None, *compose_cuts(story)]
    assert len(cuts) > 10
    alone = [
        (render_fragment(story, links, cut=cut, page_text=html.visible), render_text(story, links, cut=cut))
        for cut in cuts
    ]
    rendered: list[Passage] = []
    original = html.ChangeHtml.passage

    def counting(self: html.ChangeHtml, p: Passage, *args: Any) -> Markup:
        rendered.append(p)
        return original(self, p, *args)

    monkeypatch.setattr(html.ChangeHtml, "passage", counting)
    html_of, text_of = html.fragments(story, links, page_text=html.visible), texts(story, links)
    for order in (range(len(cuts)), reversed(range(len(cuts)))):
        for index in order:
            assert (html_of(cuts[index]), text_of(cuts[index])) == alone[index]
    whole = [p for p in rendered if p in story.passages]
    assert len(whole) == len(story.passages), "each whole passage rendered once"


# --------------------------------------------------------------------------- a version page's key

META = Target(id="meta", url="https://example.org/policy", name="Meta Privacy Policy")
BASE = "Our policy explains how we use information.\nYou can contact us at any time.\n"


def version_pages(builder: SiteBuilder) -> dict[str, Page]:
    return {p.path: p for p in builder.pages() if p.path.startswith("versions/")}


def test_a_version_page_key_changes_exactly_when_its_since_dates_print_otherwise(tmp_path: Path) -> None:
    """The since-dates of a version's sentences are in its page key by their digest (site._since_key:
    equal exactly when they print the same), not by the repr of every (sentence, date) pair."""
    store = open_store(tmp_path, [META])
    meta = Builder(store, META)
    meta.version(BASE)
    meta.change(BASE + "We may use public posts to train artificial intelligence.\n", topics=["ai-training"])
    config = make_config(tmp_path, [META])
    with store:
        after_cycle(config, store)
        with store.reading() as reader:
            archive = load_archive(reader)
            diffs = DiffCache(texts=reader.text, directory=diff_cache_dir(tmp_path))

            def keys(since: dict[str, tuple[tuple[int, datetime], ...]] | None) -> dict[str, str]:
                builder = SiteBuilder(config, archive, reader, diffs, "g")
                if since is not None:
                    builder.sentences_since["meta"] = since
                return {path: page.key for path, page in version_pages(builder).items()}

            plain = keys(None)
            known = SiteBuilder(config, archive, reader, diffs, "g")
            known.pages()
            since = dict(known.sentences_since["meta"])
            assert since["meta@v2"], "the archive has its sentence index"
            assert keys(dict(since)) == plain
            later = tuple((n, datetime(2031, 1, 1, tzinfo=UTC)) for n, _ in since["meta@v2"])
            moved = keys({**since, "meta@v2": later})
            assert moved["versions/meta@v2.html"] != plain["versions/meta@v2.html"]
            assert moved["versions/meta@v1.html"] == plain["versions/meta@v1.html"]
            fewer = keys({**since, "meta@v2": since["meta@v2"][1:]})
            assert fewer["versions/meta@v2.html"] != plain["versions/meta@v2.html"]


# --------------------------------------------------------------------------- a feed entry's size


@given(st.text(alphabet=st.sampled_from("&<>\"' a\u00e9\u20ac\U0001f600\r\n\x00"), max_size=60) | st.text())
def test_an_entrys_escaped_size_is_that_of_its_escaped_copy(body: str) -> None:
    assert escaped_size(body) == len(xml_escape(body).encode("utf-8"))


def test_a_new_versions_text_is_read_once_for_its_page_and_its_text_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    original = SqlArchive.text

    def counted(self: SqlArchive, digest: str) -> str:
        read.append(digest)
        return original(self, digest)

    monkeypatch.setattr(SqlArchive, "text", counted)
    store = open_store(tmp_path, [META])
    meta = Builder(store, META)
    meta.version(BASE)
    meta.change(BASE + "We may use public posts to train artificial intelligence.\n", topics=["ai-training"])
    with store:
        after_cycle(make_config(tmp_path, [META]), store)
        hashes = {v.id: v.text_hash for v in store.archive.versions("meta")}
        store_text = {digest: original(store.archive, digest) for digest in hashes.values()}
    for version, digest in hashes.items():
        assert (tmp_path / "site" / "texts" / f"{version}.txt").read_text("utf-8") == store_text[digest]
    # each text: once for its version page and text file, once for the diff of the change (and its
    # compare page: the same two texts); read for the text file too, it would be three times
    assert sorted(read) == sorted([*hashes.values(), *hashes.values()])


def test_threads_share_the_process_diffs_safely(tmp_path: Path) -> None:
    """`serve` renders compare pages in several threads: each gets the diff of its two texts, while the
    table of the process's diffs fills past its bound and evicts."""
    texts = {f"t{n}": f"# Policy\n\nLine {n} of {n % 7}.\n" for n in range(PROCESS_DIFFS * 2)}
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, len(texts), 4):
                cache = DiffCache(texts=texts.__getitem__, directory=tmp_path)
                assert cache.diff("t0", f"t{n}") == diff_texts(texts["t0"], texts[f"t{n}"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
