"""Storage, the SQL both backends share: each statement is written once, in standard SQL with `?` for its
parameters, and run by either backend through its `Dialect` and a `Cursor`.

SQLite (3.35 and later) and PostgreSQL agree on most of what the archive needs: RETURNING, upserts
(`ON CONFLICT (...) DO UPDATE SET x = excluded.x` / `DO NOTHING`), TRUE, LIMIT, `CAST(? AS TEXT) IS NULL`
for an optional filter. The few things they spell differently are a backend's `Dialect`:

    param       the placeholder: `?` (sqlite3) or `%s` (psycopg)
    in_values   "is one of a list passed as ONE parameter" (`dialect.values(items)`):
                `IN (SELECT value FROM json_each(?))` with JSON text, or `= ANY(?)` with an array
    json_each   the table function listing a JSON list column's items (a column named `value`)
    time, json, text    how a value is passed: ISO-8601 text or timestamptz, JSON text or jsonb, text as it
                is or without NUL (PostgreSQL's text cannot hold one)

A statement is written with `{in_values}` / `{json_each}` where it needs them, and `dialect.sql(statement)`
gives the backend's text (made once per statement and dialect, then reused). What is not a matter of
spelling stays in the backends: connections and transactions, locks and leases, blobs, full-text search,
migrations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from watchdog.storage.records import Row


def _same(text: str) -> str:
    return text


@dataclass(frozen=True, eq=False)  # one per backend: compared and hashed as itself (the statement cache)
class Dialect:
    """How one backend spells the shared statements and passes their values (see the module's docstring)."""

    name: str
    param: str
    in_values: str
    json_each: str
    values: Callable[[Sequence[Any]], Any]
    time: Callable[[datetime], Any]
    json: Callable[[Any], Any]
    text: Callable[[str], str] = _same

    def sql(self, statement: str) -> str:
        """The statement in this dialect."""
        return _spelled(self, statement)

    def when(self, moment: datetime | None) -> Any:
        """An optional time as this backend stores it."""
        return None if moment is None else self.time(moment)

    def words(self, text: str | None) -> str | None:
        """Optional text for people (a reason, an error) as this backend can store it."""
        return None if text is None else self.text(text)


@functools.cache
def _spelled(dialect: Dialect, statement: str) -> str:
    if "%" in statement:  # psycopg would read it as a placeholder; no shared statement needs one
        raise ValueError(f"a shared statement must not contain '%': {statement!r}")
    text = statement.format(in_values=dialect.in_values, json_each=dialect.json_each)
    return text.replace("?", dialect.param)


class Cursor(Protocol):
    """Statements inside one transaction: SQLite's Database, PostgreSQL's Session."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it touched."""

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many parameter rows."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class Reads(Protocol):
    """Where an archive's reads go: a database (each read on its own) or one open transaction."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def consistent(self) -> AbstractContextManager[Cursor]:
        """Several reads that must agree: one snapshot of the archive."""


class Transactions(Protocol):
    """A database that runs units of work: each `transaction()` commits when its block ends."""

    def transaction(self) -> AbstractContextManager[Cursor]: ...


class SqlDatabase(Reads, Transactions, Protocol):
    """A backend's database: single reads, consistent reads, and transactions."""
