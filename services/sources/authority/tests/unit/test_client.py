"""The client over an httpx MockTransport: paths, the padded DOT, edge checks before any call, anonymous
DataHub, and secrets that never reach a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from authority_support import DOT, insurance_row
from pydantic import SecretStr

from fmcsa_events.models import ErrorKind
from fmcsa_source_authority.domain import AuthorityFetch, AuthorityStatus, summarize
from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.upstream import AuthorityClient
from fmcsa_source_kit.failures import Failure

WEB_KEY = "webkey-sentinel-5b1e"
APP_TOKEN = "apptoken-sentinel-9c2d"
Handler = Callable[[httpx.Request], httpx.Response]


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "base_url": "http://qc.test/qc/services",
        "datahub_base_url": "http://hub.test",
        "web_key": SecretStr(WEB_KEY),
        "rate_per_s": 50,
        "datahub_rate_per_s": 50,
        "inline_retries": 0,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def bodies(examples_dir: Path) -> dict[str, bytes]:
    return {
        f"/qc/services/carriers/{DOT}": (examples_dir / "qcmobile-carrier.json").read_bytes(),
        f"/qc/services/carriers/{DOT}/authority": (examples_dir / "qcmobile-authority.json").read_bytes(),
        f"/qc/services/carriers/{DOT}/docket-numbers": json.dumps(
            {"content": [{"docketNumber": 1034412, "prefix": "MC", "dotNumber": int(DOT)}]}
        ).encode(),
        f"/qc/services/carriers/{DOT}/oos": b'{"content": []}',
        "/resource/qh9u-swkp.json": json.dumps(
            [insurance_row(), insurance_row(ins_type_desc="CARGO", policy_no="C-1", max_cov_amount="100")]
        ).encode(),
    }


class Recorder:
    def __init__(self, answer: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)


def client(recorder: Recorder, **overrides: object) -> AuthorityClient:
    transport = httpx.MockTransport(recorder)
    s = settings(**overrides)
    return AuthorityClient.from_settings(
        s,
        http=httpx.AsyncClient(transport=transport, base_url=str(s.base_url)),
        datahub_http=httpx.AsyncClient(transport=transport, base_url=str(s.datahub_base_url)),
    )


def served(examples_dir: Path) -> Recorder:
    known = bodies(examples_dir)
    return Recorder(lambda request: httpx.Response(200, content=known[request.url.path]))


async def test_a_sync_is_four_qcmobile_calls_and_one_datahub_call(examples_dir: Path) -> None:
    recorder = served(examples_dir)
    result = await client(recorder, app_token=SecretStr(APP_TOKEN)).fetch(DOT)
    assert isinstance(result, AuthorityFetch)
    paths = [r.url.path for r in recorder.requests]
    assert paths == [
        f"/qc/services/carriers/{DOT}",
        f"/qc/services/carriers/{DOT}/authority",
        f"/qc/services/carriers/{DOT}/docket-numbers",
        f"/qc/services/carriers/{DOT}/oos",
        "/resource/qh9u-swkp.json",
    ]
    assert all(r.url.params["webKey"] == WEB_KEY for r in recorder.requests[:4])
    hub = recorder.requests[4]
    assert hub.url.params["dot_number"] == "02847193"
    assert hub.url.params["$limit"] == "1000"
    assert hub.headers["X-App-Token"] == APP_TOKEN
    assert "webKey" not in hub.url.params
    assert all("X-App-Token" not in r.headers for r in recorder.requests[:4])
    assert result.profile.common is AuthorityStatus.ACTIVE
    assert summarize(result) == {
        "authority": {"common": "active", "contract": "none", "broker": "none"},
        "dockets": ["MC1034412"],
        "oos_order": None,
        "insurance": {
            "bipd_required": 750_000,
            "bipd_on_file": 1_000_000,
            "cargo_on_file": 0,
            "bond_on_file": 0,
            "filings": 2,
            "next_cancellation": None,
        },
    }


async def test_datahub_without_a_token_is_read_anonymously(examples_dir: Path) -> None:
    recorder = served(examples_dir)
    made = client(recorder)
    assert made.configured
    assert made.datahub.anonymous
    result = await made.fetch(DOT)
    assert isinstance(result, AuthorityFetch)
    assert len(result.filings) == 2
    assert "X-App-Token" not in recorder.requests[-1].headers


@pytest.mark.parametrize("dot", ["abc", "123456789", "", "12 3", "١٢٣"])
async def test_a_bad_dot_makes_no_call(examples_dir: Path, dot: str) -> None:
    recorder = served(examples_dir)
    result = await client(recorder).fetch(dot)
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)
    assert recorder.requests == []


@pytest.mark.parametrize("key", [None, ""])
async def test_a_missing_web_key_is_not_configured_and_makes_no_call(
    examples_dir: Path, key: str | None
) -> None:
    recorder = served(examples_dir)
    made = client(recorder, web_key=None if key is None else SecretStr(key), app_token=SecretStr(APP_TOKEN))
    assert not made.configured
    result = await made.fetch(DOT)
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.NOT_CONFIGURED, False)
    assert "FMCSA_AUTHORITY_WEB_KEY" in result.message
    assert recorder.requests == []


async def test_an_unknown_carrier_stops_after_one_call(examples_dir: Path) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, content=b'{"content": null}'))
    result = await client(recorder).fetch("99000001")
    assert isinstance(result, Failure)
    assert result.kind is ErrorKind.NOT_FOUND
    assert len(recorder.requests) == 1


def echoing(status: int) -> Recorder:
    """An upstream that echoes the request URL and headers in its body (as some error pages do)."""
    return Recorder(
        lambda request: httpx.Response(status, content=f"{request.url} {dict(request.headers)}".encode())
    )


def raising(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"cannot reach {request.url} with {dict(request.headers)}", request=request)


@pytest.mark.parametrize("answer", [echoing(500), echoing(200), echoing(403), Recorder(raising)])
async def test_secrets_never_reach_a_failure(examples_dir: Path, answer: Recorder) -> None:
    known = bodies(examples_dir)

    def datahub_fails(request: httpx.Request) -> httpx.Response:
        if request.url.host == "qc.test":
            return httpx.Response(200, content=known[request.url.path])
        return answer(request)

    failures = [
        await client(answer, app_token=SecretStr(APP_TOKEN)).fetch(DOT),  # QCMobile fails
        await client(Recorder(datahub_fails), app_token=SecretStr(APP_TOKEN)).fetch(DOT),
    ]
    for failure in failures:
        assert isinstance(failure, Failure), failure
        text = f"{failure.message} {failure.detail}"
        assert WEB_KEY not in text
        assert APP_TOKEN not in text
