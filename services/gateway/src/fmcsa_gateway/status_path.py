"""The status GET's direct path: `GET /api/companies/{dot}/status` answered without Litestar's routing,
route middleware, guard, parameter parsing and response objects when nothing but its 200 can come of it.

It is the gateway's hottest route (every client polls it), and Litestar's machinery around the handler
cost as much as the answer itself. `StatusPath` sits inside Litestar's ASGI handler (`create_api`), so
the app's `before_send` hooks (the security headers) still apply to what it sends, and it answers only
a request it has checked exactly as the route would be:

- the method is GET, the path `/api/companies/<dot>/status` with `<dot>` a DOT number `parse_dot`
  takes (as the route's `edge_dot`), no `root_path`;
- one `Authorization: Bearer <token>` header whose token Litestar's auth accepts: the same
  `RoleToken.decode` (`fmcsa_runtime.tokens.verify` through `VERIFIED`: signature, issuer, expiry on
  every use), the same caller (`_caller_of`), and the same role rule as the route's `VIEWER` guard;
- the company is known, and the read raised nothing.

Anything else (no token, a bad, expired or refused one, a role below viewer, a path or DOT number the
route refuses, an unknown company, an error) goes to Litestar untouched, which answers it as it always
has: the same 401, 403, 404, 422 and 500 problem documents. The answer is the route's (`status_body`,
`application/json` and its length), and it is counted in the request metrics under the route's
template as Litestar's middleware counts it. The answer-equality test (`test_status_answers.py`) holds
both paths to the bytes recorded before.
"""

from __future__ import annotations

import re
import time
from typing import Any

from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from fmcsa_events.identifiers import InvalidDotNumber, parse_dot
from fmcsa_gateway.auth import Caller, RoleToken, caller_from_token
from fmcsa_gateway.ports import Ports
from fmcsa_gateway.routes.companies import status_body
from fmcsa_runtime.tokens import ALGORITHM, Role

STATUS_PATH = re.compile(r"/api/companies/([^/]+)/status")
STATUS_TEMPLATE = "/api/companies/{dot}/status"
"""The route's path template, as Litestar's request metrics label it."""


class StatusPath:
    """ASGI: the status GET answered directly when only its 200 can come of it; everything else to `app`."""

    def __init__(self, app: ASGIApp, *, state: State, secret: str, metrics: Any) -> None:
        self.app = app
        self._state = state
        self._secret = secret
        self._in_progress = metrics.in_progress("GET", STATUS_TEMPLATE)
        self._outcome = metrics.outcome("GET", STATUS_TEMPLATE, 200)
        self.answered = 0
        """Requests this path answered itself (the others went to Litestar)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        found = STATUS_PATH.fullmatch(scope["path"])
        ports = getattr(self._state, "ports", None)
        if found is None or not isinstance(ports, Ports) or not self._allowed(scope):
            await self.app(scope, receive, send)
            return
        try:
            number = parse_dot(found[1])
        except InvalidDotNumber:  # the route's 422
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        count, duration = self._outcome
        self._in_progress.inc()
        try:
            try:
                body = await status_body(ports, number)
            except Exception:  # the route answers the error as it always has (its 500 problem document)
                body = None
            if body is not None:
                length = str(len(body)).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", length)]
                self.answered += 1
                try:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                finally:
                    count.inc()
                    duration.observe(time.perf_counter() - started)
        finally:
            self._in_progress.dec()
        if body is None:  # an unknown company (the route's 404), or an error: the route answers
            await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        """The route would let this request through: one bearer header, its token accepted, a viewer."""
        encoded: bytes | None = None
        for name, value in scope["headers"]:
            if name.lower() == b"authorization":
                if encoded is not None:
                    return False  # more than one: left to Litestar
                encoded = value
        if encoded is None:
            return False
        scheme, _, token = encoded.decode("latin-1").partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        try:
            decoded = RoleToken.decode(token.strip(), self._secret, ALGORITHM)
        except Exception:  # NotAuthorizedException, or anything else: Litestar answers it
            return False
        caller: Caller = caller_from_token(decoded)
        return caller.role.allows(Role.VIEWER)
