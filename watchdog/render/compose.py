"""Render, step 2: a change message -> the story every format tells (format-neutral, computed once).

    ChangeMessage (diff + classification + links) -> **compose** -> Story -> text | markdown | html | json

- The **headline** says what happened and where, quoting the most significant changed sentence:
  `[Meta Privacy Policy] Added under "Legitimate interests": "Develop and improve artificial intelligence
  technology (also called AI at Meta)…" (+2 more) · ai-training, legal-basis`. The same string is the email
  subject, the Slack title, the feed entry's title and the change page's heading.
- **Passages**: the hunks a reader needs, topic-matched ones first (most severe topic first), then in page
  order; each names its section and shows the changed sentences before and after with the changed words
  marked. Meaning-preserving edits (punctuation, spelling variants, case...; `editorial`, the shared
  normaliser's judgement) are not shown: they are counted in one folded line.
- A **huge** hunk (more than HUGE changed characters: a section rewritten) is summarised: its size before
  and after and its first new sentences; the full text is on the change page, one click away.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from typing import Literal, TypeVar
from urllib.parse import quote

from watchdog.diff import DELETE, EQUAL, INSERT, changed_region, pair_sentences
from watchdog.messages import ChangeMessage, DigestItem, DigestMessage, Hunk, TopicMatch
from watchdog.models import SEVERITY_RANK, Topic
from watchdog.normalise import editorial_reason, meaning_key
from watchdog.render.clean import clip, one_line

Editorial = Callable[[str, str], str | None]  # (before, after) -> why the edit keeps the meaning, or None

HUGE = 3_000  # changed characters above which a hunk is summarised, not quoted
HEADLINE_MAX = 200  # characters: an e-mail subject, a chat title, a feed entry's title
QUOTE_MAX = 110  # characters of the headline's quote, at most
QUOTE_MIN = 50  # ... and at least, when the section's name and the tags take the rest
WHERE_MAX = 60  # characters of the headline's section name
SENTENCE_MAX = 400  # longer sentences (run-on table cells) are shown around their change only
SENTENCE_CONTEXT = 120  # characters kept on each side of the change when a sentence is clipped
SENTENCE_SHOWN = 800  # at most this much of one sentence, however much of it changed
EXCERPT_SENTENCES = 2  # new sentences quoted from a huge hunk


@dataclass(frozen=True, slots=True)
class Run:
    text: str
    changed: bool


@dataclass(frozen=True, slots=True)
class Line:
    """One sentence of a passage: "-" as it was, "+" as it is; changed words are runs with changed=True."""

    sign: Literal["-", "+"]
    runs: tuple[Run, ...]

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


@dataclass(frozen=True, slots=True)
class Passage:
    """A hunk as shown: where it is, which topics it touches, its sentences before and after."""

    index: int  # position of the hunk in the diff (the change page's "#hunk-<index>")
    where: tuple[str, ...]  # heading path, with the row label and column inside a table
    anchor: str  # the section's id on the version page ("" before the first heading)
    topics: tuple[str, ...]
    verb: Literal["Added", "Removed", "Changed"]
    lines: tuple[Line, ...]
    summary: str | None = None  # a huge hunk: "rewritten: 44,000 → 12,000 characters"
    deleted_side: bool = False  # the passage exists only in the old version (link to the old page)
    evidence: tuple[str, ...] = ()  # the sentences a topic matched, most severe topic first


@dataclass(frozen=True, slots=True)
class Links:
    """Where the archive shows a change: its page, the version pages (sections are anchors on them)."""

    change: str | None = None
    after: str | None = None
    before: str | None = None

    @classmethod
    def published(cls, base: str | None, message: ChangeMessage) -> Links:
        """Absolute links under the archive's public URL (`[alerts] archive_url`), when it is set."""
        if not base:
            return cls()
        root = base.rstrip("/")
        return cls(
            change=f"{root}/{page_path('changes', message.event_id)}",
            after=f"{root}/{page_path('versions', message.to_version)}",
            before=f"{root}/{page_path('versions', message.from_version)}",
        )

    def section(self, passage: Passage) -> str | None:
        page = self.before if passage.deleted_side else self.after
        if page is None:
            return None
        return f"{page}#{passage.anchor}" if passage.anchor else page

    def full_text(self, passage: Passage) -> str | None:
        """The whole hunk, on the change page (its full diff)."""
        return f"{self.change}#full-{passage.index}" if self.change else None


