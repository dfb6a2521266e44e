from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

WEB_KEY = {"webKey": "sandbox-webkey"}
CARRIER = "/qc/services/carriers/2847193"


def put_faults(http: httpx.Client, **knobs: object) -> dict[str, object]:
    response = http.put("/_sandbox/faults", json=knobs)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_requests_over_the_rate_get_429_with_retry_after(http: httpx.Client) -> None:
    put_faults(http, csa_rate_per_s=5)
    statuses, retry_after = [], set()
    for _ in range(12):
        response = http.get(CARRIER, params=WEB_KEY)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.text == "Too Many Requests"
            retry_after.add(response.headers["Retry-After"])
    assert statuses[:5] == [200] * 5  # a full bucket: one second's worth at once
    assert statuses.count(429) >= 5
    assert retry_after == {"1"}
    stats = http.get("/_sandbox/stats").json()["sources"]["csa"]
    assert stats["served_429"] == statuses.count(429)
    assert stats["requests"] == 12
    assert stats["admitted"] == statuses.count(200)
    assert http.get("/v2/usdot/snapshot/2847193", headers={"x-api-key": "sandbox-api-key"}).status_code == 200


def test_retry_after_can_be_switched_off(http: httpx.Client) -> None:
    put_faults(http, inspections_rate_per_s=1, retry_after=False)
    responses = [
        http.get("/v2/usdot/snapshot/2847193", headers={"x-api-key": "sandbox-api-key"}) for _ in range(3)
    ]
    refused = [r for r in responses if r.status_code == 429]
    assert refused
    assert all("Retry-After" not in r.headers for r in refused)


def test_a_client_pacing_under_the_rate_is_never_refused(http: httpx.Client) -> None:
    put_faults(http, violations_rate_per_s=40)
    deadline = time.monotonic()
    for _ in range(30):  # 30 requests at 30/s for 1 s, never faster than the bucket drains
        deadline += 1 / 30
        while time.monotonic() < deadline:
            pass  # pacing the client itself, not waiting for the server
        assert http.get("/resource/8mt8-2mdr.json", params={"dot_number": "2847193"}).status_code == 200


@pytest.mark.parametrize(
    ("knob", "source_path", "check"),
    [
        ("csa_p_5xx", CARRIER, lambda r: r.status_code in (500, 502, 503)),
        ("csa_p_429", CARRIER, lambda r: r.status_code == 429),
        ("violations_p_202", "/resource/8mt8-2mdr.json?dot_number=2847193", lambda r: r.status_code == 202),
        ("inspections_p_5xx", "/v2/usdot/snapshot/2847193", lambda r: r.status_code >= 500),
    ],
)
def test_fault_probabilities_change_at_run_time(
    http: httpx.Client, knob: str, source_path: str, check: Callable[[httpx.Response], bool]
) -> None:
    put_faults(http, **{knob: 1.0})
    headers = {"x-api-key": "sandbox-api-key"}
    params = WEB_KEY if "qc" in source_path else None
    for _ in range(5):
        assert check(http.get(source_path, params=params, headers=headers))
    put_faults(http, **{knob: 0.0})
    assert http.get(source_path, params=params, headers=headers).status_code == 200
    faults = http.get("/_sandbox/stats").json()["sources"]
    assert sum(sum(s["faults"].values()) for s in faults.values()) == 5


def test_a_malformed_body_is_cut_short_json(http: httpx.Client) -> None:
    put_faults(http, violations_p_malformed=1.0, csa_p_malformed=1.0)
    for response in (
        http.get("/resource/8mt8-2mdr.json", params={"dot_number": "2847193"}),
        http.get(CARRIER, params=WEB_KEY),
    ):
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
    assert http.get("/_sandbox/stats").json()["sources"]["violations"]["faults"]["malformed"] == 1


def test_latency_and_hang_hold_the_answer(http: httpx.Client) -> None:
    put_faults(http, csa_latency_ms=300)
    started = time.monotonic()
    assert http.get(CARRIER, params=WEB_KEY).status_code == 200
    assert time.monotonic() - started >= 0.3
    put_faults(http, csa_latency_ms=0, inspections_p_hang=1.0, hang_s=0.4)
    started = time.monotonic()
    assert http.get("/v2/usdot/snapshot/2847193", headers={"x-api-key": "sandbox-api-key"}).status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v2/usdot/snapshot/2847193", headers={"x-api-key": "sandbox-api-key"}, timeout=0.1)


def test_bad_fault_settings_are_refused_whole(http: httpx.Client) -> None:
    before = http.get("/_sandbox/faults").json()
    for body in (
        {"csa_p_5xx": 2},
        {"nope": 1},
        {"csa_p_5xx": 0.7, "csa_p_429": 0.7},
        {"csa_rate_per_s": "x"},
    ):
        response = http.put("/_sandbox/faults", json=body)
        assert response.status_code == 400, body
        assert response.json()["detail"]
    assert http.put("/_sandbox/faults", content=b"not json").status_code == 400
    assert http.get("/_sandbox/faults").json() == before


def test_stats_count_per_source_and_scrub_secrets(http: httpx.Client) -> None:
    http.get(CARRIER, params=WEB_KEY)
    http.get(f"{CARRIER}/basics", params={"webKey": "some-wrong-key"})
    http.get("/resource/8mt8-2mdr.json", params={"dot_number": "2847193", "$$app_token": "sandbox-app-token"})
    http.get("/v2/usdot/snapshot/2847193", headers={"x-api-key": "sandbox-api-key"})
    http.get(f"{CARRIER}/authority", params=WEB_KEY)
    http.get(CARRIER, params=WEB_KEY, headers={"User-Agent": "fmcsa-sync (Authority source)"})
    http.get("/resource/qh9u-swkp.json", params={"dot_number": "02847193"})
    stats = http.get("/_sandbox/stats")
    body = stats.json()
    assert body["data_version"] == 1
    assert {n: s["requests"] for n, s in body["sources"].items()} == {
        "csa": 2,
        "violations": 1,
        "inspections": 1,
        "authority": 3,
    }
    csa = body["sources"]["csa"]
    assert set(csa["faults"]) >= {"5xx", "429", "malformed", "hang"}
    assert csa["max_per_s"] >= 1
    assert sum(csa["per_second"].values()) == 2
    seen = body["requests_seen"]
    assert seen[0] == "/qc/services/carriers/2847193?webKey=***"
    assert "/qc/services/carriers/2847193/basics?webKey=***" in seen
    for secret in ("sandbox-webkey", "some-wrong-key", "sandbox-app-token", "sandbox-api-key"):
        assert secret not in stats.text
    http.post("/_sandbox/reset")
    after = http.get("/_sandbox/stats").json()
    assert after["requests_seen"] == []
    assert all(s["requests"] == 0 for s in after["sources"].values())


def test_health_answers_ok(http: httpx.Client) -> None:
    assert http.get("/_sandbox/health").json() == {"status": "ok"}
