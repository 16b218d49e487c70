"""The pipeline: one check of one target, the stages in order, with the one per-target error boundary.

    fetch -> extract/normalise -> validate -> [confirm] -> diff -> classify -> render -> store (+ outbox)

All the network and CPU work happens first; then everything the check learned is written in ONE store
transaction (snapshot, version, change, failure event, owed alerts), so a crash leaves the archive either
before or after the check. Fetch and extract problems are outcomes (`error`, `rejected`) of that one target;
storage problems are fatal and propagate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watchdog.config import Config, config_fingerprint
from watchdog.doctor import advice as selector_advice
from watchdog.errors import ExtractError, FetchError, OversizeError, StorageError
from watchdog.extract import LinkWatch, extract
from watchdog.follow import follow_new_items
from watchdog.links import link_changes, link_evidence, with_evidence
from watchdog.models import (
    Alert,
    Capture,
    Classification,
    Document,
    Extracted,
    NotModified,
    Outcome,
    Rejection,
    Status,
    Target,
    TextDiff,
    Validators,
    Version,
)
from watchdog.newsfeed import extract_feed
from watchdog.store import Store, TargetState

if TYPE_CHECKING:
    from watchdog.classify import CompiledTopics
    from watchdog.fetchers.base import Fetcher
    from watchdog.notify import Notifier

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Fetchers:
    """The fetchers of one cycle, built lazily: a config without browser targets never starts a browser."""

    def __init__(self, config: Config, *, clock: Clock = utc_now, sleep: Sleep | None = None) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._made: dict[str, Fetcher] = {}
        from watchdog.fetchers.http import HostLimiter

        self.host_limiter = HostLimiter()

    def for_target(self, target: Target) -> Fetcher:
        if target.fetcher not in self._made:
            self._made[target.fetcher] = self._make(target.fetcher)
        return self._made[target.fetcher]

    def _make(self, kind: str) -> Fetcher:
        if kind == "http":
            from watchdog.fetchers.http import HttpFetcher

            options: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
            return HttpFetcher(
                settings=self._config.fetch, clock=self._clock, host_limiter=self.host_limiter, **options
            )
        if kind == "browser":
            from watchdog.fetchers.browser import BrowserFetcher

            return BrowserFetcher(
                settings=self._config.fetch,
                clock=self._clock,
                host_limiter=self.host_limiter,
                render_timeout=self._config.fetch.timeout,  # the same patience as for a plain response
            )
        from watchdog.fetchers.auto import AutoFetcher

        return AutoFetcher(http=self.for_target_kind("http"), browser=self.for_target_kind("browser"))

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
    store: Store
    fetchers: Fetchers
    notifier: Notifier | None = None
    clock: Clock = utc_now
    sleep: Sleep = field(default=lambda seconds: None)
    _topics: CompiledTopics | None = None

    @property
    def topics(self) -> CompiledTopics:
        if self._topics is None:
            from watchdog.classify import compile_topics

            self._topics = compile_topics(self.config.topics)
        return self._topics


@dataclass(frozen=True)
class Accepted:
    """A capture that passed validation, with its text."""

    capture: Capture
    document: Document


# --------------------------------------------------------------------------- the boundary


def check_target(target: Target, ctx: Context) -> Outcome:
    """Check one target. The only broad `except` of the project: one target's bug never stops the others."""
    ctx.store.sync_targets([target])
    try:
        return _check(target, ctx)
    except StorageError:
        raise  # fatal by policy: the transaction kept the archive whole; let systemd restart us
    except Exception as exc:
        log.exception("%s: internal error during check", target.id)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return _record_failure(target, ctx, status="error", reason=reason)


def _check(target: Target, ctx: Context) -> Outcome:
    state = ctx.store.target_state(target.id)
    current = ctx.store.current_version(target.id)
    validators = Validators(state.etag, state.last_modified) if state and current else None
    result = _capture(target, ctx, validators)
    if isinstance(result, Outcome):
        return result
    if isinstance(result, NotModified):
        return _unchanged(target, ctx, current_id=current.id if current else None, at=result.fetched_at)
    if current is not None and _same_bytes_as(current, target, ctx, result):
        return _unchanged(target, ctx, current_id=current.id, at=result.fetched_at, capture=result)
    accepted = _read(
        target,
        ctx,
        result,
        previous_length=current.length if current else None,
        accepted_hash=current.text_hash if current else None,
    )
    if isinstance(accepted, Outcome):
        return accepted
    if current is None:
        return _baseline(target, ctx, accepted)
    if accepted.document.text_hash == current.text_hash:
        return _unchanged(
            target, ctx, current_id=current.id, at=accepted.capture.fetched_at, capture=accepted.capture
        )
    return _new_text(target, ctx, accepted, current_id=current.id)


