"""Imports, Open Terms Archive: a document's history from a versions repository (a clone or a git bundle).

In an Open Terms Archive versions repository each commit records one new version of one document (a
Markdown file `<Service>/<Terms type>.md`), committed when the version was recorded; its message names the
snapshot(s) it was extracted from and the engine version. Commits titled "Refilter ..." or "Apply technical
or declaration upgrade ..." re-extract an unchanged document with new rules: technical versions here.

git is read through the `git` command (no library: it is on every machine that has such a repository, and
reads bundles, clones and bare repositories alike): `git log` lists the commits that touched the document,
oldest first, and one `git cat-file --batch` process streams the document's content at each of them. A
bundle is first cloned (bare) into a temporary directory, since git reads a bundle only by cloning it.

Each version's Markdown is rendered back to HTML and read by the live extractor (importers/markdown.py), then
validated like a first capture (length floor, block pages, headings only: OTA recorded failed captures too);
size comparisons with the version before are left out, since OTA keeps only changes and a policy that
really halves appears once. Provenance of each version: the repository, the commit, the document path, the
commit's title, the snapshot references and the engine version; its recording time is the commit's author
date.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from watchdog.config import Config
from watchdog.errors import ImportSourceError, NotFoundError
from watchdog.importers.history import Recording
from watchdog.importers.markdown import markdown_page
from watchdog.models import Target, VersionSource
from watchdog.pipeline import extract_and_validate
from watchdog.results import Capture

SOURCE: VersionSource = "ota"
FETCHER = "ota"  # what the synthetic capture of an imported version says produced it
TECHNICAL_TITLES = ("Refilter ", "Apply technical or declaration upgrade")
SNAPSHOT_REFERENCE = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+/commit/[0-9a-f]{40}")
ENGINE = re.compile(r"^X-engine-version:\s*(\S+)\s*$", re.MULTILINE)
_RECORD = "\x1e"
_FIELD = "\x1f"


@dataclass(frozen=True)
class Commit:
    """A commit that touched the document: its id, author date (the recording time) and message."""

    sha: str
    recorded_at: datetime
    message: str

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0].strip()

    @property
    def technical(self) -> bool:
        return self.title.startswith(TECHNICAL_TITLES)

    def provenance(self, repository: str, document: str) -> dict[str, Any]:
        engine = ENGINE.search(self.message)
        return {
            "repository": repository,
            "commit": self.sha,
            "path": document,
            "title": self.title,
            "snapshots": SNAPSHOT_REFERENCE.findall(self.message),
            "engine": engine.group(1) if engine else None,
        }


class GitRepository(AbstractContextManager["GitRepository"]):
    """A versions repository on disk (a clone, a bare repository, or a bundle cloned into a temporary
    directory, removed on close)."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if source.is_file():
            self._temporary = tempfile.TemporaryDirectory(prefix="policy-watchdog-ota-")
            self.path = Path(self._temporary.name) / "repository.git"
            _git(source, None, "clone", "--bare", "--quiet", str(source.resolve()), str(self.path))
        elif source.is_dir():
            self.path = source
            _git(source, self.path, "rev-parse", "--git-dir")
        else:
            raise NotFoundError(f"{source}: no such repository (give a clone's directory or a git bundle)")

    @property
    def identity(self) -> str:
        """How the provenance names the repository: its origin URL, else the path given."""
        if self._temporary is None:
            origin = _git(self.source, self.path, "config", "--get", "remote.origin.url", check=False).strip()
            if origin:
                return origin
        return str(self.source)

    def commits(self, document: str) -> list[Commit]:
        """The commits that touched `document`, oldest first."""
        out = _git(
            self.source,
            self.path,
            "log",
            "--reverse",
            f"--format={_RECORD}%H{_FIELD}%aI{_FIELD}%B",
            self._head(),
            "--",
            document,
        )
        commits = []
        for record in out.split(_RECORD)[1:]:
            sha, date, message = record.split(_FIELD, 2)
            commits.append(Commit(sha, datetime.fromisoformat(date), message.strip()))
        if not commits:
            raise NotFoundError(
                f"{self.source}: no commit touches {document!r} (a path like 'Facebook/Privacy Policy.md')"
            )
        return commits

    def _head(self) -> str:
        """The history to read: HEAD, or the one branch of a repository without a HEAD."""
        if _git(self.source, self.path, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip():
            return "HEAD"
        branches = _git(self.source, self.path, "for-each-ref", "--format=%(refname)", "refs/heads").split()
        if len(branches) != 1:
            raise ImportSourceError(f"{self.source}: no HEAD, and {len(branches)} branches to choose from")
        return branches[0]

    def contents(self, commits: Sequence[Commit], document: str) -> Iterator[tuple[Commit, bytes | None]]:
        """The document's bytes after each commit (None where the commit deleted it), streamed by one
        `git cat-file --batch`."""
        process = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=self.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_environment(),
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            for commit in commits:
                process.stdin.write(f"{commit.sha}:{document}\n".encode())
                process.stdin.flush()
                yield commit, _read_object(process.stdout)
        finally:
            process.stdin.close()
            process.stdout.close()
            process.wait()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()


def _git(source: Path, cwd: Path | None, *args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=_environment(), check=False)
    except FileNotFoundError as exc:
        raise ImportSourceError("`git` is not installed (import ota reads repositories with it)") from exc
    if check and done.returncode != 0:
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ImportSourceError(f"{source}: git {args[0]} failed: {problem[-1] if problem else '?'}")
    return done.stdout.decode("utf-8", "replace")


def _environment() -> dict[str, str]:
    # no prompt, no pager, no user or system config that could change what git prints
    return {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }


def _read_object(stream: IO[bytes]) -> bytes | None:
    header = stream.readline().decode("utf-8", "replace").split()
    if len(header) != 3:  # "<name> missing": the commit deleted the document
        return None
    size = int(header[2])
    data = stream.read(size)
    stream.read(1)  # the newline after each object
    return data


# --------------------------------------------------------------------------- commits -> recordings


def recording(
    target: Target, config: Config, commit: Commit, markdown: bytes, provenance: dict[str, Any]
) -> Recording:
    """One commit's version, read like a page and validated like a first capture."""
    reader = replace(target, select=(), remove=(), alternatives=())  # the Markdown holds the content only
    capture = Capture(
        target_id=target.id,
        url=target.url,
        final_url=target.url,
        status=200,
        headers=(("content-type", "text/html; charset=utf-8"),),
        body=markdown_page(markdown.decode("utf-8", "replace"), title=target.name),
        fetched_at=commit.recorded_at,
        fetcher=FETCHER,
    )
    rejection, document = extract_and_validate(reader, config, capture, previous_length=None)
    if rejection is not None or document is None:
        reason = f"{rejection.code}: {rejection.reason}" if rejection else "no text"
        return Recording(commit.sha, commit.recorded_at, provenance, rejection=reason)
    return Recording(
        commit.sha, commit.recorded_at, provenance, text=document.text, technical=commit.technical
    )


class OtaSource:
    """A document of a versions repository, as an import source (importers/history.py)."""

    name: VersionSource = SOURCE

    def __init__(self, repository: GitRepository, document: str, target: Target, config: Config) -> None:
        self._repository = repository
        self._document = document
        self._target = target
        self._config = config
        self._commits = repository.commits(document)
        self._identity = repository.identity

    def records(self) -> list[tuple[str, datetime]]:
        return [(commit.sha, commit.recorded_at) for commit in self._commits]

    def read(self, refs: Sequence[str]) -> Iterator[Recording]:
        wanted = set(refs)
        commits = [commit for commit in self._commits if commit.sha in wanted]
        for commit, content in self._repository.contents(commits, self._document):
            provenance = commit.provenance(self._identity, self._document)
            if content is None:
                reason = "the commit removed the document"
                yield Recording(commit.sha, commit.recorded_at, provenance, rejection=reason)
            else:
                yield recording(self._target, self._config, commit, content, provenance)