def page_path(folder: str, record_id: str) -> str:
    """The archive's permalink of a record, relative to the site root."""
    return f"{folder}/{quote(record_id, safe='@')}.html"


@dataclass(frozen=True, slots=True)
class Story:
    message: ChangeMessage
    headline: str
    passages: tuple[Passage, ...]  # the meaningful hunks, most important first
    folded: tuple[tuple[str, int], ...]  # (why it keeps the meaning, how many hunks), not shown
    topics: tuple[Topic, ...]  # the topics touched, most severe first
    inserted: int
    deleted: int

    @property
    def size(self) -> str:
        return f"+{self.inserted:,} / −{self.deleted:,} characters"

    @property
    def folded_line(self) -> str | None:
        """ "and 4 edits that keep the meaning, not shown: 3 punctuation, 1 spelling" """
        if not self.folded:
            return None
        count = sum(n for _reason, n in self.folded)
        kinds = "; ".join(f"{n} {reason}" for reason, n in self.folded)
        edits = "an edit that keeps" if count == 1 else f"{count} edits that keep"
        return f"and {edits} the meaning, not shown: {kinds}"

    def sections(self) -> list[str]:
        """The heading path of every hunk of the diff, in hunk order (`changes --json` "sections")."""
        return [" › ".join(h.section) for h in self.message.diff.hunks]


def compose(message: ChangeMessage, *, editorial: Editorial | None = editorial_reason) -> Story:
    """The story of a change. `editorial` judges one edit (the shared normaliser, watchdog.normalise):
    the hunks it says keep the meaning are folded, not shown."""
    diff = message.diff
    topics = _topics(message)
    ranks = {t.id: i for i, t in enumerate(topics)}
    by_hunk: dict[int, list[TopicMatch]] = {}
    for match in sorted(
        message.classification.matches,
        key=lambda m: (ranks.get(m.topic_id, len(ranks)), m.side != "inserted"),
    ):
        by_hunk.setdefault(match.hunk_index, []).append(match)
    folded: Counter[str] = Counter()
    passages: list[tuple[tuple[int, int, int, int], Passage]] = []
    for index, hunk in enumerate(diff.hunks):
        found = by_hunk.get(index, [])
        hunk_topics = tuple(dict.fromkeys(m.topic_id for m in found if m.topic_id in ranks))
        worked_out = _shown_hunk(hunk, editorial)
        if isinstance(worked_out, str):  # the whole hunk keeps the meaning: why
            folded[worked_out] += 1
            continue
        shown_hunk, kept_meaning = worked_out
        folded.update(kept_meaning)
        if not shown_hunk.lines:
            continue
        passage = replace(
            shown_hunk, index=index, topics=hunk_topics, evidence=tuple(m.sentence for m in found)
        )
        best = min((ranks[t] for t in hunk_topics), default=len(ranks))
        changed = changed_size(hunk)
        # most severe topic first; then the passage touching more topics, then the bigger change
        passages.append(((best, -len(hunk_topics), -changed, index), passage))
    ordered = tuple(p for _key, p in sorted(passages, key=lambda item: item[0]))
    story = Story(
        message=message,
        headline="",
        passages=ordered,
        folded=tuple(sorted(folded.items(), key=lambda item: (-item[1], item[0]))),
        topics=topics,
        inserted=diff.inserted_chars,
        deleted=diff.deleted_chars,
    )
    return replace(story, headline=headline(story))


# A cycle's stories go over its hunks in the same order three times (the check's record, then the change
# pages and feeds, then the compare pages): an LRU cache smaller than one cycle's hunks misses on every one
# of a pass (bench_check's 12 changed policies have 542 hunks; with 512 kept, 696 of 1,626 look-ups missed).
# ~5 KB a hunk with its passage: 2,048 hold four such cycles in ~10 MB.
HUNKS_KEPT = 2_048


