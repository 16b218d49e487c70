"""Test support: turn a corpus Markdown version into an HTML page like the ones Meta serves.

The corpus (tests/fixtures/corpus/, from Open Terms Archive) holds the *text* of real policy versions as
Markdown. A local test server needs pages, and a page worth testing against carries the noise real pages
carry. `render_page` therefore wraps the rendered Markdown in page chrome (head with styles and scripts,
header/nav/footer, a cookie-consent dialog, hidden elements) and adds noise that is random but driven by
`seed`: generated class names and nonces, tracking parameters on every link, l.php redirect wrappers on
external links, rotating signed media URLs (`oh`/`oe`), whitespace/NBSP variations and zero-width marks
inside the content, hidden elements, comments, scripts and styles inside the content root.

None of the noise is visible text, so the extracted text of `#<root_id>` must not depend on the seed:
`extract(render_page(md, seed=a)) == extract(render_page(md, seed=b))`, with or without `keep_links`.

`corpus_markdown` / `corpus_versions` read the corpus Markdown kept as gzip under tests/fixtures/: the
documents copied for the replay tests (tests/fixtures/replay) and the others (tests/fixtures/corpus), both
laid out as in the shared corpus (`milestones/<document>/<date>.md.gz`, attribution alongside).
"""

from __future__ import annotations

import gzip
import random
import re
import string
from functools import lru_cache
from html import escape, unescape
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from watchdog.importers.markdown import markdown_to_html

__all__ = ["corpus_markdown", "corpus_versions", "render_page"]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CORPUS_DIRS = (FIXTURES / "corpus", FIXTURES / "replay")

FIRST_PARTY = ("facebook.com", "instagram.com", "meta.com", "fb.com", "messenger.com", "threads.net")
SPACE_VARIANTS = (" ", "  ", "\n", "\n    ", "\xa0", "\u202f", " \t", "\u2009", "\u200b ")
HIDDEN_WRAPPERS = (
    '<div hidden class="{c}">{t}</div>',
    '<div style="display:none" class="{c}">{t}</div>',
    '<p style="color: red; display: none !important">{t}</p>',
    '<span style="visibility:hidden">{t}</span>',
    '<div aria-hidden="true"><span>{t}</span></div>',
    "<template><p>{t}</p></template>",
    "<noscript><p>{t}</p></noscript>",
    '<script nonce="{c}">window.__x = "{t}";</script>',
    "<style>.{c}::after {{ content: '{t}'; }}</style>",
    "<!-- {t} -->",
    '<dialog class="{c}"><p>{t}</p></dialog>',
)


@lru_cache(maxsize=8)
def _rendered(markdown_text: str) -> str:
    # The same version is rendered under many seeds; Markdown parsing is the slow part. The rendering is
    # the importer's (watchdog/importers/markdown.py), cells rebuilt as Meta's pages have them.
    return markdown_to_html(markdown_text)


def render_page(markdown_text: str, *, seed: int = 0, chrome: bool = True, root_id: str = "root") -> bytes:
    """A UTF-8 HTML page whose `#root_id` holds `markdown_text`, with seeded invisible noise."""
    rng = random.Random(seed)
    content = _noisy_content(_rendered(markdown_text), rng)
    root = f'<div id="{escape(root_id)}" class="{_cls(rng)}" data-nonce="{_token(rng)}">{content}</div>'
    page = _chrome_page(root, rng) if chrome else _bare_page(root)
    return page.encode("utf-8")


def corpus_markdown(relative: str) -> str:
    """A corpus version's Markdown, e.g. corpus_markdown("milestones/meta-ai-terms-eu/2026-01-21.md")."""
    for folder in CORPUS_DIRS:
        path = folder / f"{relative}.gz"
        if path.is_file():
            return gzip.decompress(path.read_bytes()).decode("utf-8")
    raise FileNotFoundError(f"{relative} is in none of {[str(d) for d in CORPUS_DIRS]}")


