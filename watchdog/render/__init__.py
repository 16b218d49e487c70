"""Stage render: every output format in one place, used by alerts (notify), feeds and the site alike.

    ... -> classify -> store (+ outbox: a format-neutral message) -> **render** -> notify / publish

    clean.py      page text made inert (alerts) and canonical-line markers made readable
    compose.py    message -> Story: the headline, the passages with their sections, folded edits, cuts
    text.py       plain text (e-mail plain part, generic webhooks, the full-diff attachment)
    markdown.py   CommonMark per chat dialect, page text escaped (not substituted), mentions broken
    html.py       Jinja2 templates with autoescaping (templates/): e-mail, feed content, archive pages
    json.py       JSON
    services.py   which format and dialect each apprise service gets, and the body that fits its limits

The pipeline records a message; nothing is rendered until a channel, a feed or a page needs it.
"""
