"""Several nodes on one PostgreSQL archive (watchdog/storage/postgres), against a real PostgreSQL server:
its migrations from an empty database, leases on due checks (SKIP LOCKED, expiry, a dead holder), one request
per host and one delivery pass per channel across nodes, the hash chain's read-modify-write under concurrent
writers, and the database URL in the config (secrets from the environment, never shown)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from support.postgres import Backend
from watchdog import daemon as daemon_module
from watchdog.cli import main
from watchdog.config import load_config
from watchdog.daemon import Daemon, Edges, SignalFlags, Wakeup
from watchdog.errors import ConflictError, StorageError
from watchdog.models import CheckRecord, DueClaim, NewChange, NewVersion, Outcome, OwedAlert, Target
from watchdog.publish.evidence import check_archive
from watchdog.sdnotify import SystemdNotifier
from watchdog.storage import open_store
from watchdog.storage.migrations import migrations
from watchdog.storage.postgres import MIGRATIONS, PostgresStorage
from watchdog.storage.postgres.cluster import LOOK_AGAIN

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TARGETS = [Target(f"t{i}", f"https://example.org/{i}", f"T{i}") for i in range(6)]
IDS = [t.id for t in TARGETS]


@pytest.fixture
def nodes(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., PostgresStorage]]:
    """Open the test's database as node `name` (each its own pool, as on its own machine)."""
    opened: list[PostgresStorage] = []

    def node(name: str, *, lease: timedelta = timedelta(seconds=30)) -> PostgresStorage:
        store = PostgresStorage.open(postgres_url, directory=tmp_path / name, node=name, lease=lease)
        opened.append(store)
        return store

    yield node
    for store in opened:
        store.close()


def sql(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement.encode(), params)
        return cursor.fetchall() if cursor.description else []


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------- migrations


