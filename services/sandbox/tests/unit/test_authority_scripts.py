"""The authority source's upstream data: the example carrier, ordinary carriers, and the scripted DOTs
99700005..99700012, each changing at every bump exactly as the README documents and nothing else.

Each scripted test renders every body the four sources serve for a DOT at versions 1..4 (QCMobile carrier,
basics, oos, authority, docket numbers, cargo; SaferWebAPI snapshot; the insurance dataset's rows keyed by
policy; the violation rows without `:id`) and compares the fields that changed between two versions with
the documented values.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

import pytest

from fmcsa_sandbox.data import (
    EXAMPLE_CARRIER,
    SCRIPTED_AUTHORITY_STATUS,
    SCRIPTED_BELOW_REQUIRED,
    SCRIPTED_CANCELLATION_PENDING,
    SCRIPTED_CANCELLED,
    SCRIPTED_DOCKET_ADDED,
    SCRIPTED_FILING_ADDED,
    SCRIPTED_OOS_ORDER,
    SCRIPTED_REVOCATION_PENDING,
    run_date,
    snapshot,
)
from fmcsa_sandbox.licensing import licensing, past_cancellation, pending_cancellation
from fmcsa_sandbox.qcmobile import (
    authority_content,
    basics_content,
    cargo_content,
    carrier_content,
    docket_content,
    oos_content,
)
from fmcsa_sandbox.saferweb import snapshot_body
from fmcsa_sandbox.socrata import filing_values, row_values

BASE = "http://sandbox/qc/services"
VERSIONS = (1, 2, 3, 4)
BUMPS = ((1, 2), (2, 3), (3, 4))
TODAY = date(2026, 12, 7)  # between the run dates of versions 2 and 3
AUTH = "authority.0.carrierAuthority"
LATEST_UPDATE = {1: "11/02/2026", 2: "11/30/2026", 3: "12/28/2026", 4: "02/01/2027"}  # run date + 3 days


def served(dot: int, version: int, flat: Any, today: date = TODAY) -> tuple[dict[str, Any], Counter[str]]:
    """Every served field of a carrier at a version, flat, and its violation rows without `:id`."""
    found = snapshot(dot, version)
    facts = licensing(dot, version, today)
    assert found is not None
    assert facts is not None
    view = {
        "carrier": carrier_content(found, BASE)["carrier"],
        "basics": {str(e["basic"]["id"]["basicsId"]): e["basic"] for e in basics_content(found, BASE)},
        "oos": oos_content(found, BASE),
        "authority": authority_content(found, BASE),
        "dockets": docket_content(found, BASE),
        "cargo": cargo_content(found, BASE),
        "safer": snapshot_body(found),
        "insurance": {f.policy: filing_values(dot, f) for f in facts.filings},
    }
    rows = Counter(json.dumps(row_values(row), sort_keys=True) for row in found.rows)
    return flat.flatten(view), rows


def assert_exactly(dot: int, documented: dict[int, dict[str, Any]], flat: Any) -> None:
    """At each version the documented fields hold their values; between versions only they change, and
    the violation rows stay the same.
    """
    for version in VERSIONS:
        fields, _ = served(dot, version, flat)
        shown = {path: fields.get(path, flat.missing) for path in documented[version]}
        assert shown == documented[version], f"version {version}"
    for before, after in BUMPS:
        (old, old_rows), (new, new_rows) = served(dot, before, flat), served(dot, after, flat)
        assert flat.changed(old, new) == flat.changed(documented[before], documented[after]), (before, after)
        assert old_rows == new_rows


def policy_of(dot: int, kind: str) -> str:
    facts = licensing(dot, 1, TODAY)
    assert facts is not None
    (filing,) = (f for f in facts.filings if f.kind == kind)
    return filing.policy


# --- the example carrier and ordinary ones -----------------------------------------------------------------


def test_the_example_carrier_has_common_authority_an_mc_docket_and_two_filings(flat: Any) -> None:
    fields, _ = served(EXAMPLE_CARRIER, 1, flat)
    carrier = {k.removeprefix("carrier."): v for k, v in fields.items() if k.startswith("carrier.")}
    assert (carrier["commonAuthorityStatus"], carrier["contractAuthorityStatus"]) == ("A", "N")
    assert carrier["brokerAuthorityStatus"] == "N"
    assert (carrier["bipdInsuranceOnFile"], carrier["bipdRequiredAmount"]) == ("1000", "750")
    assert (carrier["bipdInsuranceRequired"], carrier["oosDate"], carrier["allowedToOperate"]) == (
        "Y",
        None,
        "Y",
    )
    assert fields["oos"] == []
    assert (fields["dockets.0.prefix"], fields[f"{AUTH}.prefix"]) == ("MC", "MC")
    assert fields["dockets.0.docketNumber"] == fields[f"{AUTH}.docketNumber"]
    facts = licensing(EXAMPLE_CARRIER, 1, TODAY)
    assert facts is not None
    assert sorted((f.kind, f.form, f.max_coverage, f.cancelled) for f in facts.filings) == [
        ("BIPD", "91X", 1000, None),
        ("CARGO", "34", 100, None),
    ]
    assert {f.docket for f in facts.filings} == {f"MC{fields['dockets.0.docketNumber']}"}


def test_an_insurance_row_is_text_with_the_dot_padded_to_eight_digits() -> None:
    facts = licensing(EXAMPLE_CARRIER, 1, TODAY)
    assert facts is not None
    bipd = next(f for f in facts.filings if f.kind == "BIPD")
    row = filing_values(EXAMPLE_CARRIER, bipd)
    assert row["dot_number"] == "02847193"
    assert (row["ins_form_code"], row["ins_type_desc"], row["mod_col_1"]) == ("91X", "BIPD", "BIPD/Primary")
    assert (row["max_cov_amount"], row["underl_lim_amount"]) == ("1000", "0")
    assert all(isinstance(value, str) for value in row.values())
    assert "cancl_effective_date" not in row  # Socrata leaves a null out
    for key in ("trans_date", "effective_date"):
        month, day, year = row[key].split("/")
        assert date(int(year), int(month), int(day))


def test_ordinary_carriers_authority_and_filings_never_change_between_versions() -> None:
    for dot in range(1_000_001, 1_000_101):
        first = licensing(dot, 1, TODAY)
        assert first is not None
        for version in (2, 3, 4):
            later = licensing(dot, version, date(2027, 6, 1))
            assert later is not None
            assert (later.common, later.common_flags, later.dockets, later.filings) == (
                first.common,
                first.common_flags,
                first.dockets,
                first.filings,
            )
        p = first.found.profile
        assert bool(first.filings) == p.for_hire
        assert [d.prefix for d in first.dockets] == (["MC"] if p.for_hire else [])


def test_an_unknown_dot_has_no_authority_data() -> None:
    assert licensing(99_000_001, 1, TODAY) is None
    assert docket_content(None, BASE) == authority_content(None, BASE) == []


# --- 99700005: common authority active at odd versions, inactive at even ones ------------------------------


def authority_status(version: int) -> dict[str, Any]:
    active = version % 2 == 1
    return {
        "carrier.commonAuthorityStatus": "A" if active else "I",
        "carrier.allowedToOperate": "Y" if active else "N",
        f"{AUTH}.commonAuthorityStatus": "A" if active else "I",
        "safer.operating_status": "ACTIVE" if active else "NOT AUTHORIZED",
        "safer.latest_update": LATEST_UPDATE[version],
    }


def test_99700005_common_authority_turns_inactive_and_active_again(flat: Any) -> None:
    assert_exactly(SCRIPTED_AUTHORITY_STATUS, {v: authority_status(v) for v in VERSIONS}, flat)


# --- 99700006: common authority revocation pending at even versions -----------------------------------------


def revocation_pending(version: int) -> dict[str, Any]:
    return {
        f"{AUTH}.commonAuthorityStatus": "A",
        f"{AUTH}.commonAuthorityRevocationStatus": "Y" if version % 2 == 0 else "N",
        "carrier.commonAuthorityStatus": "A",
    }


def test_99700006_common_authority_revocation_is_pending_at_even_versions(flat: Any) -> None:
    assert_exactly(SCRIPTED_REVOCATION_PENDING, {v: revocation_pending(v) for v in VERSIONS}, flat)


# --- 99700007: one more FF docket at every bump -------------------------------------------------------------


def dockets(version: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"dockets.0.prefix": "MC"}
    for k in range(2, 5):
        at = f"dockets.{k - 1}"
        present = k <= version
        for key, value in (
            ("prefix", "FF"),
            ("docketNumber", 990_700 + k),
            ("docketNumberId", 9_907_000 + k),
            ("dotNumber", SCRIPTED_DOCKET_ADDED),
        ):
            fields[f"{at}.{key}"] = value if present else "<missing>"
    return fields


def test_99700007_gains_one_ff_docket_at_every_bump(flat: Any) -> None:
    assert_exactly(SCRIPTED_DOCKET_ADDED, {v: dockets(v) for v in VERSIONS}, flat)


# --- 99700008: an out-of-service order at even versions ----------------------------------------------------

ORDER_DAY = {2: "2026-11-25", 4: "2027-01-27"}  # the run date minus 2 days


def oos_order(version: int) -> dict[str, Any]:
    day = ORDER_DAY.get(version)
    fields: dict[str, Any] = {
        "carrier.oosDate": day,
        "carrier.allowedToOperate": "N" if day else "Y",
        "carrier.commonAuthorityStatus": "A",
        "safer.operating_status": "OUT-OF-SERVICE" if day else "ACTIVE",
        "safer.out_of_service_date": f"{day[5:7]}/{day[8:10]}/{day[:4]}" if day else None,
        "safer.latest_update": LATEST_UPDATE[version],
    }
    if day is None:
        return fields | {"oos": []}
    order_id = 98_000 + version
    return fields | {
        "oos.0.oos.dotNumber": SCRIPTED_OOS_ORDER,
        "oos.0.oos.id": order_id,
        "oos.0.oos.oosDate": day,
        "oos.0.oos.oosReason": "IMMHAZ",
        "oos.0.oos.oosReasonDescription": "Imminent hazard",
        "oos.0._links.self.href": f"{BASE}/carriers/{SCRIPTED_OOS_ORDER}/oos/{order_id}",
    }


def test_99700008_has_an_out_of_service_order_at_even_versions(flat: Any) -> None:
    assert_exactly(SCRIPTED_OOS_ORDER, {v: oos_order(v) for v in VERSIONS}, flat)


# --- 99700009: one more CARGO filing at every bump ----------------------------------------------------------

INSURERS_BY_VERSION = {
    2: "HARBOR STATE FIRE & MARINE INSURANCE COMPANY",
    3: "NORTHERN TIER INDEMNITY CORP",
    4: "REDWOOD SPECIALTY INSURANCE COMPANY",
}
TRANS_DATE = {2: "11/27/2026", 3: "12/25/2026", 4: "01/29/2027"}  # the run dates
EFFECTIVE = {2: "11/01/2026", 3: "12/01/2026", 4: "01/01/2027"}


def cargo_filings(version: int) -> dict[str, Any]:
    facts = licensing(SCRIPTED_FILING_ADDED, 1, TODAY)
    assert facts is not None
    fields: dict[str, Any] = {}
    for k in range(2, 5):
        row = {
            "docket_number": facts.dockets[0].text,
            "dot_number": "99700009",
            "ins_form_code": "34",
            "mod_col_1": "CARGO",
            "ins_type_desc": "CARGO",
            "name_company": INSURERS_BY_VERSION[k],
            "policy_no": f"CG99070{k:04d}",
            "trans_date": TRANS_DATE[k],
            "underl_lim_amount": "0",
            "max_cov_amount": "100",
            "effective_date": EFFECTIVE[k],
        }
        for key, value in row.items():
            fields[f"insurance.CG99070{k:04d}.{key}"] = value if k <= version else "<missing>"
    return fields


def test_99700009_gains_one_cargo_filing_at_every_bump(flat: Any) -> None:
    assert_exactly(SCRIPTED_FILING_ADDED, {v: cargo_filings(v) for v in VERSIONS}, flat)


# --- 99700010 / 99700011: the BIPD filing's cancellation, ahead and behind ----------------------------------


def cancellation(dot: int, day: date | None) -> dict[str, Any]:
    text = "<missing>" if day is None else f"{day.month:02d}/{day.day:02d}/{day.year}"
    return {f"insurance.{policy_of(dot, 'BIPD')}.cancl_effective_date": text}


def test_99700010_bipd_filing_has_a_cancellation_30_days_ahead_at_even_versions(flat: Any) -> None:
    documented = {
        v: cancellation(SCRIPTED_CANCELLATION_PENDING, date(2027, 1, 6) if v == 2 else None)
        for v in (1, 2, 3)
    }
    documented[4] = cancellation(SCRIPTED_CANCELLATION_PENDING, date(2027, 2, 28))  # run date 2027-01-29 + 30
    assert_exactly(SCRIPTED_CANCELLATION_PENDING, documented, flat)


def test_99700011_bipd_filing_has_a_cancellation_30_days_past_at_even_versions(flat: Any) -> None:
    documented = {v: cancellation(SCRIPTED_CANCELLED, None) for v in (1, 3)}
    documented[2] = cancellation(SCRIPTED_CANCELLED, date(2026, 10, 28))  # run date 2026-11-27 - 30
    documented[4] = cancellation(SCRIPTED_CANCELLED, date(2026, 11, 7))  # today 2026-12-07 - 30
    assert_exactly(SCRIPTED_CANCELLED, documented, flat)


@pytest.mark.parametrize("today", [date(2025, 1, 1), date(2026, 11, 1), date(2027, 1, 15), date(2031, 5, 5)])
def test_a_pending_cancellation_is_ahead_and_a_past_one_behind_whatever_the_clock(today: date) -> None:
    for version in (2, 4, 6):
        assert pending_cancellation(version, today) > today
        assert pending_cancellation(version, today) >= run_date(version)
        assert past_cancellation(version, today) < today
        assert past_cancellation(version, today) < run_date(version)
        for dot, expected in (
            (SCRIPTED_CANCELLATION_PENDING, pending_cancellation(version, today)),
            (SCRIPTED_CANCELLED, past_cancellation(version, today)),
        ):
            facts = licensing(dot, version, today)
            assert facts is not None
            assert [f.cancelled for f in facts.filings if f.kind == "BIPD"] == [expected]
            assert [f.cancelled for f in facts.filings if f.kind != "BIPD"] == [None]


# --- 99700012: BIPD on file falls below the required amount -------------------------------------------------


def bipd_on_file(version: int) -> dict[str, Any]:
    amount = "500" if version % 2 == 0 else "750"
    return {
        "carrier.bipdInsuranceOnFile": amount,
        "carrier.bipdRequiredAmount": "750",
        "carrier.bipdInsuranceRequired": "Y",
        f"insurance.{policy_of(SCRIPTED_BELOW_REQUIRED, 'BIPD')}.max_cov_amount": amount,
    }


def test_99700012_bipd_on_file_is_the_required_750_at_odd_versions_and_500_at_even_ones(flat: Any) -> None:
    assert_exactly(SCRIPTED_BELOW_REQUIRED, {v: bipd_on_file(v) for v in VERSIONS}, flat)
