"""Stage 1, fetch: the protocol every fetcher (plain HTTP, headless browser) implements.

A fetcher turns a Target into a Capture (the raw page, whatever its status) or a NotModified (the server
answered 304 to our conditional GET). It raises FetchError, with a readable reason, when no response could be
had at all after its retries. It never parses policy text: that is extract.py's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from watchdog.models import Target, Validators

if TYPE_CHECKING:  # annotations only: the fetch results' module loads with the first answer (results.py)
    from watchdog.results import Capture, NotModified


class Fetcher(Protocol):
    def fetch(self, target: Target, *, validators: Validators | None = None) -> Capture | NotModified:
        """Fetch the target's URL. `validators` are the ETag/Last-Modified of the last accepted capture."""
        ...

    def close(self) -> None:
        """Release connections / browser processes. Safe to call twice."""
        ...