def corpus_versions(document: str) -> list[str]:
    """The versions of one document (e.g. "milestones/meta-privacy-policy-fr-fr"), oldest first."""
    for folder in CORPUS_DIRS:
        found = sorted((folder / document).glob("*.md.gz"))
        if found:
            return [f"{document}/{path.name[:-3]}" for path in found]
    raise FileNotFoundError(f"{document} is in none of {[str(d) for d in CORPUS_DIRS]}")


# --------------------------------------------------------------------------- random pieces


def _token(rng: random.Random, length: int = 12) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "_-", k=length))


def _cls(rng: random.Random) -> str:
    return " ".join("x" + _token(rng, rng.randint(4, 7)).lower() for _ in range(rng.randint(1, 4)))


def _words(rng: random.Random) -> str:
    pool = ("log in", "cookies", "allow all", "tracking", "pixel", "menu", "hidden", "reload")
    return " ".join(rng.choices(pool, k=rng.randint(1, 5)))


def _media_url(rng: random.Random) -> str:
    query = {
        "stp": "dst-jpg_" + _token(rng, 4),
        "_nc_cat": str(rng.randint(1, 200)),
        "_nc_sid": _token(rng, 6),
        "_nc_ohc": _token(rng, 20),
        "oh": "00_" + _token(rng, 30),
        "oe": f"{rng.randrange(16**8):08X}",
    }
    host = f"scontent-{_token(rng, 4).lower()}.xx.fbcdn.net"
    return f"https://{host}/v/t39/{rng.randrange(10**9)}_n.jpg?{urlencode(query)}"


def _tracked(url: str, rng: random.Random) -> str:
    """`url` with tracking parameters added (and, for an external URL, wrapped in l.php)."""
    params = {
        "utm_source": rng.choice(("fb", "ig", "newsletter")),
        "utm_medium": _token(rng, 5),
        "fbclid": "IwAR" + _token(rng, 24),
        "entry_point": f"POLICY_SECTION:{rng.randint(0, 20)}-{_token(rng, 8)}",
        "__tn__": rng.choice(("-R", "*F", "H-R")),
    }
    picked = dict(rng.sample(sorted(params.items()), k=rng.randint(1, len(params))))
    if rng.random() < 0.2:
        picked.update({"oh": "00_" + _token(rng, 20), "oe": _token(rng, 8), "_nc_ht": _token(rng, 6)})
    base, _, fragment = url.partition("#")
    joiner = "&" if "?" in base else "?"
    noisy = base + joiner + urlencode(picked) + (f"#{fragment}" if fragment else "")
    host = (urlsplit(url).hostname or "").lower()
    if host and not host.endswith(FIRST_PARTY):
        shim = rng.choice(("l.facebook.com", "lm.facebook.com", "l.instagram.com"))
        path = "/" if shim == "l.instagram.com" else "/l.php"
        return f"https://{shim}{path}?u={quote(noisy, safe='')}&h=AT{_token(rng, 30)}"
    return noisy


# --------------------------------------------------------------------------- content noise

# The content is noised as a token stream (tags and text runs), not a parsed tree: corpus versions reach
# 800 KB and a tree round trip per seed would make the property tests slow.
TOKEN = re.compile(r"(<[^>]*>)")
OPEN_TAG = re.compile(r"^<([a-zA-Z][a-zA-Z0-9]*)")
HREF = re.compile(r'href="([^"]*)"')
BLOCK_END = re.compile(r"^</(?:p|ul|ol|table|blockquote|pre|h[1-6])>$|^<hr\s*/?>$")
VERBATIM = ("pre", "code")


def _noisy_content(html: str, rng: random.Random) -> str:
    tokens = TOKEN.split(html)
    verbatim = 0
    slots: list[int] = []  # token positions right after a block ends: safe places for extra elements
    for index, token in enumerate(tokens):
        if token.startswith("<"):
            tokens[index] = _decorate(token, rng)
            verbatim += _verbatim_delta(token)
            if BLOCK_END.match(token):
                slots.append(index)
        elif token and not verbatim:
            tokens[index] = _vary_whitespace(token, rng)
    for slot in rng.sample(slots, k=min(len(slots), 6)):
        tokens[slot] += _invisible(rng)
    return "".join(tokens)


