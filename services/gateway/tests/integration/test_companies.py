"""Companies through the gateway and the real projector: register (idempotent), import, remove, list."""

from __future__ import annotations

from typing import Any

from fmcsa_events.models import CompanyRegistered, CompanyRemoved
from fmcsa_runtime.tokens import Role


async def _until_listed(
    gateway: Any, wait_until: Any, admin: dict[str, str], count: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def listed() -> bool:
        nonlocal found
        found = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await gateway.client.get("/api/companies", params=params, headers=admin)).json()
            found += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return len(found) >= count

    await wait_until(listed, what=f"{count} companies listed", within_s=60)
    return found


async def test_registering_is_idempotent_once_the_view_has_the_company(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    admin = bearer(Role.ADMIN, "ops")
    first = await gateway.client.post(
        "/api/companies", json={"dot_number": "0002847193", "name": "Acme"}, headers=admin
    )
    assert first.status_code == 422  # 10 digits: refused, never trimmed
    first = await gateway.client.post(
        "/api/companies", json={"dot_number": "02847193", "name": "Acme"}, headers=admin
    )
    assert first.status_code == 201
    assert first.json()["dot_number"] == "2847193"
    await _until_listed(gateway, wait_until, admin, 1)
    again = await gateway.client.post("/api/companies", json={"dot_number": "2847193"}, headers=admin)
    assert again.status_code == 200
    assert again.json()["created"] is False
    registered = [e for _, e, _ in await gateway.events() if isinstance(e, CompanyRegistered)]
    assert [(e.dot, e.name, e.registered_by) for e in registered] == [("2847193", "Acme", "ops")]

    status = (await gateway.client.get("/api/companies/2847193/status", headers=admin)).json()
    assert status["active"] is True
    assert status["never_synced"] is True
    assert status["syncStatus"] == {
        "lastRun": None,
        "success": False,
        "errors": [],
        "csaScoresLastSync": None,
        "violationsLastSync": None,
        "inspectionsLastSync": None,
        "authorityLastSync": None,
    }


async def test_a_write_is_read_at_once_by_the_next_request(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    """Read your writes: once the projector runs, a 201 means the view shows the company, and an import
    right after a registration counts that DOT as a duplicate (it was registered twice before)."""
    admin = bearer(Role.ADMIN, "ops")
    await gateway.client.post("/api/companies", json={"dot_number": "1"}, headers=admin)
    await _until_listed(gateway, wait_until, admin, 1)  # the projector process has started and folds
    for dot in ("11", "12", "13", "14", "15"):
        created = await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=admin)
        assert created.status_code == 201
        status = await gateway.client.get(f"/api/companies/{dot}/status", headers=admin)
        assert status.status_code == 200, f"{dot}: {status.status_code} right after its 201"
        assert status.json()["active"] is True
    await gateway.client.post("/api/companies", json={"dot_number": "16"}, headers=admin)
    imported = await gateway.client.post(
        "/api/companies/import",
        content=b"dot_number\n16\n17\n",
        headers={**admin, "content-type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert (imported.json()["accepted"], imported.json()["duplicate"]) == (1, 1)
    assert (await gateway.client.get("/api/companies/17/status", headers=admin)).status_code == 200
    removed = await gateway.client.delete("/api/companies/17", headers=admin)
    assert removed.status_code == 200
    assert (await gateway.client.get("/api/companies/17/status", headers=admin)).json()["active"] is False
    registered = [e.dot for _, e, _ in await gateway.events() if isinstance(e, CompanyRegistered)]
    assert sorted(registered) == sorted(["1", "11", "12", "13", "14", "15", "16", "17"])


async def test_a_csv_import_counts_rows_and_lists_invalid_lines(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    admin = bearer(Role.ADMIN)
    await gateway.client.post("/api/companies", json={"dot_number": "5"}, headers=admin)
    await _until_listed(gateway, wait_until, admin, 1)
    csv = "dot_number,name\n1,One\n2,Two\n\n2,Two again\n5,already\nDROP TABLE,x\n3\n1' OR '1'='1,y\n"
    answer = await gateway.client.post(
        "/api/companies/import", content=csv, headers={**admin, "content-type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["rows"], result["accepted"], result["duplicate"], result["invalid"]) == (7, 3, 2, 2)
    assert [(r["line"], r["value"]) for r in result["invalid_rows"]] == [
        (7, "DROP TABLE"),
        (9, "1' OR '1'='1"),
    ]
    listed = await _until_listed(gateway, wait_until, admin, 4)
    assert [c["dot_number"] for c in listed] == ["1", "2", "3", "5"]
    assert listed[0]["name"] == "One"


async def test_json_and_multipart_imports(lone_gateway: Any, bearer: Any) -> None:
    admin = bearer(Role.ADMIN)
    answer = await lone_gateway.client.post(
        "/api/companies/import",
        json=["11", 12, {"dot_number": "13", "name": "T"}, {"dot_number": "x"}],
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["invalid"]) == (3, 1)
    answer = await lone_gateway.client.post(
        "/api/companies/import",
        files={"file": ("carriers.csv", b"21,A\n22,B\n21,C\n", "text/csv")},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["duplicate"]) == (2, 1)
    for body, content_type in [
        (b"{", "application/json"),
        (b'{"a": 1}', "application/json"),
        (b'1,"x', "text/csv"),
    ]:
        answer = await lone_gateway.client.post(
            "/api/companies/import", content=body, headers={**admin, "content-type": content_type}
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    answer = await lone_gateway.client.post(
        "/api/companies/import", files={"other": ("x.csv", b"1\n")}, headers=admin
    )
    assert answer.status_code == 422


async def test_removing_needs_a_registered_company_and_publishes_company_removed(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    admin = bearer(Role.ADMIN, "remover")
    assert (await gateway.client.delete("/api/companies/42", headers=admin)).status_code == 404
    await gateway.client.post("/api/companies", json={"dot_number": "42"}, headers=admin)
    await _until_listed(gateway, wait_until, admin, 1)
    answer = await gateway.client.delete("/api/companies/42", headers=admin)
    assert answer.status_code == 200
    removed = [e for _, e, _ in await gateway.events() if isinstance(e, CompanyRemoved)]
    assert [(e.dot, e.removed_by) for e in removed] == [("42", "remover")]

    async def gone() -> bool:
        page = (await gateway.client.get("/api/companies", headers=admin)).json()
        return page["items"] == []

    await wait_until(gone, what="company 42 off the list")
    status = (await gateway.client.get("/api/companies/42/status", headers=admin)).json()
    assert status["active"] is False


async def test_lists_page_with_limit_and_cursor(gateway: Any, bearer: Any, wait_until: Any) -> None:
    admin = bearer(Role.ADMIN)
    answer = await gateway.client.post(
        "/api/companies/import", json=[str(n) for n in range(100, 112)], headers=admin
    )
    assert answer.json()["accepted"] == 12
    await _until_listed(gateway, wait_until, admin, 12)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = (await gateway.client.get("/api/companies", params=params, headers=admin)).json()
        assert page["limit"] == 5
        seen += [c["dot_number"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(n) for n in range(100, 112)]
    never = (
        await gateway.client.get("/api/companies", params={"never_synced": "true"}, headers=admin)
    ).json()
    assert len(never["items"]) == 12
    failing = (await gateway.client.get("/api/companies", params={"failing": "true"}, headers=admin)).json()
    assert failing["items"] == []
    for bad in (
        {"cursor": "not-a-cursor"},
        {"limit": 0},
        {"limit": 501},
        {"source": "fax"},
        {"failing": "maybe"},
    ):
        answer = await gateway.client.get("/api/companies", params=bad, headers=admin)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
