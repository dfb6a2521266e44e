"""Builders shared by the unit tests: answers as the parsers see them, rows and fetches."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from fmcsa_source_authority.domain.model import (
    AuthorityFetch,
    AuthorityStatus,
    Docket,
    Filing,
    OosOrder,
    Profile,
)
from fmcsa_source_authority.domain.parse import Said

DOT = "2847193"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def said(
    call: str,
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    upstream: str = "QCMobile",
) -> Said:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Said(upstream, call, status, headers or {}, raw)


def insurance_row(**overrides: str) -> dict[str, str]:
    row = {
        "dot_number": DOT.zfill(8),
        "docket_number": "MC1034412",
        "ins_form_code": "91X",
        "ins_type_desc": "BIPD",
        "name_company": "GREAT PLAINS CASUALTY INC",
        "policy_no": "GPC-77120",
        "trans_date": "01/15/2026",
        "effective_date": "2026-01-15T00:00:00.000",
        "max_cov_amount": "1000",
        "underl_lim_amount": "0",
    }
    row.update(overrides)
    return row


def profile(**overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "dot": DOT,
        "common": AuthorityStatus.ACTIVE,
        "contract": AuthorityStatus.NONE,
        "broker": AuthorityStatus.NONE,
        "bipd_required": 750_000,
        "bipd_on_file": 1_000_000,
        "cargo_on_file": 0,
        "bond_on_file": 0,
        "oos_order": None,
    }
    values.update(overrides)
    return Profile(**values)


def filing(policy: str = "GPC-77120", kind: str = "BIPD", **overrides: Any) -> Filing:
    values: dict[str, Any] = {
        "dot": DOT,
        "kind": kind,
        "form": "91X",
        "insurer": "GREAT PLAINS CASUALTY INC",
        "policy_number": policy,
        "coverage": 1_000_000,
        "effective": date(2026, 1, 15),
        "cancellation": None,
        "docket": "MC1034412",
        "transacted": date(2026, 1, 15),
    }
    values.update(overrides)
    return Filing(**values)


def fetch(
    *,
    at: datetime = NOW,
    dockets: tuple[str, ...] = ("MC1034412",),
    filings: tuple[Filing, ...] | None = None,
    **profile_overrides: Any,
) -> AuthorityFetch:
    return AuthorityFetch(
        dot=DOT,
        profile=profile(**profile_overrides),
        dockets=tuple(Docket(DOT, d) for d in dockets),
        filings=(filing(), filing("CRG-1", kind="CARGO", coverage=100_000)) if filings is None else filings,
        retrieved_at=at,
        upstream_as_of=at,
    )


ORDER = OosOrder(date(2026, 3, 1), "90 day failure to pay fine")
