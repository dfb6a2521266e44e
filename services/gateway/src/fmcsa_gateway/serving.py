"""How uvicorn serves the gateway: HTTP/1.1 by h11 with a deadline for each request's headers, an idle
keep-alive timeout, a cap on the size of a request's head, and a cap on connections served at once.

uvicorn's own timeouts do not cover a client that sends its headers one byte at a time: every byte
received cancels the keep-alive timer, so such a connection (slowloris) is held for as long as the client
keeps dripping. `HeaderDeadlineH11` closes a connection that has not completed a request's head within
`header_timeout_s` of its opening or of the previous answer, however many bytes trickled in meanwhile.
A request whose head arrived in time is not bound by it (an event stream may stay open for hours).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from fmcsa_gateway.settings import Settings


class HeaderDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head is not complete in time."""

    header_timeout_s: float = 10.0  # set per server by `uvicorn_options`

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head of a request arrived (or the peer closed)
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the next request's head has the same time

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive in time")
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments for the gateway's limits (host, port and lifespan aside)."""
    protocol = type("GatewayH11", (HeaderDeadlineH11,), {"header_timeout_s": settings.header_timeout_s})
    return {
        "http": protocol,
        "timeout_keep_alive": settings.keep_alive_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "limit_concurrency": settings.max_connections,
    }