def _same_bytes_as(current: Version, target: Target, ctx: Context, capture: Capture) -> bool:
    """The very bytes that made the current version, read with the same settings: skip all parsing."""
    if current.snapshot_id is None or capture.status != 200:
        return False
    from watchdog.store import sha256

    snapshot = ctx.store.snapshot(current.snapshot_id)
    return snapshot.config_fingerprint == config_fingerprint(target) and snapshot.body_hash == sha256(
        capture.body
    )


# --------------------------------------------------------------------------- fetch / extract / validate


def _capture(target: Target, ctx: Context, validators: Validators | None) -> Capture | NotModified | Outcome:
    try:
        return ctx.fetchers.for_target(target).fetch(target, validators=validators)
    except OversizeError as exc:
        return _record_failure(target, ctx, status="rejected", reason=exc.reason, code="oversize")
    except FetchError as exc:
        return _record_failure(target, ctx, status="error", reason=exc.reason)


def _read(
    target: Target,
    ctx: Context,
    capture: Capture,
    *,
    previous_length: int | None,
    accepted_hash: str | None = None,
) -> Accepted | Outcome:
    """Extract and validate; a failure is recorded as a rejected snapshot (kept as evidence)."""
    rejection, document = extract_and_validate(
        target, ctx.config, capture, previous_length=previous_length, accepted_hash=accepted_hash
    )
    if rejection is None and document is not None:
        return Accepted(capture, document)
    assert rejection is not None
    if document is not None and _known_good(target, ctx, rejection, document, capture.fetched_at):
        log.info(
            "%s: a text rejected as %s is an earlier accepted version: a revert", target.id, rejection.code
        )
        return Accepted(capture, document)
    if document is not None and _persistent(target, ctx, rejection, document):
        log.warning(
            "%s: accepting a text that was rejected (%s) %d times in a row: the page's new normal",
            target.id,
            rejection.code,
            PERSISTENCE,
        )
        return Accepted(capture, document)
    return _record_failure(
        target,
        ctx,
        status="rejected",
        reason=rejection.reason,
        code=rejection.code,
        capture=capture,
        text_hash=document.text_hash if document else None,
    )


# A text rejected only for its size (much shorter or longer than the last version) that comes back
# identical PERSISTENCE times in a row is the page's new normal, not a broken capture: without this, one
# accepted over-long variant would lock every later, shorter text out for good. Partial renders and
# block pages vary or do not persist; a real rewrite does.
PERSISTENT_REJECTIONS = frozenset({"shrunk", "over-capture"})
PERSISTENCE = 3


def _known_good(target: Target, ctx: Context, rejection: Rejection, document: Document, at: datetime) -> bool:
    """A size rejection of a text we accepted before (within the revert window) is no broken capture: the
    page went back to an earlier text (the French policy blinked between a long and a short text in 2026)."""
    if rejection.code not in PERSISTENT_REJECTIONS:
        return False
    window_start = at - ctx.config.alerts.revert_window
    return any(
        v.last_seen >= window_start for v in ctx.store.versions_with_text(target.id, document.text_hash)
    )


def _persistent(target: Target, ctx: Context, rejection: Rejection, document: Document) -> bool:
    if rejection.code not in PERSISTENT_REJECTIONS:
        return False
    # "in a row": no accepted capture in between (an unchanged check stores no snapshot, but resets the count)
    state = ctx.store.target_state(target.id)
    if state is None or state.consecutive_failures < PERSISTENCE - 1:
        return False
    earlier = ctx.store.latest_snapshots(target.id, PERSISTENCE - 1)
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
) -> tuple[Rejection | None, Document | None]:
    """Pure: raw capture -> (rejection or None, document or None). Also used by `reextract`.

    A rejected capture still comes with its document when the text could be extracted (the rejection is
    about what the text is, e.g. too short), so its text hash can be kept as evidence.
    """
    from watchdog.extract import text_hash
    from watchdog.store import sha256
    from watchdog.validate import DEFAULT_SIGNATURES, BlockSignature, validate

    try:
        extracted = read_capture(target, capture)
    except ExtractError as exc:
        return Rejection("unreadable", f"could not read the page: {exc}"), None
    document = Document(
        target.id, extracted.text, text_hash(extracted.text), sha256(capture.body), extracted.alternative
    )
    if extracted.alternative is not None:
        log.info("%s: `select` found no text; read with alternative %d", target.id, extracted.alternative)
    if document.text_hash == accepted_hash and 200 <= capture.status < 300:
        # the very text of the current, already validated version (the common case: page noise only): the
        # text-based checks cannot say anything new, so they are skipped
        return None, document
    signatures = DEFAULT_SIGNATURES + tuple(BlockSignature(c, p) for c, p in config.validate.block_signatures)
    rejection = validate(
        capture,
        extracted,
        target=target,
        previous_length=previous_length,
        signatures=signatures,
        max_growth=config.validate.max_growth,
    )
    return rejection, document


