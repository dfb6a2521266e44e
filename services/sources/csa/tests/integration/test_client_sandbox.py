"""The QCMobile client over real HTTP against the sandbox: every error kind, Not Public, the store."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from uuid import uuid4

import pytest

from fmcsa_events.models import Counts, ErrorKind
from fmcsa_runtime.database import create_engine
from fmcsa_source_csa.domain.changes import detect_changes
from fmcsa_source_csa.domain.model import CsaFetch, PercentileStatus
from fmcsa_source_csa.domain.summary import fetch_hashes, summarize
from fmcsa_source_csa.store import Store
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.outbox import changes_for

HEALTHY = "1000001"
UNKNOWN = "99000001"
ALWAYS_500 = "99100001"
MAINTENANCE = "99400001"
NOT_PUBLIC = "99600001"

MakeClient = Callable[..., Any]
AdminOf = Callable[[str], Any]


def failed(result: object, kind: ErrorKind, *, retryable: bool) -> Failure:
    assert isinstance(result, Failure), result
    assert (result.kind, result.retryable) == (kind, retryable), result
    return result


async def test_a_healthy_carrier_syncs_in_two_calls(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    result = await make_client(sandbox_url).fetch(HEALTHY)
    assert isinstance(result, CsaFetch)
    assert result.carrier.dot_number == int(HEALTHY)
    assert result.carrier.legal_name
    assert {b.basics_id for b in result.basics} <= {11, 12, 13, 14, 15, 16, 17}
    assert result.upstream_as_of is not None
    assert result.upstream_as_of.day == 1
    summary = summarize(result)
    assert json.loads(json.dumps(summary)) == summary
    stats = await admin_of(sandbox_url).stats()
    assert stats["sources"]["csa"]["requests"] == 2
    assert stats["requests_seen"][-2:] == [
        f"/qc/services/carriers/{HEALTHY}?webKey=***",
        f"/qc/services/carriers/{HEALTHY}/basics?webKey=***",
    ]


async def test_a_property_carrier_is_not_public_never_zero(sandbox_url: str, make_client: MakeClient) -> None:
    result = await make_client(sandbox_url).fetch(NOT_PUBLIC)
    assert isinstance(result, CsaFetch)
    assert result.basics
    assert {(b.percentile, b.percentile_status) for b in result.basics} == {
        (None, PercentileStatus.NOT_PUBLIC)
    }
    assert {b.intervention_alert.reason for b in result.basics} == {"not_public"}
    assert all(b.measure is not None for b in result.basics)
    basics = summarize(result)["basics"]
    assert isinstance(basics, list)
    assert {(b["percentile"], b["percentile_status"]) for b in basics if isinstance(b, dict)} == {
        (None, "not_public")
    }


async def test_an_unknown_carrier_is_not_found_after_one_call(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    failed(await make_client(sandbox_url).fetch(UNKNOWN), ErrorKind.NOT_FOUND, retryable=False)
    assert await admin_of(sandbox_url).requests("csa") == 1


async def test_a_wrong_web_key_is_not_configured(sandbox_url: str, make_client: MakeClient) -> None:
    result = await make_client(sandbox_url, web_key="not-the-sandbox-key").fetch(HEALTHY)
    failed(result, ErrorKind.NOT_CONFIGURED, retryable=False)


async def test_a_missing_web_key_is_not_configured_and_nothing_is_sent(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    client = make_client(sandbox_url, web_key=None)
    assert client.configured is False
    failed(await client.fetch(HEALTHY), ErrorKind.NOT_CONFIGURED, retryable=False)
    assert await admin_of(sandbox_url).requests("csa") == 0


async def test_an_invalid_dot_is_internal_and_nothing_is_sent(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    failed(await make_client(sandbox_url).fetch("12345678901"), ErrorKind.INTERNAL, retryable=False)
    failed(await make_client(sandbox_url).fetch("1 OR 1=1"), ErrorKind.INTERNAL, retryable=False)
    assert await admin_of(sandbox_url).requests("csa") == 0


async def test_a_lasting_500_is_retried_inline_then_handed_back_with_a_delay(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    result = failed(
        await make_client(sandbox_url, inline_retries=2).fetch(ALWAYS_500),
        ErrorKind.UPSTREAM_ERROR,
        retryable=True,
    )
    assert result.retry_after_s is not None
    assert await admin_of(sandbox_url).requests("csa") == 3


async def test_the_maintenance_page_is_a_retryable_upstream_error(
    sandbox_url: str, make_client: MakeClient
) -> None:
    result = await make_client(sandbox_url, inline_retries=0).fetch(MAINTENANCE)
    assert "maintenance" in failed(result, ErrorKind.UPSTREAM_ERROR, retryable=True).message


async def test_injected_5xx_is_a_retryable_upstream_error(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    await admin_of(sandbox_url).faults(csa_p_5xx=1.0)
    failed(
        await make_client(sandbox_url, inline_retries=1).fetch(HEALTHY),
        ErrorKind.UPSTREAM_ERROR,
        retryable=True,
    )


async def test_injected_429_is_rate_limited_with_a_delay(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    await admin_of(sandbox_url).faults(csa_p_429=1.0)
    result = failed(
        await make_client(sandbox_url, inline_retries=1).fetch(HEALTHY),
        ErrorKind.RATE_LIMITED,
        retryable=True,
    )
    assert result.retry_after_s is not None


async def test_an_injected_truncated_body_is_a_retryable_invalid_response(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    await admin_of(sandbox_url).faults(csa_p_malformed=1.0)
    result = await make_client(sandbox_url, inline_retries=0).fetch(HEALTHY)
    failed(result, ErrorKind.INVALID_RESPONSE, retryable=True)


async def test_a_hung_answer_is_a_timeout(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    await admin_of(sandbox_url).faults(csa_p_hang=1.0, hang_s=30.0)
    started = time.monotonic()
    result = await make_client(sandbox_url, read_timeout_s=0.5).fetch(HEALTHY)
    assert failed(result, ErrorKind.TIMEOUT, retryable=True).retry_after_s is not None
    assert time.monotonic() - started < 5


async def test_a_refused_connection_is_a_retryable_upstream_error(make_client: MakeClient) -> None:
    from fmcsa_embedded import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    result = await make_client(closed, inline_retries=0).fetch(HEALTHY)
    failed(result, ErrorKind.UPSTREAM_ERROR, retryable=True)


async def test_faults_cleared_the_client_recovers(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf
) -> None:
    admin = admin_of(sandbox_url)
    client = make_client(sandbox_url, inline_retries=0)
    await admin.faults(csa_p_5xx=1.0)
    assert isinstance(await client.fetch(HEALTHY), Failure)
    await admin.faults(csa_p_5xx=0.0)
    assert isinstance(await client.fetch(HEALTHY), CsaFetch)


async def test_store_counts_follow_a_sandbox_data_version_bump(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf, database_url: str
) -> None:
    client = make_client(sandbox_url)
    store = await Store.connect(database_url)
    try:
        dots = [str(1000001 + n) for n in range(10)]
        first = [await client.fetch(dot) for dot in dots]
        assert all(isinstance(f, CsaFetch) for f in first)
        inserted = [await store.upsert(f, request_id=uuid4()) for f in first]
        assert all(c.inserted == c.fetched and c.updated == c.unchanged == 0 for c in inserted)
        again = [await store.upsert(await client.fetch(dot), request_id=uuid4()) for dot in dots]
        assert again == [Counts(fetched=c.fetched, unchanged=c.fetched) for c in inserted]

        await admin_of(sandbox_url).bump()
        bumped = [await client.fetch(dot) for dot in dots]
        total_updated = 0
        kinds: Counter[str] = Counter()
        engine = create_engine(database_url)
        try:
            for before, after in zip(first, bumped, strict=True):
                assert isinstance(before, CsaFetch)
                assert isinstance(after, CsaFetch)
                old, new = fetch_hashes(before), fetch_hashes(after)
                expected = Counts(
                    fetched=after.record_count,
                    inserted=len(new.keys() - old.keys()),
                    updated=sum(1 for k in new.keys() & old.keys() if new[k] != old[k]),
                    unchanged=sum(1 for k in new.keys() & old.keys() if new[k] == old[k]),
                )
                held, request = await store.previous(after.dot), uuid4()
                assert await store.upsert(after, request_id=request) == expected
                total_updated += expected.updated
                recorded = await changes_for(engine, request)
                assert recorded == detect_changes(
                    held, after, request_id=request, observed_at=after.retrieved_at
                )
                kinds.update(change.kind.value for change in recorded)
        finally:
            await engine.dispose()
        assert total_updated > 0, "a bump moves some measures (sandbox README)"
        print(f"\nchange facts of one bump over {len(dots)} carriers: {dict(sorted(kinds.items()))}")
    finally:
        await store.close()


async def test_the_sentinel_key_is_in_no_log_failure_or_row(
    sentinel_sandbox_url: str,
    sandbox_url: str,
    sentinel_key: str,
    make_client: MakeClient,
    admin_of: AdminOf,
    database_url: str,
    logging_configured: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fmcsa_embedded import free_port

    caplog.set_level(logging.DEBUG)
    admin = admin_of(sentinel_sandbox_url)
    # one inline retry: its log lines are searched too, without every fault paying for two
    good = make_client(sentinel_sandbox_url, web_key=sentinel_key, read_timeout_s=0.5, inline_retries=1)
    results: list[object] = [
        await good.fetch(dot) for dot in (HEALTHY, NOT_PUBLIC, UNKNOWN, ALWAYS_500, MAINTENANCE)
    ]
    results.append(await good.fetch("not-a-dot"))
    for knob in ("csa_p_5xx", "csa_p_429", "csa_p_malformed", "csa_p_hang"):
        await admin.faults(**{knob: 1.0, "hang_s": 30.0})
        results.append(await good.fetch(HEALTHY))
        await admin.faults(**{knob: 0.0})
    results.append(await make_client(sandbox_url, web_key=sentinel_key).fetch(HEALTHY))  # a wrong key there
    results.append(await make_client(f"http://127.0.0.1:{free_port()}", web_key=sentinel_key).fetch(HEALTHY))

    kinds = {r.kind for r in results if isinstance(r, Failure)}
    # suspect_drop is the store's verdict, not the client's (test_store.py holds it back)
    assert kinds == set(ErrorKind) - {ErrorKind.SUSPECT_DROP}, f"every error path ran: {kinds}"
    fetched = [r for r in results if isinstance(r, CsaFetch)]
    assert len(fetched) == 2
    store = await Store.connect(database_url)
    try:
        for fetch in fetched:
            await store.upsert(fetch, request_id=uuid4())
    finally:
        await store.close()

    texts = [repr(r) for r in results] + [
        json.dumps(asdict(r), default=str) for r in results if isinstance(r, Failure)
    ]
    assert not [t for t in texts if sentinel_key in t]
    assert caplog.records, "the client logged something to search"
    assert sentinel_key not in caplog.text
    assert not [r for r in caplog.records if sentinel_key in r.getMessage()]
    captured = capsys.readouterr()
    assert sentinel_key not in captured.err + captured.out
    assert sentinel_key not in await dump_database(database_url)


async def dump_database(database_url: str) -> str:
    from sqlalchemy import text

    from fmcsa_runtime.database import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = [
                str(row)
                for table in ("csa_carrier", "csa_carrier_history", "csa_basic", "csa_basic_history")
                for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            ]
    finally:
        await engine.dispose()
    assert rows
    return "\n".join(rows)


async def test_at_the_sandbox_rate_no_429_is_served(
    sandbox_url: str, make_client: MakeClient, admin_of: AdminOf, capsys: pytest.CaptureFixture[str]
) -> None:
    rate = 20.0
    admin = admin_of(sandbox_url)
    await admin.faults(csa_rate_per_s=rate)
    await admin.reset()
    client = make_client(sandbox_url, rate_per_s=rate, concurrency=8, inline_retries=0)
    dots = [str(1000001 + n) for n in range(60)]
    started = time.monotonic()
    results = await asyncio.gather(*(client.fetch(dot) for dot in dots))
    elapsed = time.monotonic() - started
    stats = (await admin.stats())["sources"]["csa"]
    calls = stats["requests"]
    full_seconds = sorted(stats["per_second"].values())[1:-1] or [0]  # drop the partial first and last
    with capsys.disabled():
        print(
            f"\ncsa rate run: {calls} calls in {elapsed:.2f}s = {calls / elapsed:.2f}/s overall "
            f"(limit {rate}/s); "
            f"median of the sandbox's full seconds {full_seconds[len(full_seconds) // 2]}/s; "
            f"served_429={stats['served_429']} max_per_s={stats['max_per_s']}"
        )
    assert stats["served_429"] == 0
    assert calls == 2 * len(dots)
    assert all(isinstance(r, CsaFetch) for r in results)