@lru_cache(maxsize=HUNKS_KEPT)
def _shown_hunk(hunk: Hunk, editorial: Editorial | None) -> str | tuple[Passage, tuple[str, ...]]:
    """Why the whole hunk keeps the meaning; else the hunk as shown (its index, topics and evidence left
    to the caller) and why the sentence pairs it leaves out keep theirs. Kept per hunk (its value) for the
    process: `check` tells a change's story to record its headline, then publishing tells it again for
    the change page, the feed entries and the compare page of the same two versions, and the sentence
    pairs and the normaliser's judgements are the bulk of it."""
    reason = editorial(hunk.before, hunk.after) if editorial is not None else None
    if reason is not None:
        return reason
    passage, kept_meaning = _passage(0, hunk, (), (), editorial)
    return passage, tuple(kept_meaning)


def _topics(message: ChangeMessage) -> tuple[Topic, ...]:
    known = {t.id: t for t in message.topics}
    found = [known.get(i, Topic(i, i, "low", ())) for i in message.classification.topics]
    return tuple(sorted(found, key=lambda t: (-SEVERITY_RANK.get(t.severity, 0), t.id)))


# --------------------------------------------------------------------------- the headline


def headline(story: Story) -> str:
    """`[name] <Verb> under "<section>": "<quoted sentence>" (+N more) · topic ids`, at most HEADLINE_MAX
    characters when it can be: the quote gives way first (never below QUOTE_MIN), then the section."""
    name = one_line(story.message.target_name)
    tags = ", ".join(t.id for t in story.topics)
    tail = f" · {tags}" if tags else ""
    if story.message.kind == "capture":  # the capture changed shape: never told as a wording change
        return f"[{name}] The capture changed, not the wording"
    if not story.passages:
        edits = "; ".join(f"{count} {reason}" for reason, count in story.folded)
        what = f"Only edits that keep the meaning ({edits})" if edits else "Wording changed"
        return f"[{name}] {what}{tail}"
    lead = story.passages[0]
    quoted = _quote(lead)
    where = clip(_where(lead, quoted), WHERE_MAX)
    more = f" (+{len(story.passages) - 1} more)" if len(story.passages) > 1 else ""
    place = f' under "{where}"' if where else ""
    fixed = len(f'[{name}] {lead.verb}{place}: ""{more}{tail}')
    room = max(QUOTE_MIN, min(QUOTE_MAX, HEADLINE_MAX - fixed))
    said = f': "{clip(quoted, room)}"' if quoted else ""
    return f"[{name}] {lead.verb}{place}{said}{more}{tail}"


def _quote(passage: Passage) -> str:
    """The sentence that says it: one a topic matched, among the new sentences (the old ones, for a
    removal), else the first of those sentences holding a change."""
    wanted = "-" if passage.verb == "Removed" else "+"
    lines = [line for line in passage.lines if line.sign == wanted] or list(passage.lines)
    texts = [one_line(line.text) for line in lines]
    for sentence in passage.evidence:  # a sentence a topic matched, if the passage shows it
        said = one_line(sentence)
        if any(said in line for line in texts):
            return said
    changed = [line for line in lines if any(run.changed for run in line.runs)]
    chosen = (changed or lines)[:1]
    return one_line(chosen[0].text).strip("… ") if chosen else ""


def _where(passage: Passage, quoted: str) -> str:
    """The deepest part of the section path that is not the quoted row itself."""
    for part in reversed(passage.where):
        stem = part.removesuffix("…")
        if stem and not quoted.startswith(stem):
            return one_line(part)
    return ""


# --------------------------------------------------------------------------- passages


def _passage(
    index: int, hunk: Hunk, topics: tuple[str, ...], evidence: tuple[str, ...], editorial: Editorial | None
) -> tuple[Passage, list[str]]:
    """The hunk as shown, and why the sentence pairs left out keep their meaning (one reason each)."""
    verb: Literal["Added", "Removed", "Changed"] = (
        "Added" if not hunk.before.strip() else "Removed" if not hunk.after.strip() else "Changed"
    )
    deleted_side = not hunk.after.strip()
    old, new = _sentence_pairs(hunk)
    old, new, reasons = _without_same_meaning(old, new, editorial)
    if reasons and verb == "Changed" and (not old or not new):
        verb = "Added" if new else "Removed"
    if changed_size(hunk) > HUGE:
        lines, summary = _excerpt(new or old, "+" if new else "-"), _huge(hunk, verb)
    else:
        lines = tuple([_clip(Line("-", r)) for r in old] + [_clip(Line("+", r)) for r in new])
        summary = None
    passage = Passage(index, hunk.section, hunk.anchor, topics, verb, lines, summary, deleted_side, evidence)
    return passage, reasons


