"""Imports, the Wayback Machine: a target's history from the CDX API and the raw captures it lists.

    GET {wayback_url}/cdx/search/cdx?url=<target url>&output=json&collapse=digest&filter=statuscode:200
        [&from=YYYYMMDD&to=YYYYMMDD]
    -> [["urlkey","timestamp","original","mimetype","statuscode","digest","length"], [...], ...]
    GET {wayback_url}/web/<timestamp>id_/<original>     the capture as archived (`id_`: no Wayback banner)

The listing is collapsed by digest (a run of byte-identical captures is one row). Each capture in the
target's import window (importers/history.py) is fetched by the project's own HTTP fetcher, so it is
fetched like a page we watch: one request at a time, bounded in time and size, transient failures retried
with backoff and the server's Retry-After honoured; and a pause (`[import] wayback_pause`) between two
captures. Each capture then goes through extract and validate exactly as a live capture does, with the
target's selectors and against the text accepted before it (a truncated or over-long capture is rejected
for its size, and accepted when the same text comes back PERSISTENCE times in a row), and its raw bytes are
kept as a snapshot (accepted or rejected), so `reextract` and `verify` see it like any other.

`[import] wayback_url` overrides the address (another Wayback-compatible archive, or a local server in the
tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from watchdog.config import Config, config_fingerprint
from watchdog.errors import FetchError, ImportSourceError
from watchdog.fetchers.base import Fetcher
from watchdog.importers.history import Recording
from watchdog.models import Target, VersionSource
from watchdog.pipeline import PERSISTENCE, PERSISTENT_REJECTIONS, extract_and_validate
from watchdog.results import Capture, NewSnapshot, NotModified

SOURCE: VersionSource = "wayback"
FETCHER = "wayback"  # the fetcher a Wayback snapshot names
CDX_FIELDS = ("timestamp", "original", "digest")
_TIMESTAMP = re.compile(r"/web/(\d{14})id_/")


@dataclass(frozen=True)
class Listed:
    """A capture the CDX API listed."""

    timestamp: str  # yyyyMMddhhmmss, UTC
    original: str
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.timestamp}:{self.digest}"

    @property
    def recorded_at(self) -> datetime:
        return _moment(self.timestamp)


def _moment(timestamp: str) -> datetime:
    return datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def cdx_url(base: str, url: str, *, since: date | None, until: date | None) -> str:
    query = {"url": url, "output": "json", "collapse": "digest", "filter": "statuscode:200"}
    if since is not None:
        query["from"] = since.strftime("%Y%m%d")
    if until is not None:
        query["to"] = until.strftime("%Y%m%d")
    return f"{base}/cdx/search/cdx?{urlencode(query)}"


def parse_cdx(body: bytes, source: str) -> list[Listed]:
    """The rows of a CDX JSON answer (its first row names the fields), oldest first."""
    try:
        rows = json.loads(body.decode("utf-8") or "[]")
        header = rows[0] if rows else list(CDX_FIELDS)
        at = {name: header.index(name) for name in CDX_FIELDS}
        listed = [Listed(*(str(row[at[name]]) for name in CDX_FIELDS)) for row in rows[1:]]
        for item in listed:
            _moment(item.timestamp)
    except (ValueError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        raise ImportSourceError(f"{source}: not a CDX JSON answer ({exc})") from exc
    return sorted(listed, key=lambda item: item.timestamp)


class WaybackSource:
    """A target's captures in the Wayback Machine, as an import source (importers/history.py)."""

    name: VersionSource = SOURCE

    def __init__(
        self,
        target: Target,
        config: Config,
        fetcher: Fetcher,
        *,
        since: date | None,
        until: date | None,
        previous: tuple[int, str] | None,
        sleep: Callable[[float], None],
    ) -> None:
        self._target = target
        self._config = config
        self._fetcher = fetcher
        self._base = config.imports.wayback_url
        self._listing = cdx_url(self._base, target.url, since=since, until=until)
        self._previous = previous  # (length, text hash) of the text accepted last, to validate against
        self._sleep = sleep
        self._listed: list[Listed] | None = None
        self._rejected_in_a_row: list[tuple[str, str | None]] = []

    def records(self) -> list[tuple[str, datetime]]:
        if self._listed is None:
            try:
                capture = self._get(self._listing)
            except FetchError as exc:
                raise ImportSourceError(f"the CDX API cannot be read: {exc.reason}") from exc
            if capture.status != 200:
                raise ImportSourceError(f"{self._listing}: the CDX API answered HTTP {capture.status}")
            self._listed = parse_cdx(capture.body, self._listing)
        return [(item.ref, item.recorded_at) for item in self._listed]

    def read(self, refs: Sequence[str]) -> Iterator[Recording]:
        wanted = set(refs)
        for index, item in enumerate(i for i in self._listed or [] if i.ref in wanted):
            if index:
                self._sleep(self._config.imports.wayback_pause.total_seconds())
            yield self._recording(item)

    # ----------------------------------------------------------------- one capture

    def _recording(self, item: Listed) -> Recording:
        address = f"{self._base}/web/{item.timestamp}id_/{item.original}"
        provenance: dict[str, Any] = {
            "archive": self._base,
            "timestamp": item.timestamp,
            "original": item.original,
            "digest": item.digest,
        }
        try:
            fetched = self._get(address)
        except FetchError as exc:
            return Recording(item.ref, item.recorded_at, provenance, rejection=f"fetch: {exc.reason}")
        found = _TIMESTAMP.search(fetched.final_url)
        recorded_at = _moment(found.group(1)) if found else item.recorded_at  # the capture served
        provenance["capture_url"] = fetched.final_url
        capture = replace(
            fetched, target_id=self._target.id, url=self._target.url, fetched_at=recorded_at, fetcher=FETCHER
        )
        return self._judge(item.ref, capture, provenance)

    def _judge(self, ref: str, capture: Capture, provenance: dict[str, Any]) -> Recording:
        length, accepted_hash = self._previous if self._previous else (None, None)
        rejection, document = extract_and_validate(
            self._target, self._config, capture, previous_length=length, accepted_hash=accepted_hash
        )
        if (
            rejection is not None
            and document is not None
            and self._persistent(rejection.code, document.text_hash)
        ):
            rejection = None  # the page's new normal, as for a live target (pipeline.PERSISTENT_REJECTIONS)
        fingerprint = config_fingerprint(self._target)
        if rejection is not None or document is None:
            code, reason = (rejection.code, rejection.reason) if rejection else ("unreadable", "no text")
            self._rejected_in_a_row.append((code, document.text_hash if document else None))
            snapshot = NewSnapshot(
                capture,
                fingerprint,
                "rejected",
                reason_code=code,
                reason=reason,
                text_hash=document.text_hash if document else None,
            )
            return Recording(
                ref, capture.fetched_at, provenance, snapshot=snapshot, rejection=f"{code}: {reason}"
            )
        self._rejected_in_a_row.clear()
        self._previous = (len(document.text), document.text_hash)
        alternative = None if document.alternative is None else str(document.alternative)
        snapshot = NewSnapshot(
            capture, fingerprint, "accepted", text_hash=document.text_hash, alternative=alternative
        )
        return Recording(ref, capture.fetched_at, provenance, text=document.text, snapshot=snapshot)

    def _persistent(self, code: str, text_hash: str) -> bool:
        earlier = self._rejected_in_a_row[-(PERSISTENCE - 1) :]
        return (
            code in PERSISTENT_REJECTIONS
            and len(earlier) == PERSISTENCE - 1
            and all(entry == (code, text_hash) for entry in earlier)
        )

    def _get(self, address: str) -> Capture:
        result = self._fetcher.fetch(replace(self._target, url=address))
        if isinstance(result, NotModified):  # unreachable: no validators are sent
            raise ImportSourceError(f"{address}: answered 304 Not Modified to an unconditional request")
        return result
