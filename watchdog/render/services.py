"""Render, per channel: which format and dialect each notification service gets, and a body that fits.

    Message + what the service renders (ServiceFacts, from notify.py) -> **services** -> (title, body)

What a service *renders*, not what apprise declares, decides how page text is neutralised: apprise sends
Mattermost plain "text", but Mattermost renders it as Markdown and notifies on "@channel", so it gets
escaped Markdown with mentions broken. The known services:

| service (apprise scheme)   | we send                    | neutralised                                 |
| -------------------------- | -------------------------- | ------------------------------------------- |
| e-mail (mailto, ses…)      | HTML (+ apprise's text)    | autoescape; links only to page and archive  |
| Slack (slack)              | Markdown -> mrkdwn         | escapes; & < > entities (apprise); @ broken |
| Discord (discord)          | Markdown                   | escapes; @ broken (apprise pings "@name")   |
| Mattermost (mmost)         | Markdown, declared text    | escapes; @channel/@all/@here broken         |
| Telegram (tgram)           | Markdown -> its Markdown   | escapes; @ broken                           |
| Matrix (matrix)            | Markdown -> HTML (apprise) | escapes, & as &amp;; @room broken           |
| Teams (workflows; msteams) | Markdown (Adaptive Cards)  | escapes; msteams cards: & < > as entities   |
| anything else              | by its declared formats    | Markdown: as above; text: broadcasts broken |

The title field is plain text for most services (Slack, Matrix, Zulip, e-mail: apprise escapes it for
them), but Discord writes it into its Markdown message and Microsoft Teams into a Markdown text block: there
it is escaped in the service's dialect like the body (TITLE_IN_MARKDOWN).

Every service also gets URLs from page text as code spans (no link, no preview fetched), control, bidi
and zero-width characters removed (clean.inert), and bodies cut to its limits with the archive link kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from watchdog.messages import DigestMessage, Message, StatusMessage
from watchdog.render import html, markdown, text
from watchdog.render.clean import clip, one_line
from watchdog.render.compose import Links, compose, digest_title, fit, largest
from watchdog.render.markdown import Dialect

Format = Literal["html", "markdown", "text"]
Fits = Callable[[str], bool]

SLACK = Dialect(strike="~", escape_ampersand=False)
TEAMS = Dialect(entities=True)  # the old Office 365 connector cards render HTML in their text
# apprise renders Matrix's Markdown with Python-Markdown, which writes a backslash-escaped "&" back as a bare
# "&": page text "&#64;room" would reach the room as "@room" (a room-wide ping). An entity stays literal.
PYTHON_MARKDOWN = Dialect(entities=True)
# apprise service schemes -> the Markdown dialect the service renders
MARKDOWN_SERVICES: dict[str, Dialect] = {
    "slack": SLACK,
    "discord": markdown.COMMONMARK,
    "mmost": markdown.COMMONMARK,
    "mmosts": markdown.COMMONMARK,
    "tgram": markdown.COMMONMARK,
    "matrix": PYTHON_MARKDOWN,
    "matrixs": PYTHON_MARKDOWN,
    "msteams": TEAMS,
    "workflows": markdown.COMMONMARK,  # Teams through Power Automate: Adaptive Cards, Markdown, no HTML
    "workflow": markdown.COMMONMARK,
    "rocket": markdown.COMMONMARK,
    "rockets": markdown.COMMONMARK,
    "zulip": markdown.COMMONMARK,
}

# services that render the title as Markdown (Discord: title and body are one Markdown message; Teams:
# the title is a Markdown text block of the card)
TITLE_IN_MARKDOWN = frozenset({"discord", "msteams", "workflows", "workflow"})


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """What notify.py learned from apprise about one service (render knows nothing of apprise)."""

    schemes: tuple[str, ...]
    formats: tuple[str, ...]  # declared by the service: "html", "markdown", "text"
    forced: str | None  # a ?format= the user put in the URL, if any
    title_field: bool  # the service has a title field (else the headline leads the body)
    attachments: bool


@dataclass(frozen=True, slots=True)
class Shape:
    """How a service is written to."""

    render: Format  # what we produce
    declare: Format  # the body format apprise is told (it converts from it)
    dialect: Dialect
    guard: text.Guard
    title_field: bool
    attach: bool  # the full diff as a file (e-mail)
    title_markdown: bool = False  # the service renders the title as Markdown (TITLE_IN_MARKDOWN)

    def title(self, line: str, title_max: int) -> str:
        """One line of page-derived text as this service's title: inert, within `title_max` characters."""
        if not self.title_markdown:
            return clip(self.guard(one_line(line)), title_max)
        plain, width = one_line(line), title_max
        while len(titled := markdown.escape(clip(plain, width), self.dialect)) > title_max and width > 1:
            width -= max(1, len(titled) - title_max)  # escapes lengthen it: fewer words, never half an escape
        return titled


