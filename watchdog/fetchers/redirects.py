"""Stage 1, fetch: which redirects a fetcher may follow.

A watched page on the public web must not be able to send the watchdog to the machine's own services or
to the local network (a cloud metadata endpoint on 169.254.169.254, an admin page on 127.0.0.1...) and get
their answer archived and published. So a redirect whose destination is not a public address is refused,
unless the target's own URL already is one (a watcher of intranet pages), or `[fetch] private_redirects =
true`. "Public" is `ipaddress`'s `is_global` (the IANA special-purpose registries, RFC 6890): private,
loopback, link-local, shared (100.64/10), reserved and unspecified addresses are not. A host name is judged
by every address it resolves to. The check runs before anything is sent to the destination.

Limits, said plainly: the connection resolves the name again, so a DNS answer that changes between the two
look-ups ("DNS rebinding") is not caught; a name that does not resolve here (behind a proxy that resolves
for us) is judged by the proxy, not by this rule.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from watchdog.errors import FetchError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]


def system_resolver(host: str) -> list[str]:
    """The addresses the system resolves `host` to; none when it cannot (the fetch then fails on its own)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        return []
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class RedirectPolicy:
    allow_private: bool = False
    resolve: Resolver = system_resolver

    def check(self, origin: str, destination: str) -> None:
        """Raise FetchError when a fetch of `origin` (the target's own URL) may not follow a redirect to
        `destination`."""
        if self.allow_private:
            return
        blocked = self.non_public_address(destination)
        if blocked is None or self.non_public_address(origin) is not None:
            return
        host = urlsplit(destination).hostname
        raise FetchError(
            f"refused to follow the redirect from {origin} to {destination}: {host} is a {_kind(blocked)} "
            f"address ({blocked}) and the target's own URL is public; set [fetch] private_redirects = "
            "true to allow it"
        )

    def non_public_address(self, url: str) -> Address | None:
        """The first address of `url`'s host that is not public, or None."""
        host = urlsplit(url).hostname or ""
        literal = _address(host)
        candidates = [literal] if literal is not None else [_address(a) for a in self.resolve(host)]
        return next((a for a in candidates if a is not None and not a.is_global), None)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is no part
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def _kind(address: Address) -> str:
    if address.is_unspecified:  # 0.0.0.0 and :: reach this machine
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    return "non-public"
