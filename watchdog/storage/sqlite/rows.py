"""Storage, SQLite backend: reading its stored times (ISO-8601 text). Rows become models through
storage/records.py, shared by both backends."""

from __future__ import annotations

from datetime import datetime

from watchdog.storage.records import moment, moment_or_none


def parse_ts(text: str | None) -> datetime | None:
    return moment_or_none(text)


def dt(text: str) -> datetime:
    return moment(text)
