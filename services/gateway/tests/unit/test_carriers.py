"""The carrier routes' pure parts: the BASIC filter's vocabulary and the answer built from a record."""

from __future__ import annotations

from fmcsa_gateway.routes.carriers import CarrierItem, CarrierRecord, ViolationBasic
from fmcsa_status_view.rows import CarrierRow


def test_the_basic_filter_names_the_violations_sources_basics() -> None:
    # the violations source keys its rows with the same vocabulary (fmcsa_events.identifiers.Basic)
    assert [b.value for b in ViolationBasic] == [
        "unsafe_driving",
        "hos_compliance",
        "driver_fitness",
        "drugs_alcohol",
        "vehicle_maintenance",
        "hazmat_compliance",
        "crash_indicator",
    ]


def test_a_record_without_groups_answers_nulls_and_its_light() -> None:
    row = CarrierRow(
        dot="7", risk="unknown", risk_reasons=[{"code": "no_data", "light": "unknown", "text": "x"}]
    )
    record = CarrierRecord.of(row)
    assert record.identity is None
    assert record.sources == {}
    assert record.risk.light == "unknown"
    item = CarrierItem.of(row)
    assert (item.dockets, item.allowed_to_operate, item.safety_rating) == ([], None, None)
