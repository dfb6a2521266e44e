"""Every QCMobile path of docs/upstreams.md section 3.1, read the way a real client reads it: plain httpx,
the `webKey` as a query parameter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fmcsa_sandbox.data import directory

WEB_KEY = {"webKey": "sandbox-webkey"}
BASE = "/qc/services"


def content(http: httpx.Client, path: str, **params: str) -> Any:
    response = http.get(f"{BASE}{path}", params={**WEB_KEY, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["retrievalDate"].endswith("+0000")
    return body["content"]


def for_hire() -> tuple[int, int, str]:
    """A directory carrier with a docket: (DOT, docket, a word of its legal name)."""
    found = next(p for p in directory() if p.docket is not None and p.dba_name is None)
    assert found.docket is not None
    return found.dot, found.docket, found.legal_name.split()[0]


@pytest.mark.parametrize(
    ("resource", "keys"),
    [
        ("cargo-carried", {"cargoClassDesc", "id"}),
        ("operation-classification", {"operationClassDesc", "id"}),
        ("docket-numbers", {"docketNumber", "docketNumberId", "dotNumber", "prefix"}),
        ("authority", {"carrierAuthority", "_links"}),
    ],
)
def test_the_sub_resources_have_the_documented_elements(
    http: httpx.Client, resource: str, keys: set[str]
) -> None:
    dot, _, _ = for_hire()
    elements = content(http, f"/carriers/{dot}/{resource}")
    assert isinstance(elements, list)
    assert elements
    for element in elements:
        assert set(element) == keys
        if "id" in element:
            assert element["id"]["dotNumber"] == dot


def test_the_docket_numbers_and_authority_agree_with_the_docket_search(http: httpx.Client) -> None:
    dot, docket, _ = for_hire()
    (listed,) = content(http, f"/carriers/{dot}/docket-numbers")
    assert (listed["docketNumber"], listed["prefix"], listed["dotNumber"]) == (docket, "MC", dot)
    (authority,) = content(http, f"/carriers/{dot}/authority")
    assert authority["carrierAuthority"]["docketNumber"] == docket
    found = content(http, f"/carriers/docket-number/{docket}")
    assert isinstance(found, list)
    assert [item["carrier"]["dotNumber"] for item in found] == [dot]
    assert found[0] == content(http, f"/carriers/{dot}")
    assert found[0]["_links"]["self"]["href"].endswith(f"{BASE}/carriers/{dot}")


@pytest.mark.parametrize("docket", ["1", "0000001", "99999999", "MC-123456", "abc"])
def test_an_unknown_or_unreadable_docket_finds_nothing(http: httpx.Client, docket: str) -> None:
    assert content(http, f"/carriers/docket-number/{docket}") == []


def test_the_name_search_finds_carriers_by_part_of_the_name(http: httpx.Client) -> None:
    dot, _, word = for_hire()
    found = content(http, f"/carriers/name/{word.lower()}", size="50")
    assert isinstance(found, list)
    assert 0 < len(found) <= 50
    assert all(word in f"{c['carrier']['legalName']} {c['carrier']['dbaName'] or ''}" for c in found)
    dots = [item["carrier"]["dotNumber"] for item in found]
    assert dots == sorted(dots)
    legal_name = next(p.legal_name for p in directory() if p.dot == dot)
    exact = content(http, f"/carriers/name/{legal_name}")
    assert isinstance(exact, list)
    assert dot in [item["carrier"]["dotNumber"] for item in exact]
    assert content(http, "/carriers/name/NO SUCH CARRIER ANYWHERE") == []


def test_the_name_search_pages_with_start_and_size_and_caps_at_50(http: httpx.Client) -> None:
    word = "EXPRESS"  # a common name part: more than 50 directory carriers have it
    everything = [
        item["carrier"]["dotNumber"]
        for start in range(0, 2000, 50)
        for item in content(http, f"/carriers/name/{word}", start=str(start), size="50")
    ]
    assert len(everything) > 50
    assert len(everything) == len(set(everything))
    assert len(content(http, f"/carriers/name/{word}", size="500")) == 50
    assert len(content(http, f"/carriers/name/{word}")) == 50
    second = content(http, f"/carriers/name/{word}", start="3", size="4")
    assert [item["carrier"]["dotNumber"] for item in second] == everything[3:7]


@pytest.mark.parametrize("path", ["/carriers/name/EXPRESS", "/carriers/docket-number/123456"])
def test_the_searches_check_the_web_key_first(http: httpx.Client, path: str) -> None:
    missing = http.get(f"{BASE}{path}")
    assert (missing.status_code, missing.json()) == (404, {"content": "Must provide Webkey"})
    wrong = http.get(f"{BASE}{path}", params={"webKey": "wrong"})
    assert wrong.status_code == 404
    assert wrong.json()["content"] == "Webkey not found"
