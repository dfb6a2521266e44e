"""The admin page's authority and insurance panel, read from the newest authority `SourceSynced` summary.

The summary comes from another service (the authority source; its shape is in
services/sources/authority/README.md): a value of the wrong type or an unknown status reads as unknown,
never raises, and never reaches the page as anything but plain text. Amounts are whole US dollars.
Pure: no I/O, no clock (`today` is an argument).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

AUTHORITY_TYPES = ("common", "contract", "broker")
STATUS_TONES: Mapping[str, str] = {
    "active": "good",
    "pending_grant": "warn",
    "pending_revocation": "bad",
    "inactive": "warn",
    "none": "muted",
}
"""Each authority status the source reports, and how the page colours it (anything else: unknown)."""
_DOCKET = re.compile(r"[A-Z]{2}[0-9]{1,10}")
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Authority:
    kind: str  # common, contract or broker
    status: str  # one of STATUS_TONES, or "unknown"
    tone: str


@dataclass(frozen=True, slots=True)
class AuthorityPanel:
    authorities: tuple[Authority, ...]
    dockets: tuple[str, ...]
    oos_date: date | None
    oos_reason: str | None
    out_of_service: bool
    bipd_on_file: int | None
    bipd_required: int | None
    cargo_on_file: int | None
    bond_on_file: int | None
    filings: int | None
    next_cancellation: date | None
    cancellation_in_days: int | None

    @property
    def bipd_short(self) -> bool:
        """On file below required (both known): what `insurance_below_required` reports."""
        return (
            self.bipd_on_file is not None
            and self.bipd_required is not None
            and self.bipd_on_file < self.bipd_required
        )


def authority_panel(summary: Mapping[str, Any] | None, *, today: date) -> AuthorityPanel | None:
    """The panel of one company, or None when the authority source never succeeded for it."""
    if not summary:
        return None
    statuses = _mapping(summary.get("authority"))
    authorities = []
    for kind in AUTHORITY_TYPES:
        status = statuses.get(kind)
        known = status if isinstance(status, str) and status in STATUS_TONES else "unknown"
        authorities.append(Authority(kind, known, STATUS_TONES.get(known, "muted")))
    raw_dockets = summary.get("dockets")
    dockets = tuple(
        d
        for d in (raw_dockets if isinstance(raw_dockets, list) else [])
        if isinstance(d, str) and _DOCKET.fullmatch(d)
    )
    order = summary.get("oos_order")
    oos = _mapping(order)
    reason = oos.get("reason")
    insurance = _mapping(summary.get("insurance"))
    cancellation = _date(insurance.get("next_cancellation"))
    return AuthorityPanel(
        authorities=tuple(authorities),
        dockets=dockets,
        oos_date=_date(oos.get("date")),
        oos_reason=(reason.strip()[:MAX_REASON] or None) if isinstance(reason, str) else None,
        out_of_service=isinstance(order, dict),
        bipd_on_file=_amount(insurance.get("bipd_on_file")),
        bipd_required=_amount(insurance.get("bipd_required")),
        cargo_on_file=_amount(insurance.get("cargo_on_file")),
        bond_on_file=_amount(insurance.get("bond_on_file")),
        filings=_amount(insurance.get("filings")),
        next_cancellation=cancellation,
        cancellation_in_days=(cancellation - today).days if cancellation is not None else None,
    )


def dollars(amount: int | None) -> str:
    """`$1,000,000`, or `unknown`."""
    return "unknown" if amount is None else f"${amount:,}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _amount(value: Any) -> int | None:
    """A whole, non-negative number (an int, or a float without a fraction); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
