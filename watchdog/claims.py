"""What leasing targets answers (Claim, DueClaim): which targets a node may check now, and when to ask again.

Part of the data model (watchdog/models.py, which still exports both names): kept apart because only the
daemon and a `check` on an archive shared with daemons (PostgreSQL) claim targets, and defining a frozen
dataclass costs ~0.4 ms of CPU at every start; storage/leases.py binds this module with
watchdog/deferred.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """Which due targets a node may check now (`claimed`, leased to it), and, for the others it asked
    about, when to ask again (`later`: their next due time, or when another node's lease runs out)."""

    claimed: tuple[str, ...] = ()
    later: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DueClaim:
    """The due targets a node of a shared archive leased in the archive's own order (`claimed`, most overdue
    first), and when to ask again if it has room for more (`retry_at`: None, nothing is due until a node
    changes a due time; the moment itself when more may be due now)."""

    claimed: tuple[str, ...] = ()
    retry_at: datetime | None = None
