"""Pages that need JavaScript, for the browser-fetcher tests and bench (test support, not a stage).

Each builder returns the HTML of one kind of page that Meta's Privacy Center and bot walls serve: text
rendered by a script after a delay, a page that never finishes rendering, a script stuck in a loop, a
"checking your browser" challenge that reloads into the real page, a policy under a cookie-consent dialog.
They are served by the real HTTP server of tests/support/pageserver.py. The policy wording is real: the
opening of Meta's EU AI Terms of Service (attribution in tests/fixtures/browser/SOURCES.md).

`chromium_processes()` lists the Chromium processes below this one, read from /proc (no psutil), so that
tests can prove that no browser outlives its fetcher.
"""

from __future__ import annotations

import gzip
import html
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "browser"
META_AI_TERMS = FIXTURES / "meta-ai-terms-2026-05-13T10-32-30Z.html.gz"
META_AI_TERMS_SENTENCE = (
    "These terms are a legally binding agreement between you and Meta Platforms Ireland Limited"
)
READY_ID = "policy-ready"

# From corpus/series/meta-ai-terms/2026-05-13T10-32-30Z.md (OTA genai-eu-versions, ODC-By 1.0).
POLICY_TITLE = "Meta AIs Terms of Service (EU)"
POLICY_PARAGRAPHS = (
    "These Terms of Service (“Terms”) apply when you access and use Meta AIs and other software, "
    "tools, services, documentation, content, functionalities, and generative AI features that we "
    "make available to you through any Meta Product (collectively, “AIs”). These terms are a legally "
    "binding agreement between you and Meta Platforms Ireland Limited (“Meta”, “we”, “our”, or “us”).",
    "Without limiting the Meta Terms of Service or any other applicable terms or policies, you cannot "
    "access AIs if you are under the age of 13 (or such greater age required in your country or "
    "territory) or if you are prohibited from receiving our services or software under applicable laws.",
    "You may not access, use, or allow others to access or use AIs in any manner that would engage in "
    "the untargeted scraping of facial images from the internet or CCTV footage to build facial "
    "recognition databases.",
)
# From corpus/milestones/instagram-privacy-policy-en-eu/2025-08-08.md (OTA pga-versions, ODC-By 1.0).
COOKIE_PROMPT = "Allow the use of cookies from Instagram on this browser?"
COOKIE_DIALOG_TEXT = (
    "We use cookies and similar technologies to provide and improve content on Facebook Products, "
    "provide a safer experience by using information we receive from cookies on and off Instagram, and "
    "provide and improve Facebook Products for people who have an account."
)
# A dialog that is not about cookies and must survive: the June 2024 banner (corpus/milestones SOURCES).
AI_PAUSE_BANNER = (
    "Based on feedback from regulators, we're delaying our change to the use of your information to "
    "develop and improve AI at Meta."
)
COOKIE_SECTION = (
    "Cookies. We use cookies to understand, secure, operate and provide our Products. Learn more "
    "about cookies and how we use them, and review or change your choice at any time in our Cookie Policy."
)


def _script_data(value: object) -> str:
    """JSON that is safe inside <script>: no '</script>' can close the element early."""
    return json.dumps(value).replace("<", "\\u003c")


def _document(title: str, body: str, *, head: str = "") -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>"
    )


def js_rendered_page(*, delay_ms: int = 300, paragraphs: tuple[str, ...] = POLICY_PARAGRAPHS) -> str:
    """An empty #root that shows "Loading…" at once and the policy after `delay_ms`, then READY_ID.

    The spinner text makes "#root holds text" true too early: only the ready marker says "done". It
    also writes navigator.language into #lang (the locale the browser claims) and asks for an image, a
    font and a stylesheet (the first two must be blocked by the fetcher)."""
    data = _script_data({"title": POLICY_TITLE, "paragraphs": list(paragraphs)})
    script = f"""
      const data = {data};
      const root = document.getElementById("root");
      root.textContent = "Loading…";
      document.getElementById("lang").textContent = navigator.language;
      setTimeout(() => {{
        const main = document.createElement("main");
        const h1 = document.createElement("h1");
        h1.textContent = data.title;
        main.append(h1);
        for (const text of data.paragraphs) {{
          const p = document.createElement("p");
          p.textContent = text;
          main.append(p);
        }}
        root.replaceChildren(main);
        const ready = document.createElement("div");
        ready.id = "{READY_ID}";
        ready.hidden = true;
        document.body.append(ready);
      }}, {delay_ms});
    """
    head = (
        '<link rel="stylesheet" href="/assets/style.css">'
        '<style>@font-face { font-family: Policy; src: url("/assets/policy.woff2"); }'
        " body { font-family: Policy; }</style>"
    )
    body = (
        f'<div id="root"></div><p id="lang"></p><img src="/assets/pixel.png" alt=""><script>{script}</script>'
    )
    return _document("Privacy Center", body, head=head)


