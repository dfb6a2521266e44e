"""Hardening against hostile clients (the gateway in-process and, for connection limits, under uvicorn):
every malformed request answers 4xx (never 500), bodies are capped per route before they are read,
every answer carries the security headers, expired tokens are 401 and end the live stream, manual
triggers name registered companies only and are rate limited per subject, and slow or surplus
connections are closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_gateway.auth import VERIFIED
from fmcsa_runtime.tokens import Role, mint

SECRET = "gateway-integration-tests-secret-0123456789"  # the conftest's


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of a text/event-stream, as they arrive."""
    event, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
        elif line == "" and data:
            yield event, data
            event, data = "message", ""


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
LONG_NUMBER = b"[" + b"7" * 5_000 + b"]"


# --- settings -------------------------------------------------------------------------------------------


def test_the_gateway_refuses_to_start_with_a_short_jwt_secret(tmp_path: Path) -> None:
    short = "only-twenty-one-chars"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")}
    env |= {"FMCSA_JWT_SECRET": short, "FMCSA_DATA_DIR": str(tmp_path), "FMCSA_GATEWAY_PORT": "9"}
    ran = subprocess.run(
        [sys.executable, "-m", "fmcsa_gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 2, ran.stderr[-500:]
    assert "FMCSA_JWT_SECRET must be at least 32 characters" in ran.stderr
    assert short not in ran.stderr + ran.stdout  # the reason, never the value


# --- malformed input: 4xx, never 500 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/companies/import"),
        ("POST", "/api/companies"),
        ("POST", "/api/sync/trigger"),
        ("PUT", "/api/alert-rules/deep"),
        ("PUT", "/api/schedules/csa"),
    ],
)
@pytest.mark.parametrize("body", [DEEP_JSON, LONG_NUMBER], ids=["deep", "long-number"])
async def test_deep_json_and_huge_numbers_answer_4xx(
    lone_gateway: Any, bearer: Any, method: str, path: str, body: bytes
) -> None:
    answer = await lone_gateway.client.request(
        method, path, content=body, headers={**bearer(Role.ADMIN), "content-type": "application/json"}
    )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await lone_gateway.events("fmcsa.evt.company_registered") == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/static/x%00.png", 404),
        ("/static/app.js%00", 404),
        ("/static/%0a", 404),
        ("/api/companies/1%00/status", 422),
        ("/ui/companies/1%0a", 422),
        ("/api/alert-rules/x%00", 422),
    ],
)
async def test_a_control_character_in_the_path_is_4xx(
    lone_gateway: Any, bearer: Any, path: str, status: int
) -> None:
    answer = await lone_gateway.client.get(path, headers=bearer(Role.VIEWER))
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["x-content-type-options"] == "nosniff"  # the security headers are there too


