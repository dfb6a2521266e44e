"""Drift: every example body in tests/fixtures/fmcsa has a live sandbox answer of the same shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_sandbox.data import Snapshot, directory, snapshot

WEB_KEY = {"webKey": "sandbox-webkey"}
API_KEY = {"x-api-key": "sandbox-api-key"}
RESOURCE = "/resource/8mt8-2mdr.json"
INSURANCE = "/resource/qh9u-swkp.json"
Compare = Callable[[Any, Any], list[str]]


def pick(wanted: Callable[[Snapshot], bool]) -> int:
    """The first healthy DOT from 1000001 on whose version-1 data has the wanted trait."""
    for dot in range(1_000_001, 1_010_000):
        found = snapshot(dot, 1)
        if found is not None and wanted(found):
            return dot
    raise AssertionError("no such carrier in the first 10,000")


def has_all_basics_rows(found: Snapshot) -> bool:
    return bool(found.basics) and all(b.violations for b in found.basics if b.basic.basic_id != 14)


PASSENGER = pick(lambda s: s.profile.passenger and has_all_basics_rows(s))
PROPERTY = pick(lambda s: not s.profile.passenger and s.profile.docket is not None and bool(s.rows))
OUT_OF_SERVICE = pick(lambda s: s.profile.oos_order is not None)
US_BLOCK = pick(lambda s: s.profile.us_block == "us_inspections")
ALT_BLOCK = pick(lambda s: s.profile.us_block == "united_states_inspections")

# example file -> (expected status, request)
REQUESTS: dict[str, tuple[int, Callable[[httpx.Client], httpx.Response]]] = {
    "datahub-insurance-page.json": (
        200,
        lambda c: c.get(INSURANCE, params={"dot_number": f"{PROPERTY:08d}", "$order": ":id"}),
    ),
    "qcmobile-authority.json": (
        200,
        lambda c: c.get(f"/qc/services/carriers/{PROPERTY}/authority", params=WEB_KEY),
    ),
    "qcmobile-basics-empty.json": (
        200,
        lambda c: c.get("/qc/services/carriers/99000001/basics", params=WEB_KEY),
    ),
    "qcmobile-basics-not-public.json": (
        200,
        lambda c: c.get("/qc/services/carriers/99600001/basics", params=WEB_KEY),
    ),
    "qcmobile-basics.json": (
        200,
        lambda c: c.get(f"/qc/services/carriers/{PASSENGER}/basics", params=WEB_KEY),
    ),
    "qcmobile-carrier-unknown.json": (200, lambda c: c.get("/qc/services/carriers/99000001", params=WEB_KEY)),
    "qcmobile-carrier.json": (200, lambda c: c.get(f"/qc/services/carriers/{PROPERTY}", params=WEB_KEY)),
    "qcmobile-docket-numbers.json": (
        200,
        lambda c: c.get(f"/qc/services/carriers/{PROPERTY}/docket-numbers", params=WEB_KEY),
    ),
    "qcmobile-maintenance.html": (200, lambda c: c.get("/qc/services/carriers/99400001", params=WEB_KEY)),
    "qcmobile-oos.json": (
        200,
        lambda c: c.get(f"/qc/services/carriers/{OUT_OF_SERVICE}/oos", params=WEB_KEY),
    ),
    "qcmobile-webkey-missing.json": (404, lambda c: c.get(f"/qc/services/carriers/{PROPERTY}")),
    "qcmobile-webkey-not-found.json": (
        404,
        lambda c: c.get(f"/qc/services/carriers/{PROPERTY}", params={"webKey": "wrong"}),
    ),
    "saferwebapi-401.json": (401, lambda c: c.get(f"/v2/usdot/snapshot/{PROPERTY}")),
    "saferwebapi-404.json": (404, lambda c: c.get("/v2/usdot/snapshot/99000001", headers=API_KEY)),
    "saferwebapi-snapshot.json": (200, lambda c: c.get(f"/v2/usdot/snapshot/{US_BLOCK}", headers=API_KEY)),
    "saferwebapi-snapshot-alt.json": (
        200,
        lambda c: c.get(f"/v2/usdot/snapshot/{ALT_BLOCK}", headers=API_KEY),
    ),
    "socrata-8mt8-2mdr-empty.json": (200, lambda c: c.get(RESOURCE, params={"dot_number": "99000001"})),
    "socrata-8mt8-2mdr-page.json": (
        200,
        lambda c: c.get(RESOURCE, params={"dot_number": str(PROPERTY), "$order": ":id"}),
    ),
    "socrata-error-400-parse.json": (400, lambda c: c.get(RESOURCE, params={"$where": "dot_number = "})),
    "socrata-error-400.json": (400, lambda c: c.get(RESOURCE, params={"dot_numbr": str(PROPERTY)})),
    "socrata-error-403-app-token.json": (
        403,
        lambda c: c.get(RESOURCE, params={"dot_number": "1"}, headers={"X-App-Token": "wrong"}),
    ),
    "socrata-error-404.json": (404, lambda c: c.get("/resource/8mt8-2mdx.json", params={"dot_number": "1"})),
}


def test_every_example_file_has_a_request(examples_dir: Path) -> None:
    assert {p.name for p in examples_dir.iterdir() if p.name != "README.md"} == set(REQUESTS)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_sandbox_answers_in_the_examples_shape(
    name: str, examples_dir: Path, http: httpx.Client, same_shape: Compare
) -> None:
    status, send = REQUESTS[name]
    response = send(http)
    assert response.status_code == status
    recorded = (examples_dir / name).read_text()
    if name.endswith(".html"):
        assert response.text.strip() == recorded.strip()
        return
    problems = same_shape(json.loads(recorded), response.json())
    assert problems == [], "\n".join(problems)


# the searches answer a list of carriers, each in the shape of the carrier example's `content`
DOCKET = next(p.docket for p in directory() if p.docket is not None)
SEARCHES: dict[str, Callable[[httpx.Client], httpx.Response]] = {
    "name": lambda c: c.get("/qc/services/carriers/name/EXPRESS", params=WEB_KEY),
    "docket-number": lambda c: c.get(f"/qc/services/carriers/docket-number/{DOCKET}", params=WEB_KEY),
}


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_the_searches_answer_carriers_in_the_carrier_examples_shape(
    search: str, examples_dir: Path, http: httpx.Client, same_shape: Compare
) -> None:
    response = SEARCHES[search](http)
    assert response.status_code == 200
    assert response.json()["content"]
    example = json.loads((examples_dir / "qcmobile-carrier.json").read_text())
    problems = same_shape({**example, "content": [example["content"]]}, response.json())
    assert problems == [], "\n".join(problems)


def test_the_socrata_example_has_the_same_header_fields_as_its_rows(
    http: httpx.Client, examples_dir: Path
) -> None:
    response = http.get(RESOURCE, params={"dot_number": str(PROPERTY)})
    recorded = json.loads((examples_dir / "socrata-8mt8-2mdr-page.json").read_text())
    assert json.loads(response.headers["X-SODA2-Fields"]) == list(recorded[0])


def test_the_insurance_example_has_the_same_header_fields_as_its_rows(
    http: httpx.Client, examples_dir: Path
) -> None:
    response = http.get(INSURANCE, params={"dot_number": f"{PROPERTY:08d}"})
    recorded = json.loads((examples_dir / "datahub-insurance-page.json").read_text())
    fields = json.loads(response.headers["X-SODA2-Fields"])
    assert set(fields) == {key for row in recorded for key in row}
    assert fields == [key for key in recorded[-1]]  # the cancelled filing's row has every column


@pytest.mark.parametrize("dot", [str(d) for d in range(1_000_001, 1_000_021)])
def test_every_carrier_answers_in_the_examples_shapes(
    dot: str, examples_dir: Path, http: httpx.Client, same_shape: Compare
) -> None:
    def example(name: str) -> Any:
        return json.loads((examples_dir / name).read_text())

    found = snapshot(int(dot), 1)
    assert found is not None
    carrier = http.get(f"/qc/services/carriers/{dot}", params=WEB_KEY).json()
    problems = same_shape(example("qcmobile-carrier.json"), carrier)
    basics = http.get(f"/qc/services/carriers/{dot}/basics", params=WEB_KEY).json()
    if basics["content"]:
        model = "qcmobile-basics.json" if found.profile.passenger else "qcmobile-basics-not-public.json"
        problems += same_shape(example(model), basics)
    safer = http.get(f"/v2/usdot/snapshot/{dot}", headers=API_KEY).json()
    spelled = "saferwebapi-snapshot.json" if "us_inspections" in safer else "saferwebapi-snapshot-alt.json"
    problems += same_shape(example(spelled), safer)
    rows = http.get(RESOURCE, params={"dot_number": dot, "$order": ":id"}).json()
    if rows:
        problems += same_shape(example("socrata-8mt8-2mdr-page.json"), rows)
    for resource, name in (
        ("oos", "qcmobile-oos.json"),
        ("authority", "qcmobile-authority.json"),
        ("docket-numbers", "qcmobile-docket-numbers.json"),
    ):
        answer = http.get(f"/qc/services/carriers/{dot}/{resource}", params=WEB_KEY).json()
        if answer["content"]:
            problems += same_shape(example(name), answer)
    filings = http.get(INSURANCE, params={"dot_number": f"{int(dot):08d}", "$order": ":id"}).json()
    if filings:
        problems += same_shape(example("datahub-insurance-page.json"), filings)
    assert bool(filings) == found.profile.for_hire  # a for-hire carrier has a BIPD filing, a private one none
    assert problems == [], "\n".join(problems)
