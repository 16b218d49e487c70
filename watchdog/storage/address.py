"""Storage, addresses: how an archive database's URL is shown in messages and logs (never its password)."""

from __future__ import annotations

import re
from typing import Final

from watchdog.patterns import lazy

# compiled when first used: only an archive database's URL is redacted, never a storage dir, yet config.py
# (loaded at every start) imports this module
_QUERY_PASSWORD: Final = lazy(r"(?i)([?&]password=)[^&]*")
_USERINFO_PASSWORD: Final = lazy(r"^([a-z][a-z0-9+.-]*://[^:@/?#]*):[^@/?#]*@", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) replaced by `***`."""
    return _USERINFO_PASSWORD.sub(r"\1:***@", _QUERY_PASSWORD.sub(r"\1***", url))


def is_database_url(text: str) -> bool:
    """Does `text` name a PostgreSQL archive (rather than a storage dir)?"""
    return text.startswith(("postgresql://", "postgres://"))
