"""Issue 15 in the web view: `serve`'s search page (GET, read-only, escaped, bounded), "in the policy since"
per paragraph on version pages, imported versions on the site and in `history` with their source, and
imported changes kept out of the news feeds (the archive feed has them, at their original dates)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree
from test_import_ota import AI_TERMS, BUNDLE, import_ota, policy_config
from test_serve import running

from support.archives import T0, Builder, make_config, open_store
from support.harness import cli, open_archive
from support.pageserver import PageServer
from support.postgres import Backend, PostgresServer
from watchdog.models import Target
from watchdog.publish import after_cycle
from watchdog.publish.serve import ArchiveServer
from watchdog.publish.site import SEARCH_PAGE_LIMIT

POLICY = Target("policy", "https://example.org/policy", "Privacy Policy")
TERMS = Target("terms", "https://example.org/terms", "Terms")
V1 = "# Privacy Policy\n\nWe collect information you provide. We use public posts to improve our services.\n"
V2 = "# Privacy Policy\n\nWe collect information you provide.\n\nWe use public posts to train AI at Meta.\n"
ATOM = "{http://www.w3.org/2005/Atom}"


def get(server: ArchiveServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ArchiveServer, list[str]]]:
    """An archive of two targets: the policy's two versions, and terms with more sentences than a page
    shows; one server for the read-only tests of the search page, on each backend (SQLite's FTS5 index,
    PostgreSQL's full-text search)."""
    directory = tmp_path_factory.mktemp("search") / "data"
    server: PostgresServer | None = None
    url = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
    backend = Backend(request.param, url)
    try:
        with backend.open(directory) as store:
            store.checks.sync_targets([POLICY, TERMS])
            policy = Builder(store, POLICY)
            ids = [policy.version(V1)]
            policy.change(V2)
            assert policy.current is not None
            ids.append(policy.current)
            many = "\n\n".join(f"Clause {i} applies to public data." for i in range(SEARCH_PAGE_LIMIT + 20))
            Builder(store, TERMS).version(f"# Terms\n\n{many}\n")
        config = make_config(directory, [POLICY, TERMS])
        config = replace(config, storage=replace(config.storage, url=url))
        with running(config) as archive_server:
            yield archive_server, ids
    finally:
        if server is not None and url is not None:
            server.drop_database(url)


def hits(body: str) -> list[str]:
    return re.findall(r"<li><q>(.*?)</q>", body)


def test_the_search_page_answers_with_sentences_and_when_each_was_first_and_last_seen(
    served: tuple[ArchiveServer, list[str]],
) -> None:
    server, (v1, v2) = served
    status, headers, body = get(server, "/search?q=" + quote('"public posts"') + "&target=policy")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "form-action 'self'" in headers["content-security-policy"]
    assert sorted(hits(body)) == [
        "We use public posts to improve our services.",
        "We use public posts to train AI at Meta.",
    ]
    v1_at = (T0 + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M UTC")
    gone = body.split("We use public posts to improve our services.")[1].split("</li>")[0]
    assert (
        f'first seen <time datetime="{(T0 + timedelta(hours=1)):%Y-%m-%dT%H:%M:%SZ}">{v1_at}</time>' in gone
    )
    assert f'href="versions/{v1}.html"' in gone and "last seen" in gone
    still = body.split("We use public posts to train AI at Meta.")[1].split("</li>")[0]
    assert f'href="versions/{v2}.html"' in still and "still in the current version" in still
    # the target filter: the terms hold "public data" but not "public posts"
    _, _, everywhere = get(server, "/search?q=public")
    assert len(hits(everywhere)) > 2 and "Clause 0 applies to public data." in hits(everywhere)


def test_the_search_page_is_bounded_escaped_and_read_only(served: tuple[ArchiveServer, list[str]]) -> None:
    server, _ = served
    _, _, body = get(server, "/search?q=clause+data")
    assert len(hits(body)) == SEARCH_PAGE_LIMIT and "narrow the query" in body
    hostile = '<script>alert(1)</script> "public'
    status, _, body = get(server, "/search?q=" + quote(hostile))
    assert (
        status == 200 and "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    )
    status, _, body = get(server, "/search")
    assert status == 200 and '<form class="search"' in body and "<ol" not in body
    assert get(server, "/search?q=" + quote("( ) *"))[0] == 200  # nothing to search: said on the page
    assert get(server, "/search?q=x&target=" + quote("../etc"))[0] == 400
    assert get(server, "/search?q=" + "a" * 301)[0] == 400
    assert get(server, "/search?q=public", method="POST")[0] == 405
    assert get(server, "/search?q=public", method="DELETE")[0] == 405


def test_each_paragraph_of_a_version_page_says_since_when_it_is_in_the_policy(tmp_path: Path) -> None:
    with open_store(tmp_path / "data", [POLICY]) as store:
        builder = Builder(store, POLICY)
        builder.version(V1)
        first_seen = builder.clock
        builder.change(V2)
        second_seen = builder.clock
        after_cycle(make_config(tmp_path / "data", [POLICY]), store)
        current = builder.current
    assert current is not None
    page = (tmp_path / "data" / "site" / "versions" / f"{current}.html").read_text(encoding="utf-8")

    def since(paragraph: str) -> str:
        found = re.search(re.escape(paragraph) + r' <span class="meta since">in the policy since <time '
                          r'datetime="([^"]+)">', page)  # fmt: skip
        assert found, paragraph
        return found.group(1)

    assert since("We collect information you provide.") == f"{first_seen:%Y-%m-%dT%H:%M:%SZ}"
    assert since("We use public posts to train AI at Meta.") == f"{second_seen:%Y-%m-%dT%H:%M:%SZ}"


def test_imported_history_on_the_site_in_history_and_only_in_the_archive_feed(
    tmp_path: Path, page_server: PageServer
) -> None:
    config = policy_config(tmp_path, page_server.base_url)
    import_ota(config, AI_TERMS, "fb")
    published = cli("--config", str(config), "publish")
    assert published.returncode == 0, published.stderr
    root = tmp_path / "archive"

    timeline = (root / "site" / "targets" / "fb.html").read_text(encoding="utf-8")
    assert "fb@v1: first version, imported from Open Terms Archive" in timeline
    version = (root / "site" / "versions" / "fb@v1.html").read_text(encoding="utf-8")
    assert "imported from Open Terms Archive" in version and "Recorded by the source" in version
    history = cli("--config", str(config), "history", "fb", "--json").stdout
    rows = [json.loads(line) for line in history.splitlines()]
    _, store = open_archive(config)
    with store:
        provenance = store.archive.version("fb@v1").provenance
    assert provenance is not None and str(provenance["commit"]) in version
    assert "in the policy since" in version
    table = cli("--config", str(config), "history", "fb").stdout
    assert "SOURCE" in table and table.count("Open Terms Archive") == len(rows) == 3

    def entries(name: str) -> list[str]:
        tree = etree.parse(str(root / "feeds" / name))
        return [e.findtext(f"{ATOM}updated") or "" for e in tree.getroot().iter(f"{ATOM}entry")]

    assert entries("all.atom") == [] and entries("target/fb.atom") == []
    assert all(entries(f"topic/{p.stem}.atom") == [] for p in (root / "feeds" / "topic").glob("*.atom"))
    # the two imported changes, at the dates Open Terms Archive recorded them (newest first)
    assert entries("archive.atom") == ["2026-05-13T10:32:30Z", "2026-04-21T10:32:37Z"]
    assert str(BUNDLE) in version  # the repository it came from