def read_capture(target: Target, capture: Capture) -> Extracted:
    """The text of a capture as the target reads it: a feed's items, or a page through its selector sets."""
    if target.kind == "feed":
        return extract_feed(capture.body, url=capture.final_url)
    return extract(
        capture.body,
        content_type=capture.header("content-type"),
        url=capture.final_url,
        select=target.select,
        remove=target.remove,
        keep_links=target.keep_links,
        alternatives=target.alternatives,
        watch_links=target.watch_links,
    )


# --------------------------------------------------------------------------- outcomes


def _unchanged(
    target: Target, ctx: Context, *, current_id: str | None, at: datetime, capture: Capture | None = None
) -> Outcome:
    store = ctx.store
    with store.transaction():
        if current_id:
            store.touch_version(current_id, at)
        if capture is not None:
            _remember_validators(target, ctx, capture)
        recovered = _note_success(target, ctx, at=at, status="unchanged")
    return Outcome(target.id, "unchanged", version=current_id, alerted=recovered)


def _archive_version(target: Target, ctx: Context, accepted: Accepted) -> Version:
    """Inside the caller's transaction: the raw snapshot, the new version, the server's validators."""
    capture, store = accepted.capture, ctx.store
    snapshot_id = store.add_snapshot(capture, fingerprint=config_fingerprint(target), outcome="accepted")
    _remember_validators(target, ctx, capture)
    return store.add_version(
        target.id,
        text=accepted.document.text,
        snapshot_id=snapshot_id,
        seen_at=capture.fetched_at,
        technical=False,
    )


def _write_blobs_first(ctx: Context, accepted: Accepted) -> None:
    """Write (and fsync) the blobs before the transaction: content-addressed, so the puts inside it only
    find them there. The store's lock is then held for the rows alone, which keeps other threads' commits,
    and the window in which a crash can duplicate an alert (send, then commit "delivered"), short."""
    ctx.store.blobs.put(accepted.capture.body)
    ctx.store.put_text(accepted.document.text)


def _remember_validators(target: Target, ctx: Context, capture: Capture) -> None:
    ctx.store.set_validators(
        target.id, etag=capture.header("etag"), last_modified=capture.header("last-modified")
    )


def _baseline(target: Target, ctx: Context, accepted: Accepted) -> Outcome:
    """The first accepted text: a version, no change, no alert."""
    store = ctx.store
    capture = accepted.capture
    _write_blobs_first(ctx, accepted)
    with store.transaction():
        version = _archive_version(target, ctx, accepted)
        recovered = _note_success(target, ctx, at=capture.fetched_at, status="new")
    return Outcome(target.id, "new", version=version.id, alerted=recovered)


def _new_text(target: Target, ctx: Context, accepted: Accepted, *, current_id: str) -> Outcome:
    confirmed = _confirm(target, ctx, accepted)
    if isinstance(confirmed, Outcome):
        return confirmed
    earlier = _recent_version_with_text(target, ctx, confirmed)
    if earlier is not None:
        return _revert(target, ctx, confirmed, current_id=current_id, earlier_id=earlier)
    return _change(target, ctx, confirmed, current_id=current_id)


def _confirm(target: Target, ctx: Context, accepted: Accepted) -> Accepted | Outcome:
    """Re-fetch after confirm_delay: a new text counts only if it comes back identical (no flicker alerts)."""
    delay = target.confirm_delay.total_seconds()
    if delay <= 0:
        return accepted
    ctx.sleep(delay)
    again = _capture(target, ctx, None)
    if isinstance(again, Outcome):
        return again
    if isinstance(again, NotModified):
        return accepted  # unreachable without validators; a 304 means "what you just saw"
    second = _read(
        target,
        ctx,
        again,
        previous_length=len(accepted.document.text),
        accepted_hash=accepted.document.text_hash,
    )
    if isinstance(second, Outcome):
        return second
    if second.document.text_hash != accepted.document.text_hash:
        log.info("%s: new text not confirmed on re-fetch; keeping the current version", target.id)
        current = ctx.store.current_version(target.id)
        return _unchanged(target, ctx, current_id=current.id if current else None, at=again.fetched_at)
    return second


