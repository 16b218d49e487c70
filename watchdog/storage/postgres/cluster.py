"""Storage, PostgreSQL backend: several nodes on one archive (Leases).

Due checks: `claim` leases due targets in one statement, `SELECT ... FOR UPDATE SKIP LOCKED` on the targets'
rows ordered by how overdue they are, so two nodes claiming at the same instant never wait for each other
and never get the same target. A lease (lease_node, lease_until) lasts `lease` seconds of the database's
clock, is renewed while the check runs, and is freed by the check's next due time (set_next_due). A node
that dies loses its lease: at once when its connections end (kill -9, a crash: HOLDER_ALIVE), else when
lease_until passes (a power cut or a partition, which PostgreSQL notices late); another node then claims the
target. The write of a check whose lease passed to another node is refused (ConflictError, checks.py).

One request at a time per host across all nodes: `host_turn` takes a session-level advisory lock on the
host's name for the request (waited for in PostgreSQL's queue until the fetch's deadline); PostgreSQL frees
it if the node dies.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import psycopg
from psycopg import errors
from psycopg.rows import DictRow

from watchdog.claims import Claim, DueClaim
from watchdog.storage.postgres.connection import Database, Row, database_error, lock_key
from watchdog.storage.postgres.rows import utc

RETRY = timedelta(seconds=0.5)  # a due target another node was claiming at that very instant: ask again
# A target another node holds is looked at again this often (or when the lease ends, if sooner): the holder
# may die, and a dead holder's lease is over at once (see HOLDER_ALIVE).
LOOK_AGAIN = timedelta(seconds=2)

# A node's connections carry its name (application_name "policy-watchdog <node>", connection.py). A lease
# holds while its node is connected and lease_until has not passed: a node killed with SIGKILL loses its
# connections, so its targets pass to the others at once; one cut off from the database keeps them until
# lease_until (PostgreSQL may take a while to notice a silent peer).
# (The list of connected nodes is one hashed subquery per statement, not a scan per row.)
HOLDER_ALIVE = (
    "left('policy-watchdog ' || lease_node, 63) IN "
    "(SELECT application_name FROM pg_stat_activity WHERE datname = current_database())"
)
# held by another node than %(node)s, within its lease (whether that node still lives is asked apart)
HELD_ELSEWHERE = "(lease_node IS NOT NULL AND lease_node <> %(node)s AND lease_until > now())"
# One statement (atomic on its own: no transaction to open) claims what it can among the candidates and
# says, for the others, when to look again. The outer SELECT reads the rows as they were before the
# UPDATE (a data-modifying CTE's changes are seen only through its RETURNING), which is what `later`
# wants: who held the others, and their due times. Built from module constants only (no input).
_CLAIM = (
    "WITH due AS (SELECT id FROM targets WHERE id = ANY(%(ids)s) "  # noqa: S608
    "AND (NOT %(due_only)s OR next_due_at IS NULL OR next_due_at <= %(now)s) "
    f"AND NOT ({HELD_ELSEWHERE} AND {HOLDER_ALIVE}) "
    "ORDER BY next_due_at NULLS FIRST, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    "claimed AS (UPDATE targets t SET lease_node = %(node)s, lease_until = now() + %(lease)s "
    "FROM due WHERE t.id = due.id RETURNING t.id) "
    "SELECT t.id, c.id IS NOT NULL AS claimed, t.next_due_at, "
    f"CASE WHEN {HELD_ELSEWHERE} AND {HOLDER_ALIVE} THEN t.lease_until - now() END AS held_for "
    "FROM targets t LEFT JOIN claimed c ON c.id = t.id WHERE t.id = ANY(%(ids)s)"
)

# A shared archive is the schedule (claim_due): the due targets in next_due_at order (the targets_due index),
# most overdue first, the first `limit` that no other live node holds and no other node is claiming at this
# instant (SKIP LOCKED: concurrent claimers walk past each other's rows instead of queueing on the same
# head), leased in the same statement. With them, for a node left with free workers: the next due time
# after `now`, and whether due targets were passed over (held by a live node, or being claimed): the
# holder may die, so those are looked at again soon. Each part walks the targets_due index from its head
# (EXPLAIN ANALYZE at 10,000 targets: 0.4 ms), never the whole table. `skip`: this node's checks in
# flight (it holds their leases) and targets its config does not have. From module constants only.
_CLAIM_DUE = (
    "WITH due AS (SELECT id FROM targets WHERE next_due_at <= %(now)s "  # noqa: S608
    "AND NOT id = ANY(%(skip)s) "
    f"AND NOT ({HELD_ELSEWHERE} AND {HOLDER_ALIVE}) "
    "ORDER BY next_due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    "claimed AS (UPDATE targets t SET lease_node = %(node)s, lease_until = now() + %(lease)s "
    "FROM due WHERE t.id = due.id RETURNING t.id, t.next_due_at) "
    "SELECT ARRAY(SELECT id FROM claimed ORDER BY next_due_at, id) AS claimed, "
    "(SELECT min(next_due_at) FROM targets WHERE next_due_at > %(now)s AND NOT id = ANY(%(skip)s)) "
    "AS next_due, "
    "(SELECT count(*) FROM claimed) < %(limit)s AND (SELECT true FROM targets "
    "WHERE next_due_at <= %(now)s AND NOT id = ANY(%(skip)s) AND id NOT IN (SELECT id FROM claimed) "
    "ORDER BY next_due_at LIMIT 1) IS NOT NULL AS passed_over"
)


def _retry_at(row: Row, now: datetime, full: bool) -> datetime | None:
    """When a node that claimed `row` should ask again: at once when it got all it asked for (more may be
    due); else at the next due time, and within LOOK_AGAIN while due targets were passed over."""
    if full:
        return now
    moments = [utc(row["next_due"])] if row["next_due"] is not None else []
    if row["passed_over"]:
        moments.append(now + LOOK_AGAIN)
    return min((m for m in moments if m is not None), default=None)


def _later(rows: Sequence[Row], now: datetime, free: int) -> dict[str, datetime]:
    """When to ask again about targets not claimed: their next due time (another node checked them),
    when another node's lease runs out (in this node's time; at most LOOK_AGAIN: the holder may die), or
    soon (their row was being claimed by another node at that very instant)."""
    later: dict[str, datetime] = {}
    for row in rows:
        due = utc(row["next_due_at"])
        if row["held_for"] is not None:
            later[row["id"]] = now + min(row["held_for"], LOOK_AGAIN)
        elif due is not None and due > now:
            later[row["id"]] = due
        elif free > 0:
            later[row["id"]] = now + RETRY
    return later


class PostgresLeases:
    """Leases of a PostgreSQL archive, for node `node`."""

    shared = True

    def __init__(self, db: Database, node: str, lease: timedelta) -> None:
        self._db = db
        self.node = node
        self.lease = lease

    def claim(self, target_ids: Sequence[str], now: datetime, *, limit: int, due_only: bool = True) -> Claim:
        if not target_ids or limit <= 0:
            return Claim()
        params = {
            "ids": list(target_ids),
            "due_only": due_only,
            "now": now,
            "node": self.node,
            "limit": limit,
            "lease": self.lease,
        }
        rows = self._db.query(_CLAIM, params)
        order = {target_id: n for n, target_id in enumerate(target_ids)}
        claimed = sorted((r["id"] for r in rows if r["claimed"]), key=order.__getitem__)
        rest = [r for r in rows if not r["claimed"]]
        return Claim(claimed=tuple(claimed), later=_later(rest, now, limit - len(claimed)))

    def claim_due(self, now: datetime, *, limit: int, skip: Collection[str] = ()) -> DueClaim:
        if limit <= 0:
            return DueClaim(retry_at=now)
        params = {
            "now": now,
            "skip": list(skip),
            "node": self.node,
            "limit": limit,
            "lease": self.lease,
        }
        row = self._db.one(_CLAIM_DUE, params)
        claimed = tuple(row["claimed"]) if row else ()
        return DueClaim(claimed, _retry_at(row, now, len(claimed) >= limit) if row else None)

    def news(self) -> int:
        """A counter of everything recorded (versions, changes, events), on every node."""
        row = self._db.one(
            "SELECT coalesce(sum(version_seq + change_seq + event_seq), 0)::bigint AS n FROM targets"
        )
        return int(row["n"]) if row else 0

    def renew(self, target_ids: Sequence[str]) -> None:
        if target_ids:
            with self._db.transaction() as session:
                session.execute(
                    "UPDATE targets SET lease_until = now() + %s WHERE id = ANY(%s) AND lease_node = %s",
                    (self.lease, list(target_ids), self.node),
                )

    def release(self, target_ids: Sequence[str]) -> None:
        if target_ids:
            with self._db.transaction() as session:
                session.execute(
                    "UPDATE targets SET lease_node = NULL, lease_until = NULL "
                    "WHERE id = ANY(%s) AND lease_node = %s",
                    (list(target_ids), self.node),
                )

    @contextmanager
    def host_turn(self, host: str, timeout: float | None) -> Iterator[bool]:
        key = lock_key("host", host)
        with self._db.connection() as connection:
            held = self._lock(connection, key, timeout)
            try:
                yield held
            finally:
                if held:
                    connection.execute(f"SELECT pg_advisory_unlock({key}); SET lock_timeout = 0".encode())

    def _lock(self, connection: psycopg.Connection[DictRow], key: int, timeout: float | None) -> bool:
        """Wait for the session-level advisory lock `key` on `connection` (in PostgreSQL's queue: first
        come, first served across nodes) for at most `timeout` seconds (None: for ever). One round trip:
        both statements in one query string, which runs as one implicit transaction, so when the wait
        times out the SET is undone with it. The numbers are ours (a key, milliseconds), never input."""
        wait = 0 if timeout is None else max(int(timeout * 1000), 1)
        try:
            connection.execute(f"SET lock_timeout = {wait}; SELECT pg_advisory_lock({key})".encode())
        except errors.LockNotAvailable:
            return False
        except psycopg.Error as exc:
            raise database_error(self._db.address, exc) from exc
        return True
