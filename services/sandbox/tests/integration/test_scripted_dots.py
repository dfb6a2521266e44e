"""Over HTTP: a bump changes exactly the scripted DOTs' documented fields, and nothing else they serve."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

Start = Callable[..., contextlib.AbstractContextManager[Any]]
WEB_KEY = {"webKey": "sandbox-webkey"}
QC = "/qc/services/carriers"
DOTS = (99_700_001, 99_700_002, 99_700_003, 99_700_004)
SAFER_BLOCK = "safer.united_states_inspections.driver"  # 99700002's spelling of the US block


def read(client: httpx.Client, dot: int, flat: Any) -> tuple[dict[str, Any], Counter[str]]:
    """Everything the three sources serve for a DOT, flat (basics keyed by id), and its rows without `:id`."""

    def content(path: str) -> Any:
        response = client.get(f"{QC}/{dot}{path}", params=WEB_KEY)
        response.raise_for_status()
        return response.json()["content"]

    safer = client.get(f"/v2/usdot/snapshot/{dot}", headers={"x-api-key": "sandbox-api-key"})
    rows = client.get(
        "/resource/8mt8-2mdr.json", params={"dot_number": str(dot), "$order": ":id", "$limit": "50000"}
    )
    assert safer.status_code == rows.status_code == 200
    view = {
        "carrier": content("")["carrier"],
        "basics": {str(e["basic"]["id"]["basicsId"]): e["basic"] for e in content("/basics")},
        "oos": content("/oos"),
        "authority": content("/authority"),
        "cargo": content("/cargo-carried"),
        "safer": safer.json(),
    }
    return flat.flatten(view), Counter(json.dumps(row, sort_keys=True) for row in rows.json())


def read_all(client: httpx.Client, flat: Any) -> dict[int, tuple[dict[str, Any], Counter[str]]]:
    return {dot: read(client, dot, flat) for dot in DOTS}


def basic(basic_id: int, *fields: str) -> set[str]:
    return {f"basics.{basic_id}.{field}" for field in fields}


ALERT_FIELDS = (
    "basicsPercentile",
    "exceededFMCSAInterventionThreshold",
    "onRoadPerformanceThresholdViolationIndicator",
)
RATING_STATUS = {
    "carrier.safetyRating",
    "carrier.safetyRatingDate",
    "carrier.reviewDate",
    "carrier.safetyReviewDate",
    "carrier.allowedToOperate",
    "carrier.oosDate",
    "safer.safety_rating",
    "safer.safety_rating_date",
    "safer.safety_review_date",
    "safer.operating_status",
    "safer.out_of_service_date",
    "safer.latest_update",
    "oos",
}
ORDER = {f"oos.0.oos.{k}" for k in ("dotNumber", "id", "oosDate", "oosReason", "oosReasonDescription")}
ONE_MORE_VIOLATION = basic(12, "totalViolation", "totalInspectionWithViolation", "measureValue") | {
    "carrier.driverInsp",
    "carrier.driverOosInsp",
    "carrier.driverOosRate",
    f"{SAFER_BLOCK}.inspections",
    f"{SAFER_BLOCK}.out_of_service",
    f"{SAFER_BLOCK}.out_of_service_percent",
    "safer.latest_update",
}


def test_a_bump_changes_exactly_the_documented_fields_of_the_scripted_dots(
    own_sandbox: Start, flat: Any
) -> None:
    with own_sandbox() as sandbox, sandbox.client() as client:
        v1 = read_all(client, flat)
        assert read_all(client, flat) == v1  # the same version: the same answers
        assert client.post("/_sandbox/bump").json() == {"data_version": 2}
        v2 = read_all(client, flat)
        assert client.post("/_sandbox/bump").json() == {"data_version": 3}
        v3 = read_all(client, flat)

    changes = {dot: [flat.changed(a[dot][0], b[dot][0]) for a, b in ((v1, v2), (v2, v3))] for dot in DOTS}

    # 99700001: Unsafe Driving crosses its threshold of 50, then back
    up, down = changes[99_700_001]
    assert set(up) == set(down) == basic(11, *ALERT_FIELDS)
    assert up["basics.11.basicsPercentile"] == ("45%", "58%")
    assert up["basics.11.exceededFMCSAInterventionThreshold"] == ("N", "Y")
    assert down["basics.11.basicsPercentile"] == ("58%", "45%")
    assert down["basics.11.onRoadPerformanceThresholdViolationIndicator"] == ("Y", "N")

    # 99700002: one new out-of-service violation per bump, counted where it counts
    for change, before, after in zip(changes[99_700_002], (v1, v2), (v2, v3), strict=True):
        assert set(change) == ONE_MORE_VIOLATION
        old, new = before[99_700_002][1], after[99_700_002][1]
        assert not old - new
        (added,) = (new - old).elements()
        row = json.loads(added)
        assert (row["oos_indicator"], row["viol_code"], row["viol_unit"], row["time_weight"]) == (
            "true",
            "3953A2",
            "D",
            "3",
        )
    assert changes[99_700_002][0]["basics.12.totalViolation"] == (38, 39)
    assert changes[99_700_002][1][f"{SAFER_BLOCK}.out_of_service"] == ("21", "22")
    assert json.loads(next((v2[99_700_002][1] - v1[99_700_002][1]).elements()))["insp_date"] == "15-OCT-26"

    # 99700003: rating and status change, then change back
    to_conditional, to_satisfactory = changes[99_700_003]
    assert set(to_conditional) == set(to_satisfactory) == RATING_STATUS | ORDER | {"oos.0._links.self.href"}
    assert to_conditional["safer.safety_rating"] == ("SATISFACTORY", "CONDITIONAL")
    assert to_conditional["safer.operating_status"] == ("ACTIVE", "OUT-OF-SERVICE")
    assert to_conditional["carrier.safetyRating"] == ("S", "C")
    assert to_satisfactory["safer.safety_rating"] == ("CONDITIONAL", "SATISFACTORY")
    assert to_satisfactory["safer.operating_status"] == ("OUT-OF-SERVICE", "ACTIVE")

    # 99700004: Vehicle Maintenance turns Not Public, then public again
    hidden, shown = changes[99_700_004]
    assert set(hidden) == set(shown) == basic(15, *ALERT_FIELDS)
    assert hidden["basics.15.basicsPercentile"] == ("38%", "Not Public")
    assert hidden["basics.15.exceededFMCSAInterventionThreshold"] == ("N", "-1")
    assert shown["basics.15.onRoadPerformanceThresholdViolationIndicator"] == ("Not Public", "N")

    for dot in (99_700_001, 99_700_003, 99_700_004):  # their rows stay the same (but for `:id`)
        assert v1[dot][1] == v2[dot][1] == v3[dot][1]
