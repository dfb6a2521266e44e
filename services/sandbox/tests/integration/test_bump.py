from __future__ import annotations

import contextlib
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from fmcsa_sandbox.data import VIOLATIONS_2500_ROWS

DOTS = [str(dot) for dot in range(1_000_001, 1_000_026)]
Start = Callable[..., contextlib.AbstractContextManager[Any]]


def read_all(client: httpx.Client) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for dot in DOTS:
        rows = client.get(
            "/resource/8mt8-2mdr.json", params={"dot_number": dot, "$select": ":id,*", "$limit": "50000"}
        )
        basics = client.get(f"/qc/services/carriers/{dot}/basics", params={"webKey": "sandbox-webkey"})
        safer = client.get(f"/v2/usdot/snapshot/{dot}", headers={"x-api-key": "sandbox-api-key"})
        seen[dot] = {
            "rows": rows.json(),
            "modified": parsedate_to_datetime(rows.headers["Last-Modified"]),
            "measures": [e["basic"]["measureValue"] for e in basics.json()["content"]],
            "safer": safer.json(),
        }
    return seen


def keyed(rows: list[dict[str, str]]) -> dict[tuple[str, ...], str]:
    return {(r["unique_id"], r["viol_code"], r["viol_unit"], r["insp_date"]): r["time_weight"] for r in rows}


def test_a_bump_changes_some_records_adds_some_and_keeps_others(own_sandbox: Start) -> None:
    with own_sandbox({"FMCSA_SANDBOX_DATA_VERSION": "3"}) as sandbox, sandbox.client() as client:
        assert client.get("/_sandbox/stats").json()["data_version"] == 3
        before = read_all(client)
        assert read_all(client) == before  # same version: the same answers
        assert client.post("/_sandbox/bump").json() == {"data_version": 4}
        after = read_all(client)
        large = client.get(
            "/resource/8mt8-2mdr.json", params={"dot_number": VIOLATIONS_2500_ROWS, "$limit": "5000"}
        )
        assert len(large.json()) == 2500
    new = gone = reweighted = unchanged = safer_moved = measures_moved = 0
    for dot in DOTS:
        old, now = keyed(before[dot]["rows"]), keyed(after[dot]["rows"])
        new += len(now.keys() - old.keys())
        gone += len(old.keys() - now.keys())
        reweighted += sum(1 for key in now.keys() & old.keys() if now[key] != old[key])
        unchanged += bool(old) and old == now
        safer_moved += before[dot]["safer"]["latest_update"] != after[dot]["safer"]["latest_update"]
        measures_moved += before[dot]["measures"] != after[dot]["measures"]
        assert after[dot]["modified"] > before[dot]["modified"]
        assert {r[":id"] for r in before[dot]["rows"]}.isdisjoint({r[":id"] for r in after[dot]["rows"]})
    assert new > 0
    assert gone > 0
    assert reweighted > 0
    assert unchanged > 0, "some carriers with rows have nothing new"
    assert 0 < safer_moved < len(DOTS)
    assert measures_moved > 0


def test_a_partial_bump_moves_only_the_named_carriers_and_the_datasets_time(own_sandbox: Start) -> None:
    moved, kept = DOTS[0], DOTS[1]
    with own_sandbox({"FMCSA_SANDBOX_DATA_VERSION": "3"}) as sandbox, sandbox.client() as client:
        before = read_all(client)
        view = client.get("/api/views/8mt8-2mdr.json").json()["rowsUpdatedAt"]
        answer = client.post("/_sandbox/bump", json={"dots": [int(moved)]})
        assert answer.json() == {"data_version": 3, "carriers_ahead": 1}
        assert client.post("/_sandbox/bump", json={"dots": "all"}).status_code == 400
        partial = read_all(client)
        assert client.get("/api/views/8mt8-2mdr.json").json()["rowsUpdatedAt"] > view
        both = client.get(
            "/resource/8mt8-2mdr.json",
            params={"$where": f"dot_number IN ('{moved}', '{kept}')", "$select": ":id,:updated_at,*"},
        ).json()
        assert client.post("/_sandbox/bump").json() == {"data_version": 4}
        after = read_all(client)
    assert partial[kept]["modified"] > before[kept]["modified"]  # the dataset's, not the carrier's
    assert {**partial[kept], "modified": None} == {**before[kept], "modified": None}
    for part in ("rows", "measures", "safer"):
        assert partial[moved][part] == after[moved][part]  # served as the next version serves it
    assert partial[moved]["rows"] != before[moved]["rows"]
    updated = {r["dot_number"]: r[":updated_at"] for r in both}
    assert updated[moved] > updated[kept]