def _without_same_meaning(
    old: list[tuple[Run, ...]], new: list[tuple[Run, ...]], editorial: Editorial | None
) -> tuple[list[tuple[Run, ...]], list[tuple[Run, ...]], list[str]]:
    """The old and new sentences without the pairs that say the same thing (a full stop added, a spelling
    variant...): a changed passage shows only the sentences whose meaning changed."""
    if editorial is None or not old or not new:
        return old, new, []
    # candidates by meaning key (one pass each side: a rewritten section has hundreds of sentences), then
    # the normaliser's own judgement of each candidate pair
    waiting: dict[str, list[int]] = {}
    texts_new = ["".join(r.text for r in runs) for runs in new]
    for j, text in enumerate(texts_new):
        waiting.setdefault(meaning_key(text), []).append(j)
    dropped_old, dropped_new, reasons = set(), set(), []
    for i, runs in enumerate(old):
        text = "".join(r.text for r in runs)
        for j in waiting.get(meaning_key(text), []):
            reason = editorial(text, texts_new[j]) if j not in dropped_new else None
            if reason is not None:
                dropped_old.add(i)
                dropped_new.add(j)
                reasons.append(reason)
                break
    kept_old = [runs for i, runs in enumerate(old) if i not in dropped_old]
    kept_new = [runs for j, runs in enumerate(new) if j not in dropped_new]
    return kept_old, kept_new, reasons


def changed_size(hunk: Hunk) -> int:
    """Characters that changed in a hunk. A block too big to word-diff counts its sentences that are on
    one side only, not the whole block: a few words edited in a long table row are few."""
    if any(s.op == EQUAL for s in hunk.segments) or not hunk.before or not hunk.after:
        return sum(len(s.text) for s in hunk.segments if s.op != EQUAL)
    # a coarse hunk's sentences are those found on one side only: what a reader has to read
    return sum(len(s) for s in (*hunk.sentences_before, *hunk.sentences_after))


def _huge(hunk: Hunk, verb: str) -> str:
    if verb == "Added":
        return f"added: {len(hunk.after):,} characters"
    if verb == "Removed":
        return f"removed: {len(hunk.before):,} characters"
    return f"rewritten: {len(hunk.before):,} → {len(hunk.after):,} characters"


def _excerpt(sentences: list[tuple[Run, ...]], sign: Literal["-", "+"]) -> tuple[Line, ...]:
    """The first sentences of a huge hunk (new ones; old ones for a removal), whole, as changed text."""
    return tuple(
        _clip(Line(sign, (Run("".join(r.text for r in runs), True),)))
        for runs in sentences[:EXCERPT_SENTENCES]
    )


def _sentence_pairs(hunk: Hunk) -> tuple[list[tuple[Run, ...]], list[tuple[Run, ...]]]:
    """The hunk's changed sentences, old and new, each as runs of unchanged/changed text."""
    if any(s.op == EQUAL for s in hunk.segments):
        old = _sentence_runs(hunk.before, _side_runs(hunk, DELETE), hunk.sentences_before)
        new = _sentence_runs(hunk.after, _side_runs(hunk, INSERT), hunk.sentences_after)
        return old, new
    return _paired_runs(hunk.sentences_before, hunk.sentences_after)


def _side_runs(hunk: Hunk, op: int) -> list[Run]:
    return [Run(s.text, s.op == op) for s in hunk.segments if s.op in (EQUAL, op)]


def _sentence_runs(block: str, runs: list[Run], sentences: Sequence[str]) -> list[tuple[Run, ...]]:
    found, cursor = [], 0
    starts = _starts(runs)
    for sentence in sentences:
        start = block.find(sentence, cursor)
        start = block.find(sentence) if start < 0 else start
        if start >= 0:  # always, as sentences are cut from the block; a guard, not a case
            cursor = start + len(sentence)
            found.append(_slice_runs(runs, start, cursor, starts))
    return found


def _starts(runs: Sequence[Run]) -> list[int]:
    """Where each run starts in the runs' text, then where the text ends."""
    return list(accumulate((len(run.text) for run in runs), initial=0))