def test_migrations_from_an_empty_database_follow_the_sqlite_names(postgres_url: str, tmp_path: Path) -> None:
    sqlite_names = [m.name for m in migrations("sqlite")]
    names = [m.name for m in MIGRATIONS]
    assert names == sorted(names) and set(sqlite_names) <= set(names), "every SQLite migration has its twin"
    assert set(names) - set(sqlite_names) == {"0004_nodes"}, "PostgreSQL-only: the nodes' leases"
    with PostgresStorage.open(postgres_url, directory=tmp_path, node="a") as store:
        assert store.archive.migrations() == names
    with PostgresStorage.open(postgres_url, directory=tmp_path, node="b") as again:
        assert again.archive.migrations() == names, "applied once"
    types = dict(
        sql(
            postgres_url,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    )
    assert types["versions.first_seen"] == "timestamp with time zone"
    assert types["changes.topics"] == types["snapshots.headers"] == types["versions.provenance"] == "jsonb"
    assert types["blobs.data"] == "bytea" and types["changes.alerted"] == "boolean"
    assert {
        "targets.last_node",
        "targets.lease_node",
        "targets.lease_until",
        "outbox_attempts.outcome",
    } <= set(types)


def test_a_database_upgraded_by_a_newer_release_is_refused(postgres_url: str, tmp_path: Path) -> None:
    PostgresStorage.open(postgres_url, directory=tmp_path, node="a").close()
    sql(postgres_url, "INSERT INTO schema_migrations VALUES ('0099_future', now())")
    with pytest.raises(StorageError, match=r"upgraded by a newer release .*0099_future.*upgrade this node"):
        PostgresStorage.open(postgres_url, directory=tmp_path, node="a")


def test_nodes_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def start(name: str) -> None:
        try:
            PostgresStorage.open(postgres_url, directory=tmp_path, node=name).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sql(postgres_url, "SELECT count(*) FROM schema_migrations") == [(len(MIGRATIONS),)]


# --------------------------------------------------------------------------- leases


def test_two_nodes_never_claim_the_same_due_target(nodes: Callable[..., PostgresStorage]) -> None:
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    a.checks.sync_targets(TARGETS)
    a.checks.set_next_due(dict.fromkeys(IDS, T0))
    first = a.leases.claim(IDS, T0, limit=4)
    second = b.leases.claim(IDS, T0, limit=4)
    assert len(first.claimed) == 4 and len(second.claimed) == 2
    assert not set(first.claimed) & set(second.claimed)
    assert set(second.later) == set(first.claimed), "b looks again at a's targets later"
    assert all(T0 < at <= T0 + timedelta(seconds=5) for at in second.later.values()), "within LOOK_AGAIN"
    assert c.leases.claim(IDS, T0, limit=4).claimed == (), "everything is held"
    assert b.leases.claim(IDS, T0, limit=4).claimed == second.claimed, "a node may claim its own again"
    due_later = T0 + timedelta(hours=1)
    a.checks.set_next_due(dict.fromkeys(first.claimed, due_later))  # a's checks end: leases freed
    again = c.leases.claim(list(first.claimed), T0, limit=6)
    assert again.claimed == () and set(again.later) == set(first.claimed)
    assert all(again.later[i] == due_later for i in first.claimed), "not due before the time a gave"
    assert c.leases.claim(list(first.claimed), due_later, limit=6).claimed == first.claimed


def test_the_archive_hands_out_due_targets_most_overdue_first_and_never_twice(
    nodes: Callable[..., PostgresStorage],
) -> None:
    """claim_due: the shared archive is the schedule. Due targets in due order across nodes, each to one
    node; a node left with room is told when to ask again (at once when it got all it asked for; within
    LOOK_AGAIN while another live node holds due targets; else the next due time)."""
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    a.checks.sync_targets(TARGETS)
    hour = T0 + timedelta(hours=1)
    a.checks.set_next_due({f"t{i}": T0 - timedelta(seconds=i) for i in range(5)} | {"t5": hour})
    first = a.leases.claim_due(T0, limit=2)
    assert first.claimed == ("t4", "t3") and first.retry_at == T0, "the most overdue; full: ask again now"
    second = b.leases.claim_due(T0, limit=5, skip=["t0"])
    assert second.claimed == ("t2", "t1"), "past a's, never t0 (skipped: in flight or unknown here)"
    assert second.retry_at is not None and T0 < second.retry_at <= T0 + LOOK_AGAIN, "a holds due ones"
    third = c.leases.claim_due(T0, limit=5)
    assert third.claimed == ("t0",)
    assert a.leases.claim_due(T0, limit=5, skip=first.claimed).claimed == (), "every due target is held"
    assert c.leases.claim_due(T0, limit=5).claimed == ("t0",), "(a node's own leases: skip says in flight)"
    a.checks.set_next_due(dict.fromkeys(first.claimed, hour))  # their checks end: leases freed
    b.checks.set_next_due(dict.fromkeys(second.claimed, hour))
    c.checks.set_next_due({"t0": hour - timedelta(minutes=1)})
    idle = a.leases.claim_due(T0, limit=5)
    assert idle == DueClaim((), hour - timedelta(minutes=1)), "nothing held, nothing due: the next due time"
    assert a.leases.claim_due(hour, limit=6).claimed[0] == "t0", "then the ones due at `hour` (any order)"
    a.close()  # its connections end, as on kill -9: what it held is due and free at once
    assert wait_for(lambda: len(c.leases.claim_due(hour, limit=9).claimed) == 6, 2.0)


def test_nodes_claiming_at_once_share_the_due_list_without_overlap(
    postgres_url: str, nodes: Callable[..., PostgresStorage]
) -> None:
    """Four nodes claim 4 at a time, all at once, from 400 due targets: SKIP LOCKED sends each past the
    rows another is claiming, so every target goes to exactly one node and none waits for another."""
    stores = [nodes(f"n{i}") for i in range(4)]
    many = [Target(f"m{i:03d}", f"https://example.org/m{i}", f"M{i}") for i in range(400)]
    stores[0].checks.sync_targets(many)
    stores[0].checks.set_next_due({t.id: T0 - timedelta(milliseconds=i) for i, t in enumerate(many)})
    got: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def claim(store: PostgresStorage) -> None:
        mine = got.setdefault(store.leases.node, [])
        start.wait()
        while batch := store.leases.claim_due(T0, limit=4, skip=mine).claimed:
            mine.extend(batch)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [i for ids in got.values() for i in ids]
    assert sorted(everything) == [t.id for t in many], "each due target claimed once, by one node"
    assert all(len(ids) > 0 for ids in got.values()), f"every node got work: {[len(v) for v in got.values()]}"
    held = sql(postgres_url, "SELECT lease_node, count(*) FROM targets GROUP BY lease_node")
    assert dict(held) == {n: len(ids) for n, ids in got.items()}


def test_daemons_on_one_archive_check_each_due_target_once_and_only_their_own(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two daemon loops (nodes a and b) on one archive, 40 targets due now, interval one hour: every
    target checked exactly once between them, and a target in the archive that their configs do not have
    (another node's config, or removed) is never checked nor left leased. Idle afterwards, a node asks
    the archive for due targets a few times (while the other's checks run), not once per loop turn."""
    lines = [
        f'[[targets]]\nid = "t{i:02d}"\nurl = "http://127.0.0.1:9/{i}"\ninterval = "1h"' for i in range(40)
    ]
    checked: list[tuple[str, str]] = []
    claims: dict[str, int] = {}
    lock = threading.Lock()
    other = PostgresStorage.open(postgres_url, directory=tmp_path / "other", node="other")
    other.checks.sync_targets([Target("foreign", "http://127.0.0.1:9/f", "F")])
    other.checks.set_next_due({"foreign": T0})
    running: list[tuple[Daemon, threading.Thread, Wakeup]] = []
    try:
        for name in ("a", "b"):
            path = tmp_path / f"{name}.toml"
            storage = f'[storage]\ndir = "{name}"\nurl = "{postgres_url}"\nnode = "{name}"\n'
            path.write_text(storage + "[daemon]\npublish = false\n\n" + "\n".join(lines) + "\n")
            config = load_config(path, environ={})
            if not running:  # all due in 0.5 s (a start-up spreads overdue targets over ~40 s instead)
                other.checks.sync_targets(config.targets)
                other.checks.set_next_due(
                    {t.id: datetime.now(UTC) + timedelta(seconds=0.5) for t in config.targets}
                )
            store = open_store(config)
            claim_due = store.leases.claim_due

            def counted(
                *args: object, _name: str = name, _claim: Callable[..., DueClaim] = claim_due, **kw: object
            ) -> DueClaim:
                with lock:
                    claims[_name] = claims.get(_name, 0) + 1
                return _claim(*args, **kw)

            store.leases.claim_due = counted  # type: ignore[method-assign]

            def check(target: Target, _ctx: object, _name: str = name) -> Outcome:
                with lock:
                    checked.append((_name, target.id))
                time.sleep(0.05)
                return Outcome(target.id, "unchanged")

            wakeup = Wakeup()
            edges = Edges(check=check, publish=lambda _c, _s: None, stop_timeout=2.0)
            daemon = Daemon(
                path,
                config,
                store,
                notifier=SystemdNotifier(),
                flags=SignalFlags(),
                wakeup=wakeup,
                edges=edges,
            )
            thread = threading.Thread(target=daemon.run, daemon=True)
            running.append((daemon, thread, wakeup))
        for _daemon, thread, _wakeup in running:
            thread.start()
        assert wait_for(lambda: len(checked) >= 40, 30)
        time.sleep(1.0)
        idle = dict(claims)
        time.sleep(3.0)
    finally:
        for daemon, thread, wakeup in running:
            daemon.request_stop()
            thread.join(10)
            daemon.store.close()
            wakeup.close()
    ids = sorted(i for _n, i in checked)
    assert ids == [f"t{i:02d}" for i in range(40)], "each due target checked once, by one node"
    assert {n for n, _i in checked} == {"a", "b"}, "both nodes took a share"
    assert all(claims[n] - idle[n] <= 2 for n in ("a", "b")), f"idle nodes sleep: {idle} -> {claims}"
    row = sql(postgres_url, "SELECT next_due_at, lease_node FROM targets WHERE id = 'foreign'")
    assert row == [(T0, None)], "another config's target: never checked here, never left leased"
    other.close()


def test_a_node_starting_beside_running_ones_locks_no_target_it_does_not_change(
    postgres_url: str, nodes: Callable[..., PostgresStorage]
) -> None:
    """sync_targets writes only new or renamed targets: a node (re)starting with the same config does not
    lock every target's row, so it never holds up the running nodes' writes (nor waits for them)."""
    a, b = nodes("a"), nodes("b")
    a.checks.sync_targets(TARGETS)
    with psycopg.connect(postgres_url) as busy:  # a running node's write to t0 in progress
        busy.execute("SELECT 1 FROM targets WHERE id = 't0' FOR UPDATE")
        synced = threading.Thread(target=b.checks.sync_targets, args=(TARGETS,), daemon=True)
        synced.start()
        synced.join(5)
        assert not synced.is_alive(), "the same targets: nothing written, nothing waited for"
        renamed = [
            Target("t1", "https://example.org/1", "renamed"),
            Target("t9", "https://example.org/9", "T9"),
        ]
        b.checks.sync_targets(renamed)  # t0 still locked: only t1 and the new t9 are written
    assert sql(postgres_url, "SELECT id, name FROM targets WHERE id IN ('t0', 't1', 't9') ORDER BY id") == [
        ("t0", "T0"),
        ("t1", "renamed"),
        ("t9", "T9"),
    ]


def test_nodes_setting_overlapping_due_times_at_once_never_deadlock(
    postgres_url: str, nodes: Callable[..., PostgresStorage]
) -> None:
    """set_next_due is one statement that locks its rows in id order: four nodes writing the due times of the
    same 300 targets at once (as when they start together), each in its own order, all finish; a target
    another node holds keeps the due time and lease that node gives it."""
    stores = [nodes(f"n{i}") for i in range(4)]
    many = [Target(f"d{i:03d}", f"https://example.org/d{i}", f"D{i}") for i in range(300)]
    stores[0].checks.sync_targets(many)
    assert stores[3].leases.claim(["d000"], T0, limit=1, due_only=False).claimed == ("d000",)
    errors: list[BaseException] = []

    def write(store: PostgresStorage, n: int) -> None:
        ids = [t.id for t in many]
        order = ids[::-1] if n % 2 else ids
        try:
            for k in range(5):
                store.checks.set_next_due({i: T0 + timedelta(seconds=n * 10 + k) for i in order})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores[:3])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and not any(t.is_alive() for t in threads)
    rows = dict(sql(postgres_url, "SELECT id, lease_node FROM targets"))
    assert rows["d000"] == "n3" and {rows[t.id] for t in many[1:]} == {None}, "n3's lease kept, others freed"


def test_a_dead_nodes_leases_pass_at_once_a_silent_ones_when_they_expire(
    nodes: Callable[..., PostgresStorage],
) -> None:
    a, b = nodes("a"), nodes("b")  # a's lease: 30 s
    a.checks.sync_targets(TARGETS)
    assert a.leases.claim(IDS[:2], T0, limit=2).claimed == tuple(IDS[:2])
    assert b.leases.claim(IDS[:2], T0, limit=2).claimed == ()
    a.leases.renew(IDS[:2])
    silent = nodes("silent", lease=timedelta(seconds=2))
    assert silent.leases.claim(IDS[2:4], T0, limit=2).claimed == tuple(IDS[2:4])
    a.close()  # its connections end, as on kill -9: its leases are over at once, not in 30 s
    assert wait_for(lambda: b.leases.claim(IDS[:2], T0, limit=2).claimed == tuple(IDS[:2]), 2.0)
    assert b.leases.claim(IDS[2:4], T0, limit=2).claimed == (), "a connected holder keeps its lease"
    assert wait_for(lambda: bool(b.leases.claim(IDS[2:4], T0, limit=2).claimed), 10.0), (
        "... until it runs out (no renewal): then it passes to another node"
    )


def test_a_check_whose_target_another_node_holds_is_refused(nodes: Callable[..., PostgresStorage]) -> None:
    a, b = nodes("a"), nodes("b")
    a.checks.sync_targets(TARGETS)
    assert a.leases.claim(["t0"], T0, limit=1, due_only=False).claimed == ("t0",)
    record = CheckRecord("t0", "T0", "https://example.org/0", T0, "new", version=NewVersion("text\n", T0))
    with pytest.raises(ConflictError, match="being checked by node a"):
        b.checks.record_check(record)
    done = a.checks.record_check(record)
    assert done.version is not None and a.archive.target_state("t0").last_node == "a"  # type: ignore[union-attr]
    a.leases.release(["t0"])
    b.checks.record_check(CheckRecord("t0", "T0", "https://example.org/0", T0, "unchanged", seen="t0@v1"))
    assert b.archive.target_state("t0").last_node == "b"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- the chain under concurrency


def test_concurrent_writers_of_one_target_keep_one_valid_chain(nodes: Callable[..., PostgresStorage]) -> None:
    """Four nodes append to one target's chain at once (imports and reextracts carry no `expected`): the
    row lock serialises them, every record links to the one before, `verify` passes."""
    stores = [nodes(f"n{i}") for i in range(4)]
    stores[0].checks.sync_targets(TARGETS[:1])
    errors: list[BaseException] = []

    def append(store: PostgresStorage, n: int) -> None:
        try:
            for k in range(15):
                at = T0 + timedelta(seconds=n * 100 + k)
                text = NewVersion(f"node {n} text {k}\n", at, technical=True)
                store.checks.record_check(
                    CheckRecord("t0", "T0", "https://example.org/0", at, None, version=text)
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    versions = sorted(stores[0].archive.versions("t0"), key=lambda v: v.seq)
    assert [v.seq for v in versions] == list(range(1, 61))
    assert [v.prev_hash for v in versions[1:]] == [v.record_hash for v in versions[:-1]]
    assert check_archive(stores[1]).problems == ()


def test_a_stale_check_loses_to_the_one_that_wrote_first(nodes: Callable[..., PostgresStorage]) -> None:
    a, b = nodes("a"), nodes("b")
    a.checks.sync_targets(TARGETS[:1])
    base = a.checks.record_check(CheckRecord("t0", "T0", "u", T0, None, version=NewVersion("v1\n", T0)))
    assert base.version is not None
    state = a.checks.read_check("t0", recent_since=T0, snapshots=2)
    change = NewChange(base.version.id, "change")
    a.checks.record_check(
        CheckRecord(
            "t0", "T0", "u", T0, None, version=NewVersion("v2\n", T0), change=change, expected=state.sequences
        )
    )
    with pytest.raises(ConflictError, match="another writer recorded it first"):
        b.checks.record_check(
            CheckRecord(
                "t0",
                "T0",
                "u",
                T0,
                None,
                version=NewVersion("v2'\n", T0),
                change=change,
                expected=state.sequences,
            )
        )
    assert [v.seq for v in a.archive.versions("t0")] == [2, 1]


# --------------------------------------------------------------------------- hosts and channels


def test_one_request_at_a_time_per_host_across_nodes(nodes: Callable[..., PostgresStorage]) -> None:
    a, b = nodes("a"), nodes("b")
    with a.leases.host_turn("example.org", None) as mine:
        assert mine
        with b.leases.host_turn("example.org", 0.3) as theirs:
            assert not theirs, "b waited 0.3 s and gave up"
        with b.leases.host_turn("other.example", 0.3) as other:
            assert other, "another host is free"
    with b.leases.host_turn("example.org", 0.3) as theirs:
        assert theirs, "free once a is done"


def test_a_channel_is_delivered_by_one_node_at_a_time(nodes: Callable[..., PostgresStorage]) -> None:
    a, b = nodes("a"), nodes("b")
    a.checks.sync_targets(TARGETS[:1])
    a.checks.record_check(
        CheckRecord("t0", "T0", "u", T0, None, alerts=(OwedAlert("t0@c1", '{"x": 1}', ("mail", "chat")),))
    )
    with a.outbox.channel_turn("mail") as mine:
        assert mine
        with b.outbox.channel_turn("mail") as theirs, b.outbox.channel_turn("chat") as chat:
            assert not theirs and chat
        (row,) = a.outbox.all_pending(channel="mail")
        a.outbox.mark_delivered(row.id, T0)
    with b.outbox.channel_turn("mail") as theirs:
        assert theirs and b.outbox.all_pending(channel="mail") == [], "read in the turn: nothing left to send"


# --------------------------------------------------------------------------- the config


def test_the_database_url_takes_secrets_from_the_environment_and_never_shows_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "watchdog.toml"
    path.write_text(
        '[storage]\nurl = "postgresql://watchdog:${PGPASS}@db.example.org/watchdog"\n'
        'node = "w1"\nlease = "90s"\n',
        encoding="utf-8",
    )
    config = load_config(path, environ={"PGPASS": "hunter2"})
    assert config.storage.url == "postgresql://watchdog:hunter2@db.example.org/watchdog"
    assert (config.storage.node, config.storage.lease) == ("w1", timedelta(seconds=90))
    path.write_text(
        '[storage]\nurl = "postgresql://watchdog:${PGPASS}@db.example.org:99999/x"\n', encoding="utf-8"
    )
    monkeypatch.setenv("PGPASS", "hunter2")
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "storage.url: malformed database URL 'postgresql://watchdog:***@db.example.org:99999/x'" in err
    assert "hunter2" not in err


def test_an_unreachable_database_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "watchdog.toml"
    missing = tmp_path / "no-server"
    missing.mkdir()
    path.write_text(f'[storage]\nurl = "postgresql://w:secret@/x?host={missing}&connect_timeout=1"\n')
    from watchdog.storage.postgres import connection

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection, "CONNECT_TIMEOUT", 1.0)
        assert main(["--config", str(path), "status"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the archive database postgresql://w:***@/x" in err and "Traceback" not in err
    assert "secret" not in err


def test_status_names_the_node_that_checked_each_target_last(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "watchdog.toml"
    storage = "\n".join(['dir = "archive"', *backend.storage_lines(), 'node = "watcher-7"'])
    path.write_text(f'[storage]\n{storage}\n[[targets]]\nid = "t0"\nurl = "https://example.org/0"\n')
    config = load_config(path, environ={})
    with open_store(config) as store:
        store.checks.record_check(
            CheckRecord("t0", "t0", "u", T0, "new", version=NewVersion("x\n", T0), node="watcher-7")
        )
    assert main(["--config", str(path), "status", "--json"]) == 0
    assert '"last_node": "watcher-7"' in capsys.readouterr().out
    main(["--config", str(path), "status"])
    header, row = capsys.readouterr().out.splitlines()
    assert "NODE" in header and "watcher-7" in row


# --------------------------------------------------------------------------- publishing on every node


@pytest.mark.parametrize("publish", [True, False], ids=["publishing", "worker"])
def test_a_node_publishes_what_another_node_recorded(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publish: bool
) -> None:
    """Each node publishes the archive into its own storage dir: a change another node recorded makes
    this node publish too (the archive's counters are looked at every PUBLISH_MIN_GAP); a node with
    `[daemon] publish = false` never publishes."""
    monkeypatch.setattr(daemon_module, "PUBLISH_MIN_GAP", 0.2)
    path = tmp_path / "watchdog.toml"
    path.write_text(
        f'[storage]\ndir = "here"\nurl = "{postgres_url}"\nnode = "here"\n'
        f"[daemon]\npublish = {str(publish).lower()}\n"
        '[[targets]]\nid = "t0"\nurl = "http://127.0.0.1:9/never-fetched"\ninterval = "1h"\n'
    )
    config = load_config(path, environ={})
    other = PostgresStorage.open(postgres_url, directory=tmp_path / "there", node="there")
    other.checks.sync_targets(config.targets)
    other.checks.set_next_due({"t0": datetime.now(UTC) + timedelta(hours=1)})  # this node never checks it
    published: list[float] = []
    store = open_store(config)
    wakeup = Wakeup()
    edges = Edges(publish=lambda _config, _store: published.append(time.monotonic()), stop_timeout=2.0)
    daemon = Daemon(
        path, config, store, notifier=SystemdNotifier(), flags=SignalFlags(), wakeup=wakeup, edges=edges
    )
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        if not publish:
            other.checks.record_check(CheckRecord("t0", "t0", "u", T0, "new", version=NewVersion("t\n", T0)))
            time.sleep(2.0)
            assert published == [], "a worker node publishes nothing"
            return
        assert wait_for(lambda: len(published) >= 1, 10), "the start-up publishing pass"
        time.sleep(1.0)
        quiet = len(published)
        assert quiet == 1, "nothing new: nothing published"
        other.checks.record_check(CheckRecord("t0", "t0", "u", T0, "new", version=NewVersion("text\n", T0)))
        assert wait_for(lambda: len(published) > quiet, 10), "another node's version is published here"
    finally:
        daemon.request_stop()
        thread.join(10)
        store.close()
        other.close()
        wakeup.close()
