"""Issue 20 at the edge: a control character (NUL, tab, line breaks, ESC, DEL...) in any free text
answers 422 with the reason (never 201, never 500), an import refuses just that row, and nothing
that holds one reaches the bus. PostgreSQL refuses a NUL in text, so one accepted would stop the
projector; values that only filter a read are checked as well, for the same reason."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from fmcsa_events.models import CompanyRegistered
from fmcsa_runtime.tokens import Role

CONTROLS = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"]
SECRET = "0123456789abcdef-secret"


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    reasons = " ".join(f"{e['field']} {e['reason']}" for e in problem["errors"])
    assert "control character" in reasons, problem
    assert field in reasons, problem


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
async def test_a_control_character_in_any_free_text_field_is_422(
    lone_gateway: Any, bearer: Any, char: str
) -> None:
    admin, client = bearer(Role.ADMIN), lone_gateway.client
    name = f"ACME{char}Trucking"
    _refused(
        await client.post("/api/companies", json={"dot_number": "123", "name": name}, headers=admin), "name"
    )
    answer = await client.put("/api/schedules/csa", json={"cron": f"0 *{char}* * *"}, headers=admin)
    _refused(answer, "cron")
    destination = {"url": f"http://127.0.0.1:9/hook{char}path", "secret": SECRET}
    rule = {"kinds": ["crashes_added"], "destinations": [destination]}
    _refused(await client.put("/api/alert-rules/crashes", json=rule, headers=admin), "url")
    destination = {"url": "http://127.0.0.1:9/hook", "secret": f"{SECRET}{char}x"}
    rule = {"kinds": ["crashes_added"], "destinations": [destination]}
    answer = await client.put("/api/alert-rules/crashes", json=rule, headers=admin)
    _refused(answer, "secret")
    assert SECRET not in answer.text  # the reason names the character, never the secret
    # the admin page's form: the same model, its reason in the page (the form trims the ends)
    answer = await client.post("/ui/companies", data={"dot_number": "124", "name": name}, headers=admin)
    assert answer.status_code == 422
    assert "control character" in answer.text
    assert await lone_gateway.events() == []


async def test_an_import_refuses_each_row_whose_name_holds_a_control_character(
    lone_gateway: Any, bearer: Any
) -> None:
    admin, client = bearer(Role.ADMIN), lone_gateway.client
    rows = [{"dot_number": "101", "name": "Bad\u0000Name"}, {"dot_number": "102", "name": "Fine Name"}]
    answer = await client.post("/api/companies/import", json=rows, headers=admin)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["accepted"], result["invalid"]) == (1, 1)
    [row] = result["invalid_rows"]
    assert row["line"] == 1  # the item's place in the list
    assert "control character (U+0000)" in row["reason"]
    csv = 'dot_number,name\n103,Bad\x00Name\n104,"Two\nLines"\n105,Tab\tName\n106,Fine\n'
    answer = await client.post(
        "/api/companies/import", content=csv.encode(), headers={**admin, "content-type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["accepted"], result["invalid"]) == (1, 3)
    assert [r["value"] for r in result["invalid_rows"]] == ["103", "104", "105"]
    assert all("control character" in r["reason"] for r in result["invalid_rows"])
    answer = await client.post(
        "/api/companies/import",
        files={"file": ("companies.csv", b"107,Bad\x7fName\n108,Fine\n", "text/csv")},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["invalid"]) == (1, 1)
    events = [event for _, event, _ in await lone_gateway.events()]
    assert [(e.dot, e.name) for e in events if isinstance(e, CompanyRegistered)] == [
        ("102", "Fine Name"),
        ("106", "Fine"),
        ("108", "Fine"),
    ]


async def test_a_control_character_in_a_read_filter_is_refused_before_the_store(
    lone_gateway: Any, bearer: Any
) -> None:
    viewer, client = bearer(Role.VIEWER), lone_gateway.client
    for query, field in [("rule=a%00b", "query.rule"), ("before=%00", "query.before")]:
        answer = await client.get(f"/api/deliveries?{query}", headers=viewer)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field
    assert (await client.get("/api/deliveries/ab%00cd", headers=viewer)).status_code == 404
    assert (await client.get("/ui/deliveries?rule=a%00b", headers=viewer)).status_code == 422
    cursor = base64.urlsafe_b64encode(json.dumps(["l", "2026-11-23T06:00:00+00:00", "x\u0000"]).encode())
    answer = await client.get(f"/api/sync/log?cursor={cursor.decode().rstrip('=')}", headers=viewer)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "query.cursor"
