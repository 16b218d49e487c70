"""Render, for citations: the date a policy says it takes effect, read from its own text.

    canonical text -> **cite.effective_date** -> the version page's citation line

Policies state it near their top, in words: "Effective May 27, 2025", "Effective date: 16 June 2025",
"We updated our Privacy Policy on December 16, 2025", "Date effective : 26 juin 2024", "Dernière mise à
jour : 1er mars 2024". The first such statement in the first few thousand characters is taken, as written,
with its ISO date when the month and day can be read (English or French month names, either order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

HEAD = 6_000  # characters searched: the statement is near the top
_MONTHS = {
    **{m: i for i, m in enumerate(
        ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
         "november", "december"), start=1)},
    **{m: i for i, m in enumerate(
        ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
         "novembre", "décembre"), start=1)},
    "fevrier": 2, "aout": 8, "decembre": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = (
    rf"(?:(?P<m1>{_MONTH})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y1>\d{{4}})"
    rf"|(?P<d2>\d{{1,2}})(?:er|st|nd|rd|th)?\s+(?P<m2>{_MONTH})\s+(?P<y2>\d{{4}})"
    r"|(?P<y3>\d{4})-(?P<m3>\d{2})-(?P<d3>\d{2}))"
)
_LEAD = (
    r"(?:effective(?:\s+date)?|last\s+(?:updated|revised|modified)|updated(?:\s+on)?|"
    r"we\s+updated\s+our\s+[\w\s]{0,40}?\s+on|date\s+effective|date\s+d['’]entrée\s+en\s+vigueur|"
    r"en\s+vigueur\s+(?:le|à\s+compter\s+du)|dernière\s+mise\s+à\s+jour|mis\s+à\s+jour\s+le|"
    r"nous\s+avons\s+mis\s+à\s+jour\s+[\w\s]{0,40}?\s+le)"
)
_STATEMENT = re.compile(rf"\b{_LEAD}\s*[:\-–]?\s*(?:le\s+|on\s+)?{_DATE}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Effective:
    text: str  # the date as the policy writes it
    iso: str | None  # YYYY-MM-DD when it could be read


def effective_date(text: str) -> Effective | None:
    match = _STATEMENT.search(text[:HEAD])
    if match is None:
        return None
    return Effective(_written(match), _iso(match))


def _written(match: re.Match[str]) -> str:
    for group in ("m1", "d2", "y3"):
        if match.group(group):
            return " ".join(match.string[match.start(group) : match.end()].split())
    return match.group(0)


def _iso(match: re.Match[str]) -> str | None:
    year = match.group("y1") or match.group("y2") or match.group("y3")
    day = match.group("d1") or match.group("d2") or match.group("d3")
    month_word = match.group("m1") or match.group("m2")
    month = _MONTHS.get(month_word.lower()) if month_word else int(match.group("m3"))
    try:
        return date(int(year), int(month or 0), int(day)).isoformat()
    except ValueError:
        return None