def _verbatim_delta(token: str) -> int:
    name = token.strip("</>").split()[0].lower() if token.strip("</>") else ""
    if name not in VERBATIM or token.endswith("/>"):
        return 0
    return -1 if token.startswith("</") else 1


def _decorate(token: str, rng: random.Random) -> str:
    """A start tag with a generated class, sometimes a nonce, and a tracked href."""
    match = OPEN_TAG.match(token)
    if match is None:
        return token
    token = HREF.sub(lambda m: f'href="{escape(_tracked(unescape(m.group(1)), rng))}"', token)
    extra = f' class="{_cls(rng)}"' if "class=" not in token else ""
    if rng.random() < 0.3:
        extra += f' data-nonce="{_token(rng)}"'
    return f"<{match.group(1)}{extra}{token[match.end() :]}"


def _vary_whitespace(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    return words[0] + "".join(rng.choice(SPACE_VARIANTS) + word for word in words[1:])


def _invisible(rng: random.Random) -> str:
    """One hidden element, comment, script, style or media element, with random content."""
    roll = rng.random()
    if roll < 0.15:
        return f'<img src="{escape(_media_url(rng))}" class="{_cls(rng)}">'
    if roll < 0.25:
        return f'<video poster="{escape(_media_url(rng))}"><source src="{escape(_media_url(rng))}"></video>'
    if roll < 0.35:
        return "\n" + " " * rng.randint(0, 8)
    return rng.choice(HIDDEN_WRAPPERS).format(c=_cls(rng), t=_words(rng))


# --------------------------------------------------------------------------- page chrome


def _bare_page(root: str) -> str:
    head = '<head><meta charset="utf-8"><title>Policy</title></head>'
    return f'<!DOCTYPE html><html lang="en">{head}<body>{root}</body></html>'


def _chrome_page(root: str, rng: random.Random) -> str:
    nonce = _token(rng, 8)
    head = (
        '<head><meta charset="utf-8"><title>Policy</title>'
        f'<meta name="viewport" content="width=device-width"><link rel="preload" href="{_media_url(rng)}">'
        f'<style nonce="{nonce}">.{_token(rng, 5)}{{display:none}} body{{font:15px sans-serif}}</style>'
        f'<script nonce="{nonce}">window.__state = {{"token": "{_token(rng, 24)}", "log in": true}};</script>'
        f'<script src="/rsrc/{_token(rng, 10)}.js" nonce="{nonce}" async></script></head>'
    )
    header = (
        f'<header class="{_cls(rng)}"><nav aria-label="Main"><a href="{_tracked("/", rng)}">Home</a> '
        f'<a href="{_tracked("/login/", rng)}">Log In</a> <a href="{_tracked("/signup/", rng)}">Sign Up</a>'
        "</nav></header>"
    )
    footer = (
        f'<footer role="contentinfo" class="{_cls(rng)}"><a href="{_tracked("/privacy/", rng)}">Privacy</a>'
        f' · <a href="{_tracked("/policies/cookies/", rng)}">Cookies</a> · Meta © 2026</footer>'
    )
    dialog = (
        f'<div role="dialog" aria-modal="true" class="{_cls(rng)}"><h2>Allow the use of cookies from '
        "Facebook on this browser?</h2><p>We use cookies and similar technologies to help provide and "
        'improve content on Meta Products.</p><div role="button">Allow all cookies</div>'
        '<div role="button">Decline optional cookies</div></div>'
    )
    hidden = f'<div hidden><p>{_words(rng)}</p></div><img src="{_media_url(rng)}" width="1" height="1">'
    main = f'<div class="{_cls(rng)}" aria-hidden="true"><main class="{_cls(rng)}">{root}</main></div>'
    body = f'<body class="{_cls(rng)}">{header}{main}{footer}{dialog}{hidden}</body>'
    return f'<!DOCTYPE html><html lang="en">{head}{body}</html>'
