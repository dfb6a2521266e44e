from __future__ import annotations

import json
from email.utils import parsedate_to_datetime

import httpx
import pytest

RESOURCE = "/resource/8mt8-2mdr.json"


def test_an_unknown_column_is_400_no_such_column(http: httpx.Client) -> None:
    response = http.get(RESOURCE, params={"dot_numbr": "2847193"})
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "query.soql.no-such-column"
    assert body["data"]["column"] == "dot_numbr"
    assert "query.soql.no-such-column" in body["message"]


def test_a_limit_above_50000_is_400(http: httpx.Client) -> None:
    response = http.get(RESOURCE, params={"dot_number": "2847193", "$limit": "50001"})
    assert response.status_code == 400
    assert response.json()["code"]
    assert http.get(RESOURCE, params={"dot_number": "2847193", "$limit": "50000"}).status_code == 200


def test_another_dataset_is_404_dataset_missing(http: httpx.Client) -> None:
    response = http.get("/resource/8mt8-2mdx.json", params={"dot_number": "2847193"})
    assert response.status_code == 404
    assert response.json() == {"code": "dataset.missing", "error": True, "message": "Not found",
                               "data": {"id": "8mt8-2mdx"}}  # fmt: skip


@pytest.mark.parametrize("where", ["dot_number = ", "dot_number =! '1'", "dot_number='1' OR"])
def test_a_where_that_does_not_parse_is_400_malformed(http: httpx.Client, where: str) -> None:
    response = http.get(RESOURCE, params={"$where": where})
    assert response.status_code == 400
    assert response.json()["code"] == "query.compiler.malformed"


def test_a_simple_where_filters_like_the_column_parameter(http: httpx.Client) -> None:
    by_where = http.get(RESOURCE, params={"$where": "dot_number = '2847193'", "$order": ":id"})
    by_param = http.get(RESOURCE, params={"dot_number": "2847193", "$order": ":id"})
    assert by_where.status_code == 200
    assert by_where.json() == by_param.json() != []
    mismatch = http.get(RESOURCE, params={"$where": "dot_number = 2847193"})
    assert mismatch.status_code == 400
    assert mismatch.json()["errorCode"] == "query.soql.type-mismatch"


@pytest.mark.parametrize("value", ["02847193", "abc", ""])
def test_dot_number_is_string_equality_and_never_an_error(http: httpx.Client, value: str) -> None:
    response = http.get(RESOURCE, params={"dot_number": value})
    assert (response.status_code, response.json()) == (200, [])


def test_rows_are_all_strings_in_socratas_formats(http: httpx.Client) -> None:
    rows = http.get(RESOURCE, params={"dot_number": "1000003", "$limit": "5000"}).json()
    assert rows
    for row in rows:
        assert all(isinstance(value, str) for value in row.values())
        assert row["dot_number"] == "1000003"
        assert row["oos_indicator"] in ("true", "false")
        assert row["time_weight"] in ("1", "2", "3")
        assert len(row["insp_date"]) == 9
        assert row["insp_date"][2] == "-"
        assert row["insp_date"][3:6].isupper()


def test_answers_carry_socratas_headers_and_honour_if_none_match(http: httpx.Client) -> None:
    response = http.get(RESOURCE, params={"dot_number": "2847193", "$select": ":id,unique_id,insp_date"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["X-Socrata-RequestId"]
    fields = json.loads(response.headers["X-SODA2-Fields"])
    types = json.loads(response.headers["X-SODA2-Types"])
    assert fields == [":id", "unique_id", "insp_date"]
    assert len(types) == len(fields)
    assert set(response.json()[0]) == set(fields)
    assert parsedate_to_datetime(response.headers["Last-Modified"]).year >= 2026
    etag = response.headers["ETag"]
    again = http.get(
        RESOURCE,
        params={"dot_number": "2847193", "$select": ":id,unique_id,insp_date"},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304
    assert again.content == b""
    other = http.get(RESOURCE, params={"dot_number": "2847193"})
    assert other.headers["X-Socrata-RequestId"] != response.headers["X-Socrata-RequestId"]


def test_unknown_parameters_and_bad_numbers_are_400(http: httpx.Client) -> None:
    for params in (
        {"$group": "dot_number"},
        {"$limit": "ten"},
        {"$offset": "-5"},
        {"$order": "nope"},
        {"$q": "x"},
    ):
        assert http.get(RESOURCE, params=params).status_code == 400, params