def never_rendered_page() -> str:
    """A shell whose content never arrives: "Loading…" forever, no ready marker."""
    script = 'document.getElementById("root").textContent = "Loading…";'
    return _document("Privacy Center", f'<div id="root"></div><script>{script}</script>')


def hanging_page() -> str:
    """Loads, then its script never yields again: the renderer is stuck, nothing answers."""
    script = "setTimeout(() => { for (;;) {} }, 50);"
    return _document("Privacy Center", f'<div id="root"></div><script>{script}</script>')


def bot_check_page(*, reload_ms: int = 200) -> str:
    """A challenge in the style of the big bot walls: a plain client sees only this; a browser runs
    the script, which reloads the page (and the server then sends the real one)."""
    body = (
        "<h1>Just a moment...</h1><p>Checking your browser before accessing the site.</p>"
        "<noscript>Enable JavaScript and cookies to continue</noscript>"
        f"<script>setTimeout(() => location.reload(), {reload_ms});</script>"
    )
    return _document("Just a moment...", body)


def server_rendered_page(*, paragraphs: tuple[str, ...] = POLICY_PARAGRAPHS) -> str:
    """The policy in the HTML itself, with the ready marker: what a plain fetch can use as it is."""
    text = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    main = f"<main><h1>{html.escape(POLICY_TITLE)}</h1>{text}</main>"
    return _document(POLICY_TITLE, f'<div id="root">{main}</div><div id="{READY_ID}" hidden></div>')


def cookie_dialog_page() -> str:
    """The policy (with its own section on cookies) under two consent prompts, one of them injected
    late by a script the way consent managers do, plus a dialog about AI training that must stay."""
    buttons = (
        '<div role="button" tabindex="0">Allow all cookies</div>'
        '<div role="button" tabindex="0">Only allow essential cookies</div>'
    )
    meta_dialog = (
        f'<div role="dialog" aria-label="{html.escape(COOKIE_PROMPT)}"><h2>{html.escape(COOKIE_PROMPT)}'
        f"</h2><p>{html.escape(COOKIE_DIALOG_TEXT)}</p>{buttons}</div>"
    )
    script = f"""
      setTimeout(() => {{
        const host = document.createElement("div");
        host.innerHTML = {_script_data(meta_dialog)};
        document.body.append(host.firstChild);
        const ready = document.createElement("div");
        ready.id = "{READY_ID}";
        document.body.append(ready);
      }}, 150);
    """
    onetrust = (
        '<div id="onetrust-consent-sdk"><div id="onetrust-banner-sdk"><p>We use cookies.</p>'
        "<button>Accept All Cookies</button></div></div>"
    )
    banner = f'<div role="dialog" aria-label="Update"><p>{html.escape(AI_PAUSE_BANNER)}</p></div>'
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in (*POLICY_PARAGRAPHS, COOKIE_SECTION))
    body = f"{banner}<main><h1>{html.escape(POLICY_TITLE)}</h1>{paragraphs}</main>{onetrust}"
    return _document(POLICY_TITLE, f"{body}<script>{script}</script>")


def oversized_page(*, megabytes: int) -> str:
    """A small page whose script builds `megabytes` MB of text: the rendered DOM passes the cap."""
    script = f'document.getElementById("root").textContent = "policy ".repeat({megabytes} << 17);'
    return _document("Big", f'<div id="root"></div><script>{script}</script>')


@cache
def meta_ai_terms_html() -> bytes:
    """The raw snapshot of Meta's EU AI Terms (headless-browser DOM, as OTA recorded it)."""
    return gzip.decompress(META_AI_TERMS.read_bytes())


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str  # /proc/<pid>/comm
    state: str  # "Z" for a zombie


def _read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
    return Proc(pid, int(ppid), name, state)


def descendants(root: int | None = None) -> list[Proc]:
    """Every process below `root` (default: this one), zombies included."""
    procs = [p for p in map(_read_proc, _pids()) if p is not None]
    below, frontier = [], {os.getpid() if root is None else root}
    while frontier:
        found = [p for p in procs if p.ppid in frontier]
        below.extend(found)
        frontier = {p.pid for p in found}
    return below


def chromium_processes(root: int | None = None) -> list[Proc]:
    """The Chromium processes (browser, zygotes, renderers, utilities) below `root`."""
    return [p for p in descendants(root) if "chrom" in p.name.lower()]


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