def shape_for(facts: ServiceFacts) -> Shape:
    known = next((MARKDOWN_SERVICES[s] for s in facts.schemes if s in MARKDOWN_SERVICES), None)
    formats = set(facts.formats)
    if known is not None and facts.forced != "text":
        declare: Format = "markdown" if "markdown" in formats else "text"
        titled = declare == "markdown" and any(s in TITLE_IN_MARKDOWN for s in facts.schemes)
        return Shape("markdown", declare, known, text.guard_broadcasts, facts.title_field, False, titled)
    mail_like = "html" in formats and "markdown" not in formats
    if facts.forced in (None, "html") and mail_like:
        return Shape("html", "html", markdown.COMMONMARK, text.no_guard, facts.title_field, facts.attachments)
    if facts.forced in (None, "markdown") and "markdown" in formats and "html" not in formats:
        return Shape(
            "markdown", "markdown", markdown.COMMONMARK, text.guard_broadcasts, facts.title_field, False
        )
    return Shape("text", "text", markdown.COMMONMARK, text.guard_broadcasts, facts.title_field, False)


@dataclass(frozen=True, slots=True)
class Written:
    title: str
    body: str
    attachment: bytes | None = None  # the full diff, UTF-8 text
    attachment_name: str | None = None


def write(
    message: Message,
    shape: Shape,
    *,
    fits: Fits,
    title_max: int = 250,
) -> Written:
    """The title and body one service gets for a message, cut to what `fits` its limits."""
    if isinstance(message, StatusMessage):
        return _status(message, shape, fits=fits, title_max=title_max)
    if isinstance(message, DigestMessage):
        return _digest(message, shape, fits=fits, title_max=title_max)
    story = compose(message)
    links = Links.published(message.archive_url, message)
    title = shape.title(story.headline, title_max) if shape.title_field else ""
    head = not shape.title_field
    if shape.render == "html":
        body = fit(
            story,
            lambda cut: html.render_email(story, links, cut=cut),
            fits,
            last_resort=html.last_resort(story, links),
        )
    elif shape.render == "markdown":
        body = fit(
            story,
            lambda cut: markdown.render_markdown(story, links, cut=cut, head=head, dialect=shape.dialect),
            fits,
            last_resort=markdown.last_resort(story, links, shape.dialect),
        )
    else:
        body = fit(
            story,
            lambda cut: text.render_text(story, links, cut=cut, head=head, guard=shape.guard),
            fits,
            last_resort=text.last_resort(story, links),
        )
    if not shape.attach:
        return Written(title, body)
    name = f"{message.event_id.replace('@', '-')}.diff.txt"
    return Written(title, body, text.full_diff(message.diff).encode("utf-8"), name)


_STATUS_HTML = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head><body>'
    '{% for p in paragraphs %}<p style="white-space:pre-wrap">{{ p }}</p>{% endfor %}</body></html>\n'
)


def _status(message: StatusMessage, shape: Shape, *, fits: Fits, title_max: int) -> Written:
    title, body = text.render_status(message, guard=shape.guard)
    if shape.render == "markdown":
        body = "\n".join(markdown.escape(line, shape.dialect) for line in body.split("\n"))
    elif shape.render == "html":
        paragraphs = [p for p in body.split("\n\n") if p.strip()]
        body = html.inline(html.mail(), _STATUS_HTML).render(title=title, paragraphs=paragraphs)
    head = (
        ""
        if shape.title_field
        else (
            f"**{markdown.escape(title, shape.dialect)}**\n\n"
            if shape.render == "markdown"
            else f"{title}\n\n"
        )
    )
    whole = head + body
    if not fits(whole):
        whole = whole[: max(0, _largest_prefix(whole, fits))]
    return Written(shape.title(title, title_max) if shape.title_field else "", whole)


def _largest_prefix(body: str, fits: Fits) -> int:

    return largest(len(body), lambda n: fits(body[:n]))


def _digest(message: DigestMessage, shape: Shape, *, fits: Fits, title_max: int) -> Written:
    """A digest: as many whole items as fit, then how many more and the archive's link."""
    head = not shape.title_field

    def body(shown: int | None) -> str:
        if shape.render == "html":
            return html.render_digest_email(message, shown=shown)
        if shape.render == "markdown":
            return markdown.render_digest_markdown(message, shown=shown, head=head, dialect=shape.dialect)
        return text.render_digest(message, shown=shown, head=head, guard=shape.guard)

    whole = body(None)
    if not fits(whole):
        count = largest(len(message.items), lambda n: fits(body(n - 1)))
        whole = body(max(count - 1, 0))
        if not fits(whole):
            whole = whole[: largest(len(whole), lambda n: fits(whole[:n]))]
    title = shape.title(digest_title(message), title_max) if shape.title_field else ""
    return Written(title, whole)
