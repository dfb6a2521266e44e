"""`GET /api/events`: server-sent events of status changes, for the admin page (viewer and up).

Each event is `event: change` with `{type, seq, dot, source}` as data, sent after the status view applied
it; `event: resync` asks the page to reload what it shows (it fell behind); a comment every
`sse_keepalive_s` keeps idle connections open. The first event, `hello`, carries the view's position.
The stream ends when the token that opened it expires (an `expired` event, then the end): a token's
lifetime bounds what it can read, however long the connection stays open. The EventSource then
reconnects with the same cookie and is refused (401), and the page asks for a new token.

A reconnect resumes: each change's SSE `id` is its stream sequence, the EventSource sends the last one it
got as `Last-Event-ID`, and the stream starts with the changes missed since, or with one `resync` when
they are no longer all kept (`fmcsa_gateway.live`). A `Last-Event-ID` that is not a whole number of at
most 20 digits is ignored (the connection starts afresh, as without one).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from fmcsa_gateway.auth import VIEWER, Caller, RoleToken
from fmcsa_gateway.live import RESYNC
from fmcsa_gateway.ports import PortsDep
from fmcsa_gateway.problems import problem_specs


def last_event_id(value: str | None) -> int | None:
    """The stream sequence a reconnecting EventSource got last, or None (absent or not a sequence)."""
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


async def changes(
    ports: PortsDep, *, expires_at: datetime, last_id: int | None = None
) -> AsyncIterator[ServerSentEventMessage]:
    # a monotonic deadline: a wall clock stepped back must not stretch the token's life
    deadline = time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds()
    async with ports.feed.subscribe(last_id) as subscription:
        position = await ports.view.applied_position()
        # its id is the view's position: a page that got no change yet resumes from there after a reconnect
        hello = json.dumps({"position": position})
        yield ServerSentEventMessage(event="hello", id=position, data=hello, retry=2000)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                yield ServerSentEventMessage(event="expired", data="{}")
                return
            change = await subscription.next(min(ports.settings.sse_keepalive_s, left))
            if change is None:
                if time.monotonic() >= deadline:
                    continue  # the token's end, not a quiet spell: the loop's head closes the stream
                yield ServerSentEventMessage(comment="keep-alive", data=None)
            elif change is RESYNC:
                yield ServerSentEventMessage(event="resync", data="{}")
            else:
                yield ServerSentEventMessage(event="change", id=change.seq, data=json.dumps(change.as_json()))


class EventsController(Controller):
    path = "/api/events"
    tags = ("events",)

    @get("/", guards=[VIEWER], responses=problem_specs(401))
    async def events(self, ports: PortsDep, request: Request[Caller, RoleToken, Any]) -> ServerSentEvent:
        """A text/event-stream of status changes (`hello`, its id the view's applied position, then `change`
        events, each its stream sequence as id, and `resync` events); it ends
        with an `expired` event when the token that opened it expires. With `Last-Event-ID` (a reconnect),
        the changes missed since that id come first, or one `resync` when they are no longer kept.
        """
        last_id = last_event_id(request.headers.get("last-event-id"))
        return ServerSentEvent(changes(ports, expires_at=request.auth.exp, last_id=last_id))
