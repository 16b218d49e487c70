"""Search and trace over the sentence index (storage/search.py, trace.py), on real SQLite archives written
through the storage's own write (support.archives.Builder) and on real corpus versions."""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.archives import T0, Builder, open_store
from support.harness import cli
from support.postgres import Backend
from support.replay import corpus_text, series
from watchdog.diff import split_sentences
from watchdog.errors import NotFoundError, QueryError
from watchdog.models import Target
from watchdog.storage.chain import ts
from watchdog.storage.interfaces import Storage
from watchdog.storage.search import (
    MAX_RESULTS,
    fts5_query,
    pack_ids,
    parse_query,
    sentence_hash,
    sentences_of,
    unpack_ids,
)
from watchdog.storage.sqlite import DB_NAME, SqliteStorage
from watchdog.storage.sqlite import search as sqlite_search
from watchdog.trace import since_when, trace

TARGET = Target("policy", "https://example.org/policy", "Policy")
OTHER = Target("terms", "https://example.org/terms", "Terms")

V1 = """# Privacy Policy

We collect information you provide. We use public posts to improve our services.

## Your rights

You can object to some processing by contacting us.
"""
V2 = """# Privacy Policy

We collect information you provide. We use public posts and photos to improve AI at Meta.

## Your rights

You can object to some processing by contacting us.
"""
V3 = """# Privacy Policy

We collect information you provide.

## Your rights

You can object to the use of your information for AI at Meta by contacting us.
"""


@pytest.fixture
def store(tmp_path: Path, backend: Backend) -> Iterator[Storage]:
    """An archive on each backend (SQLite FTS5; PostgreSQL full-text search)."""
    with backend.open(tmp_path / "archive") as opened:
        opened.checks.sync_targets([TARGET, OTHER])
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStorage]:
    with open_store(tmp_path / "archive", [TARGET, OTHER]) as opened:
        yield opened


def history(store: Storage, *texts: str, target: Target = TARGET) -> list[str]:
    builder = Builder(store, target)
    ids = [builder.version(texts[0])]
    for text in texts[1:]:
        builder.change(text)
        assert builder.current is not None
        ids.append(builder.current)
    return ids


# --------------------------------------------------------------------------- the index's rules


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        pytest.param("public posts", ("public", "posts"), id="words"),
        pytest.param('"legitimate interests" AI', ("legitimate interests", "AI"), id="phrase-and-word"),
        pytest.param('  "a   b"  ', ("a b",), id="phrase-spaces-tidied"),
        pytest.param(
            'NEAR(a b) OR c* "x" -y', ("NEAR(a", "b)", "OR", "c*", "x", "-y"), id="operators-literal"
        ),
        pytest.param('"unclosed phrase', ('"unclosed', "phrase"), id="stray-quote"),
    ],
)
def test_queries_are_words_and_phrases_taken_literally(query: str, terms: tuple[str, ...]) -> None:
    assert parse_query(query) == terms


@pytest.mark.parametrize("query", ["", "   ", '""', "* - ( )"])
def test_a_query_with_nothing_to_search_is_refused(query: str) -> None:
    with pytest.raises(ValueError, match="nothing to search"):
        parse_query(query)


def test_every_term_is_a_quoted_literal_for_fts5() -> None:
    assert fts5_query(('say "hi"', "x")) == '"say ""hi""" "x"'
    assert fts5_query(("a", "b"), any_term=True) == '"a" OR "b"'


def whole_text_sentences(text: str) -> list[tuple[str, str]]:
    """The sentences of the whole text at once, as the index read them before it read line by line."""
    seen: dict[str, str] = {}
    for start, end in split_sentences(text):
        sentence = text[start:end]
        if any(c.isalpha() for c in sentence):
            seen.setdefault(sentence_hash(sentence), sentence)
    return list(seen.items())


PIECES = [
    "e.g",
    "etc",
    "U.S",
    "No",
    "Art",
    ".",
    "!",
    "…",
    " ",
    " | ",
    " • ",
    "We",
    "a",
    "1",
    "2.",
    "# ",
    "- ",
    '"',
    "(",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), max_size=8))
