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
    ViolationKey,
    ViolationsFetch,
    ViolationUnit,
)
from fmcsa_source_violations.domain.paging import assemble, next_step
from fmcsa_source_violations.domain.parse import (
    HASH_VERSION,
    assign_ordinals,
    basic_for,
    content_hash,
    normalize_label,
    parse_dd_mon_yy,
    parse_flag,
    parse_http_date,
    parse_integer,
    parse_page,
    parse_row,
)
from fmcsa_source_violations.domain.summary import summarize

__all__ = [
    "CHANGE_SUBJECT",
    "HASH_VERSION",
    "Basic",
    "Held",
    "HeldRow",
    "Page",
    "Step",
    "Violation",
    "ViolationKey",
    "ViolationUnit",
    "ViolationsFetch",
    "ViolationsPlan",
    "assemble",
    "assign_ordinals",
    "basic_for",
    "content_hash",
    "detect_changes",
    "next_step",
    "normalize_label",
    "parse_dd_mon_yy",
    "parse_flag",
    "parse_http_date",
    "parse_integer",
    "parse_page",
    "parse_row",
    "plan",
    "summarize",
    "violation_totals",
]