def _recent_version_with_text(target: Target, ctx: Context, accepted: Accepted) -> str | None:
    """An earlier version with this exact text, seen within the revert window (an A->B->A flip)."""
    window_start = accepted.capture.fetched_at - ctx.config.alerts.revert_window
    for version in ctx.store.versions_with_text(target.id, accepted.document.text_hash):
        if version.last_seen >= window_start:
            return version.id
    return None


def _revert(target: Target, ctx: Context, accepted: Accepted, *, current_id: str, earlier_id: str) -> Outcome:
    """Back to a text seen recently: recorded as "reverted to X", never alerted again."""
    store = ctx.store
    at = accepted.capture.fetched_at
    with store.transaction():
        store.set_current(target.id, earlier_id)
        store.touch_version(earlier_id, at)
        change = store.add_change(
            target.id,
            from_version=current_id,
            to_version=earlier_id,
            at=at,
            kind="revert",
            topics=(),
            severity="none",
            summary=f"reverted to {earlier_id}",
            reverted_to=earlier_id,
        )
        _note_success(target, ctx, at=at, status="changed")
    log.info("%s: text reverted to %s (%s)", target.id, earlier_id, change.id)
    return Outcome(target.id, "changed", version=earlier_id, change=change.id, extra={"kind": "revert"})


def _change(target: Target, ctx: Context, accepted: Accepted, *, current_id: str) -> Outcome:
    store = ctx.store
    before_hash = store.version(current_id).text_hash
    text_diff = _diff(ctx, before_hash, accepted.document)
    classification = _classify(target, ctx, text_diff)
    classification = _watched_links(target, ctx, classification, before_hash, accepted, text_diff)
    already_alerted = store.text_was_alerted(target.id, accepted.document.text_hash)
    capture = accepted.capture
    _write_blobs_first(ctx, accepted)
    with store.transaction():
        version = _archive_version(target, ctx, accepted)
        change = _record_change(
            target, ctx, text_diff, classification, current_id, version.id, capture.fetched_at
        )
        queued = (
            0 if already_alerted else _owe_change_alert(target, ctx, change.id, text_diff, classification)
        )
        if queued:
            store.set_alerted(change.id)
        recovered = _note_success(target, ctx, at=capture.fetched_at, status="changed")
    followed = follow_new_items(
        ctx.config, target, accepted.document.text, classification.matches, capture.fetched_at
    )
    return Outcome(
        target.id,
        "changed",
        version=version.id,
        change=change.id,
        topics=classification.topics,
        alerted=bool(queued) or recovered,
        extra={"followed": list(followed)} if followed else {},
    )


# `check` publishes right after its cycle, and publishing diffs every new change again (site page, feed
# entries) through its DiffCache: the same diff_texts, keyed by the two text hashes and the diff code,
# kept on disk under the storage dir. A policy's word-level diff is the costliest step of a check that
# finds a change, so the pipeline computes it through that cache: publishing then reads it back (JSON,
# lossless) instead of computing it a second time. A cached entry (the same two texts, the same diff
# code) is the very diff diff_texts would return; a missing or damaged one is computed.


def _diff(ctx: Context, before_hash: str, after: Document) -> TextDiff:
    from watchdog.publish.archive import DiffCache, diff_cache_dir

    def text(digest: str) -> str:
        return after.text if digest == after.text_hash else ctx.store.get_text(digest)

    cache = DiffCache(texts=text, directory=diff_cache_dir(ctx.config.storage_dir))
    return cache.diff(before_hash, after.text_hash)


def _classify(target: Target, ctx: Context, text_diff: TextDiff) -> Classification:
    from watchdog.classify import classify

    classification = classify(text_diff, ctx.topics, only=target.topics)
    if target.kind != "feed":
        return classification
    # A feed's news is its new items: an item leaving the feed's window (a deleted block) is not.
    kept = tuple(m for m in classification.matches if m.side != "deleted")
    return with_evidence(Classification((), (), "none"), kept, {t.id: t.severity for t in ctx.config.topics})


