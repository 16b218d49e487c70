"""`policy-watchdog doctor TARGET`: why a target fails, and selectors that would read its page again.

Not a pipeline stage: a repair tool around the extract and validate stages. It reads one capture (fetched
now, or the last rejected snapshot when the page cannot be fetched) exactly as a check would
(pipeline.extract_and_validate), says what is wrong in words, and, when the target's selectors no longer
match, proposes selectors whose text best reproduces the target's last accepted version.

How selectors are proposed. Meta's pages are React applications whose class names (`x1lliihq`) are
generated at each deployment, so a proposal only uses what survives deployments, in this order of trust:

1. element ids that look written by people (`#genai_body`, `#content`), not generated (`mount_0_0_zb`,
   `_R_a6s6k...`, long digit runs);
2. landmarks: `main`, `[role=main]`, `article`, `[role=article]`;
3. stable attributes: `[data-testid=...]`, `[itemprop=...]`, `[aria-label=...]` on regions;
4. class names made of words (`ctn-gen-body`, `field--name-body`), never generated-looking ones.

Each candidate's text (after the target's `remove`) is compared with the last accepted version, line by
line (difflib's ratio: 1.0 = identical). Greedily, the best candidate is joined by others while that raises
the score (content split across sibling sections needs two or three selectors). The page is parsed once
(extract.ParsedPage); candidates whose raw text length is far from the version's are skipped unscored.
The proposals come with a ready-to-paste `[[targets]]` block: the target as configured, `select` replaced.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Final

from watchdog.errors import ExtractError
from watchdog.extract import ParsedPage
from watchdog.models import Target
from watchdog.patterns import lazy
from watchdog.results import Capture

if TYPE_CHECKING:
    from bs4 import Tag

MIN_SCORE: Final = 0.5  # below this a proposal would not reproduce the version: none is made
MAX_SELECTORS: Final = 3  # a proposal joins at most this many selectors
SHORTLIST: Final = 12  # best single candidates considered for joining
LENGTH_RANGE: Final = (0.2, 5.0)  # candidate raw text length / version length outside this: not scored alone
PART_SHARE: Final = 0.02  # smaller candidates are not even considered as parts of a joined proposal
PART_PRECISION: Final = 0.9  # a part: at least this share of its lines belongs to the version

_GENERATED_ID: Final = lazy(r"^(?:mount_|_R_|u_|js_|:r|react-|ember\d)|\d{3,}|^[a-z]?\d|[A-Z0-9]{8,}")
_GENERATED_CLASS: Final = lazy(r"^(?:x[0-9a-z]{4,9}|_[0-9a-z]{3,5}|[a-z]{1,2}\d|css-[0-9a-z]+)$")
_WORDY_CLASS: Final = lazy(r"^[a-z]{2,}(?:(?:-{1,2}|_{1,2})[a-z]{2,})+$")
_IDENT: Final = lazy(r"^-?[A-Za-z_][A-Za-z0-9_-]*$")
LANDMARKS: Final = ("main", "[role=main]", "article", "[role=article]")
STABLE_ATTRIBUTES: Final = ("data-testid", "itemprop", "aria-label")
KIND_RANK: Final = {"id": 0, "landmark": 1, "attribute": 2, "class": 3}
# Rejections that selectors reading the wrong part of the page (or nothing) can explain.
SELECTOR_PROBLEMS: Final = frozenset(
    {"no-match", "not-rendered", "too-short", "headings-only", "shrunk", "over-capture", "duplicated"}
)


@dataclass(frozen=True, slots=True)
class Proposal:
    select: tuple[str, ...]
    score: float  # similarity of its text to the last accepted version, 0..1
    chars: int  # length of its text
    kind: str  # the least trusted kind among its selectors: id, landmark, attribute, class
    depth: int = 0  # of the (first) element in the page: among equals, the closest to the text wins


@dataclass(frozen=True, slots=True)
class Diagnosis:
    target_id: str
    source: str  # where the capture came from, in words
    status: str  # "ok" | "rejected" | "unreadable"
    code: str | None
    reason: str
    last_version: str | None
    proposals: tuple[Proposal, ...] = ()
    snippet: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target_id,
            "source": self.source,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "last_version": self.last_version,
            "proposals": [
                {"select": list(p.select), "score": round(p.score, 4), "chars": p.chars, "kind": p.kind}
                for p in self.proposals
            ],
            "snippet": self.snippet,
        }

    def to_text(self) -> str:
        lines = [f"{self.target_id}: {self.status}" + (f" ({self.code})" if self.code else ""), self.reason]
        lines.append(f"capture: {self.source}")
        if self.proposals:
            lines.append(f"selectors that reproduce {self.last_version} (similarity 0..1):")
            lines += [
                f"  {p.score:.3f}  select = {json.dumps(list(p.select))}  [{p.kind}]" for p in self.proposals
            ]
        if self.snippet:
            lines += ["", "paste into the config in place of this target:", "", self.snippet]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True, slots=True)
class _Candidate:
    selector: str
    kind: str
    raw_length: int
    depth: int


def candidates(page: ParsedPage) -> Iterator[_Candidate]:
    """Selectors worth trying on this page, most trusted kinds first, each once."""
    seen: set[str] = set()
    body = page.soup.body or page.soup
    for tag in body.find_all(True):
        for selector, kind in _selectors_for(tag):
            if selector not in seen:
                seen.add(selector)
                yield _Candidate(selector, kind, len(tag.get_text()), len(list(tag.parents)))


def _selectors_for(tag: Tag) -> Iterator[tuple[str, str]]:
    element_id = tag.get("id")
    if isinstance(element_id, str) and element_id and not _GENERATED_ID.search(element_id):
        yield (f"#{element_id}" if _IDENT.match(element_id) else f"[id={json.dumps(element_id)}]"), "id"
    if tag.name in ("main", "article"):
        yield tag.name, "landmark"
    role = tag.get("role")
    if role in ("main", "article"):
        yield f"[role={role}]", "landmark"
    for attribute in STABLE_ATTRIBUTES:
        value = tag.get(attribute)
        if isinstance(value, str) and value and len(value) <= 60 and not _GENERATED_ID.search(value):
            yield f"[{attribute}={json.dumps(value)}]", "attribute"
    for name in tag.get("class") or ():
        if _WORDY_CLASS.match(name) and not _GENERATED_CLASS.match(name):
            yield f"{tag.name}.{name}", "class"


# --------------------------------------------------------------------------- scoring


def similarity(text: str, reference: str) -> float:
    """Line-level similarity of two canonical texts (difflib ratio; 1.0 = the same lines)."""
    a, b = _lines(text), _lines(reference)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def propose(page: ParsedPage, reference: str, *, limit: int = 3) -> tuple[Proposal, ...]:
    """The selector lists whose text is most like `reference`, best first (none scoring under MIN_SCORE).

    Single candidates of a plausible size are scored; the best are then joined with *parts*: candidates
    whose lines nearly all belong to the reference (a section of it), which alone score low.
    """
    low, high = (bound * len(reference) for bound in LENGTH_RANGE)
    wanted = set(_lines(reference))
    scored: list[Proposal] = []
    parts: list[Proposal] = []
    for candidate in candidates(page):
        if not PART_SHARE * len(reference) <= candidate.raw_length <= high:
            continue
        text = page.text((candidate.selector,))
        proposal = Proposal((candidate.selector,), similarity(text, reference), len(text), candidate.kind,
                            candidate.depth)  # fmt: skip
        if candidate.raw_length >= low:
            scored.append(proposal)
        if _precision(text, wanted) >= PART_PRECISION:
            parts.append(proposal)
    scored.sort(key=_rank)
    parts.sort(key=lambda p: (-p.chars, KIND_RANK[p.kind]))
    joined = [_join(page, best, parts[:SHORTLIST], reference) for best in scored[:limit]]
    unique = {p.select: p for p in sorted([*joined, *scored], key=_rank, reverse=True)}
    return tuple(p for p in sorted(unique.values(), key=_rank) if p.score >= MIN_SCORE)[:limit]


def _precision(text: str, wanted: set[str]) -> float:
    lines = _lines(text)
    return sum(line in wanted for line in lines) / len(lines) if lines else 0.0


def _rank(proposal: Proposal) -> tuple[float, int, int, int]:
    return (-round(proposal.score, 3), KIND_RANK[proposal.kind], len(proposal.select), -proposal.depth)


def _join(page: ParsedPage, best: Proposal, parts: Sequence[Proposal], reference: str) -> Proposal:
    """Add parts to `best` while each addition raises the score; the result lists them in page order."""
    current = best
    while len(current.select) < MAX_SELECTORS and current.score < 1.0:
        tries = []
        for part in (p for p in parts if p.select[0] not in current.select):
            select = (*current.select, part.select[0])
            text = page.text(select)
            kind = max((current.kind, part.kind), key=KIND_RANK.__getitem__)
            tries.append(Proposal(select, similarity(text, reference), len(text), kind, current.depth))
        better = [t for t in tries if t.score > current.score + 0.005]
        if not better:
            return current
        current = min(better, key=_rank)
    return replace(current, select=_in_page_order(page, current.select))


def _in_page_order(page: ParsedPage, select: tuple[str, ...]) -> tuple[str, ...]:
    """The selectors ordered by where their first match sits in the page (easier to read)."""
    order = {id(tag): index for index, tag in enumerate(page.soup.find_all(True))}

    def position(selector: str) -> int:
        found = page.soup.select_one(selector)
        return order.get(id(found), len(order)) if found is not None else len(order)

    return tuple(sorted(select, key=position))


# --------------------------------------------------------------------------- the diagnosis


def diagnose(
    target: Target,
    capture: Capture,
    *,
    source: str,
    rejection: tuple[str, str] | None,
    reference: str | None,
    reference_id: str | None,
) -> Diagnosis:
    """Explain a capture as the check read it (`rejection`: its code and reason, None when accepted) and,
    when the selectors no longer read the policy, propose others that reproduce `reference`."""
    code, reason = rejection if rejection else (None, "the page reads fine: the capture would be accepted")
    status = "ok" if rejection is None else ("unreadable" if code == "unreadable" else "rejected")
    base = Diagnosis(target.id, source, status, code, reason, reference_id)
    if code not in SELECTOR_PROBLEMS or target.kind == "feed":
        return base
    if reference is None:
        return replace(base, reason=f"{reason}. There is no accepted version yet to propose selectors from.")
    try:
        page = ParsedPage(capture.body, content_type=capture.header("content-type"), url=capture.final_url,
                          remove=target.remove)  # fmt: skip
    except ExtractError as exc:
        return Diagnosis(target.id, source, "unreadable", "unreadable", str(exc), reference_id)
    proposals = propose(page, reference)
    if not proposals:
        more = " No selector of the page (ids, landmarks, stable attributes) reproduces the last version."
        return Diagnosis(target.id, source, status, code, reason + more, reference_id)
    snippet = target_toml(target, select=proposals[0].select)
    return Diagnosis(target.id, source, status, code, reason, reference_id, proposals, snippet)


def advice(target: Target, capture: Capture, reference: str, reference_id: str) -> str | None:
    """The proposal as a few lines for a `no-match` failure alert, or None when there is none."""
    diagnosis = diagnose(
        target,
        capture,
        source="the rejected capture",
        rejection=("no-match", "the selectors matched nothing"),
        reference=reference,
        reference_id=reference_id,
    )
    if not diagnosis.proposals:
        return None
    best = diagnosis.proposals[0]
    return (
        f"Selectors that reproduce {reference_id} (similarity {best.score:.3f}): "
        f"select = {json.dumps(list(best.select))}. Check with `policy-watchdog doctor {target.id}`; "
        f"paste into the config:\n\n{diagnosis.snippet}"
    )


# --------------------------------------------------------------------------- the snippet


def target_toml(target: Target, *, select: Sequence[str]) -> str:
    """The `[[targets]]` block of `target` (keys that differ from the defaults), with `select` replaced."""
    default = Target(id=target.id, url=target.url, name=target.id)
    lines = ["[[targets]]", f"id = {_toml(target.id)}", f"url = {_toml(target.url)}"]
    if target.name != target.id:
        lines.append(f"name = {_toml(target.name)}")
    lines.append(f"select = {_toml(list(select))}")
    for spec in fields(Target):
        if spec.name in ("id", "url", "name", "select", "alternatives"):
            continue
        value = getattr(target, spec.name)
        if value != getattr(default, spec.name):
            lines.append(f"{spec.name} = {_toml(value)}")
    for alternative in target.alternatives:
        lines += ["[[targets.alternatives]]", f"select = {_toml(list(alternative.select))}"]
        lines += [f"remove = {_toml(list(alternative.remove))}"] if alternative.remove else []
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    """A TOML value (strings as basic strings: JSON's escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    seconds = getattr(value, "total_seconds", None)
    if seconds is not None:
        return json.dumps(f"{seconds():g}s")
    raise TypeError(f"no TOML form for {value!r}")
