"""Imports: a target's history from public archives, before our own captures (`import`).

    history.py    what each record of a source adds (versions, technical versions, `imported` changes),
                  which records an import may still add, and one import end to end (`run_import`)
    ota.py        Open Terms Archive versions repositories (a clone or a git bundle), read with `git`
    markdown.py   OTA's Markdown back to the HTML page the extractor reads, so imported and live texts
                  compare cleanly
    wayback.py    the Wayback Machine's CDX API and raw captures, fetched and validated like live ones

An import never pushes anything to a channel; it is written in one transaction (storage Imports), and the
hash chain stays in recording order (storage/chain.py).
"""