def _watched_links(
    target: Target,
    ctx: Context,
    classification: Classification,
    before_hash: str,
    accepted: Accepted,
    text_diff: TextDiff,
) -> Classification:
    """Add the `opt-out` evidence of watched links that disappeared, appeared or changed target."""
    watch = LinkWatch(target.watch_links)
    if not watch:
        return classification
    before = ctx.store.get_text(before_hash)
    changes = link_changes(before, accepted.document.text, watch)
    if not changes:
        return classification
    severity_of = {t.id: t.severity for t in ctx.config.topics}
    return with_evidence(classification, link_evidence(changes, text_diff), severity_of)


def _record_change(
    target: Target,
    ctx: Context,
    text_diff: TextDiff,
    classification: Classification,
    from_id: str,
    to_id: str,
    at: datetime,
) -> Any:
    from watchdog.render import summary

    view = _view(
        target,
        ctx,
        change_id="(new)",
        from_id=from_id,
        to_id=to_id,
        at=at,
        text_diff=text_diff,
        classification=classification,
    )
    evidence = [
        {
            "topic": m.topic_id,
            "pattern": m.pattern,
            "side": m.side,
            "sentence": m.sentence,
            "hunk": m.hunk_index,
        }
        for m in classification.matches
    ]
    return ctx.store.add_change(
        target.id,
        from_version=from_id,
        to_version=to_id,
        at=at,
        kind="change",
        topics=classification.topics,
        severity=classification.severity,
        summary=summary(view),
        evidence=evidence,
    )


def _view(
    target: Target,
    ctx: Context,
    *,
    change_id: str,
    from_id: str,
    to_id: str,
    at: datetime,
    text_diff: TextDiff,
    classification: Classification,
) -> Any:
    from watchdog.render import ChangeView

    return ChangeView(
        target_id=target.id,
        target_name=target.name,
        url=target.url,
        change_id=change_id,
        from_version=from_id,
        to_version=to_id,
        detected_at=at,
        diff=text_diff,
        classification=classification,
        archive_url=archive_link(ctx.config, change_id),
        topics=tuple(ctx.config.topics),
    )


def archive_link(config: Config, change_id: str) -> str | None:
    base = config.alerts.archive_url
    return f"{base.rstrip('/')}/changes/{change_id}.html" if base else None


# --------------------------------------------------------------------------- alerts


def _owe_change_alert(
    target: Target, ctx: Context, change_id: str, text_diff: TextDiff, classification: Classification
) -> int:
    from watchdog.render import alert_title, render_diff_only, render_html, render_markdown, render_text

    severities = sorted({t.severity for t in ctx.config.topics if t.id in classification.topics})
    unrendered = Alert(
        event_id=change_id,
        kind="change",
        target_id=target.id,
        title="",
        text="",
        markdown="",
        html="",
        tags=(*classification.topics, *severities, target.id),
        topic_change=bool(classification.topics),
    )
    # Routing reads the kind, tags and topic_change only: the four renderings of a big diff are made
    # only for an alert that some channel takes (a change without topics mostly goes nowhere).
    keys = _channel_keys(target, ctx, unrendered)
    if not keys:
        return 0
    change = ctx.store.change(change_id)
    view = _view(
        target,
        ctx,
        change_id=change_id,
        from_id=change.from_version,
        to_id=change.to_version,
        at=change.detected_at,
        text_diff=text_diff,
        classification=classification,
    )
    alert = replace(
        unrendered,
        title=alert_title(view),
        text=render_text(view),
        markdown=render_markdown(view),
        html=render_html(view),
        attachment_name=f"{change_id.replace('@', '-')}.diff.txt",
        attachment=render_diff_only(text_diff, fmt="text").encode("utf-8"),
    )
    return ctx.store.enqueue(alert, keys, now=ctx.clock())


def _owe(target: Target, ctx: Context, alert: Alert) -> int:
    """Queue the alert for every channel it routes to, inside the caller's transaction."""
    keys = _channel_keys(target, ctx, alert)
    return ctx.store.enqueue(alert, keys, now=ctx.clock()) if keys else 0


def _channel_keys(target: Target, ctx: Context, alert: Alert) -> list[str]:
    from watchdog.notify import route

    return [c.key for c in ctx.config.channels if route(alert, c, target_notify=target.notify)]


