"""The authority client over real HTTP against the sandbox process: a healthy carrier, every fault DOT,
and the store on SQLite (and PostgreSQL when configured) with the scripted DOTs across a bump.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest

from fmcsa_events.models import ErrorKind
from fmcsa_source_authority.domain import AuthorityFetch, AuthorityStatus, summarize
from fmcsa_source_authority.store import Store
from fmcsa_source_authority.upstream import AuthorityClient
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.outbox import changes_for

MakeClient = Callable[..., AuthorityClient]
AdminOf = Callable[[str], Any]  # the root conftest's SandboxAdmin

HEALTHY = "2847193"
UNKNOWN = "99000001"
ALWAYS_500 = "99100002"
FIRST_TWO_429 = "99200003"
HANGS = "99300002"
MAINTENANCE = "99400002"


def failed(result: object, kind: ErrorKind, *, retryable: bool) -> Failure:
    assert isinstance(result, Failure), result
    assert (result.kind, result.retryable) == (kind, retryable), result
    return result


async def test_a_healthy_carrier_syncs_in_five_calls(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    result = await make_client(sandbox_url).fetch(HEALTHY)
    assert isinstance(result, AuthorityFetch)
    assert result.profile.common is AuthorityStatus.ACTIVE
    assert result.profile.bipd_required == 750_000
    assert result.profile.bipd_on_file == 1_000_000
    assert result.profile.oos_order is None
    assert [d.docket[:2] for d in result.dockets] == ["MC"]
    assert {f.kind for f in result.filings} >= {"BIPD"}
    assert all(f.coverage and f.coverage % 1000 == 0 for f in result.filings)
    summary = summarize(result)
    assert json.loads(json.dumps(summary)) == summary
    stats = await admin_of(sandbox_url).stats()
    assert stats["sources"]["authority"]["requests"] == 5
    seen = stats["requests_seen"][-5:]
    assert seen[0] == f"/qc/services/carriers/{HEALTHY}?webKey=***"
    assert any(
        path.startswith("/resource/qh9u-swkp.json?") and "dot_number=02847193" in path for path in seen
    )


async def test_an_unknown_carrier_is_not_found_after_one_call(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    failed(await make_client(sandbox_url).fetch(UNKNOWN), ErrorKind.NOT_FOUND, retryable=False)
    assert await admin_of(sandbox_url).requests("authority") == 1


async def test_the_fault_dots(sandbox_url: str, make_client: MakeClient) -> None:
    client = make_client(sandbox_url, inline_retries=1, inline_wait_max_s=2.0)
    failed(await client.fetch(ALWAYS_500), ErrorKind.UPSTREAM_ERROR, retryable=True)
    failed(await client.fetch(MAINTENANCE), ErrorKind.UPSTREAM_ERROR, retryable=True)
    # two 429s with Retry-After: 1, waited in process (2 retries), then served
    patient = make_client(sandbox_url, inline_retries=2, inline_wait_max_s=2.0)
    assert isinstance(await patient.fetch(FIRST_TWO_429), AuthorityFetch)


async def test_a_hang_ends_as_a_timeout_handed_back(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    await admin_of(sandbox_url).faults(hang_s=10.0)
    result = await make_client(sandbox_url, read_timeout_s=0.5, call_timeout_s=1.0).fetch(HANGS)
    timed_out = failed(result, ErrorKind.TIMEOUT, retryable=True)
    assert timed_out.retry_after_s is not None


SCRIPTED = {
    "99700005": ("authority_status_changed", "common", "active", "inactive"),
    "99700006": ("authority_revocation_pending", "common", "active", "pending_revocation"),
    "99700007": ("docket_added", "ff990702", None, "FF990702"),
    "99700008": ("oos_order_issued", "oos_order", None, dict),
    "99700009": ("insurance_filing_added", "cargo_", None, dict),
    "99700010": ("insurance_cancellation_pending", "bipd_", dict, dict),
    "99700011": ("insurance_cancelled", "bipd_", dict, dict),
    "99700012": (
        "insurance_below_required",
        "bipd",
        {"on_file": 750_000, "required": 750_000},
        {"on_file": 500_000, "required": 750_000},
    ),
}


def matches(expected: object, value: object) -> bool:
    return isinstance(value, dict) if expected is dict else value == expected


@pytest.mark.postgres
async def test_the_store_plans_each_scripted_change_across_a_bump(
    sandbox_url: str, make_client: MakeClient, database_url: str, admin_of: AdminOf
) -> None:
    store = await Store.connect(database_url)
    client = make_client(sandbox_url)
    try:
        for dot in SCRIPTED:
            first = await client.fetch(dot)
            assert isinstance(first, AuthorityFetch), first
            baseline = uuid4()
            counts = await store.upsert(first, request_id=baseline)
            assert counts.inserted == counts.fetched
            assert await changes_for(store.engine, baseline) == []
            again = uuid4()
            counts = await store.upsert(first, request_id=again)
            assert counts.unchanged == counts.fetched
            assert await changes_for(store.engine, again) == []
        await admin_of(sandbox_url).bump()
        for dot, (kind, subject, before, after) in SCRIPTED.items():
            fetched = await client.fetch(dot)
            assert isinstance(fetched, AuthorityFetch), fetched
            request = uuid4()
            await store.upsert(fetched, request_id=request)
            changes = await changes_for(store.engine, request)
            assert [c.kind.value for c in changes] == [kind], (dot, changes)
            (change,) = changes
            assert change.subject.startswith(subject)
            assert matches(before, change.before), change
            assert matches(after, change.after), change
    finally:
        await store.close()
