from __future__ import annotations

import unicodedata
from collections import Counter

import httpx
import pytest

from fmcsa_sandbox.data import BASIC_TYPES

WEB_KEY = {"webKey": "sandbox-webkey"}
API_KEY = {"x-api-key": "sandbox-api-key"}


@pytest.mark.parametrize("dot", ["99000001", "99000050", "99000099"])
def test_unknown_dots_are_unknown_to_all_three_sources(http: httpx.Client, dot: str) -> None:
    carrier = http.get(f"/qc/services/carriers/{dot}", params=WEB_KEY)
    assert carrier.status_code == 200
    assert carrier.json()["content"] is None
    assert carrier.json()["retrievalDate"].endswith("+0000")
    for resource in (
        "basics",
        "oos",
        "authority",
        "cargo-carried",
        "operation-classification",
        "docket-numbers",
    ):
        below = http.get(f"/qc/services/carriers/{dot}/{resource}", params=WEB_KEY)
        assert below.status_code == 200
        assert below.json()["content"] == []
    rows = http.get("/resource/8mt8-2mdr.json", params={"dot_number": dot, "$order": ":id"})
    assert rows.status_code == 200
    assert rows.json() == []
    snapshot = http.get(f"/v2/usdot/snapshot/{dot}", headers=API_KEY)
    assert (snapshot.status_code, snapshot.json()) == (404, {"message": "USDOT number not found"})


def test_a_healthy_carrier_is_one_story_across_the_three_sources(http: httpx.Client) -> None:
    for dot in ("2847193", "1398457", "1000003", "99500001"):
        carrier = http.get(f"/qc/services/carriers/{dot}", params=WEB_KEY).json()["content"]["carrier"]
        basics = http.get(f"/qc/services/carriers/{dot}/basics", params=WEB_KEY).json()["content"]
        rows = http.get("/resource/8mt8-2mdr.json", params={"dot_number": dot, "$limit": "50000"}).json()
        safer = http.get(f"/v2/usdot/snapshot/{dot}", headers=API_KEY).json()
        us = safer.get("us_inspections") or safer["united_states_inspections"]
        assert int(us["vehicle"]["inspections"]) == carrier["vehicleInsp"]
        assert int(us["vehicle"]["out_of_service"]) == carrier["vehicleOosInsp"]
        assert int(us["driver"]["inspections"]) == carrier["driverInsp"]
        assert int(us["hazmat"]["inspections"]) == carrier["hazmatInsp"]
        assert safer["united_states_crashes"]["total"] == carrier["crashTotal"]
        assert safer["legal_name"] == carrier["legalName"]
        assert safer["usdot"] == dot
        per_label = Counter(unicodedata.normalize("NFC", r["basic_desc"].replace("\u00ad", "")) for r in rows)
        labels = {b.basic_id: b.label for b in BASIC_TYPES}
        for entry in basics:
            assert (
                entry["basic"]["totalViolation"]
                == per_label[labels[entry["basic"]["basicsType"]["basicsId"]]]
            )
        assert all(r["dot_number"] == dot for r in rows)


def test_passenger_carriers_have_percentiles_and_property_carriers_do_not(http: httpx.Client) -> None:
    passenger = http.get("/qc/services/carriers/1398457/basics", params=WEB_KEY).json()["content"]
    assert passenger
    assert all(e["basic"]["basicsPercentile"].endswith("%") for e in passenger)
    assert {e["basic"]["basicsViolationThreshold"] for e in passenger} <= {"50", "65"}
    carrier = http.get("/qc/services/carriers/1398457", params=WEB_KEY).json()["content"]["carrier"]
    assert carrier["isPassengerCarrier"] == "Y"


def test_every_basic_carries_the_frozen_run_date_and_the_hidden_space_label(http: httpx.Client) -> None:
    basics = http.get("/qc/services/carriers/2847193/basics", params=WEB_KEY).json()["content"]
    assert {e["basic"]["basicsRunDate"] for e in basics} == {"2017-01-27T05:00:00.000+0000"}
    labels = {
        e["basic"]["basicsType"]["basicsId"]: e["basic"]["basicsType"]["basicsShortDesc"] for e in basics
    }
    assert labels[14] == "Controlled Substances/&#8203;Alcohol"


def test_saferweb_spells_the_us_block_one_way_per_dot_every_time(http: httpx.Client) -> None:
    spellings: dict[str, set[str]] = {}
    for dot in range(1_000_001, 1_000_021):
        for _ in range(2):
            body = http.get(f"/v2/usdot/snapshot/{dot}", headers=API_KEY).json()
            spellings.setdefault(str(dot), set()).update(
                k for k in body if k in ("us_inspections", "united_states_inspections")
            )
    assert all(len(found) == 1 for found in spellings.values())
    assert set().union(*spellings.values()) == {"us_inspections", "united_states_inspections"}


def test_every_link_of_a_carrier_answers(http: httpx.Client) -> None:
    carrier = http.get("/qc/services/carriers/1000003", params=WEB_KEY).json()["content"]
    for link in carrier["_links"].values():
        response = http.get(link["href"], params=WEB_KEY)
        assert response.status_code == 200, link
        assert response.json()["content"] is not None