async def test_a_json_import_that_would_expand_is_refused_before_it_is_read(
    lone_gateway: Any, bearer: Any
) -> None:
    """500,000 empty arrays in 1.5 MB: refused by counting, before a single item is built."""
    body = b"[" + b"[]," * 499_999 + b"[]]"
    answer = await lone_gateway.client.post(
        "/api/companies/import",
        content=body,
        headers={**bearer(Role.ADMIN), "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text[:300]
    assert "values a row" in answer.json()["detail"]


# --- body limits per route ----------------------------------------------------------------------------


async def test_bodies_are_capped_per_route_with_413(gateway_with: Any) -> None:
    admin = {"Authorization": "Bearer " + mint(SECRET, role=Role.ADMIN, subject="limits")}
    async with gateway_with(request_max_bytes=4096, import_max_bytes=64 * 1024) as gateway:
        rows = "dot_number\n" + "\n".join(str(n) for n in range(1, 5001))  # 34 KB: over 4 KiB, under 64
        answer = await gateway.client.post(
            "/api/companies/import", content=rows, headers={**admin, "content-type": "text/csv"}
        )
        assert answer.status_code == 200, answer.text[:300]
        assert answer.json()["accepted"] == 5000
        big = json.dumps({"dot_number": "1", "name": "x" * 5000})
        answer = await gateway.client.post(
            "/api/companies", content=big, headers={**admin, "content-type": "application/json"}
        )
        assert answer.status_code == 413
        too_big = rows + "\n" + "\n".join(str(n) for n in range(10_000, 20_000))
        answer = await gateway.client.post(
            "/api/companies/import", content=too_big, headers={**admin, "content-type": "text/csv"}
        )
        assert answer.status_code == 413
        answer = await gateway.client.post(
            "/api/companies/import",
            files={"file": ("rows.csv", too_big.encode(), "text/csv")},
            headers=admin,
        )
        assert answer.status_code == 413
        answer = await gateway.client.post("/ui/companies", data={"dot_number": "1", "name": "y" * 5000})
        assert answer.status_code in (401, 413)  # no token: never past the door either way
        answer = await gateway.client.post(
            "/ui/companies", data={"dot_number": "1", "name": "y" * 5000}, headers=admin
        )
        assert answer.status_code == 413


# --- security headers ---------------------------------------------------------------------------------


async def test_every_answer_carries_the_security_headers(lone_gateway: Any, bearer: Any) -> None:
    viewer = bearer(Role.VIEWER)
    answers = {
        "page": await lone_gateway.client.get("/"),
        "json": await lone_gateway.client.get("/api/companies", headers=viewer),
        "401": await lone_gateway.client.get("/api/companies"),
        "404": await lone_gateway.client.get("/nowhere"),
        "fragment": await lone_gateway.client.get("/ui/companies", headers=viewer),
        "swagger": await lone_gateway.client.get("/schema"),
        "static": await lone_gateway.client.get("/static/app.js"),
        # answered by the worker shell, not the Litestar app
        "health": await lone_gateway.client.get("/health"),
        "ready": await lone_gateway.client.get("/ready"),
        "metrics": await lone_gateway.client.get("/metrics"),
    }
    for what, answer in answers.items():
        csp = answer.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp, what
        assert "frame-ancestors 'none'" in csp, what
        assert "unsafe-eval" not in csp, what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("referrer-policy") == "no-referrer", what
    for what in ("page", "json", "401", "404", "fragment", "health", "ready", "metrics"):
        assert answers[what].headers["cache-control"] == "no-store", what
    assert answers["static"].headers.get("cache-control") != "no-store"


async def test_the_swagger_page_runs_no_inline_script(lone_gateway: Any) -> None:
    html = (await lone_gateway.client.get("/schema")).text
    assert "SwaggerUIBundle(" not in html  # the call lives in /static/swagger-init.js
    assert '<script src="/static/swagger-init.js"></script>' in html
    assert (await lone_gateway.client.get("/static/swagger-init.js")).status_code == 200


# --- tokens: expired is 401, and the live stream ends with its token --------------------------------------


async def test_a_token_expired_within_the_old_leeway_is_401(lone_gateway: Any) -> None:
    now = datetime.now(UTC)
    token = mint(
        SECRET, role=Role.ADMIN, subject="late", ttl=timedelta(seconds=60), now=now - timedelta(seconds=70)
    )
    VERIFIED.clear()
    answer = await lone_gateway.client.get("/api/companies", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401, answer.text[:300]
    assert "expired" in answer.json()["detail"]
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_the_live_stream_ends_when_its_token_expires(served_with: Any) -> None:
    token = mint(SECRET, role=Role.VIEWER, subject="short", ttl=timedelta(seconds=3))
    async with served_with() as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        started = time.monotonic()
        async with client.stream(
            "GET", "/api/events", headers={"Authorization": f"Bearer {token}"}
        ) as stream:
            assert stream.status_code == 200
            kinds = [kind async for kind, _ in sse_events(stream)]  # ends when the server closes it
        took = time.monotonic() - started
        assert kinds == ["hello", "expired"]
        assert took < 15, f"the stream outlived its token by {took:.1f}s"  # a bound, not a performance claim
        answer = await client.get("/api/events", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401


# --- the page's session cookie ---------------------------------------------------------------------------


async def test_the_session_cookie_is_httponly_secure_strict_and_scoped_to_the_stream(
    lone_gateway: Any, bearer: Any
) -> None:
    answer = await lone_gateway.client.post("/ui/session", headers=bearer(Role.VIEWER))
    assert answer.status_code == 204
    cookie = answer.headers["set-cookie"]
    parts = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "path", "max-age", "samesite"} <= parts, cookie
    assert "Path=/api/events" in cookie
    assert "SameSite=Strict" in cookie or "samesite=strict" in cookie.lower()
    token = bearer(Role.ADMIN)["Authorization"].split(" ", 1)[1]
    # the cookie authenticates the stream's path alone: not another read, not a mutation
    lone_gateway.client.cookies.set("fmcsa_token", token)
    try:
        assert (await lone_gateway.client.get("/api/schedules")).status_code == 401
        assert (await lone_gateway.client.post("/ui/session")).status_code == 401
    finally:
        lone_gateway.client.cookies.clear()
    answer = await lone_gateway.client.delete("/ui/session", headers=bearer(Role.VIEWER))
    assert answer.status_code == 204
    assert "Max-Age=0" in answer.headers["set-cookie"]


# --- manual triggers --------------------------------------------------------------------------------------


async def test_a_trigger_names_registered_companies_only(gateway: Any, bearer: Any, wait_until: Any) -> None:
    operator, admin = bearer(Role.OPERATOR), bearer(Role.ADMIN)
    # the projector is up once it folded a first registration
    assert (
        await gateway.client.post("/api/companies", json={"dot_number": "3030303"}, headers=admin)
    ).is_success

    async def folded() -> bool:
        return (await gateway.client.get("/api/companies/3030303/status", headers=admin)).status_code == 200

    await wait_until(folded, what="the projector's first registration", within_s=30)
    answer = await gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["4040404"]}, headers=operator
    )
    assert answer.status_code == 404, answer.text
    assert "4040404" in answer.json()["detail"]
    assert await gateway.events("fmcsa.evt.sync_requested") == []
    # registered a moment ago: the view may lag its PubAck, and the trigger waits for it
    assert (
        await gateway.client.post("/api/companies", json={"dot_number": "4040404"}, headers=admin)
    ).status_code == 201
    answer = await gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["4040404"], "sources": ["csa"]}, headers=operator
    )
    assert answer.status_code == 202, answer.text
    answer = await gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["4040404", "5050505"]}, headers=operator
    )
    assert answer.status_code == 404
    assert len(await gateway.events("fmcsa.evt.sync_requested")) == 1


