"""Storage, PostgreSQL backend: the sentence index (storage/search.py says what it holds) in PostgreSQL's
full-text search: written with each version, in its transaction, by storage/statements.py (the target's row
is locked by then, so two nodes never index one target at once; new sentences are inserted here, in one
statement); built, target by target, for versions written before it (an archive upgraded to migration 0005,
or filled by `copy-archive`, which copies no index) when a node opens it.

A query's terms become one `phraseto_tsquery('watchdog_words', term)` each (a word, or a phrase whose words
must follow each other), all required (&&) or any (||); the configuration (migration 0005) folds case and
accents and does not stem, as SQLite's FTS5 unicode61 tokenizer with remove_diacritics does.
Terms are passed as parameters, never as tsquery syntax, so no query text is operators.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from watchdog.models import Version
from watchdog.storage.interfaces import Blobs
from watchdog.storage.postgres.connection import DIALECT, Database, Session
from watchdog.storage.records import version
from watchdog.storage.statements import Statements

log = logging.getLogger(__name__)


def ts_query(terms: int, *, any_term: bool = False) -> str:
    """The tsquery of a parsed query (storage/search.py, parse_query) of `terms` terms, each one parameter."""
    each = ["phraseto_tsquery('watchdog_words', %s)"] * terms
    return "(" + (" || " if any_term else " && ").join(each) + ")"


def statements(session: Session) -> Statements:
    """The shared statements of a write (storage/statements.py) in this transaction, indexing here."""
    return Statements(session, DIALECT, partial(insert_sentences, session))


def insert_sentences(session: Session, row: Version, new: Sequence[tuple[str, str]]) -> dict[str, int]:
    """A version's new sentences (hash, text) into the index, in one statement (their text vectors are
    indexed by the GIN index of migration 0005); their ids by hash."""
    if not new:
        return {}
    inserted = session.query(
        "INSERT INTO sentences (target_id, hash, text, first_version, first_at, last_version, last_at) "
        "SELECT %(target)s, h, t, %(version)s, %(at)s, %(version)s, %(at)s "
        "FROM unnest(%(hashes)s::text[], %(texts)s::text[]) AS s(h, t) RETURNING id, hash",
        {
            "target": row.target_id,
            "version": row.id,
            "at": row.first_seen,
            "hashes": [digest for digest, _ in new],
            "texts": [text.replace("\x00", "") for _, text in new],
        },
    )
    return {str(r["hash"]): int(r["id"]) for r in inserted}


def index_missing(db: Database, blobs: Blobs) -> int:
    """Index the versions the sentence index does not hold yet, one transaction per target (its row
    locked first: a check or another node's indexing waits), in recording order; how many."""
    targets = db.query(
        "SELECT DISTINCT target_id FROM versions v WHERE NOT EXISTS "
        "(SELECT 1 FROM version_sentences s WHERE s.version_id = v.id) ORDER BY target_id"
    )
    done = 0
    for target in targets:
        with db.transaction() as session:
            session.execute("SELECT 1 FROM targets WHERE id = %s FOR UPDATE", (target["target_id"],))
            rows = session.query(
                "SELECT * FROM versions v WHERE target_id = %s AND NOT EXISTS "
                "(SELECT 1 FROM version_sentences s WHERE s.version_id = v.id) ORDER BY chain_seq",
                (target["target_id"],),
            )
            if rows and not done:
                log.info("building the search index of the archived versions")
            for r in rows:
                statements(session).index_version(version(r), blobs.get_text(r["text_hash"]))
            done += len(rows)
    return done