def _slice_runs(
    runs: Sequence[Run], start: int, end: int, starts: Sequence[int] | None = None
) -> tuple[Run, ...]:
    """The runs' text from `start` to `end`, each piece with its run's `changed`. Begins at the run
    holding `start` (a bisection of `starts`, _starts(runs)): a hunk's sentences are sliced one by one
    from the same runs, and walking them all from the first for each sentence was quadratic."""
    starts = _starts(runs) if starts is None else starts
    out = []
    for index in range(max(bisect_right(starts, start) - 1, 0), len(runs)):
        pos, text = starts[index], runs[index].text
        if pos >= end:
            break
        lo, hi = max(start, pos), min(end, pos + len(text))
        if lo < hi:
            out.append(Run(text[lo - pos : hi - pos], runs[index].changed))
    return tuple(out)


def _paired_runs(
    old: Sequence[str], new: Sequence[str]
) -> tuple[list[tuple[Run, ...]], list[tuple[Run, ...]]]:
    """No word diff (new paragraph, or a block over the size cap): the whole sentence is the change,
    except in a long sentence found in both versions, where only what they do not share is."""
    old_runs: list[tuple[Run, ...]] = [(Run(s, True),) for s in old]
    new_runs: list[tuple[Run, ...]] = [(Run(s, True),) for s in new]
    for i, j in pair_sentences(old, new, longer_than=SENTENCE_MAX).items():  # only those get clipped
        prefix, suffix = changed_region(old[i], new[j])
        old_runs[i] = _three_runs(old[i], prefix, suffix)
        new_runs[j] = _three_runs(new[j], prefix, suffix)
    return old_runs, new_runs


def _three_runs(text: str, prefix: int, suffix: int) -> tuple[Run, ...]:
    parts = (Run(text[:prefix], False), Run(text[prefix : len(text) - suffix], True))
    return tuple(r for r in (*parts, Run(text[len(text) - suffix :], False)) if r.text)


def _clip(line: Line) -> Line:
    """A very long sentence is cut to its changed part and SENTENCE_CONTEXT characters around it."""
    runs, text = line.runs, line.text
    if len(text) <= SENTENCE_MAX:
        return line
    first, last = _changed_span(runs)
    start = _word_start(text, max(0, first - SENTENCE_CONTEXT))
    end = min(len(text), max(last + SENTENCE_CONTEXT, start + SENTENCE_MAX), start + SENTENCE_SHOWN)
    end = _word_end(text, start, end)
    clipped = _slice_runs(runs, start, end)
    head = (Run("…", False),) if start > 0 else ()
    tail = (Run("…", False),) if end < len(text) else ()
    return Line(line.sign, head + clipped + tail)


def _changed_span(runs: Sequence[Run]) -> tuple[int, int]:
    pos, first, last = 0, -1, 0
    for run in runs:
        if run.changed:
            first = pos if first < 0 else first
            last = pos + len(run.text)
        pos += len(run.text)
    return (first, last) if first >= 0 else (0, 0)


def _word_start(text: str, index: int) -> int:
    """`index`, moved forward to the start of a word (unless that is more than a word away)."""
    if index == 0:
        return 0
    space = text.find(" ", index, index + 40)
    return index if space < 0 else space + 1


def _word_end(text: str, start: int, index: int) -> int:
    """`index`, moved back to the end of a word (not before `start`)."""
    if index >= len(text):
        return len(text)
    space = text.rfind(" ", start + 1, index)
    return index if space < 0 else space


def summary(story: Story, *, width: int = 200) -> str:
    """One line for `changes` listings: the headline without the target's name."""
    line = story.headline
    prefix = f"[{one_line(story.message.target_name)}] "
    return clip(line.removeprefix(prefix), width)


# --------------------------------------------------------------------------- fitting a length limit


@dataclass(frozen=True, slots=True)
class Cut:
    """What a shortened body shows: the first `passages` passages whole, then `lines` lines of the next."""

    passages: int
    lines: int = 0


T = TypeVar("T")


def per_passage(render: Callable[[Passage], T]) -> Callable[[Passage], T]:
    """`render`, run once per passage: fit renders the whole story, then probes shorter cuts, whose
    passages are the whole story's first ones (the same objects). Kept by id, each value with its passage,
    which it holds alive (so no other passage can take its id)."""
    kept: dict[int, tuple[Passage, T]] = {}

    def once(passage: Passage) -> T:
        found = kept.get(id(passage))
        if found is None or found[0] is not passage:
            found = kept[id(passage)] = (passage, render(passage))
        return found[1]

    return once