async def test_a_trigger_names_at_most_the_cap(gateway_with: Any) -> None:
    operator = {"Authorization": "Bearer " + mint(SECRET, role=Role.OPERATOR, subject="many")}
    async with gateway_with(trigger_max_dots=3) as gateway:
        answer = await gateway.client.post(
            "/api/sync/trigger", json={"dot_numbers": ["1", "2", "3", "4"]}, headers=operator
        )
        assert answer.status_code == 422
        assert "at most 3" in answer.json()["detail"]
        assert await gateway.events("fmcsa.evt.sync_requested") == []


async def test_triggers_are_rate_limited_per_subject(gateway_with: Any) -> None:
    def operator(subject: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint(SECRET, role=Role.OPERATOR, subject=subject)}

    async with gateway_with(trigger_per_minute=2) as gateway:
        body = {"dot_numbers": ["6060606"]}  # not registered: 404, but each try counts
        first = await gateway.client.post("/api/sync/trigger", json=body, headers=operator("alice"))
        second = await gateway.client.post(
            "/ui/sync/trigger", data={"dot_number": "6060606"}, headers=operator("alice")
        )
        third = await gateway.client.post("/api/sync/trigger", json=body, headers=operator("alice"))
        assert (first.status_code, third.status_code) == (404, 429), (first.text, third.text)
        assert second.status_code != 429
        assert third.headers["content-type"].startswith("application/problem+json")
        other = await gateway.client.post("/api/sync/trigger", json=body, headers=operator("bob"))
        assert other.status_code == 404  # another subject has its own budget
        reads = await gateway.client.get("/api/sync/log", headers=operator("alice"))
        assert reads.status_code == 200  # reads are not limited


# --- connections under uvicorn ------------------------------------------------------------------------------


def _drip(port: int, *, every_s: float, for_s: float) -> tuple[bool, float]:
    """Send a request head one header at a time; True and when if the server closed the connection."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=every_s) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sent = 0
        while time.monotonic() - started < for_s:
            try:
                if sock.recv(1024) == b"":
                    return True, time.monotonic() - started
            except TimeoutError:
                pass
            except ConnectionResetError:
                return True, time.monotonic() - started
            try:
                sock.sendall(b"X-Drip-%d: x\r\n" % sent)
            except (BrokenPipeError, ConnectionResetError):
                return True, time.monotonic() - started
            sent += 1
    return False, time.monotonic() - started


async def test_a_connection_dripping_its_headers_is_closed(served_with: Any) -> None:
    async with served_with(header_timeout_s=1.0, keep_alive_s=1) as url:
        port = int(url.rsplit(":", 1)[1])
        closed, after = await asyncio.to_thread(_drip, port, every_s=0.2, for_s=8.0)
        assert closed, "a connection dripping headers for 8 s was still open"
        assert after < 5.0, f"closed after {after:.1f}s"
        print(f"a dripping connection was closed after {after:.2f}s (header timeout 1 s)")  # for the report
        # an honest client is unaffected
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/health")).status_code == 200


async def test_an_oversized_request_head_is_refused(served_with: Any) -> None:
    """A head still incomplete past `max_header_bytes` is answered 400 and closed (not buffered on)."""
    async with served_with(max_header_bytes=4096) as url:
        port = int(url.rsplit(":", 1)[1])

        def send_big_head() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 8192)
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
                return answer

        answer = await asyncio.to_thread(send_big_head)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


async def test_connections_beyond_the_cap_answer_503(served_with: Any) -> None:
    async with served_with(max_connections=2) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        try:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                assert (await client.get("/health")).status_code == 503
        finally:
            for sock in idle:
                sock.close()


async def test_a_path_with_a_leading_space_is_400_on_the_wire(served_with: Any) -> None:
    async with served_with() as url:
        port = int(url.rsplit(":", 1)[1])

        def ask(target: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
                return answer

        for target, status in ((b"%20/api/companies", b"400"), (b"/static/x%00.png", b"404")):
            answer = await asyncio.to_thread(ask, target)
            assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
