"""What every answer carries, and what is refused before any route sees it.

- `security_headers` (a Litestar `before_send` hook, so it covers errors and 404s too): a Content Security
  Policy whose scripts come only from the gateway's own files (`script-src 'self'`: no inline script or
  handler, no eval; the page keeps its code in `static/app.js`), `frame-ancestors 'none'`,
  `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and `Cache-Control: no-store` on
  everything but the static assets (authenticated JSON and fragments never sit in a cache).
- `RefuseMalformedTargets` (around Litestar's ASGI handler): a request whose decoded path does not start
  with `/` (a leading space: `GET %20/...`) is a 400 problem before routing, and a static asset's path
  holding a control character (`/static/x%00.png`) a 404 one, so no route match or file lookup ever
  sees them (a NUL reached `os.stat` and was a 500). Control characters elsewhere reach the routes,
  whose parameters refuse them with a 422 (`parse_dot`, the rule-name pattern).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # the admin page's CSS is a file, but Swagger UI and htmx's swaps set inline styles
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "cross-origin-opener-policy": "same-origin",
}
PROBE_HEADERS = [
    *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
    (b"cache-control", b"no-store"),
]
"""The same headers on the worker shell's own answers (`/health`, `/ready`, `/metrics`)."""
CACHED_PREFIXES = ("/static/",)
"""Paths whose answers may be cached: the vendored assets, which hold no data."""


_SECURITY_PAIRS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_NO_STORE = (b"cache-control", b"no-store")


async def security_headers(message: Message, scope: Scope) -> None:
    """Add the security headers to every HTTP answer that did not set its own (on every answer: one
    pass over its raw headers, no header object built).
    """
    if message["type"] != "http.response.start":
        return
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = message["headers"] = list(headers or ())
    present = {name.lower() for name, _ in headers}
    for pair in _SECURITY_PAIRS:
        if pair[0] not in present:
            headers.append(pair)
    if b"cache-control" not in present and not str(scope.get("path", "")).startswith(CACHED_PREFIXES):
        headers.append(_NO_STORE)


def malformed_target(path: str) -> tuple[int, str] | None:
    """The status and reason a decoded request path is refused with, or None."""
    if not path.startswith("/"):
        return 400, "the request target must start with /"
    if path.startswith(CACHED_PREFIXES) and any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return 404, "no static file has a control character in its name"
    return None


class RefuseMalformedTargets:
    """Answer a problem document to an HTTP request whose path `malformed_target` refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = malformed_target(scope["path"]) if scope["type"] == ScopeType.HTTP else None
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, reason = refused
        title = HTTPStatus(status).phrase
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": reason})
        start: Any = {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        await send(start)
        end: Any = {"type": "http.response.body", "body": body.encode()}
        await send(end)
