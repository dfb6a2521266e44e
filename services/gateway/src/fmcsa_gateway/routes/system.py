"""Probes, metrics and the AsyncAPI document: public, outside the OpenAPI schema.

`/health` answers while the process runs; `/ready` only while NATS is connected and the status store
answers; `/metrics` is Prometheus text (request counts and latencies per route, events published,
trigger results); `/asyncapi.json` describes the gateway's side of the bus.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusController

from fmcsa_gateway.ports import PortsDep


@get("/health", media_type=MediaType.JSON, include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", media_type=MediaType.JSON, include_in_schema=False)
async def ready(state: State) -> Response[dict[str, Any]]:
    ports: PortsDep | None = getattr(state, "ports", None)
    checks = {"nats": False, "status_view": False}
    if ports is not None:
        checks["nats"] = ports.nc.is_connected
        try:
            await ports.view.applied_position()
            checks["status_view"] = True
        except Exception:  # any failure to read the store means: not ready
            checks["status_view"] = False
    ok = all(checks.values())
    return Response({"status": "ready" if ok else "not ready", **checks}, status_code=200 if ok else 503)


@get("/asyncapi.json", media_type=MediaType.JSON, include_in_schema=False)
async def asyncapi(state: State) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the bus, generated from the event classes (`fmcsa_gateway.asyncapi`)."""
    document: dict[str, Any] = state.asyncapi
    return document


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
