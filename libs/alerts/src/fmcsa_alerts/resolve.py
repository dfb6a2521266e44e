"""Resolve a webhook host and apply the SSRF check to what it resolves to now (I/O beside the pure check)."""

from __future__ import annotations

import asyncio
import socket

from fmcsa_alerts.addresses import AllowList, Target, check_addresses, literal_address, special_use_refusal


async def refusal_for(target: Target, allow: AllowList, *, timeout_s: float = 5.0) -> str | None:
    """None when the target may be called now; else why not (refused address or unresolvable name)."""
    literal = literal_address(target.host)
    if literal is not None:
        return check_addresses(target.host, [str(literal)], allow)
    if target.host in allow.hosts:
        return None
    if special := special_use_refusal(target.host):
        return f"{special} (allow it with FMCSA_WEBHOOK_ALLOW_HOSTS)"
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM
            )
    except TimeoutError:
        return f"{target.host} did not resolve within {timeout_s:g} s"
    except (socket.gaierror, UnicodeError, OSError) as error:
        return f"{target.host} does not resolve: {error}"
    return check_addresses(target.host, [str(info[4][0]) for info in infos], allow)
