"""The standard Socrata client, sodapy, reads the sandbox unchanged but for the URL scheme (its
`session_adapter` option is the one way it offers to speak plain http to a loopback host)."""

from __future__ import annotations

import contextlib
import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata

from fmcsa_sandbox.data import VIOLATIONS_2500_ROWS

DATASET = "8mt8-2mdr"
RESOURCE = f"/resource/{DATASET}.json"
CARRIER = "2847193"
OTHER = "1000003"
COLUMNS = [
    "unique_id", "insp_date", "dot_number", "viol_code", "basic_desc", "oos_indicator", "oos_weight",
    "severity_weight", "time_weight", "total_severity_wght", "section_desc", "group_desc", "viol_unit",
]  # fmt: skip
Start = Callable[..., contextlib.AbstractContextManager[Any]]


def socrata(url: str) -> Socrata:
    """sodapy pointed at the sandbox: the domain is host:port, the scheme http instead of https."""
    domain = url.removeprefix("http://")
    adapter = {"prefix": "http://", "adapter": HTTPAdapter()}
    return Socrata(domain, "sandbox-app-token", session_adapter=adapter, timeout=10)


@pytest.fixture
def client(sandbox: Any) -> Iterator[Socrata]:
    with socrata(sandbox.url) as client:
        yield client


