"""One exception tree for the whole project.

    WatchdogError                 base; the CLI turns any of these into one clean line (no traceback)
    ├── ConfigError               a broken config: carries every problem, each with file, key and message
    ├── FetchError                a page could not be fetched (after retries): an *outcome* of one target
    │   ├── OversizeError         the body exceeded the size cap: cut off, the capture is *rejected*
    │   └── MissingDependencyError  a fetcher needs something not installed (e.g. playwright)
    ├── ExtractError              a body could not be turned into text (undecodable, unparseable)
    ├── StorageError              the archive could not be read or written: fatal, never swallowed
    │   ├── LockedError           another process is writing to the same storage dir
    │   └── ConflictError         another writer recorded the same target first (a shared archive): this
    │                             write is refused whole, the archive stays as that writer left it
    ├── NotFoundError             a version, change or target id that does not exist
    ├── QueryError                a search query with nothing to search for
    ├── ImportSourceError         an import's source cannot be read (git failed, the CDX API refused)
    ├── UsageError                a command line that cannot be carried out as given (exit 2)
    └── DeliveryError             a channel did not take an alert (wrapped apprise failure): retry later
        ├── DeliveryUncertain     the alert went out and no answer came back: the channel may have it
        └── ChannelUnusable       apprise cannot load the channel at all: nothing can be sent to it

Third-party exceptions are wrapped where they arise (`raise FetchError(...) from exc`): nothing outside
`fetchers/` knows httpx's exceptions and nothing outside `notify.py` knows apprise's.
"""

from __future__ import annotations

from dataclasses import dataclass


class WatchdogError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(WatchdogError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FetchError(WatchdogError):
    """`reason` is a sentence a person can read; `transient` tells whether a retry could help."""

    def __init__(self, reason: str, *, transient: bool = False, status: int | None = None) -> None:
        self.reason = reason
        self.transient = transient
        self.status = status
        super().__init__(reason)


class OversizeError(FetchError):
    """The body (after decompression) passed the size cap; reading stopped there."""


class MissingDependencyError(FetchError):
    pass


class ExtractError(WatchdogError):
    pass


class StorageError(WatchdogError):
    pass


class LockedError(StorageError):
    pass


class ConflictError(StorageError):
    """A write refused because another writer changed the same target since it was read: nothing was
    written. Not a broken archive: the daemon drops that one check's result and carries on."""


class NotFoundError(WatchdogError):
    pass


class UsageError(WatchdogError):
    """Bad arguments (an unknown target, a destination that cannot be used): exit 2, like a bad config."""


class QueryError(WatchdogError):
    pass


class AnchorError(WatchdogError):
    """A chain-heads file that cannot be read (not JSON, not this format)."""


class ImportSourceError(WatchdogError):
    pass


class DeliveryError(WatchdogError):
    """`accepted`: the services of a multi-service channel (an apprise config file) that did take the
    alert, by a secret-free id, so that a retry sends only to the others."""

    def __init__(self, message: str, *, accepted: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.accepted = accepted


class DeliveryUncertain(DeliveryError):
    """A time-out or a connection lost after the alert was sent: whether the channel has it is unknown."""


class ChannelUnusable(DeliveryError):
    """apprise cannot load the channel (an unknown scheme, a URL without a host...): no send is possible."""
