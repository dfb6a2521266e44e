"""The daily difference datasets (FMCSA's Motus L&I changes of the latest day): a bump lists the carriers it
changed and advances their `rowsUpdatedAt`; the rows are read like any Socrata dataset."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx

from fmcsa_sandbox.socrata import DAILY_DIFFERENCES

Start = Callable[..., contextlib.AbstractContextManager[Any]]
TOKEN = {"X-App-Token": "sandbox-app-token"}


def listed(client: httpx.Client, dataset: str) -> set[str]:
    params = {"$select": "usdot_number", "$order": ":id", "$limit": "1000"}
    answer = client.get(f"/resource/{dataset}.json", params=params, headers=TOKEN)
    assert answer.status_code == 200, answer.text
    return {row["usdot_number"] for row in answer.json()}


def updated(client: httpx.Client, dataset: str) -> int:
    answer = client.get(f"/api/views/{dataset}.json", headers=TOKEN)
    assert answer.status_code == 200
    value: int = answer.json()["rowsUpdatedAt"]
    return value


def test_a_bump_lists_the_carriers_it_changed_and_advances_the_publication(own_sandbox: Start) -> None:
    ids = [d.id for d in DAILY_DIFFERENCES]
    assert ids == ["dm5j-zc6c", "x96h-evps", "nakq-58th", "e67p-xyd5"]
    with own_sandbox() as sandbox, sandbox.client() as client:
        assert all(listed(client, d) == set() for d in ids)  # nothing published since the start
        start = {d: updated(client, d) for d in ids}
        client.get("/qc/services/carriers/1000003", params={"webKey": "sandbox-webkey"})
        client.post("/_sandbox/bump", json={"dots": [1000001, 1000002]}).raise_for_status()
        assert listed(client, "nakq-58th") == {"1000001", "1000002"}
        assert listed(client, "dm5j-zc6c") <= {"1000001", "1000002"}
        first = {d: updated(client, d) for d in ids}
        assert all(first[d] > start[d] for d in ids)
        client.post("/_sandbox/bump", json={"dots": [1000005]}).raise_for_status()
        assert listed(client, "nakq-58th") == {"1000005"}, "only the latest publication's changes"
        assert all(updated(client, d) > first[d] for d in ids)
        client.post("/_sandbox/bump").raise_for_status()
        assert listed(client, "nakq-58th") == {"1000003"}, "a full bump: every carrier QCMobile served"
        rows = client.get("/resource/x96h-evps.json", headers=TOKEN).json()
        assert rows
        assert set(rows[0]) >= {"usdot_number", "policy_no", "insurance_company_name"}
        stats = client.get("/_sandbox/stats").json()
        assert stats["daily_difference"]["carriers"] == 1
        assert stats["sources"]["authority"]["admitted"] > 0, "counted against the authority source"
