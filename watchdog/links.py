"""Watched links (`watch_links`): a link that appears, disappears or changes target is news on its own.

fetch -> extract (keeps watched link targets) -> validate -> store -> diff -> **classify (+ watched links)**

Why links need their own rule. The objection forms Meta's policies link to ("You have the right to
*object*", https://www.facebook.com/help/contact/...) sit behind a login, so the forms themselves cannot be
watched; whether the policies still link to them is what users want to know. But link targets are kept out
of the compared text by default (`keep_links = false`): tracking parameters and rotating signed URLs would
otherwise make every capture a "change". So a link that silently loses its target, or points to another
form, would change nothing in the text.

The design: the extractor keeps the canonical target of a *watched* link in the text, right after the link
text (`object <https://www.facebook.com/help/contact/367438723733209>`), exactly as `keep_links` does for
every link, and only for the links matching `watch_links` (see extract.LinkWatch). The target is recorded
with each version as part of its text, so it is archived, hashed, diffed, searchable, re-derivable from the
raw snapshot by `reextract`, and needs no storage of its own; it survives page noise because it is the
canonical URL (tracking parameters, redirect wrappers and fragments removed). Links that are not watched
stay out of the text, as before.

Comparing two versions, `link_changes` lists the watched links that disappeared, appeared or changed target
(the same sentence now pointing elsewhere); `link_evidence` turns them into `opt-out` topic matches that
quote the sentence around the link, so such a change is a `change` under `opt-out` even when no word of
the sentence changed. Adding `watch_links` to a target changes its text: run `policy-watchdog reextract
TARGET` once afterwards, so that the new annotations are not taken for a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from watchdog.extract import LinkWatch, link_key
from watchdog.messages import Classification, Hunk, TextDiff, TopicMatch
from watchdog.patterns import lazy

OPT_OUT: Final = "opt-out"
LinkEvent = Literal["appeared", "disappeared", "retargeted"]

# `<https://...>` as the extractor writes a kept link target (angle brackets cannot occur in a URL).
_TARGET: Final = lazy(r" ?<(https?://[^<>\s]+)>")
_SENTENCE_END: Final = lazy(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class LinkUse:
    """A watched link in a text: its canonical target and the sentence it sits in (targets stripped).
    Two uses are the same when their sentence and their target's key (extract.link_key) are: a link
    that only gains `www.` or a trailing slash did not change target."""

    url: str = field(compare=False)
    sentence: str
    key: str = ""


@dataclass(frozen=True, slots=True)
class LinkChange:
    event: LinkEvent
    url: str  # the target now (the old one for "disappeared")
    sentence: str
    old_url: str | None = None  # for "retargeted"


def link_uses(text: str, watch: LinkWatch) -> tuple[LinkUse, ...]:
    """Every watched link target in `text`, in order, with its sentence."""
    uses = []
    for line in text.splitlines():
        for match in _TARGET.finditer(line):
            if watch.matches(match.group(1)):
                url = match.group(1)
                uses.append(LinkUse(url, _sentence_at(line, match.start()), link_key(url)))
    return tuple(uses)


def _sentence_at(line: str, position: int) -> str:
    """The sentence of `line` that holds `position`, with every link target removed."""
    start = 0
    for boundary in _SENTENCE_END.finditer(line):
        if boundary.start() >= position:
            break
        start = boundary.end()
    end_match = _SENTENCE_END.search(line, position)
    sentence = line[start : end_match.start() if end_match else len(line)]
    return _TARGET.sub("", sentence).strip().lstrip("#- ").strip()


def link_changes(before: str, after: str, watch: LinkWatch) -> tuple[LinkChange, ...]:
    """Watched links that disappeared, appeared or changed target between two texts.

    Uses are compared as (target, sentence) multisets; a target that left a sentence while another entered
    the very same sentence is one "retargeted" change, not two.
    """
    if not watch:
        return ()
    came = list(link_uses(after, watch))
    gone = []
    for use in link_uses(before, watch):
        if use in came:
            came.remove(use)  # unchanged: the same target in the same sentence
        else:
            gone.append(use)
    changes: list[LinkChange] = []
    for use in gone:
        partner = next((c for c in came if c.sentence == use.sentence), None)
        if partner is not None:
            came.remove(partner)
            changes.append(LinkChange("retargeted", partner.url, use.sentence, old_url=use.url))
        else:
            changes.append(LinkChange("disappeared", use.url, use.sentence))
    changes += [LinkChange("appeared", use.url, use.sentence) for use in came]
    return tuple(changes)


def link_evidence(changes: Sequence[LinkChange], text_diff: TextDiff) -> tuple[TopicMatch, ...]:
    """One `opt-out` match per change (two for a retargeting: the old target deleted, the new inserted)."""
    matches = []
    for change in changes:
        if change.event in ("disappeared", "retargeted"):
            old = change.old_url or change.url
            matches.append(_match(f"link removed: {old}", "deleted", change.sentence, old, text_diff))
        if change.event in ("appeared", "retargeted"):
            matches.append(
                _match(f"link added: {change.url}", "inserted", change.sentence, change.url, text_diff)
            )
    return tuple(matches)


def _match(
    pattern: str, side: Literal["inserted", "deleted"], sentence: str, url: str, diff: TextDiff
) -> TopicMatch:
    return TopicMatch(OPT_OUT, pattern, side, sentence, _hunk_with(diff.hunks, url, side))


def _hunk_with(hunks: Sequence[Hunk], url: str, side: str) -> int:
    """Index of the hunk whose old (deleted) or new (inserted) lines hold the link target."""
    for index, hunk in enumerate(hunks):
        if url in (hunk.before if side == "deleted" else hunk.after):
            return index
    return 0


def with_evidence(
    classification: Classification, matches: Sequence[TopicMatch], severity_of: Mapping[str, str]
) -> Classification:
    """`classification` plus `matches` (e.g. the watched-link ones), its topics and severity updated."""
    if not matches:
        return classification
    topics = set(classification.topics) | {m.topic_id for m in matches}
    rank = {"high": 3, "medium": 2, "low": 1}
    ordered = tuple(sorted(topics, key=lambda t: (-rank.get(severity_of.get(t, "low"), 0), t)))
    severity = max((severity_of.get(t, "low") for t in ordered), key=lambda s: rank.get(s, 0))
    return Classification(ordered, (*classification.matches, *matches), severity)
