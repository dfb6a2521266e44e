"""Resolve a webhook host once and apply the SSRF check to every address it resolves to (I/O beside the
pure check). The notifier connects to an address `resolve_checked` returned, never to the name, so a
name that answers differently the next time (DNS rebinding) cannot lead the connection elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from fmcsa_alerts.addresses import (
    AllowList,
    Target,
    UrlRefused,
    check_addresses,
    literal_address,
    special_use_refusal,
)


@dataclass(frozen=True, slots=True)
class Checked:
    """The addresses the host resolved to, every one checked (or allowed); connect to one of these."""

    addresses: tuple[str, ...]


async def _resolve(host: str, port: int, timeout_s: float) -> list[str] | UrlRefused:
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        return UrlRefused(f"{host} did not resolve within {timeout_s:g} s")
    except (socket.gaierror, UnicodeError, OSError) as error:
        return UrlRefused(f"{host} does not resolve: {error}")
    found: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        try:
            text = str(ipaddress.ip_address(text))
        except ValueError:
            return UrlRefused(f"{host} resolved to something that is not an address: {text[:60]!r}")
        if text not in found:
            found.append(text)
    return found


async def resolve_checked(
    target: Target, allow: AllowList, *, timeout_s: float = 5.0
) -> Checked | UrlRefused:
    """Resolve the target's host once and check every address; the addresses, or why not.

    A literal address is not resolved. A name on the allow-list (for this port) is resolved but its
    addresses are not checked; any other special-use name is refused without resolving it.
    """
    literal = literal_address(target.host)
    if literal is not None:
        if reason := check_addresses(target.host, [str(literal)], allow, port=target.port):
            return UrlRefused(reason)
        return Checked((str(literal),))
    allowed = allow.allows_host(target.host, target.port)
    if not allowed and (special := special_use_refusal(target.host)):
        return UrlRefused(f"{special} (allow it with FMCSA_WEBHOOK_ALLOW_HOSTS)")
    found = await _resolve(target.host, target.port, timeout_s)
    if isinstance(found, UrlRefused):
        return found
    if not found:
        return UrlRefused(f"{target.host} resolves to no address")
    if not allowed and (reason := check_addresses(target.host, found, allow, port=target.port)):
        return UrlRefused(reason)
    return Checked(tuple(found))


async def refusal_for(target: Target, allow: AllowList, *, timeout_s: float = 5.0) -> str | None:
    """None when the target may be called now; else why not (refused address or unresolvable name).
    A name on the allow-list passes without being resolved (the gateway's check at PUT time).
    """
    if literal_address(target.host) is None and allow.allows_host(target.host, target.port):
        return None
    checked = await resolve_checked(target, allow, timeout_s=timeout_s)
    return checked.reason if isinstance(checked, UrlRefused) else None
