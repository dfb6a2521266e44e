"""The sandbox's own API under `/_sandbox`: health, counters, run-time faults, data version.

- `GET /_sandbox/health` -> `{"status":"ok"}`
- `GET /_sandbox/stats` -> data version, per-source counters, the last 1000 requests (secrets scrubbed)
- `GET /_sandbox/faults` -> every run-time knob; `PUT /_sandbox/faults` with any subset of them (lower-case
  setting names) -> 200 with all knobs, or 400 naming the bad one (nothing is applied then)
- `POST /_sandbox/bump` -> `{"data_version": n}`, one more than before; with a body `{"dots": [...]}` a
  partial publication instead: only those carriers move one version ahead (`SandboxState.bump`)
- `POST /_sandbox/reset` -> zeroes the counters and `requests_seen` (not the knobs, not the version)
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

import structlog
from litestar import Request, Response, Router, get, post, put
from pydantic import TypeAdapter, ValidationError

from fmcsa_sandbox.settings import RUNTIME_KNOBS, Settings
from fmcsa_sandbox.state import SandboxState, json_response

log = structlog.get_logger(__name__)


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    """Validate a knob exactly as its `Settings` field does (type and bounds)."""
    field = Settings.model_fields[name]
    annotated: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    return TypeAdapter(annotated)


def validate_changes(body: Any) -> dict[str, Any] | str:
    """The knob changes of a `PUT /_sandbox/faults` body, or the reason it is refused."""
    if not isinstance(body, dict):
        return "the body must be a JSON object of knob names and values"
    unknown = sorted(set(body) - set(RUNTIME_KNOBS))
    if unknown:
        return f"unknown knobs: {', '.join(unknown)} (known: {', '.join(RUNTIME_KNOBS)})"
    changes: dict[str, Any] = {}
    for name, value in body.items():
        try:
            changes[name] = _adapter(name).validate_python(value, strict=True)
        except ValidationError as error:
            return f"{name}: {error.errors()[0]['msg']}"
    return changes


def _problem(detail: str) -> Response[bytes]:
    return json_response({"status_code": 400, "detail": detail}, 400)


def admin_router(state: SandboxState) -> Router:
    """The admin routes, under `/_sandbox`."""

    @get("/health")
    async def health() -> Response[bytes]:
        return json_response({"status": "ok"})

    @get("/stats")
    async def stats() -> Response[bytes]:
        return json_response(state.stats())

    @get("/faults")
    async def faults() -> Response[bytes]:
        return json_response(state.knobs)

    @put("/faults")
    async def change_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            body = await request.json()
        except Exception:  # any unreadable body is the caller's mistake: a 400, not a 500
            return _problem("the body is not JSON")
        changes = validate_changes(body)
        if isinstance(changes, str):
            return _problem(changes)
        try:
            knobs = state.update(changes)
        except ValueError as error:
            return _problem(str(error))
        log.info("faults_changed", **changes)
        return json_response(knobs)

    @post("/bump", status_code=200)
    async def bump(request: Request[Any, Any, Any]) -> Response[bytes]:
        dots = None
        if await request.body():
            try:
                body = await request.json()
            except Exception:  # any unreadable body is the caller's mistake: a 400, not a 500
                return _problem("the body is not JSON")
            listed = body.get("dots") if isinstance(body, dict) else None
            if not isinstance(listed, list) or not all(
                isinstance(d, int | str) and str(d).isascii() and str(d).isdigit() and len(str(d)) <= 8
                for d in listed
            ):
                return _problem('the body must be {"dots": [USDOT numbers]}')
            dots = frozenset(int(d) for d in listed)
        version = state.bump(dots)
        log.info("data_version_bumped", data_version=version, carriers=None if dots is None else len(dots))
        if dots is None:
            return json_response({"data_version": version})
        return json_response({"data_version": version, "carriers_ahead": len(state.ahead)})

    @post("/reset", status_code=200)
    async def reset() -> Response[bytes]:
        state.reset()
        return json_response({"status": "ok"})

    return Router(path="/_sandbox", route_handlers=[health, stats, faults, change_faults, bump, reset])