def shown(story: Story, cut: Cut | None) -> tuple[Passage, ...]:
    if cut is None:
        return story.passages
    kept = story.passages[: cut.passages]
    if cut.lines and cut.passages < len(story.passages):
        partial = story.passages[cut.passages]
        kept += (replace(partial, lines=partial.lines[: cut.lines]),)
    return kept


def hidden(story: Story, cut: Cut | None) -> int:
    """Passages not shown at all under `cut`."""
    return len(story.passages) - len(shown(story, cut))


def _cuts(story: Story) -> list[Cut]:
    """Every cut, from the shortest body to the longest: monotone in length."""
    found = []
    for index, passage in enumerate(story.passages):
        found.append(Cut(index))
        found.extend(Cut(index, n) for n in range(1, len(passage.lines)))
    return found


def fit(
    story: Story,
    render: Callable[[Cut | None], str],
    fits: Callable[[str], bool],
    *,
    last_resort: str | Sequence[str],
) -> str:
    """The whole body when it fits, else the longest cut that does (whole passages first, then whole
    lines of the next one; the header and the pointer to the archive always stay), else the first of
    `last_resort` (shorter and shorter bodies that still link to the archive) that fits, else the last
    one cut to what fits: a long message is shortened, never refused, and keeps its link when it can."""
    whole = render(None)
    if fits(whole):
        return whole
    cuts = _cuts(story)
    bodies: dict[int, str] = {}  # the search probes the answer before returning it: rendered once

    def cut_body(n: int) -> str:
        if n not in bodies:
            bodies[n] = render(cuts[n - 1])
        return bodies[n]

    count = largest(len(cuts), lambda n: fits(cut_body(n)))
    if count:
        return cut_body(count)
    resorts = [last_resort] if isinstance(last_resort, str) else list(last_resort)
    for body in resorts:
        if fits(body):
            return body
    final = resorts[-1]
    return final[: largest(len(final), lambda n: fits(final[:n]))]


def largest(upper: int, ok: Callable[[int], bool]) -> int:
    """The largest n in 1..upper with ok(n), or 0; ok is monotone (true up to the answer, then false).

    Galloping (1, 2, 4...) then bisecting: each probe renders a body of size ~n, so probing near the
    answer, not around upper/2, keeps cutting a 200 KB diff to a 4 KB limit cheap."""
    if upper < 1 or not ok(1):
        return 0
    low, probe = 1, 2
    while probe <= upper and ok(probe):
        low, probe = probe, probe * 2
    high = min(probe - 1, upper)  # ok(low) holds; ok(high + 1) does not (or high == upper)
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


# --------------------------------------------------------------------------- digests


@dataclass(frozen=True, slots=True)
class DigestGroup:
    """A digest's changes of one target under one topic (topic None: no watched topic)."""

    target: str
    topic: str | None  # the topic's title
    items: tuple[DigestItem, ...]


def digest_groups(message: DigestMessage, *, shown: int | None = None) -> list[DigestGroup]:
    """The first `shown` items (all by default), grouped by target (in order of first appearance) and,
    within a target, by each item's most severe topic."""
    titles = {t.id: t.title for t in message.topics}
    groups: dict[tuple[str, str | None], list[DigestItem]] = {}
    for item in message.items[:shown]:
        topic = titles.get(item.topics[0], item.topics[0]) if item.topics else None
        groups.setdefault((item.target_name, topic), []).append(item)
    targets = list(dict.fromkeys(name for name, _topic in groups))
    ordered = sorted(groups.items(), key=lambda g: (targets.index(g[0][0]), g[0][1] is None))
    return [DigestGroup(name, topic, tuple(items)) for (name, topic), items in ordered]


def digest_title(message: DigestMessage) -> str:
    count, pages = len(message.items), len({i.target_id for i in message.items})
    when = f"week of {message.start:%Y-%m-%d}" if message.period == "weekly" else f"{message.start:%Y-%m-%d}"
    changes = f"{count} change{'s' if count != 1 else ''}"
    on = f"{pages} page{'s' if pages != 1 else ''}"
    return f"policy-watchdog {message.period} brief, {when}: {changes} on {on}"
