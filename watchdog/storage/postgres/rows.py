"""Storage, PostgreSQL backend: its times (aware datetimes in the session's zone) in UTC. Rows become models
through storage/records.py, shared by both backends."""

from __future__ import annotations

from datetime import datetime

from watchdog.storage.records import moment_or_none


def utc(moment: datetime | None) -> datetime | None:
    return moment_or_none(moment)