def _status_alert(target: Target, *, event_id: str, kind: str, title: str, body: str) -> Alert:
    from html import escape

    return Alert(
        event_id=event_id,
        kind=kind,
        target_id=target.id,
        title=title,
        text=body,
        markdown=body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
        html=f"<p>{escape(body)}</p>",
        tags=("failing", target.id),
    )


def _record_failure(
    target: Target,
    ctx: Context,
    *,
    status: Status,
    reason: str,
    code: str | None = None,
    capture: Capture | None = None,
    text_hash: str | None = None,
) -> Outcome:
    """An error or a rejection: keep the evidence, count it, alert once after N in a row."""
    store = ctx.store
    at = capture.fetched_at if capture else ctx.clock()
    with store.transaction():
        if capture is not None:
            store.add_snapshot(
                capture,
                fingerprint=config_fingerprint(target),
                outcome="rejected",
                reason_code=code,
                reason=reason,
                text_hash=text_hash,
            )
        failures = store.record_check(target.id, at=at, status=status, reason=reason, failed=True)
        advise = _selector_advice(target, ctx, capture) if code == "no-match" and capture else None
        alerted = _maybe_failing_alert(target, ctx, failures=failures, reason=reason, at=at, advise=advise)
    log.warning("%s: %s: %s", target.id, status, reason)
    current = store.current_version(target.id)
    return Outcome(
        target.id,
        status,
        version=current.id if current else None,
        reason=reason,
        alerted=alerted,
        extra={"code": code} if code else {},
    )


def _selector_advice(target: Target, ctx: Context, capture: Capture) -> Callable[[], str | None]:
    """For a `no-match` failure alert: selectors that reproduce the last version (computed only if sent)."""

    def advise() -> str | None:
        current = ctx.store.current_version(target.id)
        if current is None:
            return None
        return selector_advice(target, capture, ctx.store.version_text(current.id), current.id)

    return advise


def _maybe_failing_alert(
    target: Target,
    ctx: Context,
    *,
    failures: int,
    reason: str,
    at: datetime,
    advise: Callable[[], str | None] | None = None,
) -> bool:
    state = ctx.store.target_state(target.id)
    if state is None or state.failing or failures < ctx.config.alerts.failure_threshold:
        return False
    ctx.store.set_failing(target.id, True)
    event = ctx.store.add_event(target.id, kind="failing", at=at, reason=reason)
    title = f"[{target.name}] can no longer read {target.name}: {reason}"
    body = (
        f"policy-watchdog can no longer read {target.name} ({target.url}) "
        f"after {failures} attempts in a row: {reason}"
    )
    proposal = advise() if advise else None
    body += f"\n\n{proposal}" if proposal else ""
    return (
        _owe(target, ctx, _status_alert(target, event_id=event.id, kind="failing", title=title, body=body))
        > 0
    )


def _note_success(target: Target, ctx: Context, *, at: datetime, status: str) -> bool:
    """Reset the failure count; after a failure alert, say once that the target recovered."""
    state: TargetState | None = ctx.store.target_state(target.id)
    ctx.store.record_check(target.id, at=at, status=status, reason=None, failed=False)
    if state is None or not state.failing:
        return False
    ctx.store.set_failing(target.id, False)
    event = ctx.store.add_event(target.id, kind="recovered", at=at, reason="capture accepted again")
    title = f"[{target.name}] recovered: readable again"
    body = f"policy-watchdog can read {target.name} ({target.url}) again."
    return (
        _owe(target, ctx, _status_alert(target, event_id=event.id, kind="recovered", title=title, body=body))
        > 0
    )


# --------------------------------------------------------------------------- one cycle


def run_cycle(targets: Sequence[Target], ctx: Context) -> list[Outcome]:
    """`check`: each target in turn, then deliver what is owed (including earlier cycles' leftovers)."""
    ctx.store.sync_targets(targets)
    outcomes = [check_target(target, ctx) for target in targets]
    deliver(ctx)
    return outcomes


def deliver(ctx: Context) -> None:
    """Send every due alert in the outbox; a channel that is down keeps its alerts for the next cycle."""
    if not ctx.config.channels:
        return
    from watchdog.notify import Notifier, deliver_pending

    if ctx.notifier is None:
        ctx.notifier = Notifier(ctx.config.channels)
    # every check run and every daemon delivery pass retries all that is still owed (CONTRACT.md)
    report = deliver_pending(
        ctx.store, ctx.notifier, ctx.config.channels, now=ctx.clock(), ignore_backoff=True
    )
    log.debug("deliveries: %s", report)
