"""The doctor's pure checks: clock offset against `Date`, rate-limit headers, rows as JSON, SQLite."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from pydantic import SecretStr

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.doctor import Check, Status, store_check
from fmcsa_runtime.redaction import register_secret
from fmcsa_source_kit.doctor import (
    REAL_DOT,
    SANDBOX_DOT,
    KeyAdvice,
    Outcome,
    SourceProbe,
    answer_checks,
    clock_check,
    default_dot,
    gate_check,
    rate_limit_check,
)
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.settings import SourceSettings
from fmcsa_source_kit.upstream import Auth, RetryPolicy, UpstreamClient

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset_s", "status", "words"),
    [(0, Status.OK, "0 s ahead"), (-12, Status.OK, "12 s behind"), (95, Status.FAIL, "95 s ahead")],
)
def test_clock_check_compares_with_the_date_header(offset_s: int, status: Status, words: str) -> None:
    date = format_datetime(NOW - timedelta(seconds=offset_s), usegmt=True)
    check = clock_check("csa", {"date": date}, NOW)
    assert check.status is status
    assert words in check.detail
    assert ("NTP" in check.remedy) is (status is Status.FAIL)


def test_clock_check_skips_without_a_date() -> None:
    assert clock_check("csa", {}, NOW).status is Status.SKIP
    assert clock_check("csa", {"date": "yesterday"}, NOW).status is Status.SKIP
    assert clock_check("csa", None, NOW).status is Status.SKIP


def test_rate_limit_check_lists_the_headers_as_sent() -> None:
    headers = httpx.Headers(
        [("X-RateLimit-Limit", "1000"), ("Retry-After", "3"), ("X-App-Token", "abc"), ("ETag", "x")]
    )
    check = rate_limit_check("violations", headers)
    assert check.detail == "X-RateLimit-Limit: 1000; Retry-After: 3"
    assert "none" not in rate_limit_check("csa", {"RateLimit-Remaining": "5"}).detail
    assert "no rate-limit headers" in rate_limit_check("csa", {"Date": "x"}).detail


def test_default_dot_is_the_sandbox_example_on_loopback_only() -> None:
    assert default_dot("http://127.0.0.1:9/qc/services") == SANDBOX_DOT
    assert default_dot("https://localhost:9") == SANDBOX_DOT
    assert default_dot("https://mobile.fmcsa.dot.gov/qc/services") == REAL_DOT


def test_a_refused_key_fails_the_key_row_and_a_garbage_answer_the_answer_row() -> None:
    advice = KeyAdvice("FMCSA_CSA_WEB_KEY", rejected="get another key")
    refused = Outcome(Failure(ErrorKind.NOT_CONFIGURED, retryable=False, message="refused"), "", None)
    found = {row.name: row for row in answer_checks("csa", "1", refused, advice, base_setting="B")}
    assert found["csa: key"].status is Status.FAIL
    assert found["csa: key"].remedy == "get another key"
    assert found["csa: answer"].status is Status.SKIP
    garbage = Outcome(Failure(ErrorKind.INVALID_RESPONSE, retryable=True, message="not JSON"), "", None)
    found = {row.name: row for row in answer_checks("csa", "1", garbage, advice, base_setting="B")}
    assert found["csa: key"].status is Status.SKIP
    assert found["csa: answer"].status is Status.FAIL
    assert "B is the API root" in found["csa: answer"].remedy


def test_rows_print_no_registered_secret() -> None:
    register_secret("doctor-secret-0001")
    line = Check("x", Status.FAIL, "sent doctor-secret-0001", "unset doctor-secret-0001").to_json()
    assert "doctor-secret-0001" not in line
    assert Check.from_json(line).status is Status.FAIL


async def test_store_check_reads_sqlite_without_creating_anything(tmp_path: Path) -> None:
    missing = tmp_path / "new" / "csa.sqlite3"
    check = await store_check("csa: store", f"sqlite:///{missing}", "FMCSA_CSA_DATABASE_URL")
    assert check.status is Status.OK
    assert "not there yet" in check.detail
    assert not missing.parent.exists()
    existing = tmp_path / "csa.sqlite3"
    with sqlite3.connect(existing) as connection:
        connection.execute("CREATE TABLE t (x)")
    check = await store_check("csa: store", f"sqlite:///{existing}", "FMCSA_CSA_DATABASE_URL")
    assert (check.status, check.detail) == (Status.OK, f"{existing}: SQLite, 1 tables")
    existing.write_bytes(b"not a database" * 100)
    check = await store_check("csa: store", f"sqlite:///{existing}", "FMCSA_CSA_DATABASE_URL")
    assert check.status is Status.FAIL
    assert "FMCSA_CSA_DATABASE_URL" in check.remedy


class ProbedSettings(SourceSettings):
    SOURCE: ClassVar[str] = "probed"


@pytest.mark.parametrize(
    ("credential", "has_key"), [(None, False), (SecretStr(""), False), (SecretStr("k-1"), True)]
)
def test_a_probe_takes_its_name_store_and_bounds_from_the_source_settings(
    tmp_path: Path, credential: SecretStr | None, has_key: bool
) -> None:
    settings = ProbedSettings(data_dir=tmp_path, connect_timeout_s=1.5, read_timeout_s=7.0)
    advice = KeyAdvice("FMCSA_PROBED_KEY", rejected="get another key")
    probe = SourceProbe.of(settings, "http://127.0.0.1:9/x", advice, credential=credential, missing_key=None)
    assert probe == SourceProbe(
        "probed",
        "http://127.0.0.1:9/x",
        advice,
        has_key=has_key,  # an empty key is no key, as the client reads it
        missing_key=None,
        database_url=settings.resolved_database_url(),
        connect_timeout_s=1.5,
        read_timeout_s=7.0,
    )
    assert probe.database_url.endswith("probed.sqlite3")
    assert probe.prefix == "FMCSA_PROBED_"


SWITCH = "FMCSA_KIT_GATE"


def _datahub(published: dict[str, datetime]) -> UpstreamClient:
    """A DataHub client whose datasets answer `rowsUpdatedAt` from `published`; others answer 404."""

    def answer(request: httpx.Request) -> httpx.Response:
        dataset = request.url.path.rsplit("/", 1)[-1].removesuffix(".json")
        if dataset not in published:
            return httpx.Response(404, json={"code": "not_found"})
        return httpx.Response(200, json={"id": dataset, "rowsUpdatedAt": int(published[dataset].timestamp())})

    return UpstreamClient(
        upstream="DataHub",
        http=httpx.AsyncClient(base_url="http://datahub.test/", transport=httpx.MockTransport(answer)),
        auth=Auth(setting="FMCSA_KIT_APP_TOKEN", header="X-App-Token", required=False),
        credential=None,
        pace=UpstreamPace(source="kit", base_url="http://datahub.test/", ceiling=1000.0),
        concurrency=1,
        policy=RetryPolicy(inline_retries=0, inline_wait_max_s=1.0),
        call_timeout_s=5.0,
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("ages_days", "status", "words"),
    [
        ((0.5, 3.9), Status.OK, "b published 2026-12-02"),
        ((0.5, 4.5), Status.FAIL, "not published for over 4 days: b"),
    ],
)
async def test_the_gate_row_fails_a_dataset_that_stopped_being_published(
    ages_days: tuple[float, float], status: Status, words: str
) -> None:
    published = {name: NOW - timedelta(days=age) for name, age in zip("ab", ages_days, strict=True)}
    client = _datahub(published)
    try:
        row = await gate_check(
            "kit",
            client,
            "ab",
            retry_after_max_s=1,
            switch="FMCSA_KIT_GATE",
            now=NOW,
            stale_after=timedelta(days=4),
        )
    finally:
        await client.aclose()
    assert (row.name, row.status) == ("kit: change gate", status)
    assert words in row.detail
    if status is Status.FAIL:
        assert f"{SWITCH}=false" in row.remedy


async def test_the_gate_row_names_a_dataset_that_does_not_answer() -> None:
    client = _datahub({"a": NOW})
    try:
        row = await gate_check(
            "kit", client, ["a", "gone"], retry_after_max_s=1, switch="FMCSA_KIT_GATE", now=NOW
        )
    finally:
        await client.aclose()
    assert row.status is Status.FAIL
    assert "dataset gone" in row.detail
    assert f"{SWITCH}=false" in row.remedy
