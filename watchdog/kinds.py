"""Change kinds: what a new version of a page *is*, and who hears about it (part of stage 6, classify).

fetch -> extract -> validate -> store -> diff -> **classify** (topics, kind) -> render -> notify/publish

A confirmed new text is one of (CONTRACT.md, `changes --json` "kind"; TEAM.md agreement 5):

==========  ===================================================  ==========================================
kind        what it is                                           who is told
==========  ===================================================  ==========================================
change      Meta's wording changed                               channels routing its topics (as always);
                                                                 `notify = "all"` ones also without topic
editorial   only meaning-preserving edits (normalise.py: locale  only `notify = "all"` channels
            spellings, dates, typography, punctuation, headings
            re-rendered, link labels, update notices)
capture     the capture changed shape, not the wording: a text   only channels tagged `failing`
            accepted after repeated size rejections, or content  (operators), worded as a capture problem
            the archive already holds coming back (accordions
            captured again)
revert      back to a text seen recently (below), or to the      nobody; but if the change it undoes was
            meaning of one (every edit between them is one       pushed, each channel that got it gets one
            that keeps the meaning: `same_meaning`)              correction, once
==========  ===================================================  ==========================================

All kinds are archived and published with their kind.

**Recently seen.** A version is recently seen when a check found its text (or made it current again) no
longer ago than `[alerts] revert_window` (default 30 days) before the new capture: its `last_seen`. A page
that alternates between variants (an A/B test, a regional copy) refreshes each variant's `last_seen` at
every flip, so however long it flaps, only the first appearance of each variant is news; a text not seen
within the window is judged afresh.

**Flapping.** A return to a recently seen text that leaves a text which had itself come back by a return
within the window (A -> B -> A -> B) means the page flips between variants: the operators (channels tagged
`failing`) get one note per pair of variants (`flap_note`), the readers nothing more.

**Restored content.** A capture that only *adds* text, most of it (`RESTORED`, 75% of the added prose)
already in one of the target's recent versions, and deletes nothing of meaning, is the page showing again
what a capture had missed (a collapsed accordion, annotations): kind `capture`. The sentences are compared
by `normalise.meaning_key`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

from watchdog.diff import split_sentences
from watchdog.messages import Classification, TextDiff
from watchdog.models import ChangeKind
from watchdog.normalise import editorial_reason, is_chrome_line, is_heading_line, meaning_key

__all__ = [
    "RESTORED",
    "change_kind",
    "correction_text",
    "flap_note",
    "restored_share",
    "same_meaning",
]

RESTORED: Final = 0.75  # share of the added prose that must be known for a "restored content" capture


def change_kind(
    diff: TextDiff,
    classification: Classification,
    *,
    shape_problem: str | None,
    earlier_texts: Callable[[], Iterable[str]],
) -> ChangeKind:
    """The kind of a confirmed new text (module docstring). `shape_problem`: why the capture was accepted
    although it failed validation before (persistent size rejections); `earlier_texts`: the target's recent
    versions before the current one (read only when the diff only adds)."""
    if shape_problem is not None:
        return "capture"
    if classification.kind == "editorial":
        return "editorial"
    if _adds_only(diff, classification) and restored_share(diff, earlier_texts()) >= RESTORED:
        return "capture"
    return "change"


def _adds_only(diff: TextDiff, classification: Classification) -> bool:
    """Every meaningful hunk only inserts: nothing of the old text lost its meaning."""
    editorial = classification.editorial or (None,) * len(diff.hunks)
    for hunk, reason in zip(diff.hunks, editorial, strict=True):
        if reason is not None:
            continue
        kept = {meaning_key(s) for s in _prose(hunk.after)}
        if any(meaning_key(s) not in kept and not _furniture(s) for s in _prose(hunk.before)):
            return False
    return True


def restored_share(diff: TextDiff, earlier_texts: Iterable[str]) -> float:
    """Share of the prose the diff adds (by characters) that the earlier texts already held."""
    added = [s for hunk in diff.hunks for s in _added(hunk.before, hunk.after)]
    if not added:
        return 0.0
    known: set[str] = set()
    for text in earlier_texts:
        known.update(meaning_key(s) for s in _prose(text))
    total = sum(map(len, added))
    return sum(len(s) for s in added if meaning_key(s) in known) / total


def same_meaning(diff: TextDiff) -> str | None:
    """The categories of the edits between two texts when every one keeps the meaning (normalise.
    editorial_reason: the editorial rule of `change_kind`, applied to a whole version), else None."""
    reasons = [editorial_reason(hunk.before, hunk.after) for hunk in diff.hunks]
    if any(reason is None for reason in reasons):
        return None
    return (
        ", ".join(dict.fromkeys(r for reason in reasons if reason for r in reason.split(", ")))
        or "whitespace"
    )


def _prose(text: str) -> list[str]:
    """Sentences of the text's prose lines (headings and chrome left out)."""
    lines = "\n".join(
        line for line in text.split("\n") if not is_heading_line(line) and not is_chrome_line(line)
    )
    return [lines[a:b] for a, b in split_sentences(lines)]


def _added(before: str, after: str) -> list[str]:
    old = {meaning_key(s) for s in _prose(before)}
    return [s for s in _prose(after) if meaning_key(s) not in old]


def _furniture(sentence: str) -> bool:
    """An update notice or a link label: dropping it loses nothing (normalise's page-chrome rules)."""
    return editorial_reason(sentence, "") is not None


def correction_text(*, target_name: str, back_to: str, announced_at: datetime, now: datetime) -> str:
    """One line: "withdrawn: the page is back to v3; the change announced at 14:05 UTC lasted 6 hours"."""
    return (
        f"{target_name}: withdrawn: the page is back to {back_to}; the change announced at "
        f"{announced_at:%Y-%m-%d %H:%M} UTC lasted {_duration(now - announced_at)}"
    )


def flap_note(*, target_name: str, variants: tuple[str, str], returns: int, window: timedelta) -> str:
    """The operators' note on a page flipping between two variants (module docstring: Flapping)."""
    first, second = variants
    return (
        f"{target_name} flips between the texts of {first} and {second} ({returns} returns to an earlier "
        f"text within {_duration(window)}): an A/B test, a regional variant or a load balancer serving two "
        f"copies. Each further flip between texts seen within the last {_duration(window)} is archived as a "
        f"revert and announced to nobody; a new text is judged as usual (a new wording is announced). "
        f"Compare them with `policy-watchdog diff {first} {second}`."
    )


def _duration(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
