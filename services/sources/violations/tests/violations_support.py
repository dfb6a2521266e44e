"""Builders the violations unit tests share: one parsed row of SMS Input - Violation, fields overridable."""

from __future__ import annotations

from typing import Any

from fmcsa_source_violations.domain.model import Violation
from fmcsa_source_violations.domain.parse import parse_row

DOT = "2847193"


def row(**overrides: Any) -> Violation:
    raw: dict[str, Any] = {
        "unique_id": "905120418",
        "insp_date": "02-SEP-25",
        "dot_number": DOT,
        "viol_code": "3939TS",
        "basic_desc": "Vehicle Maintenance",
        "oos_indicator": "false",
        "oos_weight": "0",
        "severity_weight": "6",
        "time_weight": "3",
        "total_severity_wght": "18",
        "section_desc": "Inoperative turn signal",
        "group_desc": "Lighting",
        "viol_unit": "2",
    }
    raw.update(overrides)
    return parse_row(raw, DOT)
