"""The pipeline: one check of one target, the stages in order, with the one per-target error boundary.

    fetch -> extract/normalise -> validate -> [confirm] -> diff -> classify -> store (+ outbox)

A check talks to the archive twice (storage/interfaces.py says how): ONE read (`_read_state`: a frozen
CheckState with the target's state, its current version and snapshot, recent versions and snapshots, its
counters) before anything else, and ONE write (`_write`: a frozen CheckRecord with the snapshot, version,
change, failure / recovery event, validators, check status and owed alerts), after all the network and CPU
work, in one transaction, so a crash leaves the archive either before or after the check. Blob reads (the
current version's text, to diff) are the only other storage calls. Ids are predicted from the state's
counters (alerts name the change before it is written); the write refuses a record whose counters moved.

The pipeline records, it does not render: an owed alert carries a format-neutral message (models.
ChangeMessage / StatusMessage) that watchdog.render formats per channel at delivery. Fetch and extract
problems are outcomes (`error`, `rejected`) of that one target; storage problems are fatal and propagate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from watchdog.config import Config, config_fingerprint
from watchdog.deferred import deferred
from watchdog.errors import ExtractError, FetchError, OversizeError, StorageError
from watchdog.fetchers.base import Fetcher
from watchdog.fetchers.http import HostLimiter, HostTurns, HttpFetcher
from watchdog.follow import follow_new_items
from watchdog.models import (
    ChangeKind,
    CheckState,
    Snapshot,
    Status,
    Target,
    Validators,
    Version,
)
from watchdog.storage.chain import sha256

# The stages a check reaches only after a response (reading and validating a page: never for a 304), when
# a page changed, when a feed or a browser is configured, or after the cycle's requests (delivery) are
# loaded when first used (watchdog/deferred.py): what a cycle never needs costs it nothing, and no stage
# delays the first request.
if TYPE_CHECKING:
    from watchdog import classify as classifier
    from watchdog import doctor, extract, fastread, kinds, links, messages, newsfeed, notify, results
    from watchdog import readings as page_readings
    from watchdog import validate as validation
    from watchdog.fetchers import auto, browser
    from watchdog.messages import Alert, ChangeMessage, Classification, StatusMessage, TextDiff
    from watchdog.publish import archive as publish_archive
    from watchdog.render import compose as render_compose
    from watchdog.results import (
        Capture,
        CheckRecord,
        Document,
        Extracted,
        NewChange,
        NewEvent,
        NewSnapshot,
        NewVersion,
        NotModified,
        Outcome,
        OwedAlert,
        Recorded,
        Rejection,
    )
    from watchdog.storage.interfaces import Storage  # the protocol: annotations only
else:
    auto = deferred("watchdog.fetchers.auto")
    browser = deferred("watchdog.fetchers.browser")
    classifier = deferred("watchdog.classify")
    doctor = deferred("watchdog.doctor")
    extract = deferred("watchdog.extract")
    fastread = deferred("watchdog.fastread")
    kinds = deferred("watchdog.kinds")
    links = deferred("watchdog.links")
    messages = deferred("watchdog.messages")  # a change's and an alert's data: after the requests
    newsfeed = deferred("watchdog.newsfeed")
    notify = deferred("watchdog.notify")
    page_readings = deferred("watchdog.readings")
    publish_archive = deferred("watchdog.publish.archive")
    render_compose = deferred("watchdog.render.compose")
    results = deferred("watchdog.results")  # a page read, the check's write and outcome: after the requests
    validation = deferred("watchdog.validate")

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def shared_host_turns(store: Storage) -> HostTurns | None:
    """The host turns across the nodes of a shared archive (None: this process's own HostLimiter is all)."""
    return store.leases.host_turn if store.leases.shared else None


class Fetchers:
    """The fetchers of one cycle, built lazily: a config without browser targets never starts a browser."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = utc_now,
        sleep: Sleep | None = None,
        host_turns: HostTurns | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._made: dict[str, Fetcher] = {}
        # host_turns: one request at a time per host across the nodes of a shared archive (Leases.host_turn)
        self.host_limiter = HostLimiter(host_turns)

    def for_target(self, target: Target) -> Fetcher:
        if target.fetcher not in self._made:
            self._made[target.fetcher] = self._make(target.fetcher)
        return self._made[target.fetcher]

    def _make(self, kind: str) -> Fetcher:
        if kind == "http":
            options: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
            return HttpFetcher(
                settings=self._config.fetch, clock=self._clock, host_limiter=self.host_limiter, **options
            )
        if kind == "browser":
            return browser.BrowserFetcher(
                settings=self._config.fetch,
                clock=self._clock,
                host_limiter=self.host_limiter,
                render_timeout=self._config.fetch.timeout,  # the same patience as for a plain response
            )
        return auto.AutoFetcher(http=self.for_target_kind("http"), browser=self.for_target_kind("browser"))

    def for_target_kind(self, kind: str) -> Fetcher:
        if kind not in self._made:
            self._made[kind] = self._make(kind)
        return self._made[kind]

    def close(self) -> None:
        for fetcher in self._made.values():
            fetcher.close()
        self._made.clear()


@dataclass
class Context:
    """Everything a check needs, injected: nothing deep inside opens a client or reads the clock."""

    config: Config
    store: Storage
    fetchers: Fetchers
    notifier: notify.Notifier | None = None
    clock: Clock = utc_now
    sleep: Sleep = field(default=lambda seconds: None)
    _topics: classifier.CompiledTopics | None = None
    _readings: page_readings.ReadingCache | None = None

    @property
    def topics(self) -> classifier.CompiledTopics:
        if self._topics is None:
            self._topics = classifier.compile_topics(self.config.topics)
        return self._topics

    @property
    def readings(self) -> page_readings.ReadingCache:
        if self._readings is None:
            self._readings = page_readings.ReadingCache(page_readings.readings_dir(self.config.storage_dir))
        return self._readings


@dataclass(frozen=True)
class Accepted:
    """A capture that passed validation, with its text. `shape_problem`: why it is accepted although it
    failed validation before (a text rejected for its size that persisted): its change is a `capture`."""

    capture: Capture
    document: Document
    shape_problem: str | None = None


# --------------------------------------------------------------------------- the boundary


def check_target(target: Target, ctx: Context) -> Outcome:
    """Check one target. The only broad `except` of the project: one target's bug never stops the others."""
    try:
        return _check(target, ctx)
    except StorageError:
        raise  # fatal by policy: the transaction kept the archive whole; let systemd restart us
    except Exception as exc:
        log.exception("%s: internal error during check", target.id)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return _record_failure(target, ctx, _read_state(target, ctx), status="error", reason=reason)


def _read_state(target: Target, ctx: Context) -> CheckState:
    """The check's ONE read of the archive. Versions seen within the revert window count for reverts and
    known-good texts; the margin covers a capture time a little off the clock read here."""
    since = ctx.clock() - ctx.config.alerts.revert_window - RECENT_MARGIN
    return ctx.store.checks.read_check(target.id, recent_since=since, snapshots=PERSISTENCE - 1)


def _check(target: Target, ctx: Context) -> Outcome:
    state = _read_state(target, ctx)
    result = _capture(target, ctx, state, state.validators)
    if isinstance(result, results.Outcome):
        return result
    current = state.current
    if isinstance(result, results.NotModified):
        return _unchanged(target, ctx, state, at=result.fetched_at)
    if _watched(state) and _same_bytes_as(state, target, result):
        return _unchanged(target, ctx, state, at=result.fetched_at, capture=result)
    reading = _reading(target, result)
    if _watched(state) and reading is not None and _reads_as_current(ctx, state, target, result, reading):
        return _unchanged(target, ctx, state, at=result.fetched_at, capture=result)
    accepted = _read(target, ctx, state, result, reading=reading)
    if isinstance(accepted, results.Outcome):
        return accepted
    _remember(ctx, target, reading, accepted.document)
    if current is None or not _watched(state):
        return _baseline(target, ctx, state, accepted)
    if accepted.document.text_hash == current.text_hash:
        return _unchanged(target, ctx, state, at=accepted.capture.fetched_at, capture=accepted.capture)
    return _new_text(target, ctx, state, accepted)


def _watched(state: CheckState) -> bool:
    """Has the live watch begun? Its first accepted capture is a baseline, even after imported history
    (watchdog/importers): the imported text was read by another tool or at another time, so the live watch
    starts from a text of its own; how it differs from the last imported version is recorded, not pushed."""
    return state.current is not None and state.current.source == "live"


def _same_bytes_as(state: CheckState, target: Target, capture: Capture) -> bool:
    """The very bytes that made the current version, read with the same settings: skip all parsing."""
    snapshot = state.current_snapshot
    if snapshot is None or capture.status != 200:
        return False
    return snapshot.config_fingerprint == config_fingerprint(target) and snapshot.body_hash == sha256(
        capture.body
    )


# --------------------------------------------------------------------------- the fast reader
#
# New page noise, same text (the common case of a page without validators): the fast reader's fingerprint
# of the capture (watchdog.fastread) is one a capture read as the current version's text had (the reading
# cache), so the text is that version's, and nothing is parsed into a Python tree, rendered or validated
# (as for the same text read fully: its validation cannot say anything new). Any other capture is read and
# validated in full; a fingerprint not seen yet is remembered with the text it was read as.


def _reading(target: Target, capture: Capture) -> fastread.PageReading | None:
    """The fast reader's reading of a page capture (None for a feed, or a body that is no page)."""
    if target.kind == "feed":
        return None
    try:
        return capture_reading(target, capture)
    except ExtractError:
        return None  # read again (and rejected with the reason) by _read


def _reads_as_current(
    ctx: Context, state: CheckState, target: Target, capture: Capture, reading: fastread.PageReading
) -> bool:
    if state.current is None or not 200 <= capture.status < 300 or reading.slow:
        return False
    current = state.current.text_hash
    for entry in ctx.readings.entries(target):
        if entry.text_hash == current and reading.fingerprints(len(entry.fingerprints)) == entry.fingerprints:
            log.debug("%s: new page noise, the current version's text", target.id)
            return True
    return False


def _remember(ctx: Context, target: Target, reading: fastread.PageReading | None, document: Document) -> None:
    """A capture read and accepted in full: its fingerprints (those of the selector sets it took) and text."""
    if reading is None or reading.slow:
        return
    fingerprints = reading.fingerprints((document.alternative or 0) + 1)
    if fingerprints is not None:
        ctx.readings.add(target, page_readings.Entry(fingerprints, document.text_hash, document.capture_hash))


# --------------------------------------------------------------------------- fetch / extract / validate


def _capture(
    target: Target, ctx: Context, state: CheckState, validators: Validators | None
) -> Capture | NotModified | Outcome:
    try:
        return ctx.fetchers.for_target(target).fetch(target, validators=validators)
    except OversizeError as exc:
        return _record_failure(target, ctx, state, status="rejected", reason=exc.reason, code="oversize")
    except FetchError as exc:
        return _record_failure(target, ctx, state, status="error", reason=exc.reason)


def _read(
    target: Target,
    ctx: Context,
    state: CheckState,
    capture: Capture,
    *,
    after: Document | None = None,
    reading: fastread.PageReading | None = None,
) -> Accepted | Outcome:
    """Extract and validate (against the current version, or against `after`, the text being confirmed);
    a failure is recorded as a rejected snapshot (kept as evidence)."""
    previous_length = (
        len(after.text) if after else (state.current.length if state.current and _watched(state) else None)
    )
    accepted_hash = after.text_hash if after else (state.current.text_hash if state.current else None)
    rejection, document = extract_and_validate(
        target,
        ctx.config,
        capture,
        previous_length=previous_length,
        accepted_hash=accepted_hash,
        previous_text=_previous_text(ctx, state, after),
        reading=reading,
    )
    if rejection is None and document is not None:
        return Accepted(capture, document)
    assert rejection is not None
    if document is not None and _known_good(state, ctx, rejection, document, capture.fetched_at):
        log.info(
            "%s: a text rejected as %s is an earlier accepted version: a revert", target.id, rejection.code
        )
        return Accepted(capture, document)
    if document is not None and _persistent(state, rejection, document):
        log.warning(
            "%s: accepting a text that was rejected (%s) %d times in a row: the page's new normal",
            target.id,
            rejection.code,
            PERSISTENCE,
        )
        problem = f"accepted after {PERSISTENCE} identical {rejection.code} rejections: {rejection.reason}"
        return Accepted(capture, document, shape_problem=problem)
    rejected = results.NewSnapshot(
        capture,
        config_fingerprint(target),
        "rejected",
        reason_code=rejection.code,
        reason=rejection.reason,
        text_hash=document.text_hash if document else None,
        alternative=_alternative(document),
    )
    return _record_failure(
        target, ctx, state, status="rejected", reason=rejection.reason, code=rejection.code, snapshot=rejected
    )


# A text rejected only for its size (much shorter or longer than the last version) that comes back
# identical PERSISTENCE times in a row is the page's new normal, not a broken capture: without this, one
# accepted over-long variant would lock every later, shorter text out for good. Partial renders and
# block pages vary or do not persist; a real rewrite does.
PERSISTENT_REJECTIONS = frozenset({"shrunk", "truncated", "over-capture"})
PERSISTENCE = 3
RECENT_MARGIN = timedelta(days=1)


def _previous_text(ctx: Context, state: CheckState, after: Document | None) -> Callable[[], str] | None:
    """The text validation compares a capture with (read only if the sizes call for a look at it)."""
    if after is not None:
        return lambda: after.text
    current = state.current
    if current is None:
        return None
    return lambda: ctx.store.blobs.get_text(current.text_hash)


def _known_good(
    state: CheckState, ctx: Context, rejection: Rejection, document: Document, at: datetime
) -> bool:
    """A size rejection of a text we accepted before (within the revert window) is no broken capture: the
    page went back to an earlier text (the French policy blinked between a long and a short text in 2026)."""
    if rejection.code not in PERSISTENT_REJECTIONS:
        return False
    return _recent_with_text(state, ctx, document.text_hash, at) is not None


def _persistent(state: CheckState, rejection: Rejection, document: Document) -> bool:
    if rejection.code not in PERSISTENT_REJECTIONS:
        return False
    # "in a row": no accepted capture in between (an unchanged check stores no snapshot, but resets the count)
    if state.failures < PERSISTENCE - 1:
        return False
    earlier = state.latest_snapshots[: PERSISTENCE - 1]
    return len(earlier) == PERSISTENCE - 1 and all(
        s.outcome == "rejected" and s.reason_code == rejection.code and s.text_hash == document.text_hash
        for s in earlier
    )


def extract_and_validate(
    target: Target,
    config: Config,
    capture: Capture,
    *,
    previous_length: int | None,
    accepted_hash: str | None = None,
    previous_text: Callable[[], str] | None = None,
    reading: fastread.PageReading | None = None,
) -> tuple[Rejection | None, Document | None]:
    """Pure: raw capture -> (rejection or None, document or None). Also used by `reextract`.

    A rejected capture still comes with its document when the text could be extracted (the rejection is
    about what the text is, e.g. too short), so its text hash can be kept as evidence.
    """
    try:
        extracted = read_capture(target, capture, reading)
    except ExtractError as exc:
        return results.Rejection("unreadable", f"could not read the page: {exc}"), None
    document = results.Document(
        target.id,
        extracted.text,
        extract.text_hash(extracted.text),
        sha256(capture.body),
        extracted.alternative,
    )
    if extracted.alternative is not None:
        log.info("%s: `select` found no text; read with alternative %d", target.id, extracted.alternative)
    if document.text_hash == accepted_hash and 200 <= capture.status < 300:
        # the very text of the current, already validated version (the common case: page noise only): the
        # text-based checks cannot say anything new, so they are skipped
        return None, document
    signatures = validation.DEFAULT_SIGNATURES + tuple(
        validation.BlockSignature(c, p) for c, p in config.validate.block_signatures
    )
    rejection = validation.validate(
        capture,
        extracted,
        target=target,
        previous_length=previous_length,
        previous_text=previous_text,
        signatures=signatures,
        max_growth=config.validate.max_growth,
    )
    return rejection, document


def read_capture(target: Target, capture: Capture, reading: fastread.PageReading | None = None) -> Extracted:
    """The text of a capture as the target reads it: a feed's items, or a page through its selector sets
    (with the fast reader where it applies: the same text as beautifulsoup4's, see watchdog.fastread)."""
    if target.kind == "feed":
        return newsfeed.extract_feed(capture.body, url=capture.final_url)
    return (reading or capture_reading(target, capture)).extracted()


def capture_reading(target: Target, capture: Capture) -> fastread.PageReading:
    """A page capture read lazily with the target's settings (raises ExtractError for a body that is no
    page)."""
    return fastread.read_page(
        capture.body,
        content_type=capture.header("content-type"),
        url=capture.final_url,
        select=target.select,
        remove=target.remove,
        keep_links=target.keep_links,
        alternatives=target.alternatives,
        watch_links=target.watch_links,
    )


# --------------------------------------------------------------------------- outcomes: one write each


def _record(target: Target, state: CheckState, *, at: datetime, status: Status) -> CheckRecord:
    """The check's record, to complete (dataclasses.replace) with what it learned; the write refuses it if
    the target's counters moved since the state was read."""
    return results.CheckRecord(target.id, target.name, target.url, at, status, expected=state.sequences)


def _write(ctx: Context, record: CheckRecord, notice: StatusNotice) -> Recorded:
    """The check's ONE write: everything it learned, with its failing / recovered notice and the node that
    checked (`status` shows it; several daemons may share an archive), in one transaction."""
    node = ctx.store.leases.node
    return ctx.store.checks.record_check(
        replace(record, event=notice.event, alerts=record.alerts + notice.alerts, node=node)
    )


def _validators_of(capture: Capture) -> Validators:
    return Validators(capture.header("etag"), capture.header("last-modified"))


def _unchanged(
    target: Target, ctx: Context, state: CheckState, *, at: datetime, capture: Capture | None = None
) -> Outcome:
    recovery = _recovery(target, ctx, state)
    current_id = state.current.id if state.current else None
    record = replace(
        _record(target, state, at=at, status="unchanged"),
        seen=current_id,
        validators=_validators_of(capture) if capture is not None else None,
    )
    done = _write(ctx, record, recovery)
    return results.Outcome(
        target.id, "unchanged", version=current_id, alerted=done.alerted(recovery.event_id)
    )


def _accepted_snapshot(target: Target, accepted: Accepted) -> NewSnapshot:
    alternative = _alternative(accepted.document)
    return results.NewSnapshot(
        accepted.capture, config_fingerprint(target), "accepted", alternative=alternative
    )


def _alternative(document: Document | None) -> str | None:
    """The selector alternative that read the text, as the snapshot records it (None: the plain select)."""
    return None if document is None or document.alternative is None else str(document.alternative)


def _new_version(accepted: Accepted) -> NewVersion:
    return results.NewVersion(text=accepted.document.text, seen_at=accepted.capture.fetched_at)


def _baseline(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> Outcome:
    """The first accepted text: a version, no alert; after imported history, the change from the last
    imported version is recorded with kind `imported` (never pushed)."""
    record = replace(
        _record(target, state, at=accepted.capture.fetched_at, status="new"),
        snapshot=_accepted_snapshot(target, accepted),
        version=_new_version(accepted),
        validators=_validators_of(accepted.capture),
        change=_from_imported(target, ctx, state, accepted),
    )
    recovery = _recovery(target, ctx, state)
    done = _write(ctx, record, recovery)
    assert done.version is not None
    return results.Outcome(target.id, "new", version=done.version.id, alerted=done.alerted(recovery.event_id))


def _from_imported(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> NewChange | None:
    imported = state.current
    if imported is None or imported.text_hash == accepted.document.text_hash:
        return None
    return describe_change(
        target,
        ctx,
        ctx.store.blobs.get_text(imported.text_hash),
        accepted.document.text,
        change_id=state.sequences.next_change_id(target.id),
        from_id=imported.id,
        to_id=state.sequences.next_version_id(target.id),
        at=accepted.capture.fetched_at,
        kind="imported",
    )


def _new_text(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> Outcome:
    # Compare like with like: the current version's own raw page, read with today's code and settings. When
    # that reading differs from the stored text, the difference is ours (an upgraded extractor, an edited
    # selector, a new watched link), not the page's: it never reaches anyone as a wording change.
    reread = _reread_current(target, ctx, state)
    if reread is not None and state.current is not None and reread.text_hash != state.current.text_hash:
        if reread.text_hash == accepted.document.text_hash:
            return _technical(target, ctx, state, accepted)
        state = _restate(target, ctx, state, reread)
    confirmed = _confirm(target, ctx, state, accepted)
    if isinstance(confirmed, results.Outcome):
        return confirmed
    earlier = _recent_with_text(state, ctx, confirmed.document.text_hash, confirmed.capture.fetched_at)
    if earlier is not None:
        return _revert(target, ctx, state, confirmed, earlier=earlier)
    if _switched_selectors(target, state, confirmed, reread):
        return _selector_switch(target, ctx, state, confirmed)
    return _change(target, ctx, state, confirmed)


def _reread_current(target: Target, ctx: Context, state: CheckState) -> Document | None:
    """The current version's raw page read as the target reads pages today (None: the version has no raw
    page, e.g. an imported one, or today's settings no longer read it, or it is known to read as the current
    text: see _read_already). Only a new text costs this."""
    snapshot, current = state.current_snapshot, state.current
    if snapshot is None or current is None or _read_already(target, ctx, snapshot, current):
        return None
    capture = results.Capture.of_snapshot(snapshot, ctx.store.blobs.get(snapshot.body_hash))
    rejection, document = extract_and_validate(
        target, ctx.config, capture, previous_length=None, accepted_hash=current.text_hash
    )
    return document if rejection is None else None


def _read_already(target: Target, ctx: Context, snapshot: Snapshot, current: Version) -> bool:
    """The raw page was stored with today's settings and the reading cache (trusted only under today's code
    and settings) has its body read as the current text: reading it again would give that text, and the
    selector set the snapshot records is today's (what _new_text needs of the re-read)."""
    return snapshot.config_fingerprint == config_fingerprint(target) and (
        ctx.readings.read_as(target, snapshot.body_hash) == current.text_hash
    )


def _technical(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> Outcome:
    """The page reads exactly as its current version's raw page now reads: only our reading changed. The
    new text becomes a technical version (no change record, no alert), like `reextract` makes."""
    record = replace(
        _record(target, state, at=accepted.capture.fetched_at, status="unchanged"),
        snapshot=_accepted_snapshot(target, accepted),
        version=replace(_new_version(accepted), technical=True),
        validators=_validators_of(accepted.capture),
    )
    recovery = _recovery(target, ctx, state)
    done = _write(ctx, record, recovery)
    assert done.version is not None
    log.info("%s: the page reads differently only because its reading changed: technical version %s",
             target.id, done.version.id)  # fmt: skip
    return results.Outcome(
        target.id, "unchanged", version=done.version.id, alerted=done.alerted(recovery.event_id),
        extra={"technical": True},
    )  # fmt: skip


def _restate(target: Target, ctx: Context, state: CheckState, reread: Document) -> CheckState:
    """The page changed AND our reading changed: first the current raw page's text as read today, as a
    technical version, so the change that follows holds the page's own edits only. A rare path, and the one
    place a check writes (and then reads) twice."""
    assert state.current_snapshot is not None
    record = results.CheckRecord.technical_reading(
        target, state.current_snapshot, reread.text, state.sequences
    )
    ctx.store.checks.record_check(record)
    return _read_state(target, ctx)


def _switched_selectors(
    target: Target, state: CheckState, accepted: Accepted, reread: Document | None
) -> bool:
    """Whether the new text was read by another of the target's selector sets than the current version's
    raw page. The snapshot records which set read it; when the target's reading settings changed since,
    the set that reads that raw page today counts (a selector edit is no "switch")."""
    snapshot = state.current_snapshot
    if not target.alternatives or snapshot is None:
        return False
    now = _alternative(accepted.document)
    if snapshot.config_fingerprint == config_fingerprint(target):
        return snapshot.alternative != now
    return reread is not None and _alternative(reread) != now


def _selector_switch(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> Outcome:
    """The page is now read by another selector set: a `capture` change (the capture changed shape), never
    a wording change. The new text becomes the current version, so the next check compares like with
    like; the operators (channels routing `failing`) are told, worded as a capture problem."""
    assert state.current is not None
    before, now = state.current_snapshot, accepted.document.alternative
    was = f"alternative {before.alternative}" if before and before.alternative else "`select`"
    reading = f"alternative {now}" if now else "`select`"
    summary = f"the page is now read by {reading} (was {was}): a capture change, not a wording change"
    change_id = state.sequences.next_change_id(target.id)
    message = messages.StatusMessage(
        change_id,
        "capture",
        target.id,
        target.name,
        target.url,
        accepted.capture.fetched_at,
        summary,
        title=f"[{target.name}] capture changed: the page is now read by {reading}",
        body=f"policy-watchdog now reads {target.name} ({target.url}) with {reading} instead of {was}; "
        f"the text it reads changed with it, so {change_id} is recorded as a capture change, not announced "
        f"as a wording change. Check the selectors with `policy-watchdog doctor {target.id}`.",
    )
    notice = _status_alert(target, ctx, message)
    record = replace(
        _record(target, state, at=accepted.capture.fetched_at, status="changed"),
        snapshot=_accepted_snapshot(target, accepted),
        version=_new_version(accepted),
        validators=_validators_of(accepted.capture),
        change=results.NewChange(from_version=state.current.id, kind="capture", summary=summary),
        alerts=_owe(target, ctx, notice),
    )
    recovery = _recovery(target, ctx, state)
    done = _write(ctx, record, recovery)
    assert done.version is not None and done.change is not None
    log.warning("%s: %s (%s)", target.id, summary, done.change.id)
    alerted = done.alerted(done.change.id) or done.alerted(recovery.event_id)
    return results.Outcome(
        target.id, "changed", version=done.version.id, change=done.change.id, alerted=alerted,
        extra={"kind": "capture"},
    )  # fmt: skip


def _confirm(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> Accepted | Outcome:
    """Re-fetch after confirm_delay: a new text counts only if it comes back identical (no flicker alerts)."""
    delay = target.confirm_delay.total_seconds()
    if delay <= 0:
        return accepted
    ctx.sleep(delay)
    again = _capture(target, ctx, state, None)
    if isinstance(again, results.Outcome):
        return again
    if isinstance(again, results.NotModified):
        return accepted  # unreachable without validators; a 304 means "what you just saw"
    second = _read(target, ctx, state, again, after=accepted.document)
    if isinstance(second, results.Outcome):
        return second
    if accepted.shape_problem and not second.shape_problem:
        second = replace(second, shape_problem=accepted.shape_problem)
    if second.document.text_hash != accepted.document.text_hash:
        log.info("%s: new text not confirmed on re-fetch; keeping the current version", target.id)
        return _unchanged(target, ctx, state, at=again.fetched_at)
    return second


def _recently_seen(state: CheckState, ctx: Context, at: datetime) -> list[Version]:
    """The target's recently seen versions (kinds.py): last seen no longer than the revert window before
    `at`, newest first."""
    window_start = at - ctx.config.alerts.revert_window
    return [version for version in state.recent if version.last_seen >= window_start]


def _recent_with_text(state: CheckState, ctx: Context, text_hash: str, at: datetime) -> Version | None:
    """A recently seen version with this exact text (an A->B->A flip)."""
    return next((v for v in _recently_seen(state, ctx, at) if v.text_hash == text_hash), None)


def _revert(
    target: Target, ctx: Context, state: CheckState, accepted: Accepted, *, earlier: Version
) -> Outcome:
    """Back to a text seen recently: recorded as "reverted to X", never alerted again."""
    assert state.current is not None
    change = results.NewChange(
        from_version=state.current.id,
        to_version=earlier.id,
        kind="revert",
        summary=f"reverted to {earlier.id}",
        reverted_to=earlier.id,
    )
    at = accepted.capture.fetched_at
    back = _back_to(target, ctx, state, earlier, at=at)
    record = replace(
        _record(target, state, at=at, status="changed"),
        seen=earlier.id,
        current=earlier.id,
        change=change,
        alerts=back.alerts,
    )
    done = _write(ctx, record, _recovery(target, ctx, state))
    assert done.change is not None
    log.info("%s: text reverted to %s (%s)", target.id, earlier.id, done.change.id)
    return results.Outcome(
        target.id, "changed", version=earlier.id, change=done.change.id, extra=back.outcome_extra(done)
    )


def _same_meaning_as_recent(
    ctx: Context, state: CheckState, accepted: Accepted
) -> tuple[Version, str] | None:
    """A recently seen version (not the current one) that the new text only rewrites without changing its
    meaning (kinds.same_meaning), with the categories of those edits. Looked for only when the new text is
    a wording change against the current version (rare), in the RETURN_CANDIDATES newest versions."""
    current_id = state.current.id if state.current else None
    candidates = [v for v in _recently_seen(state, ctx, accepted.capture.fetched_at) if v.id != current_id]
    for version in candidates[:RETURN_CANDIDATES]:
        reasons = kinds.same_meaning(_diff(ctx, version.text_hash, accepted.document))
        if reasons is not None:
            return version, reasons
    return None


# How many recently seen versions a new wording is compared with (one diff each) to find a variant it only
# rewrites: a page flipping between more variants than this is rare, and each comparison costs a diff.
RETURN_CANDIDATES = 5


def _meaning_return(
    target: Target, ctx: Context, state: CheckState, accepted: Accepted, *, earlier: Version, reasons: str
) -> Outcome:
    """The page went back to a recently seen variant, written differently (every edit between them keeps
    the meaning): its exact text becomes a version, and the change is a revert to the earlier variant,
    never alerted, exactly as a return to the same text is."""
    assert state.current is not None
    at = accepted.capture.fetched_at
    change = results.NewChange(
        from_version=state.current.id,
        kind="revert",
        summary=f"reverted to {earlier.id} in meaning (only edits that keep it: {reasons})",
        reverted_to=earlier.id,
    )
    back = _back_to(target, ctx, state, earlier, at=at)
    record = replace(
        _record(target, state, at=at, status="changed"),
        snapshot=_accepted_snapshot(target, accepted),
        version=_new_version(accepted),
        validators=_validators_of(accepted.capture),
        change=change,
        alerts=back.alerts,
    )
    done = _write(ctx, record, _recovery(target, ctx, state))
    assert done.version is not None and done.change is not None
    log.info("%s: back to the meaning of %s (%s: %s)", target.id, earlier.id, done.change.id, reasons)
    return results.Outcome(
        target.id, "changed", version=done.version.id, change=done.change.id, extra=back.outcome_extra(done)
    )


@dataclass(frozen=True)
class BackTo:
    """What a return to a recently seen text owes: a correction (a pushed change withdrawn) and, when the
    page flips between variants, the operators' note (once per pair of variants)."""

    correction: tuple[OwedAlert, ...] = ()
    flap_note: tuple[OwedAlert, ...] = ()
    flapping: bool = False

    @property
    def alerts(self) -> tuple[OwedAlert, ...]:
        return self.correction + self.flap_note

    def outcome_extra(self, done: Recorded) -> dict[str, Any]:
        extra: dict[str, Any] = {"kind": "revert"}
        if self.correction and done.alerted(self.correction[0].event_id):
            extra["correction"] = True
        if self.flapping:
            extra["flapping"] = True
        return extra


def _back_to(target: Target, ctx: Context, state: CheckState, earlier: Version, *, at: datetime) -> BackTo:
    assert state.current is not None
    window = ctx.config.alerts.revert_window
    returns = ctx.store.archive.changes(target=target.id, since=at - window, kinds=("revert",))
    # the text the page now leaves had itself come back by a return within the window: the page flips
    # between variants (A -> B -> A -> B); it is not one edit withdrawn
    flapping = any(c.to_version == state.current.id for c in returns)
    correction = _correction(target, ctx, state, earlier=earlier, at=at)
    if not flapping:
        return BackTo(correction)
    # a variant is named by its first version: a text that came back rewritten (same meaning) is that one
    variant = {c.to_version: c.reverted_to for c in returns if c.reverted_to}
    pair = sorted({variant.get(v.id, v.id) for v in (earlier, state.current)}, key=_version_seq)
    if len(pair) < 2:  # two writings of one variant: no variants to tell the operators about
        return BackTo(correction, flapping=True)
    note = _flap_note(target, ctx, (pair[0], pair[1]), at=at, returns=len(returns) + 1)
    return BackTo(correction, note, flapping=True)


def _version_seq(version_id: str) -> int:
    return int(version_id.rsplit("@v", 1)[1])  # "<target>@v<seq>"


def _correction(
    target: Target, ctx: Context, state: CheckState, *, earlier: Version, at: datetime
) -> tuple[OwedAlert, ...]:
    """The page went back: if the change that brought the text now left was pushed, and the page is back to
    a text it showed before that change was announced, each channel that got it is owed one correction
    (queued with the revert's write; the outbox takes an event once per channel, so a page that keeps
    flipping corrects a change once). A return to a variant first seen after the change (A -> B -> A -> B:
    back to B) withdraws nothing: B was announced, and its withdrawal corrected, already."""
    assert state.current is not None
    current_id = state.current.id
    pushed = [
        c
        for c in ctx.store.archive.changes(target=target.id, kinds=("change",))
        if c.to_version == current_id and c.alerted
    ]
    if not pushed or earlier.first_seen >= pushed[0].detected_at:
        return ()
    withdrawn = pushed[0]  # newest first
    keys = tuple(key for key, _at, _attempts in ctx.store.outbox.deliveries_for(withdrawn.id))
    event_id = f"{withdrawn.id}-withdrawn"
    if not keys or ctx.store.outbox.deliveries_for(event_id):
        return ()
    body = kinds.correction_text(
        target_name=target.name, back_to=earlier.id, announced_at=withdrawn.detected_at, now=at
    )
    message = messages.StatusMessage(
        event_id,
        "correction",
        target.id,
        target.name,
        target.url,
        at,
        f"back to {earlier.id}",
        title=f"[{target.name}] correction: the change announced as {withdrawn.id} was withdrawn",
        body=body,
    )
    alert = replace(_status_alert(target, ctx, message), tags=(target.id,))
    return (results.OwedAlert(event_id, alert.to_json(), keys),)


def _flap_note(
    target: Target, ctx: Context, pair: tuple[str, str], *, at: datetime, returns: int
) -> tuple[OwedAlert, ...]:
    """The operators' note that the page flips between two variants: once per pair (its event id names the
    pair; the outbox takes an event once per channel), to channels tagged `failing` (notify.route)."""
    first, second = pair
    event_id = f"{first}-{second.rsplit('@', 1)[-1]}-flapping"
    if ctx.store.outbox.deliveries_for(event_id):
        return ()
    window = ctx.config.alerts.revert_window
    message = messages.StatusMessage(
        event_id,
        "flapping",
        target.id,
        target.name,
        target.url,
        at,
        f"flips between {first} and {second}",
        title=f"[{target.name}] the page flips between {first} and {second}: flips not announced",
        body=kinds.flap_note(target_name=target.name, variants=pair, returns=returns, window=window),
    )
    return _owe(target, ctx, _status_alert(target, ctx, message))


def _change(target: Target, ctx: Context, state: CheckState, accepted: Accepted) -> Outcome:
    assert state.current is not None
    before_hash = state.current.text_hash
    text_diff = _diff(ctx, before_hash, accepted.document)
    classification = _classify(target, ctx, text_diff)
    classification = _watched_links(target, ctx, classification, before_hash, accepted, text_diff)
    kind = _kind(target, ctx, state, accepted, text_diff, classification)
    if kind == "change" and (same := _same_meaning_as_recent(ctx, state, accepted)) is not None:
        return _meaning_return(target, ctx, state, accepted, earlier=same[0], reasons=same[1])
    if kind != "change":  # not a wording change: no topic is announced
        classification = replace(classification, topics=(), matches=(), severity="none")
    at = accepted.capture.fetched_at
    message = _message(
        target,
        ctx,
        change_id=state.sequences.next_change_id(target.id),
        from_id=state.current.id,
        to_id=state.sequences.next_version_id(target.id),
        at=at,
        diff=text_diff,
        found=classification,
        kind=kind,
    )
    record = replace(
        _record(target, state, at=at, status="changed"),
        snapshot=_accepted_snapshot(target, accepted),
        version=_new_version(accepted),
        validators=_validators_of(accepted.capture),
        change=_change_record(message, kind=kind),
        alerts=_owe_change_alert(
            target, ctx, message, accepted.document.text_hash, kind=kind, why=_capture_reason(accepted)
        ),
    )
    recovery = _recovery(target, ctx, state)
    done = _write(ctx, record, recovery)
    assert done.version is not None and done.change is not None
    alerted = done.alerted(done.change.id) or done.alerted(recovery.event_id)
    followed = follow_new_items(ctx.config, target, accepted.document.text, classification.matches, at)
    extra: dict[str, Any] = {"kind": kind}
    if followed:
        extra["followed"] = list(followed)
    return results.Outcome(
        target.id,
        "changed",
        version=done.version.id,
        change=done.change.id,
        topics=classification.topics,
        alerted=alerted,
        extra=extra,
    )


# How many of the target's earlier versions the "restored content" rule (watchdog/kinds.py) looks in.
RESTORED_LOOKBACK = 10


def _kind(
    target: Target,
    ctx: Context,
    state: CheckState,
    accepted: Accepted,
    text_diff: TextDiff,
    classification: Classification,
) -> ChangeKind:
    """change / editorial / capture (watchdog/kinds.py)."""
    current_id = state.current.id if state.current else None

    def earlier_texts() -> list[str]:
        # Read only for a change that only adds text (rare): content a capture had missed may come back
        # months later, beyond the revert window the check's state covers.
        versions = [v for v in ctx.store.archive.versions(target.id) if v.id != current_id]
        return [ctx.store.blobs.get_text(v.text_hash) for v in versions[:RESTORED_LOOKBACK]]

    return kinds.change_kind(
        text_diff, classification, shape_problem=accepted.shape_problem, earlier_texts=earlier_texts
    )


# `check` publishes right after its cycle, and publishing diffs every new change again (site page, feed
# entries) through its DiffCache: the same diff_texts, keyed by the two text hashes and the diff code,
# kept on disk under the storage dir. A policy's word-level diff is the costliest step of a check that
# finds a change, so the pipeline computes it through that cache: publishing then reads it back (JSON,
# lossless) instead of computing it a second time. A cached entry (the same two texts, the same diff
# code) is the very diff diff_texts would return; a missing or damaged one is computed.


def _diff(ctx: Context, before_hash: str, after: Document) -> TextDiff:
    def text(digest: str) -> str:
        return after.text if digest == after.text_hash else ctx.store.blobs.get_text(digest)

    cache = publish_archive.DiffCache(
        texts=text, directory=publish_archive.diff_cache_dir(ctx.config.storage_dir)
    )
    return cache.diff(before_hash, after.text_hash)


def _classify(target: Target, ctx: Context, text_diff: TextDiff) -> Classification:
    classification = classifier.classify(text_diff, ctx.topics, only=target.topics)
    if target.kind != "feed":
        return classification
    # A feed's news is its new items: an item leaving the feed's window (a deleted block) is not.
    kept = tuple(m for m in classification.matches if m.side != "deleted")
    return links.with_evidence(
        messages.Classification((), (), "none"), kept, {t.id: t.severity for t in ctx.config.topics}
    )


def describe_change(
    target: Target,
    ctx: Context,
    before: str,
    after: str,
    *,
    change_id: str,
    from_id: str,
    to_id: str,
    at: datetime,
    kind: ChangeKind,
) -> NewChange:
    """A change no check saw (between imported versions, or from the last one to the live watch's first),
    diffed, classified and summarised as a check's change is; it is recorded with `kind`, never alerted.
    What a live check would have called it shows as for a live change: an editorial or capture change
    touches no topic, and its summary starts with that kind ("editorial: ...")."""
    texts = {extract.text_hash(before): before, extract.text_hash(after): after}
    cache = publish_archive.DiffCache(
        texts=texts.__getitem__, directory=publish_archive.diff_cache_dir(ctx.config.storage_dir)
    )
    text_diff = cache.diff(extract.text_hash(before), extract.text_hash(after))
    classification = _classify(target, ctx, text_diff)
    classification = _link_evidence(target, ctx, classification, before, after, text_diff)
    live_kind = kinds.change_kind(text_diff, classification, shape_problem=None, earlier_texts=tuple)
    if live_kind != "change":
        classification = replace(classification, topics=(), matches=(), severity="none")
    message = _message(
        target,
        ctx,
        change_id=change_id,
        from_id=from_id,
        to_id=to_id,
        at=at,
        diff=text_diff,
        found=classification,
        kind=live_kind,
    )
    return replace(_change_record(message, kind=live_kind), kind=kind, to_version=to_id)


def _watched_links(
    target: Target,
    ctx: Context,
    classification: Classification,
    before_hash: str,
    accepted: Accepted,
    text_diff: TextDiff,
) -> Classification:
    """Add the `opt-out` evidence of watched links that disappeared, appeared or changed target."""
    if not target.watch_links:
        return classification
    before = ctx.store.blobs.get_text(before_hash)
    return _link_evidence(target, ctx, classification, before, accepted.document.text, text_diff)


def _link_evidence(
    target: Target, ctx: Context, classification: Classification, before: str, after: str, text_diff: TextDiff
) -> Classification:
    watch = extract.LinkWatch(target.watch_links)
    if not watch:
        return classification
    changes = links.link_changes(before, after, watch)
    if not changes:
        return classification
    severity_of = {t.id: t.severity for t in ctx.config.topics}
    return links.with_evidence(classification, links.link_evidence(changes, text_diff), severity_of)


def _change_record(message: ChangeMessage, *, kind: ChangeKind = "change") -> NewChange:
    classification = message.classification
    evidence = tuple(
        {
            "topic": m.topic_id,
            "pattern": m.pattern,
            "side": m.side,
            "sentence": m.sentence,
            "hunk": m.hunk_index,
        }
        for m in classification.matches
    )
    story = render_compose.compose(message)
    return results.NewChange(
        from_version=message.from_version,
        kind=kind,
        topics=classification.topics,
        severity=classification.severity,
        summary=render_compose.summary(story)
        if kind == "change"
        else f"{kind}: {render_compose.summary(story)}",
        evidence=evidence,
        sections=tuple(story.sections()),
    )


def _message(
    target: Target,
    ctx: Context,
    *,
    change_id: str,
    from_id: str,
    to_id: str,
    at: datetime,
    diff: TextDiff,
    found: Classification,
    kind: ChangeKind = "change",
) -> ChangeMessage:
    """The format-neutral record of a change that the outbox carries (rendered per channel at delivery)."""
    return messages.ChangeMessage(
        event_id=change_id,
        kind=kind,
        target_id=target.id,
        target_name=target.name,
        url=target.url,
        from_version=from_id,
        to_version=to_id,
        detected_at=at,
        diff=diff,
        classification=found,
        topics=tuple(t for t in ctx.config.topics if t.id in found.topics),
        archive_url=ctx.config.alerts.archive_url,
    )


def archive_link(config: Config, change_id: str) -> str | None:
    base = config.alerts.archive_url
    return f"{base.rstrip('/')}/changes/{change_id}.html" if base else None


# --------------------------------------------------------------------------- alerts


def _owe_change_alert(
    target: Target,
    ctx: Context,
    message: ChangeMessage,
    text_hash: str,
    *,
    kind: ChangeKind = "change",
    why: str = "",
) -> tuple[OwedAlert, ...]:
    """The change's alert, owed to every channel it routes to; at most once per distinct text (the write
    checks that no earlier change to this text was alerted). It carries the format-neutral message:
    each channel gets it rendered for what it renders, at delivery. By kind (watchdog/kinds.py): a wording
    change routes by its topics; an editorial one only where all changes are asked for (no topic); a
    capture is an operators' notice, worded as a capture problem (notify.route: to channels tagged
    "failing" only)."""
    if kind == "capture":
        return _owe(target, ctx, _status_alert(target, ctx, _capture_notice(target, message, why)))
    classification = message.classification
    severities = sorted({t.severity for t in ctx.config.topics if t.id in classification.topics})
    alert = messages.Alert(
        event_id=message.event_id,
        kind="change",
        target_id=target.id,
        title="",
        text="",
        markdown="",
        html="",
        tags=(*classification.topics, *severities, target.id),
        topic_change=kind == "change" and bool(classification.topics),
    )
    # Routing reads the kind, tags and topic_change only: the message is serialised only for an alert
    # that some channel takes (a change without topics mostly goes nowhere).
    keys = _channel_keys(target, ctx, alert)
    if not keys:
        return ()
    owed = replace(
        alert, title=render_compose.compose(message).headline, message=messages.message_to_json(message)
    )
    return (results.OwedAlert(message.event_id, owed.to_json(), tuple(keys), once_per_text=text_hash),)


def _capture_reason(accepted: Accepted) -> str:
    return accepted.shape_problem or (
        "most of the text it adds is in earlier versions of the page and it removes nothing: content an "
        "earlier capture had missed (collapsed sections, annotations) came back"
    )


def _capture_notice(target: Target, message: ChangeMessage, why: str) -> StatusMessage:
    return messages.StatusMessage(
        message.event_id,
        "capture",
        target.id,
        target.name,
        target.url,
        message.detected_at,
        why,
        title=f"[{target.name}] capture problem: the page's shape changed, not its wording",
        body=f"{message.event_id} ({message.from_version} -> {message.to_version}) is recorded as a capture "
        f"change, not announced as a wording change: {why}.",
    )


def _owe(target: Target, ctx: Context, alert: Alert) -> tuple[OwedAlert, ...]:
    """The alert, owed to every channel it routes to (nothing when none takes it)."""
    keys = _channel_keys(target, ctx, alert)
    return (results.OwedAlert(alert.event_id, alert.to_json(), tuple(keys)),) if keys else ()


def _channel_keys(target: Target, ctx: Context, alert: Alert) -> list[str]:
    return [c.key for c in ctx.config.channels if notify.route(alert, c, target_notify=target.notify)]


def _status_alert(target: Target, ctx: Context, message: StatusMessage) -> Alert:
    return messages.Alert(
        event_id=message.event_id,
        kind=message.kind,
        target_id=target.id,
        title=f"[{target.name}] {message.kind}",
        text="",
        markdown="",
        html="",
        tags=("failing", target.id),
        message=messages.message_to_json(replace(message, archive_url=ctx.config.alerts.archive_url)),
    )


@dataclass(frozen=True)
class StatusNotice:
    """A failing / recovered event for the check's write, its alerts, and its predicted id."""

    event_id: str | None = None
    event: NewEvent | None = None
    alerts: tuple[OwedAlert, ...] = ()


def _record_failure(
    target: Target,
    ctx: Context,
    state: CheckState,
    *,
    status: Status,
    reason: str,
    code: str | None = None,
    snapshot: NewSnapshot | None = None,
) -> Outcome:
    """An error or a rejection: keep the evidence, count it, alert once after N in a row."""
    at = snapshot.capture.fetched_at if snapshot else ctx.clock()
    record = replace(
        _record(target, state, at=at, status=status), reason=reason, failed=True, snapshot=snapshot
    )
    advise = (
        _selector_advice(target, ctx, state, snapshot.capture) if code == "no-match" and snapshot else None
    )
    notice = _failing(target, ctx, state, reason=reason, advise=advise)
    done = _write(ctx, record, notice)
    log.warning("%s: %s: %s", target.id, status, reason)
    return results.Outcome(
        target.id,
        status,
        version=state.current.id if state.current else None,
        reason=reason,
        alerted=done.alerted(notice.event_id),
        extra={"code": code} if code else {},
    )


def _selector_advice(
    target: Target, ctx: Context, state: CheckState, capture: Capture
) -> Callable[[], str | None]:
    """For a `no-match` failure alert: selectors that reproduce the last version (computed only if sent)."""

    def advise() -> str | None:
        current = state.current
        if current is None:
            return None
        return doctor.advice(target, capture, ctx.store.blobs.get_text(current.text_hash), current.id)

    return advise


def _failing(
    target: Target,
    ctx: Context,
    state: CheckState,
    *,
    reason: str,
    advise: Callable[[], str | None] | None = None,
) -> StatusNotice:
    """The "can no longer read" event and alert, once the failures in a row reach the threshold."""
    failures = state.failures + 1
    if state.failing or failures < ctx.config.alerts.failure_threshold:
        return StatusNotice()
    event_id = state.sequences.next_event_id(target.id, "failing")
    at = ctx.clock()
    proposal = (advise() if advise else None) or ""
    message = messages.StatusMessage(
        event_id, "failing", target.id, target.name, target.url, at, reason, failures, advice=proposal
    )
    return StatusNotice(
        event_id, results.NewEvent("failing", reason), _owe(target, ctx, _status_alert(target, ctx, message))
    )


def _recovery(target: Target, ctx: Context, state: CheckState) -> StatusNotice:
    """After a failure alert, say once that the target recovered (the count restarts in any case)."""
    if not state.failing:
        return StatusNotice()
    event_id = state.sequences.next_event_id(target.id, "recovered")
    reason = "capture accepted again"
    message = messages.StatusMessage(
        event_id, "recovered", target.id, target.name, target.url, ctx.clock(), reason
    )
    alert = _status_alert(target, ctx, message)
    return StatusNotice(event_id, results.NewEvent("recovered", reason), _owe(target, ctx, alert))


# --------------------------------------------------------------------------- one cycle


def run_cycle(targets: Sequence[Target], ctx: Context) -> list[Outcome]:
    """`check`: each target in turn, then deliver what is owed (including earlier cycles' leftovers)."""
    ctx.store.checks.sync_targets(targets)
    outcomes = [_check_claimed(target, ctx) for target in targets]
    report = deliver(ctx)
    if report is None or not report.unusable_channels:
        return outcomes
    return [_alerted_for_real(o, ctx, report.unusable_channels) for o in outcomes]


def _check_claimed(target: Target, ctx: Context) -> Outcome:
    """On an archive shared with running daemons, `check` claims each target before checking it, like a
    daemon does, so no two nodes check one target at once; a daemon's check in flight is waited for."""
    leases = ctx.store.leases
    if not leases.shared:
        return check_target(target, ctx)
    holder = _claim(target, ctx)
    if holder is not None:
        waited = ctx.config.storage.lease.total_seconds()
        reason = f"another node kept checking it for {waited:g} s ({holder})"
        return results.Outcome(target.id, "error", reason=reason)
    try:
        return check_target(target, ctx)
    finally:
        leases.release([target.id])


def _claim(target: Target, ctx: Context) -> str | None:
    """Lease the target for this check, waiting up to one lease length while another node holds it; None
    when it is ours, else who still holds it."""
    waited_until = time.monotonic() + ctx.config.storage.lease.total_seconds()
    while True:
        claim = ctx.store.leases.claim([target.id], ctx.clock(), limit=1, due_only=False)
        if claim.claimed:
            return None
        if time.monotonic() >= waited_until:
            state = ctx.store.archive.target_state(target.id)
            return f"last checked by {state.last_node}" if state and state.last_node else "a running daemon"
        time.sleep(CLAIM_POLL)  # real time: we wait for another process, not for the checked site


CLAIM_POLL = 0.2  # seconds between two attempts to claim a target another node is checking


def deliver(ctx: Context) -> notify.DeliveryReport | None:
    """Send the alerts in the outbox that are due (a row backing off waits for its time); a channel that
    is down keeps its alerts for a later pass. None when no channel is configured."""
    if not ctx.config.channels:
        return None
    if ctx.notifier is None:
        ctx.notifier = notify.Notifier(ctx.config.channels)
    report = notify.deliver_pending(ctx.store.outbox, ctx.notifier, ctx.config.channels, now=ctx.clock())
    log.debug("deliveries: %s", report)
    return report


def _alerted_for_real(outcome: Outcome, ctx: Context, unusable: Sequence[str]) -> Outcome:
    """A change owed only to channels that cannot be loaded was not alerted (its rows wait for them)."""
    if not outcome.alerted or outcome.change is None:
        return outcome
    rows = ctx.store.outbox.deliveries_for(outcome.change)
    if any(delivered is not None or key not in unusable for key, delivered, _n in rows):
        return outcome
    return replace(outcome, alerted=False)
