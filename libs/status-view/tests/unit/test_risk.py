"""The risk light (`fmcsa_status_view.risk.assess`), pure: each reason on its own, the worst light wins."""

from __future__ import annotations

from typing import Any

import pytest

from fmcsa_status_view.risk import Light, assess
from fmcsa_status_view.rows import CarrierRow


def record(**groups: Any) -> CarrierRow:
    """A clean carrier (active common authority, allowed to operate, satisfactory, insured), changed by
    `groups` (a group's facts replace the clean ones key by key; None removes the group).
    """
    clean: dict[str, Any] = {
        "authority": {
            "common": "active",
            "contract": "none",
            "broker": "none",
            "dockets": [],
            "oos_order": None,
        },
        "operation": {"status": "active", "operating_status": None, "allowed_to_operate": True},
        "safety_rating": {"rating": "satisfactory", "date": "2019-08-14"},
        "insurance": {"bipd_required": 750_000, "bipd_on_file": 1_000_000, "next_cancellation": None},
        "basics": {"items": [{"id": 11, "name": "Unsafe Driving"}], "alerts": []},
    }
    for name, facts in groups.items():
        clean[name] = None if facts is None else {**clean.get(name, {}), **facts}
    return CarrierRow(dot="2847193", **clean)


def codes(row: CarrierRow) -> list[str]:
    return [r.code for r in assess(row).reasons]


def test_a_clean_carrier_is_green_without_reasons() -> None:
    risk = assess(record())
    assert risk.light is Light.GREEN
    assert risk.reasons == ()


@pytest.mark.parametrize(
    ("groups", "code"),
    [
        ({"authority": {"common": "inactive"}}, "no_active_authority"),
        ({"authority": {"common": "none", "broker": "revoked"}}, "no_active_authority"),
        ({"operation": {"status": "inactive"}}, "dot_inactive"),
        ({"operation": {"status": None, "operating_status": "NOT AUTHORIZED"}}, "dot_inactive"),
        ({"operation": {"status": None, "operating_status": "OUT-OF-SERVICE"}}, "dot_inactive"),
        ({"operation": {"allowed_to_operate": False}}, "not_allowed_to_operate"),
        (
            {"authority": {"oos_order": {"date": "2026-01-05", "reason": "IMMINENT HAZARD"}}},
            "out_of_service_order",
        ),
        ({"safety_rating": {"rating": "unsatisfactory"}}, "rating_unsatisfactory"),
        ({"insurance": {"bipd_on_file": 500_000}}, "insurance_below_required"),
    ],
)
def test_each_red_reason_turns_it_red(groups: dict[str, Any], code: str) -> None:
    risk = assess(record(**groups))
    assert risk.light is Light.RED
    assert code in [r.code for r in risk.reasons]
    assert all(r.text for r in risk.reasons)


@pytest.mark.parametrize(
    ("groups", "code"),
    [
        ({"basics": {"alerts": [11]}}, "basic_alert"),
        ({"authority": {"common": "pending_revocation"}}, "revocation_pending"),
        ({"insurance": {"next_cancellation": "2026-12-01"}}, "insurance_cancellation_pending"),
        ({"safety_rating": {"rating": "conditional"}}, "rating_conditional"),
    ],
)
def test_each_yellow_reason_turns_it_yellow(groups: dict[str, Any], code: str) -> None:
    risk = assess(record(**groups))
    assert risk.light is Light.YELLOW
    assert [r.code for r in risk.reasons] == [code]


def test_the_worst_light_wins_and_every_reason_is_given_red_first() -> None:
    row = record(basics={"alerts": [11]}, safety_rating={"rating": "unsatisfactory"})
    risk = assess(row)
    assert risk.light is Light.RED
    assert [(r.code, r.light) for r in risk.reasons] == [
        ("rating_unsatisfactory", Light.RED),
        ("basic_alert", Light.YELLOW),
    ]
    assert risk.reasons[1].text == "Unsafe Driving: in alert."


def test_a_pending_revocation_is_still_active_authority() -> None:
    assert codes(record(authority={"common": "pending_revocation"})) == ["revocation_pending"]


def test_unknown_facts_are_no_reason() -> None:
    row = record(
        authority={"common": None, "contract": None, "broker": None},
        operation={"status": None, "allowed_to_operate": None},
        insurance={"bipd_on_file": None},
    )
    assert assess(row).light is Light.GREEN


def test_a_record_without_any_fact_is_unknown() -> None:
    risk = assess(CarrierRow(dot="1"))
    assert risk.light is Light.UNKNOWN
    assert [r.code for r in risk.reasons] == ["no_data"]
