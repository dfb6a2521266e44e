"""The SSRF guard: which webhook URLs and resolved addresses may be called, as pure functions.

An address is refused when it is loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10),
link-local (169.254/16, fe80::/10), multicast, reserved or unspecified, or when it is an IPv6 form that
carries such an IPv4 address inside it (IPv4-mapped `::ffff:0:0/96`, 6to4 `2002::/16`, NAT64
`64:ff9b::/96`, Teredo `2001::/32`; the local-use NAT64 prefix `64:ff9b:1::/48` is refused whole),
unless the allow-list (`FMCSA_WEBHOOK_ALLOW_HOSTS`: comma-separated host names, addresses or CIDRs, each
optionally with `:port`) lets it through. A URL is refused when ANY address its host resolves to is
refused, so a name with one public and one private address cannot be used to reach the private one.
The gateway checks at PUT time; the notifier resolves again before each attempt, checks every address
and connects to a checked one (`fmcsa_alerts.resolve`), never resolving the name a second time.
How a URL is read (with the parser that sends it) is `fmcsa_alerts.urls`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts and networks allowed although private; a port of None allows every port."""

    hosts: frozenset[tuple[str, int | None]] = frozenset()
    networks: tuple[tuple[IpNetwork, int | None], ...] = ()

    def allows_host(self, host: str, port: int | None) -> bool:
        host = host.lower().rstrip(".")
        return (host, None) in self.hosts or (port is not None and (host, port) in self.hosts)

    def allows_address(self, address: IpAddress, port: int | None) -> bool:
        return any(
            address.version == network.version and address in network and (allowed is None or allowed == port)
            for network, allowed in self.networks
        )


_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:\[\]]+):(?P<port>[0-9]{1,5})$")


def _split_port(item: str) -> tuple[str, int | None]:
    """`host:port`, `1.2.3.4:port` or `[v6]:port` -> (host, port); anything else has no port (a bare
    IPv6 address or CIDR keeps its colons).
    """
    match = _PORT.match(item)
    if match is None:
        return item, None
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"{item!r}: the port must be 1-65535")
    return match["host"], port


def parse_allow_list(text: str | None) -> AllowList:
    """`"127.0.0.1:8765, 10.0.0.0/8, hooks.internal, [::1]:9000"` -> an `AllowList`; blanks are skipped.
    An entry without a port allows every port of that host or network.
    """
    hosts: set[tuple[str, int | None]] = set()
    networks: list[tuple[IpNetwork, int | None]] = []
    for item in (text or "").split(","):
        item = item.strip().lower()
        if not item:
            continue
        host, port = _split_port(item)
        try:
            networks.append((ipaddress.ip_network(host.strip("[]"), strict=False), port))
        except ValueError:
            hosts.add((host.rstrip("."), port))
    return AllowList(frozenset(hosts), tuple(networks))


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class UrlRefused:
    reason: str


_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def unsafe_character(text: str) -> str | None:
    """Why `text` may not be a webhook URL because of one of its characters (whitespace, a control or
    format character, an unassigned code point), or None.
    """
    for position, char in enumerate(text):
        if char.isspace() or unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return f"the URL holds {unicodedata.name(char, repr(char))} (U+{ord(char):04X}) at {position}"
    return None


_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


def host_name_refusal(host: str) -> str | None:
    """None for an IP literal or a DNS name of letters, digits, `-` and `_` (after IDNA); else why not."""
    if literal_address(host) is not None:
        return None
    if len(host) > 253 or _HOST_NAME.match(host) is None:
        return f"{host[:80]!r} is not a host name"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(address: IpAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries and leads to (IPv4-mapped, 6to4, NAT64's well-known
    prefix, a Teredo client), with the form's name; None for anything else.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _TEREDO and address.teredo is not None:
        return "Teredo", address.teredo[1]
    return None


def _unmapped(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _plain_refusal(address: IpAddress) -> str | None:
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


def address_refusal(address: IpAddress) -> str | None:
    """Why an address may not be called without the allow-list, or None when it is public. An IPv6
    address that carries an IPv4 address (6to4, NAT64, Teredo, IPv4-mapped) is judged by that address:
    refused when it is refused, public when it is public.
    """
    address = _unmapped(address)
    embedded = embedded_ipv4(address)
    if embedded is not None:
        form, inner = embedded
        if reason := _plain_refusal(inner):
            return f"{address} is a {form} address that leads to {inner}: {reason}"
        # judged by where it leads: Python releases disagree on these prefixes themselves (3.11.2's
        # Debian build calls all of 2002::/16 private, 3.11.7 does not), and the IPv4 address decides
        return None
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return f"{address} is a local-use NAT64 address (64:ff9b:1::/48)"
    return _plain_refusal(address)


def check_addresses(
    host: str, addresses: Iterable[str], allow: AllowList, *, port: int | None = None
) -> str | None:
    """None when `host`, resolved to `addresses`, may be called on `port`; else the reason it is
    refused. An allow-list entry with a port lets only that port through (a port of None: the port is
    not known, so only entries without a port apply).
    """
    host = host.lower().rstrip(".")
    if allow.allows_host(host, port):
        return None
    found = list(addresses)
    if not found:
        return f"{host} resolves to no address"
    for text in found:
        try:
            address = _unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            return f"{host} resolved to something that is not an address: {text[:60]!r}"
        if allow.allows_address(address, port):
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