def test_sentences_read_line_by_line_are_those_of_the_whole_text(lines: list[str]) -> None:
    """Each line's sentences are kept between texts; a line that starts with a sentence end is read after
    the line before it (an abbreviation ending that line means no sentence ends there)."""
    text = "\n".join(lines)
    assert sentences_of(text) == whole_text_sentences(text)
    assert sentences_of(text) == whole_text_sentences(text)  # the second time from the kept lines


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=3000), st.integers(0, 9))
def test_packed_ids_round_trip_whatever_level_packed_them(ids: list[int], level: int) -> None:
    """A version's sentence ids read back in order; ids packed at another zlib level (6 before) too."""
    assert unpack_ids(pack_ids(ids)) == tuple(ids)
    assert unpack_ids(zlib.compress(struct.pack(f"<{len(ids)}Q", *ids), level)) == tuple(ids)


def test_sentences_of_real_policies_are_those_of_the_whole_text() -> None:
    names = [*series("facebook-privacy-policy-en")[:3], *series("facebook-privacy-policy-fr")[:2]]
    for text in map(corpus_text, names):
        assert sentences_of(text) == whole_text_sentences(text)
    assert [s for _, s in sentences_of("See e.g\n. We train AI")] == ["See e.g", ". We train AI"]
    assert [s for _, s in sentences_of("See it\n. We train AI")] == ["See it", "We train AI"]


def test_a_sentence_is_a_sentence_of_the_diff_and_each_is_kept_once() -> None:
    found = [s for _, s in sentences_of(V1 + "\n1\n\n| a | b |\n\nWe collect information you provide.\n")]
    assert found == [
        "Privacy Policy",
        "We collect information you provide.",
        "We use public posts to improve our services.",
        "Your rights",
        "You can object to some processing by contacting us.",
        "a",
        "b",
    ]


# --------------------------------------------------------------------------- search


def test_search_answers_with_sentences_and_when_each_was_first_and_last_seen(store: Storage) -> None:
    v1, v2, v3 = history(store, V1, V2, V3)
    versions = {v.id: v for v in store.archive.versions("policy")}
    [gone] = store.archive.search("public posts photos")
    assert gone.sentence == "We use public posts and photos to improve AI at Meta."
    assert (gone.first_version, gone.last_version) == (v2, v2)
    assert gone.first_seen == versions[v2].first_seen and gone.last_seen == versions[v2].last_seen
    [kept] = store.archive.search('"we collect information"')
    assert (kept.first_version, kept.first_seen, kept.last_seen) == (v1, versions[v1].first_seen, None)
    hits = store.archive.search("AI Meta")
    assert {h.sentence for h in hits} == {
        "We use public posts and photos to improve AI at Meta.",
        "You can object to the use of your information for AI at Meta by contacting us.",
    }
    current = next(h for h in hits if h.last_seen is None)
    assert current.first_version == v3 and current.last_version is None


def test_search_is_per_target_when_asked_and_ignores_case_and_accents(store: Storage) -> None:
    history(store, V1)
    history(store, "# Conditions\n\nLes données publiques servent à entraîner l'IA.\n", target=OTHER)
    assert [h.target_id for h in store.archive.search("DONNEES publiques")] == ["terms"]
    assert store.archive.search("donnees", target="policy") == []
    assert {h.target_id for h in store.archive.search('"privacy policy" OR conditions', any_term=True)} == {
        "policy",
        "terms",
    }


def test_a_revert_brings_a_sentence_back_into_the_current_version(store: Storage) -> None:
    builder = Builder(store, TARGET)
    first = builder.version(V1)
    builder.change(V2)
    builder.revert(first)
    [hit] = store.archive.search('"to improve our services"')
    assert hit.last_seen is None, "the current version (reverted to v1) holds it again"


def test_search_results_are_bounded_and_hostile_queries_are_plain_text(store: Storage) -> None:
    text = "# Big\n\n" + "\n\n".join(f"Clause {i} applies to data." for i in range(MAX_RESULTS + 50)) + "\n"
    history(store, text)
    assert len(store.archive.search("clause data", limit=10_000)) == MAX_RESULTS
    assert len(store.archive.search("clause data", limit=3)) == 3
    for hostile in (
        'NEAR("clause" data)',
        "clause*",
        "text:clause",
        '"data',
        "data OR ) (",
        "clause AND NOT data",
    ):
        store.archive.search(hostile)  # words taken literally: never an FTS5 syntax error
    assert store.archive.search("clause*") and store.archive.search('"data')  # `*`, a stray quote: plain text
    for nothing in ("   ", '"', "( ) *"):
        with pytest.raises(QueryError):
            store.archive.search(nothing)


