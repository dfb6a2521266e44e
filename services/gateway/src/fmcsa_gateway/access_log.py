"""One access log line per HTTP request, and a request id on every log line of that request.

`AccessLog` wraps the whole ASGI app (so unrouted requests, 404 and 405, are logged too). The request
id is the client's `X-Request-ID` when it is short and made of safe characters (letters, digits, `.`,
`_`, `-`, at most 64), else a new random one; it is returned in the answer's `X-Request-ID`, and bound
into structlog's context while the request runs, so every line the request logs carries it. The line
`http_request` has the method, the path (never the query string, where secrets may travel), the
status, the duration in milliseconds and the request id.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

log = structlog.get_logger("fmcsa_gateway.access")

Message = MutableMapping[str, Any]
HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's request id if it is safe to log and echo, else a new one."""
    for name, value in headers:
        if name.lower() == HEADER and _SAFE_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class AccessLog:
    """ASGI middleware: request id in, request id out, one `http_request` line per HTTP request."""

    def __init__(self, app: Any) -> None:  # any ASGI app (Litestar types its own callables)
        self.app = app

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(list(scope.get("headers", [])))
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != HEADER]
                message["headers"] = [*headers, (HEADER, rid.encode("ascii"))]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "http_request",
                    method=scope.get("method", ""),
                    path=scope.get("path", ""),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
