"""The authority and insurance panel read from an authority summary: each test names one rule."""

from __future__ import annotations

from datetime import date
from typing import Any

from fmcsa_gateway.panels import Authority, authority_panel, dollars

TODAY = date(2026, 12, 7)


def summary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "authority": {"common": "active", "contract": "none", "broker": "inactive"},
        "dockets": ["MC123456", "FF7890"],
        "oos_order": None,
        "insurance": {
            "bipd_required": 750_000,
            "bipd_on_file": 1_000_000,
            "cargo_on_file": 0,
            "bond_on_file": 0,
            "filings": 2,
            "next_cancellation": None,
        },
    }
    return {**base, **changes}


def test_a_normal_carrier_reads_as_the_source_summarised_it() -> None:
    panel = authority_panel(summary(), today=TODAY)
    assert panel is not None
    assert panel.authorities == (
        Authority("common", "active", "good"),
        Authority("contract", "none", "muted"),
        Authority("broker", "inactive", "warn"),
    )
    assert panel.dockets == ("MC123456", "FF7890")
    assert (panel.out_of_service, panel.oos_date, panel.oos_reason) == (False, None, None)
    assert (panel.bipd_on_file, panel.bipd_required, panel.bipd_short) == (1_000_000, 750_000, False)
    assert (panel.cargo_on_file, panel.bond_on_file, panel.filings) == (0, 0, 2)
    assert (panel.next_cancellation, panel.cancellation_in_days) == (None, None)


def test_no_summary_is_no_panel() -> None:
    assert authority_panel(None, today=TODAY) is None
    assert authority_panel({}, today=TODAY) is None


def test_an_order_a_shortfall_and_a_pending_cancellation_are_shown() -> None:
    insurance = {"bipd_required": 750_000, "bipd_on_file": 500_000, "next_cancellation": "2027-01-06"}
    panel = authority_panel(
        summary(oos_order={"date": "2026-11-20", "reason": "  Failure to pay  "}, insurance=insurance),
        today=TODAY,
    )
    assert panel is not None
    assert (panel.out_of_service, panel.oos_date, panel.oos_reason) == (
        True,
        date(2026, 11, 20),
        "Failure to pay",
    )
    assert panel.bipd_short
    assert (panel.next_cancellation, panel.cancellation_in_days) == (date(2027, 1, 6), 30)
    assert (panel.cargo_on_file, panel.filings) == (None, None)  # not in the summary: unknown, not 0


def test_odd_values_from_the_other_service_read_as_unknown_and_never_raise() -> None:
    odd = summary(
        authority={"common": "<script>", "contract": 1, "broker": None},
        dockets=["MC1", "not a docket", 7, "<b>MC2</b>"],
        oos_order={"date": "yesterday", "reason": ["x"]},
        insurance={"bipd_on_file": -5, "bipd_required": True, "cargo_on_file": 1.5, "bond_on_file": 2.0,
                   "filings": "2", "next_cancellation": "2027-13-45"},
    )  # fmt: skip
    panel = authority_panel(odd, today=TODAY)
    assert panel is not None
    assert {a.status for a in panel.authorities} == {"unknown"}
    assert panel.dockets == ("MC1",)
    assert (panel.out_of_service, panel.oos_date, panel.oos_reason) == (True, None, None)
    assert (panel.bipd_on_file, panel.bipd_required, panel.bipd_short) == (None, None, False)
    assert (panel.cargo_on_file, panel.bond_on_file, panel.filings) == (None, 2, None)
    assert panel.next_cancellation is None
    for broken in ({"authority": "x", "dockets": {}, "oos_order": "x", "insurance": []}, {"other": 1}):
        shown = authority_panel(broken, today=TODAY)
        assert shown is not None
        assert shown.dockets == ()
        assert shown.bipd_on_file is None


def test_amounts_are_whole_dollars_with_separators() -> None:
    assert [dollars(a) for a in (1_000_000, 0, None)] == ["$1,000,000", "$0", "unknown"]
