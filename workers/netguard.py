"""A guard for the URLs a user gives us to fetch (media) or call (webhooks): only public
addresses, unless an operator allows more, and the connection goes to the very address
that was checked.

The decision is taken on the resolved addresses, never on the spelling of the URL, so
``http://2130706433/``, ``http://0x7f.1/`` and ``http://[::ffff:10.0.0.1]/`` are judged
as what they are.  Connecting to the checked address (with the original Host header,
SNI and certificate name) leaves no second DNS lookup for an attacker to rebind.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import NamedTuple

import certifi
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import ConnectTimeoutError, LocationParseError, NewConnectionError
from urllib3.util import parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4, _V6 = ipaddress.IPv4Network, ipaddress.IPv6Network
_NAT64 = _V6("64:ff9b::/96")
_IPV4_COMPATIBLE = _V6("::/96")

# Checked in order; the first match names the refusal.  Python's is_global (3.11) counts
# multicast, site-local and IPv4-compatible addresses as public, so it is only the last
# word, after this table (IANA special-purpose registries).
_NOT_PUBLIC: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("0.0.0.0/32"), "an unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address"),  # incl. the metadata service 169.254.169.254
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),  # incl. broadcast
    (_V4("192.0.0.0/24"), "a reserved address"),
    (_V4("192.0.2.0/24"), "a reserved address"),
    (_V4("192.88.99.0/24"), "a reserved address"),
    (_V4("198.18.0.0/15"), "a reserved address"),
    (_V4("198.51.100.0/24"), "a reserved address"),
    (_V4("203.0.113.0/24"), "a reserved address"),
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fc00::/7"), "a private address"),
    (_V6("fec0::/10"), "a private address"),  # deprecated site-local
    (_V6("ff00::/8"), "a multicast address"),
    (_IPV4_COMPATIBLE, "a reserved address"),  # deprecated
    (_V6("64:ff9b:1::/48"), "a private address"),  # local-use NAT64
    (_V6("100::/64"), "a reserved address"),
    (_V6("2001:db8::/32"), "a reserved address"),
)

_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


class BlockedAddress(ValueError):
    """A URL we refuse to connect to; the message says why, in words for the user."""


class AllowList:
    """Networks and exact host names an operator lets through although they are not
    public (a media server on the LAN, the local simulator).  Empty by default."""

    def __init__(self, networks=(), hosts=()):
        self.networks = tuple(networks)
        self.hosts = frozenset(h.lower().rstrip(".") for h in hosts)

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        """``"127.0.0.0/8, ::1/128, media.internal"``: CIDRs and host names, separated by
        commas or spaces.  A malformed entry is a configuration error (ValueError)."""
        networks, hosts = [], []
        for entry in re.split(r"[,\s]+", (text or "").strip()):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if "/" in entry or not _HOST_NAME.match(name):
                raise ValueError(f"Not a network or host name in the allow-list: {entry!r}")
            hosts.append(name)
        return cls(networks, hosts)

    def permits(self, host: str, address: IPAddress) -> bool:
        """Whether ``host`` (by name) or ``address`` (also as the IPv4 an IPv4-mapped IPv6
        address stands for) is on the list."""
        if host.lower().rstrip(".") in self.hosts:
            return True
        forms = [address]
        if address.version == 6 and address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        return any(form in network for form in forms for network in self.networks)

    def __repr__(self) -> str:
        entries = [str(n) for n in self.networks] + sorted(self.hosts)
        return f"AllowList({', '.join(entries)!r})"


class CheckedURL(NamedTuple):
    """A URL that passed the guard: its host, port, scheme and the addresses it resolved to,
    the only ones a connection may use."""

    host: str
    port: int
    scheme: str
    addresses: list[str]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for or tunnels to, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def why_not_public(address: IPAddress) -> str | None:
    """Why ``address`` is not a public Internet address, or None when it is."""
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = why_not_public(embedded)
            if reason:
                return f"{reason} ({embedded} inside IPv6)"
            if address.ipv4_mapped is not None or address in _NAT64:
                return None  # the same public IPv4 host, written as IPv6
    for network, reason in _NOT_PUBLIC:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def resolve_checked(url: str, allow: AllowList) -> CheckedURL:
    """Resolve ``url``'s host and return it with the addresses we may connect to, or raise
    BlockedAddress.  Every resolved address must be public (or allowed): a name that
    resolves to one public and one private address is refused, since the connection could
    go to either.  socket.gaierror (an OSError) propagates when the name does not resolve."""
    try:
        parts = parse_url(url)
    except LocationParseError as exc:
        raise BlockedAddress(f"not a valid URL: {exc}") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in ("http", "https"):
        raise BlockedAddress(f"only http and https URLs are allowed, not {scheme or 'a URL without scheme'}")
    if parts.auth is not None:
        raise BlockedAddress("URLs with a user name or password are not allowed")
    host = (parts.host or "").strip("[]").lower()
    if not host:
        raise BlockedAddress("the URL has no host")
    port = parts.port or (443 if scheme == "https" else 80)

    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = sockaddr[0]
        address = ipaddress.ip_address(text)
        reason = why_not_public(address)
        if reason and not allow.permits(host, address):
            shown = text if host == text else f"{host} resolves to {text}, which"
            raise BlockedAddress(f"{shown} is {reason}")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise BlockedAddress(f"{host} has no address")
    return CheckedURL(host, port, scheme, addresses)


def request(method: str, url: str, allow: AllowList, *, timeout: Timeout,
            headers: dict[str, str] | None = None, body: bytes | None = None) -> BaseHTTPResponse:
    """One HTTP request to an address ``resolve_checked`` approved, trying each in turn
    until one accepts the connection.  Redirects are not followed (check each hop again);
    no proxy from the environment is used.  The body is not read: the caller reads it and
    closes the response.  https verifies the certificate against the URL's host name."""
    target = resolve_checked(url, allow)
    default_port = 443 if target.scheme == "https" else 80
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != default_port:
        host_header += f":{target.port}"
    headers = {**(headers or {}), "Host": host_header}
    path = parse_url(url).request_uri

    last_error: Exception | None = None
    for address in target.addresses:
        if target.scheme == "https":
            pool = HTTPSConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1,
                                       server_hostname=target.host, assert_hostname=target.host,
                                       cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        else:
            pool = HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)
        try:
            return pool.urlopen(method, path, body=body, headers=headers, redirect=False, retries=False,
                                preload_content=False, decode_content=False, release_conn=False,
                                assert_same_host=False)
        except (NewConnectionError, ConnectTimeoutError) as exc:
            pool.close()
            last_error = exc
    assert last_error is not None
    raise last_error
