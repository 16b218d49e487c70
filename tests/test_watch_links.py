"""Watched links (`watch_links`): the objection-form links of the real policies, end to end.

Units: which links the extractor keeps, and `links.link_changes` on small texts. End to end: the real
printable Meta Privacy Policy of 21 July 2026 (OTA raw snapshot, tests/fixtures/pages/SOURCES.md) served by
the local page server, checked by the real pipeline into a real SQLite archive: the same page with its
objection link removed (the wording untouched) is an `opt-out` change quoting the sentence, and the real
update of 23 July 2026, which dropped that link, is one too.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from support.harness import cycle, open_archive
from support.pageserver import PageServer
from watchdog.extract import LinkWatch, extract
from watchdog.links import link_changes

PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"
OBJECT_FORM = "https://www.facebook.com/help/contact/367438723733209"
WATCHED = (OBJECT_FORM, "https://www.facebook.com/help/contact/6359191084165019")
OBJECT_SENTENCE = "You have the right to object to and restrict certain processing of your information."


def printable(day: str) -> bytes:
    name = {"21": "printable-2026-07-21T22-33-56Z.html.gz", "23": "printable-2026-07-23T22-34-38Z.html.gz"}[
        day
    ]
    return gzip.decompress((PAGES / name).read_bytes())


def without_objection_link(page: bytes) -> bytes:
    """The same page, every link to the objection form turned into plain text (the words stay)."""
    html = page.decode("utf-8")
    unlinked, count = re.subn(r'<a href="[^"]*367438723733209[^"]*"[^>]*>(.*?)</a>', r"\1", html)
    assert count == 2
    return unlinked.encode("utf-8")


def text_of(html: str, **options: object) -> str:
    body = f"<html><body><div id='root'>{html}</div></body></html>".encode()
    return extract(body, content_type="text/html", url="https://mbasic.facebook.com/privacy/", **options).text  # type: ignore[arg-type]


# --------------------------------------------------------------------------- extraction


def test_only_watched_links_keep_their_canonical_target() -> None:
    html = (
        '<p>You can <a href="https://facebook.com/help/contact/367438723733209/?entry_point=X&amp;'
        'fbclid=IwAR1">object</a> or read our <a href="/policies/cookies/?ref=1">Cookies Policy</a>.</p>'
    )
    assert text_of(html) == "You can object or read our Cookies Policy.\n"
    watched = text_of(html, watch_links=[OBJECT_FORM])
    # the link's own canonical form: its host and path as written, tracking parameters dropped
    assert (
        watched
        == "You can object <https://facebook.com/help/contact/367438723733209/> or read our Cookies Policy.\n"
    )
    # the same with every link kept: the watched one is not written twice
    kept = text_of(html, watch_links=[OBJECT_FORM], keep_links=True)
    assert kept.count("367438723733209") == 1


@pytest.mark.parametrize(
    ("pattern", "link", "watched"),
    [
        (OBJECT_FORM, "https://www.facebook.com/help/contact/367438723733209?entry_point=A", True),
        (OBJECT_FORM, "https://m.facebook.com/help/contact/367438723733209/", True),
        (OBJECT_FORM, "https://www.facebook.com/help/contact/1994830130782319", False),
        ("https://www.facebook.com/help/contact/*", "https://facebook.com/help/contact/19948301", True),
        ("https://help.instagram.com/contact/*", "https://www.facebook.com/help/contact/1", False),
        (OBJECT_FORM, "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.facebook.com%2Fhelp%2Fcontact%2F"
         "367438723733209&h=AT1", True),
    ],
    ids=["tracking-parameters", "mobile-host-trailing-slash", "other-form", "glob", "glob-other-host",
         "behind-a-link-shim"],
)  # fmt: skip
def test_link_watch_matching(pattern: str, link: str, watched: bool) -> None:
    html = f'<p>Go <a href="{link}">here</a>.</p>'
    assert ("<https://" in text_of(html, watch_links=[pattern])) is watched


# --------------------------------------------------------------------------- changes between texts


def test_link_changes_appeared_disappeared_retargeted() -> None:
    watch = LinkWatch(["https://www.facebook.com/help/contact/*"])
    before = (
        "Intro. You can object <https://www.facebook.com/help/contact/1> to this. Other.\n"
        "Ask us <https://www.facebook.com/help/contact/2>.\n"
    )
    after = (
        "Intro. You can object <https://www.facebook.com/help/contact/9> to this. Other.\n"
        "Ask us.\n"
        "New form <https://www.facebook.com/help/contact/3>.\n"
    )
    changes = {(c.event, c.url, c.old_url, c.sentence) for c in link_changes(before, after, watch)}
    assert changes == {
        ("retargeted", "https://www.facebook.com/help/contact/9", "https://www.facebook.com/help/contact/1",
         "You can object to this."),
        ("disappeared", "https://www.facebook.com/help/contact/2", None, "Ask us."),
        ("appeared", "https://www.facebook.com/help/contact/3", None, "New form."),
    }  # fmt: skip
    assert link_changes(before, before, watch) == ()
    same_place = before.replace(
        "https://www.facebook.com/help/contact/1", "https://facebook.com/help/contact/1/"
    )
    assert link_changes(before, same_place, watch) == ()
    assert link_changes(before, after, LinkWatch([])) == ()


# --------------------------------------------------------------------------- end to end


def write_config(tmp_path: Path, base_url: str, *, watch: bool) -> Path:
    lines = [
        '[storage]\ndir = "archive"\n[fetch]\nretries = 0\ntimeout = 10\n',
        "[[targets]]",
        'id = "fb"',
        f'url = "{base_url}/privacy/policy/printable/"',
        'select = ["#root"]',
        """remove = ['a[href="#"]']""",
        'confirm_delay = "0s"',
        "max_shrink = 0.9",
    ]
    if watch:
        lines.append(f"watch_links = {list(WATCHED)!r}".replace("'", '"'))
    path = tmp_path / "watchdog.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_objection_link_removed_from_a_real_policy_is_an_opt_out_change(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, watch=True)
    page_server.set("/privacy/policy/printable/", printable("21"), etag=False)
    (first,) = cycle(config)
    assert first.status == "new"
    _config, store = open_archive(config)
    with store:
        baseline = store.archive.version_text("fb@v1")
    assert f"You have the right to object to <{OBJECT_FORM}> and restrict certain processing" in baseline
    assert "<https://www.facebook.com/help/contact/259518714718624>" not in baseline  # not watched

    page_server.set("/privacy/policy/printable/", without_objection_link(printable("21")), etag=False)
    (second,) = cycle(config)
    assert (second.status, second.change) == ("changed", "fb@c1")
    assert "opt-out" in second.topics
    _config, store = open_archive(config)
    with store:
        evidence = store.archive.change_evidence("fb@c1")
        text = store.archive.version_text("fb@v2")
    removed = [e for e in evidence if e["pattern"] == f"link removed: {OBJECT_FORM}"]
    assert {e["sentence"] for e in removed} == {
        OBJECT_SENTENCE,
        "You can object to our processing your information when we rely on legitimate interests or perform "
        "a task in the public interest.",
    }
    assert {(e["topic"], e["side"]) for e in removed} == {("opt-out", "deleted")}
    assert OBJECT_SENTENCE in text and OBJECT_FORM not in text


def test_without_watch_links_the_same_removal_changes_nothing(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, watch=False)
    page_server.set("/privacy/policy/printable/", printable("21"), etag=False)
    assert cycle(config)[0].status == "new"
    page_server.set("/privacy/policy/printable/", without_objection_link(printable("21")), etag=False)
    assert cycle(config)[0].status == "unchanged"


def test_the_real_july_2026_update_dropped_the_objection_link(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, watch=True)
    page_server.set("/privacy/policy/printable/", printable("21"), etag=False)
    assert cycle(config)[0].status == "new"
    page_server.set("/privacy/policy/printable/", printable("23"), etag=False)
    (update,) = cycle(config)
    assert update.status == "changed"
    assert "opt-out" in update.topics
    _config, store = open_archive(config)
    with store:
        evidence = store.archive.change_evidence(update.change or "")
    assert any(
        e["pattern"] == f"link removed: {OBJECT_FORM}" and e["sentence"] == OBJECT_SENTENCE for e in evidence
    )
