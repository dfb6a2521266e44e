"""The csa source's pure domain: no I/O, no clock, no bus, database or HTTP client (a contract says so).

- `model`: the normalized values (carrier facts, BASIC scores, a fetch) and their hashes;
- `parse`: QCMobile answers into those values, or the `Failure` an answer stands for;
- `changes`: the plan of one fetch over what the store holds, and its change facts;
- `summary`: the compact view the status page shows.
"""

from fmcsa_source_csa.domain.changes import (
    BASIC_SUBJECTS,
    Held,
    HeldBasic,
    Record,
    basic_subject,
    detect_changes,
    in_alert,
    plan,
)
from fmcsa_source_csa.domain.model import (
    AuthorityStatus,
    BasicsAnswer,
    BasicScore,
    Call,
    CarrierFacts,
    CsaFetch,
    Flag,
    FlagReason,
    PercentileStatus,
    SafetyRating,
    carrier_from_content,
    decimal_text,
    stable_hash,
)
from fmcsa_source_csa.domain.parse import (
    MAINTENANCE_TITLE,
    as_of_month,
    assemble,
    canonical_decimal,
    classify,
    normalize_label,
    parse_basics,
    parse_carrier,
    parse_flag,
    parse_percentile,
    parse_timestamp,
)
from fmcsa_source_csa.domain.summary import fetch_hashes, summarize

__all__ = [
    "BASIC_SUBJECTS",
    "MAINTENANCE_TITLE",
    "AuthorityStatus",
    "BasicScore",
    "BasicsAnswer",
    "Call",
    "CarrierFacts",
    "CsaFetch",
    "Flag",
    "FlagReason",
    "Held",
    "HeldBasic",
    "PercentileStatus",
    "Record",
    "SafetyRating",
    "as_of_month",
    "assemble",
    "basic_subject",
    "canonical_decimal",
    "carrier_from_content",
    "classify",
    "decimal_text",
    "detect_changes",
    "fetch_hashes",
    "in_alert",
    "normalize_label",
    "parse_basics",
    "parse_carrier",
    "parse_flag",
    "parse_percentile",
    "parse_timestamp",
    "plan",
    "stable_hash",
    "summarize",
]
