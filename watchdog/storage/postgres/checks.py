"""Storage, PostgreSQL backend: CheckStore. A check's state is read in one REPEATABLE READ snapshot; its
results are written in one transaction that first locks the target's row (the upsert's row lock), so two
nodes recording the same target never interleave: the hash chain's read-modify-write is serialised by the
database, and the second writer sees the first one's counters and is refused (ConflictError) when its check
was read before them. A check's write is refused too when another node holds the target's lease (it was
claimed away from this node: this node's lease ran out, or it was taken for dead)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from watchdog.errors import ConflictError
from watchdog.models import CheckState, Target
from watchdog.results import CheckRecord, Recorded
from watchdog.storage.postgres.blobs import insert_blob
from watchdog.storage.postgres.cluster import HELD_ELSEWHERE
from watchdog.storage.postgres.connection import DIALECT, Database, Row, Session
from watchdog.storage.postgres.search import statements
from watchdog.storage.records import target_row
from watchdog.storage.statements import REGISTER_TARGET, read_check
from watchdog.storage.write import write_check

_REGISTER = DIALECT.sql(REGISTER_TARGET)


# SQL built from module constants only (no input): the lease rule is written once, in cluster.py
# All rows in one statement (autocommit: no BEGIN/COMMIT round trips, no pipeline; executemany in a
# transaction took, under cProfile at 10,000 targets, 2.4 ms of the loop's CPU per finished check, against
# 0.85 ms for a claim), their rows locked in id order (the ORDER BY under FOR UPDATE): two nodes setting
# overlapping targets, as at start-up, never deadlock.
_SET_DUE = (
    "WITH due AS (SELECT * FROM unnest(%(ids)s::text[], %(ats)s::timestamptz[]) AS d(id, at)), "  # noqa: S608
    "mine AS (SELECT t.id, due.at FROM targets t JOIN due ON t.id = due.id "
    f"WHERE t.lease_node IS NULL OR NOT {HELD_ELSEWHERE} ORDER BY t.id FOR UPDATE OF t) "
    "UPDATE targets t SET next_due_at = mine.at, lease_node = NULL, lease_until = NULL "
    "FROM mine WHERE t.id = mine.id RETURNING t.id"
)
# The target's row, locked (an UPDATE locks what it touches) and read in one statement; name and URL
# follow the config. No row: the target is registered first (_REGISTER), then locked the same way.
_LOCK_TARGET = (
    "UPDATE targets SET name = %(name)s, url = %(url)s WHERE id = %(id)s "  # noqa: S608
    f"RETURNING *, coalesce({HELD_ELSEWHERE}, false) AS held"
)


class PostgresChecks:
    """CheckStore of a PostgreSQL archive. `node`: this node's name, recorded as the target's last_node."""

    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self._node = node

    def sync_targets(self, targets: Sequence[Target]) -> None:
        if not targets:
            return
        # only the rows that are new or whose name or URL changed: an upsert locks every row it meets, and a
        # node (re)starting beside running ones would hold up their writes to all targets until it commits
        known = {(r["id"], r["name"], r["url"]) for r in self._db.query("SELECT id, name, url FROM targets")}
        # in id order: two nodes syncing the same targets lock their rows in the same order (no deadlock)
        rows = sorted({(t.id, t.name, t.url) for t in targets} - known)
        if rows:
            with self._db.transaction() as session:
                session.many(_REGISTER, rows)

    def set_next_due(self, due: Mapping[str, datetime]) -> None:
        """The next due times, each releasing this node's lease on its target (a check ended). A target
        claimed by another node meanwhile keeps the due time and lease that node gives it."""
        if not due:
            return
        ids = list(due)
        self._db.query(_SET_DUE, {"ids": ids, "ats": [due[i] for i in ids], "node": self._node})

    # ----------------------------------------------------------------- the read

    def read_check(self, target_id: str, *, recent_since: datetime, snapshots: int) -> CheckState:
        return read_check(self._db, DIALECT, target_id, recent_since=recent_since, snapshots=snapshots)

    # ----------------------------------------------------------------- the write

    def record_check(self, record: CheckRecord) -> Recorded:
        if record.status is not None and record.node is None:
            record = _with_node(record, self._node)
        with self._db.transaction() as session:
            _put_blobs(session, record)
            params = {"id": record.target_id, "name": record.name, "url": record.url, "node": record.node}
            row = session.one(_LOCK_TARGET, params)
            if row is None:  # a target no sync registered (an import, a test): registered now, then locked
                session.execute(_REGISTER, (record.target_id, record.name, record.url))
                row = session.one(_LOCK_TARGET, params)
            assert row is not None
            if record.status is not None:
                _check_lease(row, record)
            return write_check(record, target_row(row), statements(session))


def _with_node(record: CheckRecord, node: str) -> CheckRecord:
    return replace(record, node=node)


def _check_lease(row: Row, record: CheckRecord) -> None:
    """A check's results count only from the node holding the target (or when nobody does)."""
    if row["held"]:
        raise ConflictError(
            f"{record.target_id} is being checked by node {row['lease_node']} (claimed until "
            f"{row['lease_until']:%H:%M:%S}): this node's check of it is dropped; nothing was written"
        )


def _put_blobs(session: Session, record: CheckRecord) -> None:
    if record.snapshot is not None:
        insert_blob(session, record.snapshot.capture.body)
    if record.version is not None:
        insert_blob(session, record.version.text.encode("utf-8"))
    for alert in record.alerts:
        insert_blob(session, alert.payload.encode("utf-8"))
