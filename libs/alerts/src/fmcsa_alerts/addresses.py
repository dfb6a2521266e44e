"""The SSRF guard: which webhook URLs and resolved addresses may be called, as pure functions.

Only `http` and `https` URLs with a host are accepted. An address is refused when it is loopback,
private (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10), link-local (169.254/16, fe80::/10),
multicast, reserved or unspecified, unless the allow-list (`FMCSA_WEBHOOK_ALLOW_HOSTS`: comma-separated
host names or CIDRs) lets it through. A URL is refused when ANY address its host resolves to is refused,
so a name with one public and one private address cannot be used to reach the private one. The gateway
checks at PUT time and the notifier again before each attempt, against what the name resolves to then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AllowList:
    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()


def parse_allow_list(text: str | None) -> AllowList:
    """`"127.0.0.1, 10.0.0.0/8, hooks.internal"` -> an `AllowList`; blanks are skipped."""
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for item in (text or "").split(","):
        item = item.strip().lower()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            hosts.add(item.rstrip("."))
    return AllowList(frozenset(hosts), tuple(networks))


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class UrlRefused:
    reason: str


def check_url(url: str) -> Target | UrlRefused:
    """The scheme, host and port of a webhook URL, or why it is refused (not http(s), no host)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return UrlRefused(f"not a URL: {error}")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return UrlRefused(f"only http and https URLs are allowed, not {scheme or 'none'}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return UrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        return UrlRefused("credentials in the URL are not allowed; the secret signs the request")
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def _unmapped(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def address_refusal(address: IpAddress) -> str | None:
    """Why an address may not be called without the allow-list, or None when it is public."""
    address = _unmapped(address)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private or (address.version == 4 and address in _SHARED)),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"{address} is a {name} address"
    return None


def check_addresses(host: str, addresses: Iterable[str], allow: AllowList) -> str | None:
    """None when `host`, resolved to `addresses`, may be called; else the reason it is refused."""
    host = host.lower().rstrip(".")
    if host in allow.hosts:
        return None
    found = list(addresses)
    if not found:
        return f"{host} resolves to no address"
    for text in found:
        try:
            address = _unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            return f"{host} resolved to something that is not an address: {text[:60]!r}"
        if any(address in network for network in allow.networks if network.version == address.version):
            continue
        if reason := address_refusal(address):
            return f"{host}: {reason} (allow it with FMCSA_WEBHOOK_ALLOW_HOSTS)"
    return None


SPECIAL_USE_SUFFIXES = (".localhost", ".invalid", ".test", ".example", ".local", ".internal")
SPECIAL_USE_NAMES = frozenset({"localhost", "example.com", "example.net", "example.org"})


def special_use_refusal(host: str) -> str | None:
    """Names that never reach a real receiver (RFC 2606, 6761, 6762), refused without resolving them:
    `localhost` and `*.localhost` are loopback, the others are for documentation, tests or the LAN.
    """
    host = host.lower().rstrip(".")
    if (
        host in SPECIAL_USE_NAMES
        or host.endswith(SPECIAL_USE_SUFFIXES)
        or host.endswith(tuple(f".{name}" for name in SPECIAL_USE_NAMES))
    ):
        return f"{host} is a special-use name (loopback, documentation or local network)"
    return None


def literal_address(host: str) -> IpAddress | None:
    """The address a host names literally (`127.0.0.2`, `[::1]`), or None for a name to resolve."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
