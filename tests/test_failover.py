"""Failover, measured: three `policy-watchdog run` daemons (three nodes) on one real PostgreSQL archive, a
local page server whose pages change on a timeline, and one node killed with SIGKILL in the middle of a
check. Every version each page showed is archived exactly once (none missed while the killed node's
targets passed to the others, none twice), every change is alerted exactly once (a repeat is allowed only
when the kill fell in the outbox's documented duplicate window), and the archive verifies."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import psycopg
import pytest

from support.daemon import (
    Daemons,
    TimedWebhookSink,
    Watched,
    policy_page,
    split_duplicates,
    wait_until,
    write_daemon_config,
)
from support.pageserver import PageServer, Reply, start_page_server
from support.postgres import Backend
from watchdog.config import Config, load_config
from watchdog.publish.evidence import check_archive
from watchdog.storage import open_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TARGETS = 9
VERSIONS = 5  # each page shows v0, v1, ... v4, each for WINDOW seconds
WINDOW = 6.0
REVISION = re.compile(r"Revision (\d+):")
DUPLICATE_WINDOW = 1.0  # as in test_daemon.py: a kill between the channel accepting and the commit


def leased_by(url: str, node: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            b"SELECT id FROM targets WHERE lease_node = %s AND lease_until > now()", (node,)
        ).fetchall()
    return [str(row[0]) for row in rows]


def archived(config: Config) -> int:
    """How many targets have a version."""
    with open_store(config, writer=False) as store:
        return sum(1 for s in store.archive.target_states() if s.current_version)


def node_of(pid: int) -> str:
    """A daemon's default node name (watchdog.storage.leases.default_node)."""
    return f"{socket.gethostname().split('.', 1)[0][:48]}:{pid}"


def serve(sites: list[PageServer], version: int) -> None:
    """Version `version` of every page, each target on its site (a site is a host: one request at a time
    to it across all nodes), each answer slow, so that checks are often in flight."""
    for i in range(TARGETS):
        page = policy_page(version, seed=i, title=f"Policy {i}")
        sites[i % len(sites)].set(f"/p{i}", Reply(body=page, delay=0.2), etag=False)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has one writer: no failover
def test_three_nodes_one_killed_mid_check_every_version_archived_and_alerted_once(
    page_server: PageServer, tmp_path: Path, sink: TimedWebhookSink, each_backend: Backend
) -> None:
    url = each_backend.url
    assert url is not None
    head = "[daemon]\nmax_workers = 2\njitter = 0\n"
    sites = [page_server, start_page_server(), start_page_server()]
    watched = [Watched(f"p{i}", f"/p{i}", base=sites[i % len(sites)].base_url) for i in range(TARGETS)]
    config = write_daemon_config(tmp_path, page_server.base_url, watched, channels=[sink.url], head=head)
    serve(sites, 0)
    group = Daemons(config, tmp_path)
    try:
        nodes = [group.start() for _ in range(3)]
        victim = nodes[1]
        cfg = load_config(config)
        # the timeline starts once every page's first version is in (the nodes take seconds to start)
        assert wait_until(lambda: archived(cfg) == TARGETS, 60, every=0.2), group.logs()[-3000:]
        kill_at: list[float] = []
        for version in range(1, VERSIONS):
            serve(sites, version)
            ends = time.monotonic() + WINDOW
            if version == 2:  # mid-run: kill the victim while it holds a check in flight (pages are slow)
                assert wait_until(lambda: bool(leased_by(url, node_of(victim.pid))), WINDOW / 2), group.logs()
                held = leased_by(url, node_of(victim.pid))
                kill_at.append(time.monotonic())
                victim.kill()
            time.sleep(max(ends - time.monotonic(), 0))
        survivors = [n for n in nodes if n is not victim]
        last = f"Revision {VERSIONS - 1}:"
        with open_store(cfg, writer=False) as store:

            def done() -> bool:
                states = [store.archive.target_state(f"p{i}") for i in range(TARGETS)]
                current = [s.current_version if s else None for s in states]
                return all(v and last in store.archive.version_text(v) for v in current)

            assert wait_until(done, 30, every=0.2), group.logs()[-4000:]
            changes = {c.id for c in store.archive.changes()}
            assert wait_until(lambda: {c for _at, c in sink.deliveries()} >= changes, 30), group.logs()[
                -3000:
            ]
            for survivor in survivors:  # stopping waits for checks and publishing in flight: a loaded machine
                assert survivor.stop(timeout=30) == 0
            for i in range(TARGETS):
                texts = [store.archive.version_text(v.id) for v in reversed(store.archive.versions(f"p{i}"))]
                revisions = [int(m.group(1)) for t in texts if (m := REVISION.search(t))]
                assert revisions == list(range(VERSIONS)), f"p{i}: each version once, in order: {revisions}"
            states = {s.id: s for s in store.archive.target_states()}
            assert all(states[t].last_node != node_of(victim.pid) for t in held), "its targets passed on"
            assert {s.last_node for s in states.values()} <= {node_of(n.pid) for n in survivors}
            assert store.outbox.all_pending() == []
            assert check_archive(store).problems == ()
        assert len(changes) == TARGETS * (VERSIONS - 1)
        delivered = sink.deliveries()
        assert {c for _at, c in delivered} == changes, "every change alerted, nothing else"
        explained, unexplained = split_duplicates(delivered, kill_at, window=DUPLICATE_WINDOW)
        assert unexplained == [], unexplained
        assert "Traceback" not in group.logs()
        print(
            f"\n[failover] {len(changes)} changes; the victim held {held}; repeats the kill explains: "
            f"{explained}"
        )
    finally:
        group.close()
        for site in sites[1:]:
            site.stop()
