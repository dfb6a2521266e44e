"""The scripted DOTs 99700001..99700004: at each bump exactly the change the README documents, nothing else.

Each test renders every body the three sources serve for a DOT (QCMobile carrier, basics, oos, authority,
cargo; SaferWebAPI snapshot; Socrata rows without `:id`) at versions 1..4, and compares the fields that
changed between two versions with the documented values.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fmcsa_sandbox import data
from fmcsa_sandbox.data import (
    SCRIPTED_ALERT,
    SCRIPTED_NOT_PUBLIC,
    SCRIPTED_OOS_VIOLATION,
    SCRIPTED_RATING_AND_STATUS,
    SCRIPTS,
    Snapshot,
    snapshot,
)
from fmcsa_sandbox.qcmobile import (
    authority_content,
    basics_content,
    cargo_content,
    carrier_content,
    oos_content,
)
from fmcsa_sandbox.saferweb import snapshot_body
from fmcsa_sandbox.socrata import row_values

BASE = "http://sandbox/qc/services"
VERSIONS = (1, 2, 3, 4)
BUMPS = ((1, 2), (2, 3), (3, 4))
README = Path(__file__).resolve().parents[2] / "README.md"


def known(dot: int, version: int) -> Snapshot:
    found = snapshot(dot, version)
    assert found is not None
    return found


def served(dot: int, version: int, flat: Any) -> tuple[dict[str, Any], Counter[str]]:
    """Every served field of a carrier at a version, flat (basics keyed by id), and its rows without `:id`."""
    found = known(dot, version)
    view = {
        "carrier": carrier_content(found, BASE)["carrier"],
        "basics": {str(e["basic"]["id"]["basicsId"]): e["basic"] for e in basics_content(found, BASE)},
        "oos": oos_content(found, BASE),
        "authority": authority_content(found, BASE),
        "cargo": cargo_content(found, BASE),
        "safer": snapshot_body(found),
    }
    rows = Counter(json.dumps(row_values(row), sort_keys=True) for row in found.rows)
    return flat.flatten(view), rows


def assert_exactly(dot: int, documented: dict[int, dict[str, Any]], flat: Any) -> None:
    """At each version the documented fields hold their values; between versions only they change."""
    for version in VERSIONS:
        fields, _ = served(dot, version, flat)
        shown = {path: fields.get(path, flat.missing) for path in documented[version]}
        assert shown == documented[version], f"version {version}"
    for before, after in BUMPS:
        old, new = served(dot, before, flat)[0], served(dot, after, flat)[0]
        assert flat.changed(old, new) == flat.changed(documented[before], documented[after]), (before, after)


def test_the_scripted_dots_are_the_twelve_documented_ones() -> None:
    assert set(SCRIPTS) == set(range(99_700_001, 99_700_013))
    table = README.read_text().split("## Magic DOTs", 1)[1].split("\n## ", 1)[0]
    for dot in SCRIPTS:
        assert f"| {dot} |" in table


# --- 99700001: Unsafe Driving crosses its threshold of 50 at each bump --------------------------------------


def unsafe_driving(version: int) -> dict[str, Any]:
    percentile, alert = ("58%", "Y") if version % 2 == 0 else ("45%", "N")
    return {
        "carrier.isPassengerCarrier": "Y",
        "basics.11.basicsViolationThreshold": "50",
        "basics.11.measureValue": "1.87",
        "basics.11.basicsPercentile": percentile,
        "basics.11.exceededFMCSAInterventionThreshold": alert,
        "basics.11.onRoadPerformanceThresholdViolationIndicator": alert,
    }


def test_99700001_unsafe_driving_crosses_its_threshold_at_each_bump_and_nothing_else_changes(
    flat: Any,
) -> None:
    assert_exactly(SCRIPTED_ALERT, {v: unsafe_driving(v) for v in VERSIONS}, flat)
    for before, after in BUMPS:
        assert served(SCRIPTED_ALERT, before, flat)[1] == served(SCRIPTED_ALERT, after, flat)[1]


# --- 99700002: one new out-of-service violation at each bump -----------------------------------------------

HOS = {1: (38, 33, "1.03"), 2: (39, 34, "1.09"), 3: (40, 35, "1.15"), 4: (41, 36, "1.21")}
DRIVER = {1: (212, 20, "9.43%"), 2: (213, 21, "9.86%"), 3: (214, 22, "10.28%"), 4: (215, 23, "10.70%")}
LATEST_UPDATE = {1: "10/15/2026", 2: "11/30/2026", 3: "12/28/2026", 4: "02/01/2027"}
NEW_ROW_DATE = {2: "15-OCT-26", 3: "15-NOV-26", 4: "15-DEC-26"}


def oos_violations(version: int) -> dict[str, Any]:
    violations, inspections, measure = HOS[version]
    driver, driver_oos, percent = DRIVER[version]
    block = "safer.united_states_inspections.driver"  # this DOT's spelling: counts as strings
    return {
        "carrier.isPassengerCarrier": "N",
        "basics.12.basicsPercentile": "Not Public",
        "basics.12.totalViolation": violations,
        "basics.12.totalInspectionWithViolation": inspections,
        "basics.12.measureValue": measure,
        "carrier.driverInsp": driver,
        "carrier.driverOosInsp": driver_oos,
        "carrier.driverOosRate": driver_oos / driver * 100,
        f"{block}.inspections": str(driver),
        f"{block}.out_of_service": str(driver_oos),
        f"{block}.out_of_service_percent": percent,
        "safer.latest_update": LATEST_UPDATE[version],
    }


def added_row(version: int) -> str:
    return json.dumps(
        {
            "unique_id": f"9907000{version:02d}",
            "insp_date": NEW_ROW_DATE[version],
            "dot_number": "99700002",
            "viol_code": "3953A2",
            "basic_desc": "Hours-of-Service Compliance",
            "oos_indicator": "true",
            "oos_weight": "2",
            "severity_weight": "7",
            "time_weight": "3",
            "total_severity_wght": "9",
            "section_desc": "Driving beyond 11 hour driving limit in a 14 hour period",
            "group_desc": "Hours",
            "viol_unit": "D",
        },
        sort_keys=True,
    )


def test_99700002_gains_exactly_one_out_of_service_violation_at_each_bump(flat: Any) -> None:
    assert_exactly(SCRIPTED_OOS_VIOLATION, {v: oos_violations(v) for v in VERSIONS}, flat)
    for before, after in BUMPS:
        old, new = (
            served(SCRIPTED_OOS_VIOLATION, before, flat)[1],
            served(SCRIPTED_OOS_VIOLATION, after, flat)[1],
        )
        assert new - old == Counter({added_row(after): 1})
        assert not old - new  # nothing ages out, nothing is re-weighted
    assert sum(served(SCRIPTED_OOS_VIOLATION, 1, flat)[1].values()) == 213


def test_99700002_moves_its_driver_oos_rate_by_less_than_half_a_point_per_bump() -> None:
    rates = [DRIVER[v][1] / DRIVER[v][0] * 100 for v in VERSIONS]
    assert all(0 < later - earlier < 0.5 for earlier, later in itertools.pairwise(rates))


def test_99700002_latest_violation_date_is_in_the_month_the_bump_adds() -> None:
    for version in (2, 3, 4):
        month = data.window(version)[-1]
        assert data.added_inspection(version).day == date(month // 12, month % 12 + 1, 15)
        assert (
            max(r.insp_date for r in known(SCRIPTED_OOS_VIOLATION, version).rows)
            == data.added_inspection(version).day
        )


# --- 99700003: safety rating and operating status change at each bump --------------------------------------

RATING = {
    1: ("S", "SATISFACTORY", "2026-10-16", "2026-10-23", None, "11/02/2026"),
    2: ("C", "CONDITIONAL", "2026-11-13", "2026-11-20", "2026-11-24", "11/30/2026"),
    3: ("S", "SATISFACTORY", "2026-12-11", "2026-12-18", None, "12/28/2026"),
    4: ("C", "CONDITIONAL", "2027-01-15", "2027-01-22", "2027-01-26", "02/01/2027"),
}


def mdy(iso: str | None) -> str | None:
    return None if iso is None else f"{iso[5:7]}/{iso[8:10]}/{iso[:4]}"


def rating_and_status(version: int) -> dict[str, Any]:
    code, word, reviewed, rated, ordered, latest = RATING[version]
    fields: dict[str, Any] = {
        "carrier.safetyRating": code,
        "carrier.safetyRatingDate": rated,
        "carrier.reviewDate": reviewed,
        "carrier.safetyReviewDate": reviewed,
        "carrier.allowedToOperate": "N" if ordered else "Y",
        "carrier.oosDate": ordered,
        "carrier.statusCode": "A",
        "safer.safety_rating": word,
        "safer.safety_rating_date": mdy(rated),
        "safer.safety_review_date": mdy(reviewed),
        "safer.safety_type": "COMPLIANCE REVIEW",
        "safer.operating_status": "OUT-OF-SERVICE" if ordered else "ACTIVE",
        "safer.out_of_service_date": mdy(ordered),
        "safer.latest_update": latest,
    }
    if ordered is None:
        return fields | {"oos": []}
    order_id = 97_000 + version
    return fields | {
        "oos.0.oos.dotNumber": 99_700_003,
        "oos.0.oos.id": order_id,
        "oos.0.oos.oosDate": ordered,
        "oos.0.oos.oosReason": "NOP",
        "oos.0.oos.oosReasonDescription": "90 day failure to pay fine",
        "oos.0._links.self.href": f"{BASE}/carriers/99700003/oos/{order_id}",
    }


def test_99700003_changes_safety_rating_and_operating_status_at_each_bump(flat: Any) -> None:
    assert_exactly(SCRIPTED_RATING_AND_STATUS, {v: rating_and_status(v) for v in VERSIONS}, flat)
    for before, after in BUMPS:
        assert (
            served(SCRIPTED_RATING_AND_STATUS, before, flat)[1]
            == served(SCRIPTED_RATING_AND_STATUS, after, flat)[1]
        )


# --- 99700004: Vehicle Maintenance turns "Not Public" (and public again) ------------------------------------


def vehicle_maintenance(version: int) -> dict[str, Any]:
    hidden = version % 2 == 0
    return {
        "carrier.isPassengerCarrier": "Y",
        "basics.15.basicsViolationThreshold": "65",
        "basics.15.measureValue": "2.24",
        "basics.15.totalViolation": 28,
        "basics.15.basicsPercentile": "Not Public" if hidden else "38%",
        "basics.15.exceededFMCSAInterventionThreshold": "-1" if hidden else "N",
        "basics.15.onRoadPerformanceThresholdViolationIndicator": "Not Public" if hidden else "N",
    }


def test_99700004_vehicle_maintenance_turns_not_public_and_back_at_alternate_bumps(flat: Any) -> None:
    assert_exactly(SCRIPTED_NOT_PUBLIC, {v: vehicle_maintenance(v) for v in VERSIONS}, flat)
    for before, after in BUMPS:
        assert served(SCRIPTED_NOT_PUBLIC, before, flat)[1] == served(SCRIPTED_NOT_PUBLIC, after, flat)[1]


# --- what every scripted DOT keeps -------------------------------------------------------------------------


@pytest.mark.parametrize("dot", sorted(SCRIPTS))
def test_scripted_dots_keep_the_sandbox_invariants_at_every_version(dot: int) -> None:
    for version in range(1, 7):
        found = known(dot, version)
        assert found.version == version
        assert len(found.basics) == 5
        for basic in found.basics:
            mine = [r for r in found.rows if r.violation.kind.basic_id == basic.basic.basic_id]
            assert basic.violations == len(mine)
            assert basic.inspections_with_violation == len({r.unique_id for r in mine})
            assert (basic.alert is None) == (basic.percentile is None)
        oos_inspections = {r.unique_id for r in found.rows if r.violation.oos}
        assert found.counts.vehicle_oos + found.counts.driver_oos >= len(oos_inspections)
        ids = [r.row_id for r in found.rows]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        if version > 1:
            assert set(ids).isdisjoint(r.row_id for r in known(dot, version - 1).rows)


def test_scripted_dots_are_the_same_after_the_caches_are_dropped() -> None:
    before = [known(dot, version) for dot in SCRIPTS for version in VERSIONS]
    for cached in (data.profile, data.month_events, data.counts, data.snapshot, data.head_rows):
        cached.cache_clear()
    assert [known(dot, version) for dot in SCRIPTS for version in VERSIONS] == before


# --- other DOTs change a little now and then ---------------------------------------------------------------


def test_other_dots_change_a_little_now_and_then_at_each_bump() -> None:
    sample = range(1_000_001, 1_000_301)  # test_data's sample: its carriers are cached already
    for version in (1, 2, 3):
        gained = gained_oos = aged = percentile = alert = crashes = still = 0
        for dot in sample:
            old, new = known(dot, version), known(dot, version + 1)
            keys_old = {(r.unique_id, r.violation.kind.code, r.violation.unit) for r in old.rows}
            fresh = [
                r for r in new.rows if (r.unique_id, r.violation.kind.code, r.violation.unit) not in keys_old
            ]
            gained += bool(fresh)
            gained_oos += any(r.violation.oos for r in fresh)
            aged += len(keys_old) > len(
                keys_old & {(r.unique_id, r.violation.kind.code, r.violation.unit) for r in new.rows}
            )
            pairs = list(zip(old.basics, new.basics, strict=False))
            percentile += any(a.percentile != b.percentile for a, b in pairs)
            alert += any(a.alert != b.alert for a, b in pairs)
            crashes += new.counts.crashes > old.counts.crashes
            still += (
                old.counts == new.counts
                and not fresh
                and [m.measure for m in old.basics] == [m.measure for m in new.basics]
            )
            # what never moves for an ordinary DOT: only the scripted ones change status or rating
            assert old.profile == new.profile
        assert 0 < gained_oos < gained < len(sample) / 2
        assert 0 < aged < len(sample) / 2
        assert 0 < alert < percentile <= len(sample) // 10  # passenger carriers (DOTs ending in 7) only
        assert 0 < crashes < len(sample) / 10
        assert still > len(sample) / 10
