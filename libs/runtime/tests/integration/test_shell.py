"""The worker shell with an app behind it (the gateway's shape), on a real nats-server: the shell answers
`/health`, `/ready` and `/metrics` with the headers it was given and hands every other request to the
app; the app's own lifespan runs after the worker started and before it stops; `/ready` names its checks.
"""

from __future__ import annotations

from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from fmcsa_runtime.service import Shell
from fmcsa_runtime.settings import ServiceSettings


class RecordingWorker:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.ok = True

    async def start(self, nc: NatsClient) -> None:
        self.steps.append("worker started" if nc.is_connected else "worker started unconnected")

    async def stop(self, grace_s: float) -> None:
        self.steps.append("worker stopped")

    async def ready(self) -> bool:
        return self.ok


def app_recording(steps: list[str]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    steps.append("app started")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    steps.append("app stopped")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"app answers {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-from", b"app")]})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_a_shell_serves_its_probes_and_hands_the_rest_to_its_app(fresh_nats_url: str) -> None:
    steps: list[str] = []
    worker = RecordingWorker(steps)
    shell = Shell(
        ServiceSettings(nats_url=fresh_nats_url),
        name="shell-test",
        worker=worker,
        app=app_recording(steps),
        check="view",
        headers=[(b"x-probe", b"yes")],
    )
    async with shell:
        assert steps == ["worker started", "app started"]
        transport = httpx.ASGITransport(app=shell)
        async with httpx.AsyncClient(transport=transport, base_url="http://shell") as client:
            health = await client.get("/health")
            ready = await client.get("/ready")
            metrics = await client.get("/metrics")
            other = await client.get("/api/anything")
            worker.ok = False
            not_ready = await client.get("/ready")
        assert (health.status_code, health.json(), health.headers["x-probe"]) == (
            200,
            {"status": "ok"},
            "yes",
        )
        assert ready.json() == {"status": "ready", "nats": True, "view": True}
        assert ready.headers["x-probe"] == "yes"
        assert metrics.status_code == 200
        assert "python_gc_objects_collected_total" in metrics.text
        assert (other.text, other.headers["x-from"]) == ("app answers /api/anything", "app")
        assert "x-probe" not in other.headers  # the app's own answers carry its own headers
        assert (not_ready.status_code, not_ready.json()) == (
            503,
            {"status": "not ready", "nats": True, "view": False},
        )
    assert steps == ["worker started", "app started", "app stopped", "worker stopped"]
    assert shell.nc is not None
    assert shell.nc.is_closed
