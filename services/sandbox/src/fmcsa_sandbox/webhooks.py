"""The sandbox's webhook receiver: records every webhook it gets, checks its signature, and can answer
500 or hang for the next N calls, so the demo and the tests need no other server.

- `POST /_sandbox/webhooks/{name}` receives (any name: one receiver per rule if you like). It answers
  500 while `fail_next` > 0, hangs `hang_s` (then answers 200) while `hang_next` > 0, else 200; each call
  is recorded with its event id, timestamp, whether the signature verified (with the configured
  secret, five minutes' tolerance) and what was answered.
- `GET /_sandbox/webhooks` lists what was received (oldest first) with counts per event id.
- `PUT /_sandbox/webhooks/faults` `{"fail_next": N, "hang_next": N, "hang_s": S, "status": 500}`.
- `POST /_sandbox/webhooks/reset` forgets what was received and clears the faults.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from litestar import Request, Response, Router, get, post, put
from litestar.params import FromPath

from fmcsa_alerts.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, Verified, verify
from fmcsa_sandbox.faults import Clock
from fmcsa_sandbox.state import json_response

log = structlog.get_logger(__name__)

KEPT = 1000


@dataclass
class Received:
    n: int
    name: str
    event_id: str | None
    timestamp: str | None
    signature_ok: bool
    signature_problem: str | None
    answered: int
    received_at: float
    body: Any


@dataclass
class ReceiverState:
    secret: str
    clock: Clock
    fail_next: int = 0
    fail_status: int = 500
    hang_next: int = 0
    hang_s: float = 30.0
    received: deque[Received] = field(default_factory=lambda: deque(maxlen=KEPT))
    total: int = 0

    def summary(self) -> dict[str, Any]:
        per_id = Counter(r.event_id for r in self.received if r.event_id)
        return {
            "total": self.total,
            "faults": {
                "fail_next": self.fail_next,
                "status": self.fail_status,
                "hang_next": self.hang_next,
                "hang_s": self.hang_s,
            },
            "per_event_id": dict(per_id),
            "received": [asdict(r) for r in self.received],
        }


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return raw[:200].decode("utf-8", "replace")


def webhooks_router(state: ReceiverState) -> Router:
    @post("/{name:str}", status_code=200)
    async def receive(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        raw = await request.body()
        checked = verify(
            request.headers.get(SIGNATURE_HEADER),
            state.secret,
            raw,
            now=state.clock(),
            event_id=request.headers.get(EVENT_ID_HEADER, ""),
        )
        state.total += 1
        answered = 200
        hang = False
        if state.fail_next > 0:
            state.fail_next -= 1
            answered = state.fail_status
        elif state.hang_next > 0:
            state.hang_next -= 1
            hang = True
        record = Received(
            n=state.total,
            name=name[:64],
            event_id=request.headers.get(EVENT_ID_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature_ok=isinstance(checked, Verified),
            signature_problem=None if isinstance(checked, Verified) else checked.reason,
            answered=answered,
            received_at=time.time(),
            body=_body(raw),
        )
        state.received.append(record)
        log.info(
            "webhook_received",
            n=record.n,
            event_id=record.event_id,
            ok=record.signature_ok,
            answered=answered,
        )
        if hang:
            await asyncio.sleep(state.hang_s)
        return json_response({"received": record.n}, answered)

    @get("/")
    async def received() -> Response[bytes]:
        return json_response(state.summary())

    @put("/faults")
    async def faults(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            body = await request.json()
        except Exception:  # an unreadable body is the caller's mistake
            body = None
        if not isinstance(body, dict) or set(body) - {"fail_next", "hang_next", "hang_s", "status"}:
            return json_response(
                {"status_code": 400, "detail": "body: {fail_next, hang_next, hang_s, status}"}, 400
            )
        try:
            fail_next = int(body.get("fail_next", state.fail_next))
            hang_next = int(body.get("hang_next", state.hang_next))
            hang_s = float(body.get("hang_s", state.hang_s))
            status = int(body.get("status", state.fail_status))
        except (TypeError, ValueError):
            return json_response({"status_code": 400, "detail": "numbers expected"}, 400)
        if min(fail_next, hang_next) < 0 or not 0 <= hang_s <= 3600 or not 400 <= status <= 599:
            return json_response({"status_code": 400, "detail": "out of range"}, 400)
        state.fail_next, state.hang_next, state.hang_s, state.fail_status = (
            fail_next,
            hang_next,
            hang_s,
            status,
        )
        return json_response(state.summary()["faults"])

    @post("/reset", status_code=200)
    async def reset() -> Response[bytes]:
        state.received.clear()
        state.total = 0
        state.fail_next = state.hang_next = 0
        return json_response({"status": "ok"})

    return Router(path="/_sandbox/webhooks", route_handlers=[received, faults, reset, receive])
