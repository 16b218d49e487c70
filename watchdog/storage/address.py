"""Storage, addresses: how an archive database's URL is shown in messages and logs (never its password)."""

from __future__ import annotations

import re

_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&]*")
_USERINFO_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:@/?#]*):[^@/?#]*@", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) replaced by `***`."""
    return _USERINFO_PASSWORD.sub(r"\1:***@", _QUERY_PASSWORD.sub(r"\1***", url))


def is_database_url(text: str) -> bool:
    """Does `text` name a PostgreSQL archive (rather than a storage dir)?"""
    return text.startswith(("postgresql://", "postgres://"))
