"""The AsyncAPI document: public, outside the OpenAPI schema.

`/health`, `/ready` and `/metrics` are not routes of the Litestar app: the worker shell answers them
(`fmcsa_runtime.service.Shell`; `/ready` while NATS is connected and the status view answers, `/metrics`
the request counts and latencies per route, events published, trigger results).
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, get
from litestar.datastructures import State


@get("/asyncapi.json", media_type=MediaType.JSON, include_in_schema=False)
async def asyncapi(state: State) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the bus, generated from the event classes (`fmcsa_gateway.asyncapi`)."""
    document: dict[str, Any] = state.asyncapi
    return document
