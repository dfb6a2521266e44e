"""The client's decisions over an in-memory HTTP transport: which calls, which retries, which failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import stamina
from pydantic import SecretStr

from fmcsa_events.models import ErrorKind
from fmcsa_source_csa.domain.model import CsaFetch
from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.upstream import QCMobileClient, make_pace
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import client_bucket

KEY = "unit-sentinel-webkey-5b1f"
NOW = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_backoff_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):  # keep our attempt counts, drop the sleeps
        yield


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def client_for(recorder: Recorder, **settings: object) -> QCMobileClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    values: dict[str, object] = {
        "web_key": SecretStr(KEY),
        "base_url": "http://qc.test/qc/services",
        "rate_per_s": 50,  # these tests are about decisions, not pacing
        **settings,
    }
    return QCMobileClient.from_settings(Settings.model_validate(values), http=http, clock=lambda: NOW)


def examples(examples_dir: Path) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        name = (
            "qcmobile-basics-not-public.json"
            if request.url.path.endswith("/basics")
            else "qcmobile-carrier.json"
        )
        return httpx.Response(200, content=(examples_dir / name).read_bytes())

    return handle


async def test_a_sync_is_the_carrier_call_then_the_basics_call_with_the_key_as_a_parameter(
    examples_dir: Path,
) -> None:
    recorder = Recorder(examples(examples_dir))
    result = await client_for(recorder).fetch("02847193")
    assert isinstance(result, CsaFetch)
    assert recorder.paths == ["/qc/services/carriers/2847193", "/qc/services/carriers/2847193/basics"]
    assert all(r.url.params["webKey"] == KEY for r in recorder.requests)
    assert result.dot == "2847193"
    assert result.retrieved_at == NOW
    assert result.upstream_as_of == datetime(2025, 11, 1, tzinfo=UTC)
    assert len(result.basics) == 5


@pytest.mark.parametrize("dot", ["", "123456789", "12a", " 123", "0", "١٢٣"])
async def test_an_invalid_dot_is_internal_and_nothing_is_sent(dot: str) -> None:
    recorder = Recorder(lambda request: httpx.Response(500))
    result = await client_for(recorder).fetch(dot)
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)
    assert recorder.requests == []


async def test_without_a_web_key_every_fetch_is_not_configured_and_nothing_is_sent() -> None:
    recorder = Recorder(lambda request: httpx.Response(500))
    client = client_for(recorder, web_key=None)
    result = await client.fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.NOT_CONFIGURED, False)
    assert client.configured is False
    assert recorder.requests == []


async def test_an_unknown_carrier_stops_after_the_first_call(examples_dir: Path) -> None:
    recorder = Recorder(
        lambda r: httpx.Response(200, content=(examples_dir / "qcmobile-carrier-unknown.json").read_bytes())
    )
    result = await client_for(recorder).fetch("99000001")
    assert isinstance(result, Failure)
    assert result.kind is ErrorKind.NOT_FOUND
    assert len(recorder.requests) == 1


async def test_a_passing_5xx_is_retried_in_process(examples_dir: Path) -> None:
    served = examples(examples_dir)
    answers = iter([httpx.Response(503, content=b"<html>busy</html>")])
    recorder = Recorder(lambda request: next(answers, None) or served(request))
    result = await client_for(recorder).fetch("2847193")
    assert isinstance(result, CsaFetch)
    assert len(recorder.requests) == 3


async def test_a_lasting_5xx_returns_to_the_bus_with_a_delay_after_the_inline_retries() -> None:
    recorder = Recorder(lambda request: httpx.Response(500, content=b"{}"))
    result = await client_for(recorder, inline_retries=2).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
    assert len(recorder.requests) == 3
    assert result.retry_after_s is not None
    assert 0 < result.retry_after_s <= 3600


async def test_a_short_retry_after_is_honoured_in_process(examples_dir: Path) -> None:
    served = examples(examples_dir)
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}, content=b"Too Many Requests")])
    recorder = Recorder(lambda request: next(answers, None) or served(request))
    assert isinstance(await client_for(recorder).fetch("2847193"), CsaFetch)
    assert len(recorder.requests) == 3


async def test_a_long_retry_after_goes_back_to_the_bus_at_once_with_that_delay() -> None:
    recorder = Recorder(lambda request: httpx.Response(429, headers={"Retry-After": "120"}))
    result = await client_for(recorder).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retry_after_s) == (ErrorKind.RATE_LIMITED, 120.0)
    assert len(recorder.requests) == 1


async def test_retry_after_is_clamped_to_the_configured_ceiling() -> None:
    recorder = Recorder(lambda request: httpx.Response(429, headers={"Retry-After": "999999"}))
    result = await client_for(recorder, retry_after_max_s=600).fetch("2847193")
    assert isinstance(result, Failure)
    assert result.retry_after_s == 600.0


async def test_no_inline_retries_means_one_call_per_failure() -> None:
    recorder = Recorder(lambda request: httpx.Response(502))
    result = await client_for(recorder, inline_retries=0).fetch("2847193")
    assert isinstance(result, Failure)
    assert len(recorder.requests) == 1


async def test_a_timeout_goes_back_to_the_bus_without_an_inline_retry() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    recorder = Recorder(hang)
    result = await client_for(recorder).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.TIMEOUT, True)
    assert result.retry_after_s is not None
    assert len(recorder.requests) == 1


async def test_a_refused_connection_is_a_retryable_upstream_error_and_its_text_is_scrubbed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"could not connect for {request.url}", request=request)

    recorder = Recorder(refuse)
    result = await client_for(recorder).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
    assert len(recorder.requests) == 3
    assert KEY not in f"{result.message} {result.detail}"
    assert "webKey=***" in result.detail


async def test_a_non_json_basics_answer_after_a_found_carrier_is_invalid_response(examples_dir: Path) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/basics"):
            return httpx.Response(200, content=b'{"content": [')
        return httpx.Response(200, content=(examples_dir / "qcmobile-carrier.json").read_bytes())

    recorder = Recorder(handle)
    result = await client_for(recorder, inline_retries=1).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INVALID_RESPONSE, True)
    assert recorder.paths.count("/qc/services/carriers/2847193/basics") == 2


async def test_a_bug_in_mapping_code_is_internal_not_an_exception(
    examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fmcsa_source_csa.domain.parse as parse

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("oops")

    monkeypatch.setattr(parse, "classify", broken)
    recorder = Recorder(examples(examples_dir))
    result = await client_for(recorder).fetch("2847193")
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)


async def test_the_client_made_from_settings_closes_only_what_it_made() -> None:
    own = QCMobileClient.from_settings(Settings(web_key=SecretStr(KEY)))
    await own.aclose()
    lent = httpx.AsyncClient()
    borrowed = QCMobileClient.from_settings(Settings(web_key=SecretStr(KEY)), http=lent)
    await borrowed.aclose()
    assert not lent.is_closed
    await lent.aclose()


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 20.0, 50.0])
def test_the_pace_starts_at_the_configured_rate_in_the_shared_client_bucket(rate: float) -> None:
    pace = make_pace(Settings(web_key=SecretStr(KEY), rate_per_s=rate))
    assert pace.key == "csa.mobile_fmcsa_dot_gov_qc_services"
    assert pace.state.rate == rate
    assert (pace._bucket.capacity, pace._bucket.capacity / pace._bucket.refill_per_s) == client_bucket(rate)


async def test_a_429_halves_the_pace_and_a_clean_answer_does_not() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(500, json={})])
    recorder = Recorder(lambda request: next(answers))
    settings = Settings(web_key=SecretStr(KEY), base_url="http://qc.test/qc/services", rate_per_s=20)
    pace = make_pace(settings)
    client = QCMobileClient.from_settings(
        settings, http=httpx.AsyncClient(transport=httpx.MockTransport(recorder)), pace=pace
    )
    result = await client.fetch("1234567")
    assert isinstance(result, Failure)
    assert len(recorder.requests) == 1  # Retry-After 30 s is the bus's wait, not an inline one
    assert pace.state.rate == 10.0
    assert pace.state.throttled == 1


def test_settings_default_to_the_real_host_and_the_contract_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FMCSA_CSA_WEB_KEY", "FMCSA_CSA_BASE_URL", "FMCSA_CSA_RATE_PER_S", "FMCSA_CSA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert str(settings.base_url) == "https://mobile.fmcsa.dot.gov/qc/services"
    assert (settings.rate_per_s, settings.concurrency, settings.inline_retries) == (2.0, 8, 2)
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (5.0, 30.0)
    assert (settings.inline_wait_max_s, settings.retry_after_max_s, settings.max_attempts) == (5.0, 3600.0, 5)
    assert settings.web_key is None
    assert settings.resolved_database_url().endswith("csa.sqlite3")
    monkeypatch.setenv("FMCSA_CSA_WEB_KEY", "from-env-key")
    monkeypatch.setenv("FMCSA_CSA_DATABASE_URL", "sqlite:///x.db")
    configured = Settings()
    assert configured.web_key is not None
    assert configured.web_key.get_secret_value() == "from-env-key"
    assert "from-env-key" not in repr(configured)
    assert configured.resolved_database_url() == "sqlite:///x.db"
    assert all(field.description for field in Settings.model_fields.values())
