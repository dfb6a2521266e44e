"""`GET /api/events` over a real HTTP server: a change arrives only after the status view applied it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from fmcsa_runtime.tokens import Role


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
        elif line == "":
            if data:
                yield event, json.loads(data)
            event, data = "message", ""


async def test_a_page_hears_of_a_change_after_the_view_has_it(served_gateway: Any, bearer: Any) -> None:
    admin = bearer(Role.ADMIN, "watcher")
    async with (
        httpx.AsyncClient(base_url=served_gateway.url, timeout=30) as client,
        client.stream("GET", "/api/events", headers=admin) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream)
        kind, hello = await anext(events)
        assert kind == "hello"
        assert hello["position"] >= 0
        answer = await client.post("/api/companies", json={"dot_number": "314"}, headers=admin)
        assert answer.status_code == 201
        kind, change = await anext(events)
        assert (kind, change["type"], change["dot"]) == ("change", "company_registered", "314")
        status = await client.get("/api/companies/314/status", headers=admin)
        assert status.status_code == 200, "the change was announced before the view applied it"
        answer = await client.post(
            "/api/sync/trigger", json={"dot_numbers": ["314"], "sources": ["csa"]}, headers=admin
        )
        assert answer.status_code == 202
        kind, change = await anext(events)
        assert (change["type"], change["dot"], change["source"]) == ("sync_requested", "314", "csa")
        status = (await client.get("/api/companies/314/status", headers=admin)).json()
        assert status["sources"]["csa"]["state"] == "requested"


async def test_the_stream_needs_a_viewer_token_or_the_read_cookie(served_gateway: Any, bearer: Any) -> None:
    async with httpx.AsyncClient(base_url=served_gateway.url, timeout=30) as client:
        assert (await client.get("/api/events")).status_code == 401
        token = bearer(Role.VIEWER)["Authorization"].split(" ", 1)[1]
        async with client.stream("GET", "/api/events", cookies={"fmcsa_token": token}) as stream:
            assert stream.status_code == 200
            kind, _ = await anext(sse_events(stream))
            assert kind == "hello"


async def test_a_page_that_reconnects_gets_what_it_missed_from_its_last_event_id(
    served_gateway: Any, bearer: Any
) -> None:
    """The EventSource sends the last change's id (its stream sequence) as `Last-Event-ID` when it
    reconnects: the stream starts with the changes made while it was away."""
    admin = bearer(Role.ADMIN, "watcher")
    async with httpx.AsyncClient(base_url=served_gateway.url, timeout=30) as client:
        async with client.stream("GET", "/api/events", headers=admin) as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "hello"
            assert (await client.post("/api/companies", json={"dot_number": "401"}, headers=admin)).is_success
            kind, seen = await anext(events)
            assert (kind, seen["dot"]) == ("change", "401")
        # away: a change happens meanwhile
        assert (await client.post("/api/companies", json={"dot_number": "402"}, headers=admin)).is_success
        resumed = {**admin, "Last-Event-ID": str(seen["seq"])}
        async with client.stream("GET", "/api/events", headers=resumed) as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "hello"
            kind, missed = await anext(events)
            assert (kind, missed["type"], missed["dot"]) == ("change", "company_registered", "402")
            assert missed["seq"] > seen["seq"]