def test_the_index_is_written_with_the_version_in_one_transaction(
    sqlite_store: SqliteStorage, tmp_path: Path
) -> None:
    history(sqlite_store, V1, V2)
    db = tmp_path / "archive" / DB_NAME
    with closing(sqlite3.connect(db)) as connection:
        indexed = connection.execute("SELECT count(*) FROM version_sentences").fetchone()[0]
        # the FTS table agrees with its content table
        connection.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('integrity-check')")
    assert indexed == 2


def test_an_archive_from_before_the_index_is_indexed_when_a_writer_opens_it(tmp_path: Path) -> None:
    with open_store(tmp_path / "archive", [TARGET]) as store:
        history(store, V1, V2)
    db = tmp_path / "archive" / DB_NAME
    with closing(sqlite3.connect(db)) as connection, connection:  # as if the index had never been built
        connection.execute("DELETE FROM version_sentences")
        connection.execute("DELETE FROM sentences")
        connection.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('rebuild')")
    with SqliteStorage.open(tmp_path / "archive", writer=False) as reader:
        assert reader.archive.search("public") == []
    with SqliteStorage.open(tmp_path / "archive") as writer:
        assert len(writer.archive.search("public posts")) == 2


def test_new_sentences_written_many_per_statement_are_those_written_one_per_statement(tmp_path: Path) -> None:
    """SQLite writes a version's new sentences a hundred per INSERT: the same rows, ids and full-text index
    as the straightforward one INSERT per sentence, on real policies (hundreds of new sentences each)."""

    def one_per_statement(db: Any, version: Any, new: Any) -> dict[str, int]:
        at = ts(version.first_seen)
        added = {}
        for digest, sentence in new:
            row = db.one(
                "INSERT INTO sentences (target_id, hash, text, first_version, first_at, last_version, "
                "last_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (version.target_id, digest, sentence, version.id, at, version.id, at),
            )
            added[digest] = int(row["id"])
        return added

    texts = [corpus_text(f"series/facebook-privacy-policy-en/{name}") for name in REAL_VERSIONS]
    assert len(sentences_of(texts[0])) > 2 * sqlite_search.ROWS_PER_INSERT
    dumps = []
    for name, insert in (("many", sqlite_search.insert_sentences), ("one", one_per_statement)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sqlite_search, "insert_sentences", insert)
            with open_store(tmp_path / name, [TARGET]) as opened:
                history(opened, *texts)
        with closing(sqlite3.connect(tmp_path / name / DB_NAME)) as connection:
            connection.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('integrity-check')")
            dumps.append(
                (
                    connection.execute("SELECT * FROM sentences ORDER BY id").fetchall(),
                    connection.execute("SELECT version_id, ids FROM version_sentences ORDER BY 1").fetchall(),
                    connection.execute(
                        "SELECT rowid FROM sentences_fts WHERE sentences_fts MATCH ? ORDER BY 1",
                        ('"AI at Meta"',),
                    ).fetchall(),
                )
            )
    assert dumps[0][2], "the full-text index finds the real sentences"
    assert dumps[0] == dumps[1]


REAL_VERSIONS = ("2025-04-23T12-31-08Z.md", "2025-05-28T00-30-56Z.md")


# --------------------------------------------------------------------------- trace


def test_trace_follows_a_sentence_through_its_edits_to_its_disappearance(store: Storage) -> None:
    v1, v2, v3 = history(store, V1, V2, V3)
    life = trace(store.archive, "policy", "We use public posts and photos to improve AI at Meta.")
    assert life.exact
    assert [(e.event, e.version, e.text) for e in life.events] == [
        ("appeared", v1, "We use public posts to improve our services."),  # its earlier wording
        ("edited", v2, "We use public posts and photos to improve AI at Meta."),
        ("disappeared", v3, "We use public posts and photos to improve AI at Meta."),
    ]
    versions = {v.id: v for v in store.archive.versions("policy")}
    assert [e.at for e in life.events] == [versions[v].first_seen for v in (v1, v2, v3)]


def test_trace_follows_the_nearest_sentence_when_the_text_is_not_exact(store: Storage) -> None:
    _, _, v3 = history(store, V1, V2, V3)
    life = trace(store.archive, "policy", "you have a right to object to the use of information for AI")
    assert not life.exact
    assert life.sentence == "You can object to the use of your information for AI at Meta by contacting us."
    assert [(e.event, e.version) for e in life.events][-1] == ("edited", v3)


