"""Render, format 4: JSON. The change as one object, for machines (webhook consumers, scripts).

    Story -> **json**

Strings are page text made inert (clean.one_line); json.dumps does the escaping.
"""

from __future__ import annotations

import json
from typing import Any

from watchdog.models import iso
from watchdog.render.clean import one_line
from watchdog.render.compose import Links, Passage, Story


def story_json(story: Story, links: Links) -> dict[str, Any]:
    message = story.message
    return {
        "event": message.event_id,
        "kind": message.kind,
        "target": message.target_id,
        "target_name": one_line(message.target_name),
        "url": message.url,
        "headline": one_line(story.headline),
        "detected_at": iso(message.detected_at),
        "from_version": message.from_version,
        "to_version": message.to_version,
        "topics": [t.id for t in story.topics],
        "severity": message.classification.severity,
        "inserted_chars": story.inserted,
        "deleted_chars": story.deleted,
        "sections": story.sections(),
        "passages": [_passage(p, links) for p in story.passages],
        "folded": [{"reason": reason, "count": count} for reason, count in story.folded],
        "links": {"change": links.change, "after": links.after, "before": links.before},
    }


def _passage(passage: Passage, links: Links) -> dict[str, Any]:
    return {
        "hunk": passage.index,
        "verb": passage.verb,
        "section": [one_line(part) for part in passage.where],
        "link": links.section(passage),
        "topics": list(passage.topics),
        "summary": passage.summary,
        "before": [one_line(line.text) for line in passage.lines if line.sign == "-"],
        "after": [one_line(line.text) for line in passage.lines if line.sign == "+"],
    }


def render_json(story: Story, links: Links) -> str:
    return json.dumps(story_json(story, links), ensure_ascii=False)
