"""The gateway's access log and request id (issue 23): one `http_request` line per request with method,
path (no query), status, duration and request id; `X-Request-ID` accepted when safe and echoed, else
replaced by a new one; the id is on every log line the request writes.

The lines are read as the process writes them: JSON through the service's own logging setup.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from fmcsa_gateway.access_log import AccessLog
from fmcsa_gateway.app import create_app
from fmcsa_gateway.settings import Settings
from fmcsa_runtime.logging import configure_logging


@pytest.fixture
def json_logs() -> Iterator[Any]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, structlog.get_config())
    configure_logging(service="gateway", level="INFO", json=True)
    written = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)  # the service's handler and formatter, writing here instead of stderr

    def lines() -> list[dict[str, Any]]:
        text = written.getvalue()
        written.seek(0)
        written.truncate()
        return [json.loads(line) for line in text.splitlines()]

    yield lines
    root.handlers[:], level, config = saved
    root.setLevel(level)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()


def _gateway(tmp_path: Path) -> AccessLog:
    settings = Settings(
        data_dir=tmp_path, status_database_url=f"sqlite:///{tmp_path / 'status.sqlite3'}"
    )  # routes that need the bus are not called: /health and an unknown path answer without it
    return AccessLog(create_app(settings))


async def test_each_request_logs_one_access_line_and_echoes_a_safe_request_id(
    tmp_path: Path, json_logs: Any
) -> None:
    transport = httpx.ASGITransport(app=_gateway(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        ok = await client.get("/health?webKey=secret-in-query", headers={"X-Request-ID": "abc-123_x.y"})
        missing = await client.get("/no/such/route", headers={"X-Request-ID": "other-id"})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == "abc-123_x.y"
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "other-id"
    access = [line for line in json_logs() if line["event"] == "http_request"]
    assert [(a["method"], a["path"], a["status"], a["request_id"]) for a in access] == [
        ("GET", "/health", 200, "abc-123_x.y"),
        ("GET", "/no/such/route", 404, "other-id"),
    ]
    assert all(isinstance(a["duration_ms"], float) and a["duration_ms"] >= 0 for a in access)
    assert "secret-in-query" not in json.dumps(access)


@pytest.mark.parametrize(
    "offered",
    ["", "x" * 65, "has space", "new\nline", 'quote"', "semi;colon", "ünicode"],
)
async def test_an_unsafe_or_missing_request_id_is_replaced_by_a_new_one(
    offered: str, tmp_path: Path, json_logs: Any
) -> None:
    transport = httpx.ASGITransport(app=_gateway(tmp_path))
    headers = [(b"x-request-id", offered.encode())] if offered else []
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        first = await client.get("/health", headers=headers)
        second = await client.get("/health", headers=headers)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert offered not in ids
    assert ids[0] != ids[1]
    assert all(len(rid) == 32 and rid.isalnum() for rid in ids)
    access = [line for line in json_logs() if line["event"] == "http_request"]
    assert [a["request_id"] for a in access] == ids


async def test_every_line_a_request_logs_carries_its_request_id(json_logs: Any) -> None:
    inner_log = structlog.get_logger("inner")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        inner_log.info("handling", step=1)
        await send({"type": "http.response.start", "status": 204, "headers": [(b"x-request-id", b"spoof")]})
        inner_log.info("handled", step=2)
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=AccessLog(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/anything", headers={"X-Request-ID": "req-42"})
    assert answer.headers.get_list("x-request-id") == ["req-42"]  # the app's own header is replaced
    lines = json_logs()
    assert [(line["event"], line.get("request_id")) for line in lines] == [
        ("handling", "req-42"),
        ("handled", "req-42"),
        ("http_request", "req-42"),
    ]
    structlog.get_logger("after").info("outside")
    assert "request_id" not in json_logs()[0]  # unbound once the request is over
