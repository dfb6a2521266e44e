"""The carrier record from the sources' newest summaries (`fmcsa_status_view.record`), pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.record import carrier_record, docket_key, violation_rows
from fmcsa_status_view.rows import SourceRow

AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
FETCHED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

CSA: dict[str, Any] = {
    "basics": [{"id": 11, "code": "UNSAFE", "name": "Unsafe Driving", "percentile": "72", "alert": True}],
    "alerts": [11],
    "legal_name": "ACME FREIGHT LINES INC",
    "dba_name": "ACME",
    "status_code": "A",
    "address": {
        "street": "4410 W INDUSTRIAL PKWY",
        "city": "DES MOINES",
        "state": "IA",
        "zip": "50321",
        "country": "US",
    },
    "allowed_to_operate": True,
    "out_of_service_date": None,
    "safety_rating": "conditional",
    "safety_rating_date": "2019-08-14",
    "authority": {"common": "active", "contract": "none", "broker": "none"},
    "inspections": {
        "driver": {"inspections": 9, "out_of_service": 0, "oos_rate": "0", "national_average": "5.51"},
        "vehicle": {"inspections": 6, "out_of_service": 1, "oos_rate": "16.67", "national_average": "20.72"},
        "hazmat": {"inspections": 0, "out_of_service": 0, "oos_rate": None, "national_average": "4.5"},
    },
    "crashes": {"total": 1, "fatal": 0, "injury": 0, "towaway": 1},
}
OLD_CSA = {k: v for k, v in CSA.items() if k not in ("dba_name", "status_code", "address")}
"""The same summary as csa wrote it before the carrier record: without the identity keys."""


def source(key: SourceKey, summary: Any, request_id: str = "r-1") -> SourceRow:
    return SourceRow(
        dot="2847193",
        source=key,
        success_request_id=request_id,
        last_summary=summary,
        upstream_as_of=AS_OF,
        retrieved_at=FETCHED,
    )


def test_a_carrier_no_source_succeeded_for_has_no_record() -> None:
    assert carrier_record("2847193", {}) is None
    assert carrier_record("2847193", {SourceKey.CSA: SourceRow(dot="2847193", source=SourceKey.CSA)}) is None


def test_the_csa_summary_gives_identity_operation_rating_rates_basics_and_the_risk() -> None:
    row = carrier_record("2847193", {SourceKey.CSA: source(SourceKey.CSA, CSA)})
    assert row is not None
    assert row.legal_name == "ACME FREIGHT LINES INC"
    assert row.name_key == "acme freight lines inc"
    assert row.identity == {
        "legal_name": "ACME FREIGHT LINES INC",
        "dba_name": "ACME",
        "address": "4410 W INDUSTRIAL PKWY, DES MOINES, IA 50321, US",
        "phone": None,
        "source": "csa",
        "upstream_as_of": "2026-10-31T00:00:00+00:00",
        "retrieved_at": "2026-11-23T06:00:00+00:00",
    }
    assert row.operation is not None
    assert row.operation["status"] == "active"
    assert row.operation["allowed_to_operate"] is True
    assert row.safety_rating is not None
    assert row.safety_rating["rating"] == "conditional"
    assert row.oos_rates is not None
    assert row.oos_rates["vehicle"] == {
        "inspections": 6,
        "out_of_service": 1,
        "rate": "16.67",
        "national_average": "20.72",
    }
    assert row.basics is not None
    assert row.basics["alerts"] == [11]
    assert row.authority is not None
    assert row.authority["common"] == "active"
    assert row.risk == "yellow"
    assert [r["code"] for r in row.risk_reasons or []] == ["basic_alert", "rating_conditional"]
    assert row.sources == {
        "csa": {
            "request_id": "r-1",
            "upstream_as_of": "2026-10-31T00:00:00+00:00",
            "retrieved_at": "2026-11-23T06:00:00+00:00",
        }
    }


def test_an_old_summary_without_the_new_keys_reads_them_as_none() -> None:
    """The upcast: an event written before csa's summary had the identity keys gives the same record as
    one whose new keys are null."""
    nulls = {**OLD_CSA, "dba_name": None, "status_code": None, "address": None}
    old = carrier_record("2847193", {SourceKey.CSA: source(SourceKey.CSA, OLD_CSA)})
    new = carrier_record("2847193", {SourceKey.CSA: source(SourceKey.CSA, nulls)})
    assert old == new
    assert old is not None
    assert old.identity is not None
    assert old.identity["dba_name"] is None
    assert old.identity["address"] is None


def test_authority_gives_authority_dockets_insurance_and_a_red_light() -> None:
    authority = {
        "authority": {"common": "active", "contract": "none", "broker": "inactive"},
        "dockets": ["MC-123456", "FF045"],
        "oos_order": None,
        "insurance": {"bipd_required": 750_000, "bipd_on_file": 0, "cargo_on_file": 0, "bond_on_file": 0,
                      "filings": 2, "next_cancellation": None},
    }  # fmt: skip
    row = carrier_record(
        "2847193",
        {
            SourceKey.CSA: source(SourceKey.CSA, CSA),
            SourceKey.AUTHORITY: source(SourceKey.AUTHORITY, authority, "r-2"),
        },
    )
    assert row is not None
    assert row.authority is not None
    assert row.authority["source"] == "authority"
    assert row.authority["dockets"] == ["MC-123456", "FF045"]
    assert row.docket_keys == ",FF45,MC123456,"
    assert row.risk == "red"
    assert row.risk_reasons is not None
    assert row.risk_reasons[0]["code"] == "insurance_below_required"


def test_inspections_alone_gives_identity_with_phone_and_its_dockets() -> None:
    safer = {
        "legal_name": "ACME FREIGHT LINES INC",
        "physical_address": "4410 W INDUSTRIAL PKWY DES MOINES, IA  50321",
        "phone": "(515) 555-0142",
        "mc_mx_ff_numbers": "MC-1034412",
        "operating_status": "NOT AUTHORIZED",
        "safety_rating": "UNSATISFACTORY",
        "us_crashes": {"fatal": 0, "injury": 1, "tow": 2, "total": 3},
    }
    row = carrier_record("2847193", {SourceKey.INSPECTIONS: source(SourceKey.INSPECTIONS, safer)})
    assert row is not None
    assert row.identity is not None
    assert row.identity["phone"] == "(515) 555-0142"
    assert row.docket_keys == ",MC1034412,"
    assert row.crashes is not None
    assert row.crashes["towaway"] == 2
    assert row.risk == "red"
    assert [r["code"] for r in row.risk_reasons or []] == ["dot_inactive", "rating_unsatisfactory"]


def test_a_summary_of_another_shape_gives_what_it_can_and_never_raises() -> None:
    odd = {
        "legal_name": 7,
        "address": "somewhere",
        "basics": {"x": 1},
        "alerts": ["x", 12],
        "inspections": [],
    }
    row = carrier_record("2847193", {SourceKey.CSA: source(SourceKey.CSA, odd)})
    assert row is not None
    assert row.legal_name is None
    assert row.basics is not None
    assert row.basics["alerts"] == [12]
    assert violation_rows("1", {"rows": [None, {"inspection": "1"}, "x"]}) == []


def test_violation_rows_newest_first_none_for_an_old_summary() -> None:
    summary = {
        "rows": [
            {"inspection": "9", "code": "392.2", "unit": "D", "ordinal": 0, "date": "2025-01-02",
             "basic": "unsafe_driving", "oos": False, "severity": 5, "group": "Speeding",
             "description": "Speeding"},
            {"inspection": "8", "code": "396.3", "unit": "1", "ordinal": 0, "date": "2025-03-02",
             "basic": None, "oos": True, "severity": None, "group": None, "description": None},
        ]
    }  # fmt: skip
    rows = violation_rows("2847193", summary)
    assert rows is not None
    assert [(r.seq, r.inspection, r.oos, r.basic) for r in rows] == [
        (0, "8", True, None),
        (1, "9", False, "unsafe_driving"),
    ]
    assert violation_rows("2847193", {"total": 3}) is None
    assert violation_rows("2847193", None) is None


def test_docket_keys() -> None:
    assert docket_key("MC-001034412") == "MC1034412"
    assert docket_key(" mc 1034412 ") == "MC1034412"
    assert docket_key("ACME") is None
    assert docket_key("1034412") is None
