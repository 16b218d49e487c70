"""Storage, interfaces: what each caller may do with the archive, whatever the backend (SQLite, or
PostgreSQL shared by several nodes). Callers depend on these protocols only; SQL lives in the backends
(storage/sqlite.py, storage/postgres/).

    storage = open_store(config, writer=True)      # watchdog.storage: a Storage (close it, or use `with`)
    storage.archive   ArchiveReader   everything read-only: cli listings, status, reextract's reading
    storage.checks    CheckStore      the pipeline: a check's state read ONCE, its results written ONCE
    storage.outbox    Outbox          notify: rows owed to channels, their delivery and attempt log
    storage.blobs     Blobs           content-addressed bytes (raw pages, texts, alert payloads)
    storage.leases    Leases          which node checks which due target; whose turn it is at a host
    storage.imports   Imports         `import`: history from public archives, in one transaction per import
    storage.reading() -> ArchiveReader  one consistent read (publish, verify, export): every query inside
                                        sees the archive at one instant, while the daemon keeps writing
    storage.export() / importer()       copy-archive: rows as stored, out of one store and into another

How a check uses it (watchdog/pipeline.py):

    state = storage.checks.read_check(target.id, recent_since=..., snapshots=2)     # one read
    ... fetch, extract, validate, diff, classify, render: no storage call but blob reads ...
    done = storage.checks.record_check(CheckRecord(...))                              # one write

`read_check` returns a frozen CheckState: the target's state (validators, failure count, failing flag),
its current version and that version's raw snapshot (body hash, config fingerprint), the versions seen
since `recent_since` (revert detection, known-good texts), its last snapshots (the persistence rule) and its
counters (Sequences), from which the check predicts the ids it will create (`next_change_id`...), so alerts
can name them before the write. `record_check` takes a frozen CheckRecord (models.py): the snapshot, the
version, a version seen again or made current again (a revert), the change, a failing/recovered event, the
server's validators, the check's status and the alerts owed; it writes the blobs first (content-addressed),
then everything else in ONE transaction that assigns the ids and the hash-chain links, and returns them
(Recorded). It refuses (StorageError) when the target's counters moved since the read (`expected`).

The sentence index (storage/search.py: what a sentence is, how a query reads): every version written, by a
check or an import, has its sentences indexed in the same transaction; a writer opening an archive made
before the index indexes what is missing. `ArchiveReader.search` answers from it (SQLite FTS5; PostgreSQL
full-text search), `sentence_presence` gives each version's sentence ids in recording order (`trace`, the
site's "in the policy since").

Imports (`Imports.record_import`, an ImportBatch from models.py): an import's versions go after the
target's imported history and before its first live version, in recording order; when live records exist,
they are re-linked after the imported block and their previous links kept (`ArchiveReader.relinks`), so a
chain head published before the import can still be checked (storage/chain.py, publish/evidence.py).

Errors: every backend raises StorageError (watchdog.errors) for anything it cannot read or write, with the
path or address and the problem in one line; NotFoundError for an unknown version or change id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from watchdog.models import (
    CHANGE_KINDS,
    AttemptOutcome,
    CheckState,
    Snapshot,
    Target,
    TargetState,
    Version,
)

if TYPE_CHECKING:  # annotations only (watchdog/messages.py, archived.py and results.py say why)
    from watchdog.archived import (
        BlobReference,
        ChainEntry,
        ChainHead,
        ImportBatch,
        ImportLedgerEntry,
        ImportResult,
        Relink,
        SentenceHit,
        VersionSentences,
    )
    from watchdog.claims import Claim, DueClaim
    from watchdog.messages import Attempt, Delivery
    from watchdog.results import ChangeRecord, CheckRecord, Event, OwedAlert, Recorded

DEFAULT_CHANGE_KINDS: tuple[str, ...] = CHANGE_KINDS  # what `changes` lists unless asked for fewer kinds


class Blobs(Protocol):
    """Content-addressed bytes: a blob's name is the SHA-256 of its content."""

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent; safe from several threads and processes at once); its digest."""

    def get(self, digest: str) -> bytes:
        """The content; StorageError when missing or unreadable."""

    def put_text(self, text: str) -> str: ...

    def get_text(self, digest: str) -> str: ...

    def get_gzip(self, digest: str) -> bytes:
        """The content as a gzip file (level 1, mtime 0); StorageError when missing or unreadable."""

    def problem(self, digest: str) -> str | None:
        """For `verify`: None when present, readable and matching its name; else what is wrong."""


class ArchiveReader(Protocol):
    """The archive, read-only. Lists are newest first unless said otherwise."""

    def target_states(self) -> list[TargetState]:
        """Every target the archive knows (configured or not any more), by id."""

    def target_state(self, target_id: str) -> TargetState | None: ...

    def failing(self, threshold: int) -> list[str]:
        """The ids of the targets whose last `threshold` checks or more all failed (the daemon's status line
        reads this every second: the failing few, not every target's row)."""

    def versions(self, target_id: str) -> list[Version]: ...

    def current_version(self, target_id: str) -> Version | None:
        """The target's current version (None: none yet, or an unknown target)."""

    def version(self, version_id: str) -> Version:
        """NotFoundError for an unknown id."""

    def versions_with_text(self, target_id: str, text_hash: str) -> list[Version]: ...

    def version_text(self, version_id: str) -> str: ...

    def text(self, digest: str) -> str:
        """A text blob (a version's text by its text_hash)."""

    def changes(
        self,
        *,
        target: str | None = None,
        topic: str | None = None,
        since: datetime | None = None,
        kinds: Sequence[str] = DEFAULT_CHANGE_KINDS,
    ) -> list[ChangeRecord]: ...

    def change(self, change_id: str) -> ChangeRecord:
        """NotFoundError for an unknown id."""

    def change_evidence(self, change_id: str) -> list[dict[str, Any]]:
        """The classifier's evidence stored with a change (JSON objects)."""

    def events(self, *, target: str | None = None) -> list[Event]: ...

    def snapshot(self, snapshot_id: int) -> Snapshot: ...

    def snapshots(self, target_id: str, *, outcome: str | None = None) -> list[Snapshot]:
        """The target's raw snapshots, OLDEST first."""

    def latest_snapshots(self, target_id: str, count: int) -> list[Snapshot]:
        """The target's last `count` snapshots, newest first."""

    def snapshot_body(self, snapshot: Snapshot) -> bytes: ...

    def snapshot_gzip(self, snapshot: Snapshot) -> bytes:
        """The raw body as a gzip file (level 1, mtime 0: the same bytes on every export)."""

    def migrations(self) -> list[str]:
        """The names of the applied schema migrations."""

    def chain_positions(self) -> dict[str, int]:
        """Record id (version or change) -> its position in its target's hash chain."""

    def chain(self) -> list[ChainEntry]:
        """Every version and change record as stored, per target in chain order; a row that cannot be read
        back comes as an entry with its `problem` (verify reports it, nothing raises)."""

    def chain_heads(self) -> list[ChainHead]:
        """Each target's chain head and record count, as the archive states them, by target id."""

    def blob_references(self) -> list[BlobReference]:
        """Every blob a row refers to: version texts, raw snapshot bodies, outbox payloads."""

    def search(
        self, query: str, *, target: str | None = None, limit: int = 50, any_term: bool = False
    ) -> list[SentenceHit]:
        """Sentences holding every term of `query` (words and "quoted phrases", storage/search.py; any term
        with `any_term`), best matches first, at most `limit` (capped at search.MAX_RESULTS); `last_seen`
        None when the sentence is in its target's current version. QueryError when nothing is searchable."""

    def sentence_presence(self, target_id: str) -> list[VersionSentences]:
        """Each version of the target with the ids of its sentences, in recording (chain) order."""

    def sentence_texts(self, target_id: str, ids: Iterable[int]) -> dict[int, str]:
        """The text of each of these sentence ids of the target."""

    def sentence_ids(self, target_id: str, hashes: Iterable[str]) -> dict[str, int]:
        """The ids of the target's sentences with these hashes (search.sentence_hash); unknown ones out."""

    def import_ledger(self, target_id: str) -> list[ImportLedgerEntry]:
        """What the imports into the target made of each record of their sources, oldest first."""

    def relinks(self) -> list[Relink]:
        """Every re-linking of a chain by an import, with the links it superseded, by target, oldest first."""


class CheckStore(Protocol):
    """The pipeline's side: targets registered, one check read once and written once, the schedule."""

    def sync_targets(self, targets: Sequence[Target]) -> None:
        """Register configured targets (name and URL follow the config); removed ones keep their history."""

    def read_check(self, target_id: str, *, recent_since: datetime, snapshots: int) -> CheckState:
        """Everything one check needs (see the module docstring), read in one consistent go."""

    def record_check(self, record: CheckRecord) -> Recorded:
        """Write a check's results: blobs first, then ONE transaction (see the module docstring)."""

    def set_next_due(self, due: Mapping[str, datetime]) -> None:
        """The daemon's schedule: when each target is next due (one transaction)."""


class Imports(Protocol):
    """History brought in from public archives (watchdog/importers)."""

    def record_import(self, batch: ImportBatch) -> ImportResult:
        """Write one import into one target: blobs first, then ONE transaction (see the module docstring).
        StorageError when the target's counters moved since `batch.expected` was read."""


class Outbox(Protocol):
    """Alerts owed to channels: one row per (alert, channel), delivered at most once. Rows are queued by
    `CheckStore.record_check` in the transaction of the check that owes them."""

    def pending_deliveries(self, now: datetime, *, channel: str | None = None) -> list[Delivery]:
        """Due (next attempt <= now), undelivered rows (of one channel), ordered by id."""

    def all_pending(self, *, channel: str | None = None) -> list[Delivery]:
        """Every undelivered row (of one channel), due or not, ordered by id."""

    def channel_turn(self, channel_key: str) -> AbstractContextManager[bool]:
        """The right to deliver the channel's rows, for the block: True, or False (at once) while another
        node delivers them. Read the rows again inside the turn: they are then the ones still owed."""

    def begin_attempt(self, delivery_id: int, at: datetime, *, retry_at: datetime) -> int:
        """Log a send before it starts (write-ahead): attempts += 1, the attempt is logged as "unknown"
        until `mark_delivered` / `mark_failed` name it, and the row is due again at `retry_at` should they
        never come (the sender died mid-send: the channel may have the alert). The attempt's id."""

    def mark_delivered(self, delivery_id: int, at: datetime, *, attempt: int | None = None) -> None:
        """Delivered at `at` (its own short transaction: the window in which a crash duplicates an alert is
        the time between the channel accepting it and this commit). With `attempt` (from begin_attempt)
        that attempt is completed; without, one is logged (attempts += 1)."""

    def mark_delivered_many(
        self, delivery_ids: Sequence[int], at: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> None:
        """Several rows delivered at `at` by one message (a digest), in ONE transaction: either all of them
        count as delivered or none does. `attempts`: row id -> its attempt from begin_attempt, completed."""

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime,
        *,
        at: datetime,
        outcome: AttemptOutcome = "failed",
        attempt: int | None = None,
    ) -> None:
        """Due again at `retry_at`; the attempt (failed, or unknown: the channel may have it) is completed
        (with `attempt`) or logged (attempts += 1)."""

    def enqueue_notice(self, alert: OwedAlert, *, at: datetime) -> int:
        """Owe an alert that no check produced (a channel that cannot be used, told to the others): one
        row per channel, a second queueing of the same event for a channel ignored. Rows added."""

    def attempts(self, delivery_id: int) -> list[Attempt]:
        """The row's logged attempts, oldest first."""

    def deliveries_for(self, event_id: str) -> list[tuple[str, datetime | None, int]]:
        """(channel key, delivered at, attempts) for each channel owed this event."""


Row = dict[str, Any]  # one row as stored, in the neutral form of storage/transfer.py (COLUMNS)


class RowSource(Protocol):
    """An archive's rows as stored, in neutral form, from one consistent read."""

    def count(self, table: str) -> int: ...

    def rows(self, table: str, after: object | None, limit: int) -> list[Row]:
        """Up to `limit` rows with an id greater than `after` (None: from the first), ordered by id."""


class RowSink(Protocol):
    """Where a copy writes: each call one transaction."""

    def record_hashes(self, table: str, ids: Sequence[str]) -> dict[str, str]:
        """The record hashes the destination holds for these ids of a chained table."""

    def upsert(self, table: str, rows: Sequence[Row]) -> None:
        """Insert the rows, or bring the ones already there (same id) up to date."""

    def finish(self) -> None:
        """After the last table: whatever the backend must set to go on from the copied ids."""


class Leases(Protocol):
    """Several daemons (nodes) on one shared archive: each due check is claimed by one node for a while (its
    lease, renewed while the check runs, freed by its next due time); a node that dies stops renewing and
    its targets pass to the others when the lease runs out. One archive writer (SQLite) holds everything."""

    @property
    def node(self) -> str:
        """This node's name, recorded as each target's `last_node`."""

    @property
    def shared(self) -> bool:
        """True when other nodes may write to the archive too."""

    def claim(self, target_ids: Sequence[str], now: datetime, *, limit: int, due_only: bool = True) -> Claim:
        """Lease at most `limit` of the targets that are due by `now` (any of them: due_only False) and held
        by no other node; for the others, when to ask again."""

    def claim_due(self, now: datetime, *, limit: int, skip: Collection[str] = ()) -> DueClaim:
        """A shared archive is its own schedule: lease at most `limit` targets due by `now`, most overdue
        first, held by no other live node and not in `skip` (this node's checks in flight, targets it does
        not know); concurrent callers get different targets. One writer (SQLite) keeps its schedule in
        the daemon and claims nothing here."""

    def news(self) -> int:
        """A number that grows whenever any node records a version, a change or an event: a node
        publishes what other nodes found when it moves."""

    def renew(self, target_ids: Sequence[str]) -> None:
        """Extend this node's leases on targets whose checks still run."""

    def release(self, target_ids: Sequence[str]) -> None:
        """Give the targets up without a new due time (a one-off `check`)."""

    def host_turn(self, host: str, timeout: float | None) -> AbstractContextManager[bool]:
        """Hold the host's turn across all nodes for the block: True, or False when it did not come
        within `timeout` seconds (None: wait)."""


class Storage(Protocol):
    """An open archive: its parts, a consistent reader, and its lifetime (`close`, or use `with`)."""

    @property
    def directory(self) -> Path:
        """This machine's storage dir (SQLite: the archive itself; published files and caches always)."""

    @property
    def archive(self) -> ArchiveReader: ...

    @property
    def checks(self) -> CheckStore: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def blobs(self) -> Blobs: ...

    @property
    def leases(self) -> Leases: ...

    @property
    def imports(self) -> Imports: ...

    def reading(self) -> AbstractContextManager[ArchiveReader]:
        """A reader on a connection of its own, inside one read transaction."""

    def export(self) -> AbstractContextManager[RowSource]:
        """copy-archive: every row as stored, from one consistent read (storage/transfer.py)."""

    def importer(self) -> RowSink:
        """copy-archive: where the rows of another archive are written (storage/transfer.py)."""

    def close(self) -> None: ...

    def __enter__(self) -> Storage: ...

    def __exit__(self, *exc: object) -> None: ...
