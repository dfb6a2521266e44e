"""Invariants 6 and 7 at the edge: a value that is not a 1-8 digit DOT number (SoQL injection included)
answers 422 with the reason as a problem document, wherever it enters, and nothing reaches the bus."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from fmcsa_runtime.tokens import Role

BAD_DOTS = [
    "1' OR '1'='1",
    "123 OR 1=1",
    "123) OR (dot_number > 0",
    "123'; DROP TABLE status_company; --",
    "123&$where=1=1",
    "123&$limit=50000",
    "$select=*",
    "dot_number > 0",
    "123456789",
    "0",
    "00000000",
    "-5",
    "+5",
    "12.5",
    "1e5",
    "0x1f",
    "\uff11\uff12\uff13"  # full-width digits,
    " 123",
    "123 ",
    "12 3",
    "123\n",
    "*",
    ">",
    "fmcsa.evt.>",
    "%00",
    "",
]


@pytest.mark.parametrize("dot", BAD_DOTS)
async def test_a_bad_dot_in_any_body_is_422_and_publishes_nothing(
    lone_gateway: Any, bearer: Any, dot: str
) -> None:
    admin = bearer(Role.ADMIN)
    for path, body in [
        ("/api/companies", {"dot_number": dot}),
        ("/api/sync/trigger", {"dot_numbers": ["123", dot]}),
    ]:
        answer = await lone_gateway.client.post(path, json=body, headers=admin)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 422
        assert "DOT number" in problem["detail"]
        assert problem["errors"]
    if dot.strip() != "123":  # the page's form trims what people type around a number
        answer = await lone_gateway.client.post(
            "/ui/companies", data={"dot_number": dot or "x"}, headers=admin
        )
        assert answer.status_code == 422
        assert "DOT number" in answer.text
    assert await lone_gateway.events() == []


@pytest.mark.parametrize("dot", [d for d in BAD_DOTS if d.strip() and "\n" not in d])
async def test_a_bad_dot_in_a_path_or_query_is_422(lone_gateway: Any, bearer: Any, dot: str) -> None:
    admin = bearer(Role.ADMIN)
    quoted = quote(dot, safe="")
    for method, path in [
        ("GET", f"/api/companies/{quoted}/status"),
        ("DELETE", f"/api/companies/{quoted}"),
        ("GET", f"/api/sync/log?dot={quoted}"),
        ("GET", f"/ui/companies/{quoted}"),
    ]:
        answer = await lone_gateway.client.request(method, path, headers=admin)
        assert answer.status_code in (404, 422), (
            method,
            path,
            answer.text,
        )  # 404: the path itself does not match
        assert answer.headers["content-type"] == "application/problem+json"
        if answer.status_code == 422:
            assert "DOT number" in answer.json()["detail"]
    assert await lone_gateway.events() == []


async def test_a_canonical_dot_is_what_reaches_the_event(lone_gateway: Any, bearer: Any) -> None:
    admin = bearer(Role.ADMIN)
    assert (
        await lone_gateway.client.post("/api/companies", json={"dot_number": "00000042"}, headers=admin)
    ).status_code == 201
    assert (
        await lone_gateway.client.post("/api/companies", json={"dot_number": 43}, headers=admin)
    ).status_code == 201
    subjects = [subject for subject, _, _ in await lone_gateway.events()]
    assert subjects == ["fmcsa.evt.company_registered.42", "fmcsa.evt.company_registered.43"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dot_number": "1", "extra": True}, "extra"),
        ({"name": "no dot"}, "dot_number"),
        ({"dot_number": "1", "name": "x" * 201}, "name"),
        ({"dot_number": True}, "dot_number"),
        ({"dot_number": None}, "dot_number"),
    ],
)
async def test_other_bad_bodies_name_the_field(
    lone_gateway: Any, bearer: Any, body: dict[str, Any], field: str
) -> None:
    answer = await lone_gateway.client.post("/api/companies", json=body, headers=bearer(Role.ADMIN))
    assert answer.status_code == 422
    assert any(field in e["field"] or field in e["reason"] for e in answer.json()["errors"]), answer.json()


async def test_a_body_that_is_not_json_is_422(lone_gateway: Any, bearer: Any) -> None:
    answer = await lone_gateway.client.post(
        "/api/companies",
        content=b"{not json",
        headers={**bearer(Role.ADMIN), "content-type": "application/json"},
    )
    assert answer.status_code in (400, 422)
    assert answer.headers["content-type"] == "application/problem+json"
