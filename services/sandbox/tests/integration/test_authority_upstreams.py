"""Over HTTP: the authority source's upstreams (QCMobile `/carriers/{dot}`, `/authority`, `/docket-numbers`,
`/oos`; the DataHub insurance dataset `qh9u-swkp`), the `authority` sandbox source's knobs and counters,
its magic DOTs, and its scripted DOTs across bumps."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

Start = Callable[..., contextlib.AbstractContextManager[Any]]
WEB_KEY = {"webKey": "sandbox-webkey"}
QC = "/qc/services/carriers"
INSURANCE = "/resource/qh9u-swkp.json"
AUTHORITY_AGENT = {"User-Agent": "fmcsa-sync (authority source)"}
COLUMNS = [
    "docket_number", "dot_number", "ins_form_code", "mod_col_1", "ins_type_desc", "name_company", "policy_no",
    "trans_date", "underl_lim_amount", "max_cov_amount", "effective_date", "cancl_effective_date",
]  # fmt: skip


def content(http: httpx.Client, path: str, headers: dict[str, str] | None = None) -> Any:
    response = http.get(f"{QC}/{path}", params=WEB_KEY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["retrievalDate"].endswith("+0000")
    return response.json()["content"]


def filings(http: httpx.Client, **params: str) -> list[dict[str, str]]:
    response = http.get(INSURANCE, params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, str]] = response.json()
    return rows


def sources(http: httpx.Client) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = http.get("/_sandbox/stats").json()["sources"]
    return stats


# --- shapes -------------------------------------------------------------------------------------------------


def test_the_example_carrier_answers_the_authority_paths_in_their_shapes(http: httpx.Client) -> None:
    carrier = content(http, "2847193", AUTHORITY_AGENT)["carrier"]
    statuses = ("commonAuthorityStatus", "contractAuthorityStatus", "brokerAuthorityStatus")
    assert [carrier[k] for k in statuses] == ["A", "N", "N"]
    assert (carrier["bipdInsuranceOnFile"], carrier["bipdRequiredAmount"]) == ("1000", "750")
    assert carrier["oosDate"] is None
    assert carrier["cargoInsuranceOnFile"] == "100"
    assert carrier["bondInsuranceOnFile"] == "0"
    assert carrier["bipdInsuranceRequired"] in ("Y", "N", "u")

    (entry,) = content(http, "2847193/authority")
    authority = entry["carrierAuthority"]
    assert authority["commonAuthorityStatus"] == "A"
    assert authority["prefix"] == "MC"
    for kind in ("common", "contract", "broker"):
        assert authority[f"{kind}AuthorityPendingStatus"] == "N"
        assert authority[f"{kind}AuthorityRevocationStatus"] == "N"
    assert isinstance(authority["docketNumber"], int)
    assert isinstance(authority["applicantID"], int)
    assert entry["_links"]["self"]["href"].endswith(f"/carriers/2847193/authority/{authority['applicantID']}")

    (docket,) = content(http, "2847193/docket-numbers")
    assert docket == {
        "docketNumber": authority["docketNumber"],
        "docketNumberId": authority["applicantID"],
        "dotNumber": 2847193,
        "prefix": "MC",
    }
    assert content(http, "2847193/oos") == []

    rows = filings(http, dot_number="02847193", **{"$order": ":id"})
    assert sorted(r["ins_type_desc"] for r in rows) == ["BIPD", "CARGO"]
    assert {r["docket_number"] for r in rows} == {f"MC{authority['docketNumber']}"}
    bipd = next(r for r in rows if r["ins_type_desc"] == "BIPD")
    assert (bipd["ins_form_code"], bipd["max_cov_amount"], bipd["dot_number"]) == ("91X", "1000", "02847193")
    assert all(set(r) == set(COLUMNS) - {"cancl_effective_date"} for r in rows)


def test_an_out_of_service_order_is_listed_under_oos(http: httpx.Client) -> None:
    for dot in range(1_000_001, 1_010_000):  # the drift test's way: the first carrier with an order
        carrier = content(http, str(dot))["carrier"]
        if carrier["oosDate"] is not None:
            break
    (order,) = content(http, f"{dot}/oos")
    assert order["oos"]["oosDate"] == carrier["oosDate"]
    assert set(order["oos"]) == {"dotNumber", "id", "oosDate", "oosReason", "oosReasonDescription"}
    assert carrier["allowedToOperate"] == "N"


def test_the_insurance_dataset_filters_on_the_zero_padded_dot_as_text(http: httpx.Client) -> None:
    assert filings(http, dot_number="2847193") == []  # the padding trap: text equality, no rows
    padded = filings(http, dot_number="02847193")
    assert len(padded) == 2
    assert filings(http, **{"$where": "dot_number = '02847193'"}) == padded
    assert filings(http, **{"$where": "dot_number::number = 2847193"}) == padded  # the cast other clients use
    assert filings(http, dot_number="99000001") == []  # unknown to all sources
    private = next(
        dot
        for dot in range(1_000_001, 1_000_100)
        if content(http, str(dot))["carrier"]["commonAuthorityStatus"] == "N"
    )
    assert filings(http, dot_number=f"{private:08d}") == []  # a private carrier files no insurance
    refused = http.get(INSURANCE, params={"dot_number": "02847193", "$where": "dot_number = 2847193"})
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == "query.soql.type-mismatch"
    assert refused.json()["data"]["dataset"] == "alpha.61447"
    missing = http.get(INSURANCE, params={"dot_numbr": "02847193"})
    assert (missing.status_code, missing.json()["errorCode"]) == (400, "query.soql.no-such-column")


def test_the_insurance_dataset_pages_and_orders_as_socrata_does(own_sandbox: Start) -> None:
    with own_sandbox({"FMCSA_SANDBOX_DATA_VERSION": "4"}) as sandbox, sandbox.client() as http:
        every = filings(http, dot_number="99700009", **{"$order": "policy_no", "$limit": "1000"})
        assert len(every) == 5  # its BIPD and CARGO filings, and one CARGO filing per bump
        assert [r["policy_no"] for r in every] == sorted(r["policy_no"] for r in every)
        pages = [
            filings(http, dot_number="99700009", **{"$order": "policy_no", "$limit": "2", "$offset": str(o)})
            for o in (0, 2, 4)
        ]
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [r for p in pages for r in p] == every
        newest = filings(http, dot_number="99700009", **{"$order": "policy_no DESC", "$limit": "1"})
        assert newest == [every[-1]]
        by_id = http.get(INSURANCE, params={"dot_number": "99700009", "$select": ":id,*", "$order": ":id"})
        ids = [r[":id"] for r in by_id.json()]
        assert ids == sorted(ids)
        assert len(set(ids)) == 5
        grouped = {"$select": "ins_type_desc, count(*) AS n", "$group": "ins_type_desc"}
        counted = filings(http, dot_number="99700009", **grouped)
        assert sorted((r["ins_type_desc"], r["n"]) for r in counted) == [("BIPD", "1"), ("CARGO", "4")]
        headers = http.get(INSURANCE, params={"dot_number": "99700009"}).headers
        assert json.loads(headers["X-SODA2-Fields"]) == COLUMNS
        assert set(json.loads(headers["X-SODA2-Types"])) == {"text"}
        as_csv = http.get("/resource/qh9u-swkp.csv", params={"dot_number": "99700009", "$order": "policy_no"})
        assert next(iter(csv.DictReader(io.StringIO(as_csv.text))))["policy_no"] == every[0]["policy_no"]
        view = http.get("/api/views/qh9u-swkp.json").json()
        assert view["id"] == "qh9u-swkp"
        assert [c["fieldName"] for c in view["columns"]] == COLUMNS


def test_the_insurance_dataset_takes_the_app_token_as_the_other_dataset_does(http: httpx.Client) -> None:
    token = {"X-App-Token": "sandbox-app-token"}
    assert http.get(INSURANCE, params={"dot_number": "02847193"}, headers=token).json()
    wrong = http.get(INSURANCE, params={"dot_number": "02847193"}, headers={"X-App-Token": "wrong"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "permission_denied")


# --- the authority sandbox source -------------------------------------------------------------------------


def test_authority_requests_count_against_their_own_source(http: httpx.Client) -> None:
    for path in ("2847193/authority", "2847193/docket-numbers", "2847193/oos"):
        content(http, path)
    content(http, "2847193", AUTHORITY_AGENT)
    content(http, "2847193")  # no authority in the User-Agent: csa's
    content(http, "2847193/basics", AUTHORITY_AGENT)  # a csa path, whoever asks
    filings(http, dot_number="02847193")
    counted = {name: s["requests"] for name, s in sources(http).items()}
    assert counted == {"csa": 2, "violations": 0, "inspections": 0, "authority": 5}


def test_authority_faults_and_rate_limit_apply_to_its_paths_only(http: httpx.Client) -> None:
    assert http.put("/_sandbox/faults", json={"authority_p_5xx": 1.0}).status_code == 200
    for _ in range(3):
        assert http.get(f"{QC}/2847193/authority", params=WEB_KEY).status_code >= 500
        assert http.get(INSURANCE, params={"dot_number": "02847193"}).status_code >= 500
        assert http.get(f"{QC}/2847193", params=WEB_KEY, headers=AUTHORITY_AGENT).status_code >= 500
    assert http.get(f"{QC}/2847193", params=WEB_KEY).status_code == 200
    assert http.get(f"{QC}/2847193/basics", params=WEB_KEY).status_code == 200
    assert sources(http)["authority"]["faults"]["5xx"] == 9
    limited = {"authority_p_5xx": 0.0, "authority_rate_per_s": 3}
    assert http.put("/_sandbox/faults", json=limited).status_code == 200
    statuses = [http.get(f"{QC}/2847193/oos", params=WEB_KEY).status_code for _ in range(8)]
    assert statuses[:3] == [200] * 3
    assert 429 in statuses
    assert http.get(f"{QC}/2847193", params=WEB_KEY).status_code == 200  # csa's bucket is another
    assert sources(http)["authority"]["served_429"] == statuses.count(429)


def test_an_authority_malformed_body_is_cut_short(http: httpx.Client) -> None:
    assert http.put("/_sandbox/faults", json={"authority_p_malformed": 1.0}).status_code == 200
    for response in (
        http.get(INSURANCE, params={"dot_number": "02847193"}),
        http.get(f"{QC}/2847193/docket-numbers", params=WEB_KEY),
    ):
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


# --- magic DOTs -------------------------------------------------------------------------------------------


def test_99100002_authority_always_answers_500(http: httpx.Client) -> None:
    for path in ("99100002", "99100002/authority", "99100002/docket-numbers", "99100002/oos"):
        response = http.get(f"{QC}/{path}", params=WEB_KEY, headers=AUTHORITY_AGENT)
        assert (response.status_code, response.content) == (500, b"{}")
    response = http.get(INSURANCE, params={"dot_number": "99100002"})
    assert (response.status_code, response.content) == (500, b"{}")
    assert sources(http)["authority"]["magic"] == 5


def test_99200003_authority_refuses_the_first_two_calls_of_each_sync(http: httpx.Client) -> None:
    def sync() -> list[int]:
        statuses = []
        for path in (f"{QC}/99200003", f"{QC}/99200003", f"{QC}/99200003", f"{QC}/99200003/authority"):
            response = http.get(path, params=WEB_KEY, headers=AUTHORITY_AGENT)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert (response.headers["Retry-After"], response.text) == ("1", "Too Many Requests")
        for path in (f"{QC}/99200003/docket-numbers", f"{QC}/99200003/oos"):
            statuses.append(http.get(path, params=WEB_KEY).status_code)
        statuses.append(http.get(INSURANCE, params={"dot_number": "99200003"}).status_code)
        return statuses

    assert sync() == [429, 429, 200, 200, 200, 200, 200]
    assert sync() == [429, 429, 200, 200, 200, 200, 200]
    assert http.get(f"{QC}/99200003", params=WEB_KEY).status_code == 200  # csa's call: not the rule's
    # the refusals fall on whatever comes first, the insurance dataset included
    first = [http.get(INSURANCE, params={"dot_number": "99200003"}).status_code for _ in range(2)]
    assert first == [200, 200]  # a sync starts only with the carrier record
    statuses = [http.get(f"{QC}/99200003", params=WEB_KEY, headers=AUTHORITY_AGENT).status_code]
    statuses += [http.get(INSURANCE, params={"dot_number": "99200003"}).status_code for _ in range(2)]
    assert statuses == [429, 429, 200]
    assert sources(http)["authority"]["magic"] == 6


def test_99300002_authority_hangs_then_answers(http: httpx.Client) -> None:
    assert http.put("/_sandbox/faults", json={"hang_s": 0.5}).status_code == 200
    for send in (
        lambda: http.get(f"{QC}/99300002/authority", params=WEB_KEY),
        lambda: http.get(INSURANCE, params={"dot_number": "99300002"}),
    ):
        started = time.monotonic()
        response = send()
        assert time.monotonic() - started >= 0.5
        assert response.status_code == 200
        assert response.json()
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{QC}/99300002/docket-numbers", params=WEB_KEY, timeout=0.1)
    assert sources(http)["authority"]["magic"] == 3


def test_99400002_authority_answers_the_maintenance_page(http: httpx.Client) -> None:
    for path in ("99400002", "99400002/authority", "99400002/docket-numbers", "99400002/oos"):
        response = http.get(f"{QC}/{path}", params=WEB_KEY, headers=AUTHORITY_AGENT)
        assert response.status_code == 200
        assert "<title>FMCSA System Maintenance Page</title>" in response.text
    assert filings(http, dot_number="99400002")  # the insurance dataset is another host: it serves


# --- scripted DOTs across bumps ---------------------------------------------------------------------------


def read(http: httpx.Client, dot: int) -> dict[str, Any]:
    carrier = content(http, str(dot), AUTHORITY_AGENT)["carrier"]
    (authority,) = content(http, f"{dot}/authority")
    return {
        "common": carrier["commonAuthorityStatus"],
        "allowed": carrier["allowedToOperate"],
        "bipd_on_file": carrier["bipdInsuranceOnFile"],
        "bipd_required": carrier["bipdRequiredAmount"],
        "oos_date": carrier["oosDate"],
        "authority": authority["carrierAuthority"],
        "dockets": [f"{d['prefix']}{d['docketNumber']}" for d in content(http, f"{dot}/docket-numbers")],
        "oos": [o["oos"]["id"] for o in content(http, f"{dot}/oos")],
        "filings": {r["policy_no"]: r for r in filings(http, dot_number=f"{dot:08d}")},
    }


def test_a_bump_flips_each_scripted_authority_dot(own_sandbox: Start) -> None:
    dots = range(99_700_005, 99_700_013)
    with own_sandbox() as sandbox, sandbox.client() as http:
        seen = {1: {dot: read(http, dot) for dot in dots}}
        for version in (2, 3):
            assert http.post("/_sandbox/bump").json() == {"data_version": version}
            seen[version] = {dot: read(http, dot) for dot in dots}

    def each(dot: int, key: str) -> list[Any]:
        return [seen[v][dot][key] for v in (1, 2, 3)]

    assert each(99_700_005, "common") == ["A", "I", "A"]
    assert [a["commonAuthorityStatus"] for a in each(99_700_005, "authority")] == ["A", "I", "A"]
    assert [a["commonAuthorityRevocationStatus"] for a in each(99_700_006, "authority")] == ["N", "Y", "N"]
    assert each(99_700_006, "common") == ["A", "A", "A"]
    dockets = each(99_700_007, "dockets")
    assert [d[1:] for d in dockets] == [[], ["FF990702"], ["FF990702", "FF990703"]]
    assert dockets[0][0].startswith("MC")
    assert each(99_700_008, "oos") == [[], [98_002], []]
    assert each(99_700_008, "allowed") == ["Y", "N", "Y"]
    assert each(99_700_008, "oos_date")[1] is not None
    assert [len(f) for f in each(99_700_009, "filings")] == [2, 3, 4]
    assert set(seen[3][99_700_009]["filings"]) - set(seen[2][99_700_009]["filings"]) == {"CG990700003"}
    today = datetime.now(UTC).date()
    for dot, ahead in ((99_700_010, True), (99_700_011, False)):
        cancelled = [bipd_values(f, "cancl_effective_date") for f in each(dot, "filings")]
        assert cancelled[0] == cancelled[2] == [None]
        (text,) = cancelled[1]
        month, day, year = (int(part) for part in text.split("/"))
        assert (date(year, month, day) > today) is ahead
    assert each(99_700_012, "bipd_on_file") == ["750", "500", "750"]
    assert [bipd_values(f, "max_cov_amount") for f in each(99_700_012, "filings")] == [
        ["750"],
        ["500"],
        ["750"],
    ]
    for dot in dots:  # the required amount never moves
        assert each(dot, "bipd_required") == ["750"] * 3


def bipd_values(rows: dict[str, dict[str, str]], key: str) -> list[str | None]:
    return [row.get(key) for row in rows.values() if row["ins_type_desc"] == "BIPD"]