def all_rows(client: Socrata, dot: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = client.get(DATASET, dot_number=dot, limit=50_000, order=":id")
    assert rows
    return rows


def test_sodapy_pages_a_carrier_in_id_order_like_the_violations_source(
    client: Socrata, http: httpx.Client
) -> None:
    pages = [
        client.get(DATASET, dot_number=str(VIOLATIONS_2500_ROWS), limit=1000, offset=offset, order=":id")
        for offset in (0, 1000, 2000, 3000)
    ]
    assert [len(page) for page in pages] == [1000, 1000, 500, 0]
    whole = client.get(DATASET, dot_number=str(VIOLATIONS_2500_ROWS), limit=5000, order=":id")
    assert [row for page in pages for row in page] == whole
    assert all(set(row) <= set(COLUMNS) for row in whole)  # no system field unless asked
    direct = http.get(RESOURCE, params={"dot_number": CARRIER, "$order": ":id", "$limit": "50000"}).json()
    assert all_rows(client, CARRIER) == direct


def test_system_fields_come_only_when_asked_for(client: Socrata) -> None:
    plain = client.get(DATASET, dot_number=CARRIER, limit=3, order=":id")
    excluded_not = client.get(
        DATASET, dot_number=CARRIER, limit=3, order=":id", exclude_system_fields="false"
    )
    star = client.get(DATASET, dot_number=CARRIER, limit=3, order=":id", select=":*, *")
    assert not any(key.startswith(":") for row in plain for key in row)
    assert excluded_not == star
    for row, bare in zip(star, plain, strict=True):
        assert {k: v for k, v in row.items() if not k.startswith(":")} == bare
        assert row[":created_at"] == row[":updated_at"]
        assert row[":updated_at"].endswith(".000Z")
    ids = [row[":id"] for row in star]
    assert ids == sorted(ids)
    only_ids = client.get(DATASET, dot_number=CARRIER, limit=3, order=":id", select=":id")
    assert only_ids == [{":id": i} for i in ids]


def test_where_with_in_and_or_like_and_comparisons(client: Socrata) -> None:
    both = all_rows(client, CARRIER) + all_rows(client, OTHER)
    found = client.get(
        DATASET, where=f"dot_number IN ('{CARRIER}', '{OTHER}') AND oos_indicator = 'true'", limit=50_000
    )
    assert sorted(map(json.dumps, found)) == sorted(
        json.dumps(r) for r in both if r["oos_indicator"] == "true"
    )
    assert found
    either = client.get(
        DATASET,
        where=f"(dot_number = '{CARRIER}' OR dot_number = '{OTHER}') AND viol_code like '392%'",
        limit=50_000,
    )
    assert {r["viol_code"][:3] for r in either} == {"392"}
    assert len(either) == sum(1 for r in both if r["viol_code"].startswith("392"))
    # every column is text upstream: `>` on insp_date (DD-MON-YY) compares the text, not the date
    late = client.get(DATASET, where=f"dot_number = '{CARRIER}' AND insp_date >= '15-JAN-25'", limit=50_000)
    assert {r["unique_id"] for r in late} == {
        r["unique_id"] for r in both if r["dot_number"] == CARRIER and r["insp_date"] >= "15-JAN-25"
    }
    heavy = client.get(
        DATASET, where=f"dot_number = '{CARRIER}' AND severity_weight::number > 5", limit=50_000
    )
    assert len(heavy) == sum(1 for r in both if r["dot_number"] == CARRIER and int(r["severity_weight"]) > 5)
    assert {r["severity_weight"] for r in heavy} <= {"6", "7", "8", "9", "10"}


def test_updated_at_compares_as_an_instant(client: Socrata) -> None:
    stamp = client.get(DATASET, dot_number=CARRIER, limit=1, select=":updated_at")[0][":updated_at"]
    since = client.get(DATASET, dot_number=CARRIER, where=f":updated_at >= '{stamp[:10]}'", limit=50_000)
    assert len(since) == len(all_rows(client, CARRIER))
    assert client.get(DATASET, dot_number=CARRIER, where=f":updated_at > '{stamp}'") == []


def test_count_group_and_aliases(client: Socrata) -> None:
    rows = all_rows(client, CARRIER)
    assert client.get(DATASET, dot_number=CARRIER, select="count(*)") == [{"count": str(len(rows))}]
    assert client.get(DATASET, dot_number="99000001", select="count(*) AS n") == [{"n": "0"}]
    grouped = client.get(
        DATASET, dot_number=CARRIER, select="viol_unit, count(*) AS n", group="viol_unit", order="n DESC"
    )
    expected = Counter(r["viol_unit"] for r in rows)
    assert {g["viol_unit"]: int(g["n"]) for g in grouped} == expected
    assert [int(g["n"]) for g in grouped] == sorted(expected.values(), reverse=True)


def test_a_whole_query_statement(client: Socrata) -> None:
    rows = all_rows(client, CARRIER)
    statement = f"SELECT unique_id, viol_code WHERE dot_number = '{CARRIER}' ORDER BY :id LIMIT 5 OFFSET 2"
    assert client.get(DATASET, query=statement) == [
        {"unique_id": r["unique_id"], "viol_code": r["viol_code"]} for r in rows[2:7]
    ]
    counted = client.get(
        DATASET,
        query=f"select dot_number, count(*) as n where dot_number in ('{CARRIER}', '{OTHER}') "
        "group by dot_number order by dot_number",
    )
    assert counted == [
        {"dot_number": OTHER, "n": str(len(all_rows(client, OTHER)))},
        {"dot_number": CARRIER, "n": str(len(rows))},
    ]


def test_metadata_names_the_columns_and_when_rows_changed(client: Socrata, http: httpx.Client) -> None:
    meta = client.get_metadata(DATASET)
    assert meta["id"] == DATASET
    assert [c["fieldName"] for c in meta["columns"]] == COLUMNS
    assert {c["dataTypeName"] for c in meta["columns"]} == {"text"}
    modified = parsedate_to_datetime(
        http.get(RESOURCE, params={"dot_number": CARRIER}).headers["Last-Modified"]
    )
    assert meta["rowsUpdatedAt"] == int(modified.timestamp())
    assert meta["viewLastModified"] >= meta["rowsUpdatedAt"]


def test_rows_updated_at_advances_with_a_bump(own_sandbox: Start) -> None:
    with own_sandbox() as sandbox, socrata(sandbox.url) as client:
        before = client.get_metadata(DATASET)["rowsUpdatedAt"]
        stamp = client.get(DATASET, dot_number=CARRIER, limit=1, select=":updated_at")
        httpx.post(f"{sandbox.url}/_sandbox/bump", timeout=10).raise_for_status()
        after = client.get_metadata(DATASET)["rowsUpdatedAt"]
        assert after > before
        assert client.get(DATASET, dot_number=CARRIER, limit=1, select=":updated_at") != stamp


def test_csv_has_the_field_names_and_the_json_values(client: Socrata, http: httpx.Client) -> None:
    table = client.get(DATASET, content_type="csv", dot_number=CARRIER, order=":id", limit=50_000)
    header, *lines = table
    assert header == COLUMNS
    rows = all_rows(client, CARRIER)
    assert lines == [[row.get(column, "") for column in COLUMNS] for row in rows]
    by_accept = http.get(
        f"/resource/{DATASET}", params={"dot_number": CARRIER}, headers={"Accept": "text/csv"}
    )
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text.splitlines()[0] == ",".join(f'"{c}"' for c in COLUMNS)


def test_gzip_only_when_asked(http: httpx.Client, sandbox: Any) -> None:
    params = {"dot_number": CARRIER, "$order": ":id"}
    plain = http.get(RESOURCE, params=params, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with httpx.stream(
        "GET", f"{sandbox.url}{RESOURCE}", params=params, headers={"Accept-Encoding": "gzip"}, timeout=10
    ) as raw:
        assert raw.headers["content-encoding"] == "gzip"
        body = b"".join(raw.iter_raw())
    assert gzip.decompress(body) == plain.content
    assert len(body) < len(plain.content)
    decoded = requests.get(f"{sandbox.url}{RESOURCE}", params=params, timeout=10)  # asks for gzip itself
    assert decoded.headers["Content-Encoding"] == "gzip"
    assert decoded.json() == plain.json()


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(requests.HTTPError) as caught:
        call()
    assert caught.value.response is not None
    assert caught.value.response.status_code == 400
    body: dict[str, Any] = caught.value.response.json()
    return body


def test_errors_point_at_the_offending_token(client: Socrata) -> None:
    where = f"dot_number = '{CARRIER}' AND nope = '2'"
    body = error_of(lambda: client.get(DATASET, where=where))
    assert body["errorCode"] == "query.soql.no-such-column"
    assert body["data"]["column"] == "nope"
    assert body["data"]["position"] == {"row": 1, "column": len("select * where ") + where.index("nope") + 1}
    statement = f"SELECT *\nWHERE dot_number = '{CARRIER}'\n  AND severity_weight > 5"
    body = error_of(lambda: client.get(DATASET, query=statement))
    assert body["errorCode"] == "query.soql.type-mismatch"
    assert body["data"]["position"] == {"row": 3, "column": len("  AND severity_weight ") + 1}
    body = error_of(lambda: client.get(DATASET, select="viol_unit, count(*)", dot_number=CARRIER))
    assert body["errorCode"] == "query.soql.column-not-in-group-bys"
    assert body["data"]["position"] == {"row": 1, "column": len("select ") + 1}
    body = error_of(lambda: client.get(DATASET, query="SELECT *\nWHERE dot_number = "))
    assert body["code"] == "query.compiler.malformed"
    assert "at line 2 character 19" in body["message"]
    assert body["data"] == {"query": "SELECT *\nWHERE dot_number = "}


def test_metadata_of_another_view_is_404_and_a_wrong_token_403(client: Socrata, sandbox: Any) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        client.get_metadata("8mt8-2mdx")
    assert caught.value.response is not None
    assert caught.value.response.status_code == 404
    assert caught.value.response.json()["code"] == "not_found"
    wrong = Socrata(
        sandbox.url.removeprefix("http://"),
        "wrong-token",
        session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
        timeout=10,
    )
    with wrong, pytest.raises(requests.HTTPError) as refused:
        wrong.get_metadata(DATASET)
    assert refused.value.response is not None
    assert refused.value.response.status_code == 403
    assert refused.value.response.json()["code"] == "permission_denied"
