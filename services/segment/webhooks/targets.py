"""Where a webhook may be sent: public http(s) addresses only (a guard against SSRF).

A subscription URL chosen by a tenant must not make the worker reach the platform's own
network: loopback, private ranges, link-local (169.254/16, the clouds' metadata service),
multicast, unspecified or reserved addresses, or an IPv6 form of one of them. The check
runs when the subscription is made (422 naming ``url``) and again before every delivery,
since a name's addresses can change meanwhile: the worker resolves the host, checks every
address, and connects to the one it checked (the name still goes in ``Host`` and, for
https, in SNI and the certificate check). Redirects are never followed.

``webhook_allow_private`` (false by default) lifts the address check, for receivers on a
private network (on-premise installs, tests); the scheme and host checks remain.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeTarget(ValueError):  # noqa: N818 (a refusal, named for what it refuses)
    """The URL is not a public http(s) address; the message says why (for the 422)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to one of ``addresses``; send ``host`` as the name."""

    scheme: str
    host: str  # as in the URL (for Host, SNI and the certificate)
    port: int
    path: str  # with the query
    addresses: tuple[str, ...]  # the checked IPs, in the resolver's order of preference

    def url(self, address: str) -> str:
        """The URL that connects to ``address``, one of the checked ones."""
        shown = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{shown}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def non_public(address: Address) -> str | None:
    """Why ``address`` is no public one (loopback, private...), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (why := non_public(embedded)):
            return why
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally reachable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def resolve(url: str, *, allow_private: bool) -> Target:
    """The URL's host resolved and checked; `UnsafeTarget` unless every address it
    resolves to is public (one private answer is enough to refuse: the next lookup might
    return it)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("must be an http or https URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget("has an invalid port") from None
    host = parts.hostname
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeTarget(f"host {host!r} does not resolve") from None
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeTarget(f"host {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            if why := non_public(address):
                raise UnsafeTarget(f"must point to a public address, not {address} ({why})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, tuple(str(a) for a in addresses))
