"""`GET /api/events`: server-sent events of status changes, for the admin page (viewer and up).

Each event is `event: change` with `{type, seq, dot, source}` as data, sent after the status view applied
it; `event: resync` asks the page to reload what it shows (it fell behind); a comment every
`sse_keepalive_s` keeps idle connections open. The first event, `hello`, carries the view's position.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from litestar import Controller, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from fmcsa_gateway.auth import VIEWER
from fmcsa_gateway.live import RESYNC
from fmcsa_gateway.ports import PortsDep
from fmcsa_gateway.problems import problem_specs


async def changes(ports: PortsDep) -> AsyncIterator[ServerSentEventMessage]:
    async with ports.feed.subscribe() as subscription:
        position = await ports.view.applied_position()
        yield ServerSentEventMessage(event="hello", data=json.dumps({"position": position}), retry=2000)
        while True:
            change = await subscription.next(ports.settings.sse_keepalive_s)
            if change is None:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
            elif change is RESYNC:
                yield ServerSentEventMessage(event="resync", data="{}")
            else:
                yield ServerSentEventMessage(event="change", id=change.seq, data=json.dumps(change.as_json()))


class EventsController(Controller):
    path = "/api/events"
    tags = ("events",)

    @get("/", guards=[VIEWER], responses=problem_specs(401))
    async def events(self, ports: PortsDep) -> ServerSentEvent:
        """A text/event-stream of status changes (`hello`, then `change` and `resync` events)."""
        return ServerSentEvent(changes(ports))
