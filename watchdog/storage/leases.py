"""Storage, leases: which node checks which due target, and whose turn it is at a host or a channel.

A shared archive (PostgreSQL) hands these out to several daemons (storage/postgres/cluster.py); an archive
with one writer (SQLite: the storage dir's lock) has one node, which holds everything: `SoloLeases`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING

from watchdog.deferred import deferred

if TYPE_CHECKING:
    from watchdog import claims
    from watchdog.claims import Claim, DueClaim
else:
    claims = deferred(
        "watchdog.claims"
    )  # a claim's answer: the daemon's, a shared archive's (never a check's)


def default_node() -> str:
    """This process's name in a shared archive when the config gives none: "<host name>:<pid>"."""
    host = socket.gethostname().split(".", 1)[0] or "localhost"
    return f"{host[:48]}:{os.getpid()}"


class SoloLeases:
    """The one writer of its archive holds every target, host and channel."""

    shared = False

    def __init__(self, node: str | None = None) -> None:
        self.node = node or default_node()

    def claim(self, target_ids: Sequence[str], now: datetime, *, limit: int, due_only: bool = True) -> Claim:
        del now, due_only  # the caller's own schedule said they are due
        return claims.Claim(claimed=tuple(target_ids[:limit]))

    def claim_due(self, now: datetime, *, limit: int, skip: Collection[str] = ()) -> DueClaim:
        del now, limit, skip  # the daemon's own schedule is the only one: nothing is leased here
        return claims.DueClaim()

    def news(self) -> int:
        return 0  # nothing is recorded by any other process: this one publishes after its own checks

    def renew(self, target_ids: Sequence[str]) -> None:
        del target_ids

    def release(self, target_ids: Sequence[str]) -> None:
        del target_ids

    def host_turn(self, host: str, timeout: float | None) -> AbstractContextManager[bool]:
        del host, timeout  # the process's own HostLimiter orders its requests
        return nullcontext(True)