def test_trace_of_nothing_known_is_not_found(store: Storage) -> None:
    history(store, V1)
    with pytest.raises(NotFoundError):
        trace(store.archive, "policy", "zebras quagga okapi")
    with pytest.raises(NotFoundError):
        trace(store.archive, "policy", "  ... ")


def test_a_sentence_that_comes_back_appears_again(store: Storage) -> None:
    v1, v2, v3 = history(store, V1, "# Privacy Policy\n\nSomething else entirely happens here.\n", V1)
    events = trace(store.archive, "policy", "You can object to some processing by contacting us.").events
    assert [(e.event, e.version) for e in events] == [("appeared", v1), ("disappeared", v2), ("appeared", v3)]


def test_since_when_each_sentence_has_been_in_the_policy(store: Storage) -> None:
    v1, _, v3 = history(store, V1, V2, V3)
    presence = store.archive.sentence_presence("policy")
    ids = store.archive.sentence_ids("policy", [h for h, _ in sentences_of(V3)])
    texts = {i: t for t, i in ((s, ids[h]) for h, s in sentences_of(V3))}
    dates = {v.id: v.first_seen for v, _ in since_when(presence)}
    last_version, since = list(since_when(presence))[-1]
    assert last_version.id == v3
    by_text = {texts[i]: since[i] for i in texts}
    assert by_text["We collect information you provide."] == dates[v1]
    assert (
        by_text["You can object to the use of your information for AI at Meta by contacting us."] == dates[v3]
    )


# --------------------------------------------------------------------------- the command line


def test_search_and_trace_commands(tmp_path: Path, backend: Backend) -> None:
    with backend.open(tmp_path / "archive") as store:
        store.checks.sync_targets([TARGET])
        v1, v2, _ = history(store, V1, V2, V3)
    config = tmp_path / "watchdog.toml"
    storage = "\n".join(["[storage]", 'dir = "archive"', *backend.storage_lines()])
    config.write_text(f'{storage}\n\n[[targets]]\nid = "policy"\nurl = "https://example.org/policy"\n')
    done = cli("--config", str(config), "search", "public posts", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {tuple(sorted(r)) for r in rows} == {
        ("first_seen", "first_version", "last_seen", "last_version", "sentence", "target")
    }
    assert {r["first_version"] for r in rows} == {v1, v2}
    text = cli("--config", str(config), "search", "public posts").stdout
    assert "policy  " in text and " – " in text
    assert cli("--config", str(config), "search", '""').returncode == 2
    assert cli("--config", str(config), "search", "x", "--target", "nope").returncode == 2
    traced = cli(
        "--config", str(config), "trace", "policy", "We use public posts to improve our services.", "--json"
    )
    assert traced.returncode == 0, traced.stderr
    events = [json.loads(line) for line in traced.stdout.splitlines()]
    assert [e["event"] for e in events] == ["appeared", "edited", "disappeared"]
    assert set(events[0]) == {"target", "version", "at", "event", "text"}
    nearest = cli("--config", str(config), "trace", "policy", "we use the public posts")
    assert nearest.returncode == 0 and nearest.stdout.startswith("no sentence is exactly that; the nearest:")


# --------------------------------------------------------------------------- real corpus versions


def test_search_over_real_versions_finds_the_may_2025_ai_sentence(store: Storage) -> None:
    builder = Builder(store, TARGET, clock=T0 - timedelta(days=40))
    april = corpus_text("series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md")
    may = corpus_text("series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md")
    first = builder.version(april)
    builder.change(may)
    hits = store.archive.search('"also called AI at Meta"')
    assert hits and all(h.first_version == builder.current and h.last_seen is None for h in hits)
    assert not any(h.first_version == first for h in hits)


@pytest.mark.postgres
def test_a_postgres_archive_without_its_index_is_indexed_when_a_node_opens_it(
    tmp_path: Path, postgres_url: str
) -> None:
    """A PostgreSQL archive filled without the index (copy-archive copies none, an upgraded archive has
    none) gets it from the first node that opens it, whatever is searched then."""
    backend = Backend("postgres", postgres_url)
    with backend.open(tmp_path / "archive") as store:
        store.checks.sync_targets([TARGET])
        history(store, V1, V2)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DELETE FROM version_sentences")
        connection.execute("DELETE FROM sentences")
    with backend.open(tmp_path / "archive") as store:
        assert len(store.archive.search("public posts")) == 2
        assert len(store.archive.search("DONNÉES")) == 0
        [kept] = store.archive.search('"COLLECT information"')
        assert kept.last_seen is None
