"""Pure rules of the violations source: parse Socrata answers and rows (`parse`), page a read
(`paging`), plan what a read does to the store and which changes it publishes (`changes`), and
summarize it (`summary`). No I/O, no clock, no framework (the "domain modules are pure" contract).
"""

from fmcsa_source_violations.domain.changes import (
    CHANGE_SUBJECT,
    Held,
    HeldRow,
    ViolationsPlan,
    detect_changes,
    plan,
    violation_totals,
)
from fmcsa_source_violations.domain.model import (
    Basic,
    Page,
    Step,
    Violation,
    ViolationsFetch,
    ViolationUnit,
)
from fmcsa_source_violations.domain.paging import assemble, next_step
from fmcsa_source_violations.domain.parse import (
    assign_ordinals,
    parse_dd_mon_yy,
    parse_flag,
    parse_integer,
    parse_page,
    parse_row,
)
from fmcsa_source_violations.domain.summary import summarize

__all__ = [
    "CHANGE_SUBJECT",
    "Basic",
    "Held",
    "HeldRow",
    "Page",
    "Step",
    "Violation",
    "ViolationUnit",
    "ViolationsFetch",
    "ViolationsPlan",
    "assemble",
    "assign_ordinals",
    "detect_changes",
    "next_step",
    "parse_dd_mon_yy",
    "parse_flag",
    "parse_integer",
    "parse_page",
    "parse_row",
    "plan",
    "summarize",
    "violation_totals",
]
