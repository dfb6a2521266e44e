from __future__ import annotations

import json

import httpx
import pytest

RESOURCE = "/resource/8mt8-2mdr.json"
WEB_KEY = {"webKey": "sandbox-webkey"}


def test_99100001_csa_always_answers_500(http: httpx.Client) -> None:
    for path in ("/qc/services/carriers/99100001", "/qc/services/carriers/99100001/basics"):
        for _ in range(3):
            response = http.get(path, params=WEB_KEY)
            assert (response.status_code, response.content) == (500, b"{}")
    assert http.get("/_sandbox/stats").json()["sources"]["csa"]["magic"] == 6


def test_99200001_violations_refuses_the_first_two_calls_of_each_sync(http: httpx.Client) -> None:
    params = {"dot_number": "99200001", "$order": ":id", "$limit": "1000", "$offset": "0"}
    for _sync in range(2):
        statuses = []
        for _ in range(3):
            response = http.get(RESOURCE, params=params)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "1"
                assert response.text == "Too Many Requests"
        assert statuses == [429, 429, 200]
        assert isinstance(response.json(), list)


def test_99300001_inspections_hangs_past_a_client_timeout(sandbox_url: str) -> None:
    # the root conftest's own sandbox: the hung request stays open there until that process stops
    with httpx.Client(base_url=sandbox_url, headers={"x-api-key": "sandbox-api-key"}) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/v2/usdot/snapshot/99300001", timeout=0.5)
        assert (
            client.get("/v2/usdot/snapshot/2847193").status_code == 200
        )  # one request hangs, not the server
        assert client.get("/_sandbox/stats").json()["sources"]["inspections"]["magic"] == 1


def test_99400001_csa_answers_the_html_maintenance_page_with_200(http: httpx.Client) -> None:
    response = http.get("/qc/services/carriers/99400001", params=WEB_KEY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>FMCSA System Maintenance Page</title>" in response.text
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_99500001_pages_2500_rows_over_three_pages_stably(http: httpx.Client) -> None:
    def read() -> list[list[dict[str, str]]]:
        pages = []
        for offset in (0, 1000, 2000, 3000):
            response = http.get(
                RESOURCE,
                params={
                    "dot_number": "99500001",
                    "$select": ":id,*",
                    "$order": ":id",
                    "$offset": str(offset),
                },
            )
            assert response.status_code == 200
            page = response.json()
            pages.append(page)
            if len(page) < 1000:
                break
        return pages

    first, second = read(), read()
    assert [len(p) for p in first] == [1000, 1000, 500]
    assert first == second
    ids = [row[":id"] for page in first for row in page]
    assert len(set(ids)) == 2500
    assert ids == sorted(ids)


def test_99600001_csa_percentiles_are_not_public(http: httpx.Client) -> None:
    basics = http.get("/qc/services/carriers/99600001/basics", params=WEB_KEY).json()["content"]
    assert len(basics) == 5
    for entry in basics:
        basic = entry["basic"]
        assert basic["basicsPercentile"] == "Not Public"
        assert basic["exceededFMCSAInterventionThreshold"] == "-1"
        assert basic["onRoadPerformanceThresholdViolationIndicator"] == "Not Public"
        assert basic["basicsViolationThreshold"] in ("65", "80")
