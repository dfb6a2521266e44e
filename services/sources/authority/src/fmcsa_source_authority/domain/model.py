"""What the authority source knows of a carrier: its profile (authority statuses, insurance amounts, the
current out-of-service order), its docket numbers and its insurance filings. Plain values, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import JsonValue


class AuthorityType(StrEnum):
    COMMON = "common"
    CONTRACT = "contract"
    BROKER = "broker"


class AuthorityStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    NONE = "none"
    PENDING_GRANT = "pending_grant"
    PENDING_REVOCATION = "pending_revocation"


@dataclass(frozen=True, slots=True)
class OosOrder:
    """The carrier's current out-of-service order: since when, and why (the upstream's description)."""

    day: date
    reason: str | None

    def as_json(self) -> JsonValue:
        return {"date": self.day.isoformat(), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Profile:
    """One row per carrier. Statuses None: the upstream did not say. Amounts in whole dollars."""

    dot: str
    common: AuthorityStatus | None
    contract: AuthorityStatus | None
    broker: AuthorityStatus | None
    bipd_required: int | None
    bipd_on_file: int | None
    cargo_on_file: int | None
    bond_on_file: int | None
    oos_order: OosOrder | None

    def status(self, kind: AuthorityType) -> AuthorityStatus | None:
        status: AuthorityStatus | None = getattr(self, kind.value)
        return status

    @property
    def bipd_below_required(self) -> bool:
        """True when BIPD on file is known to be below the known required amount."""
        if self.bipd_on_file is None or self.bipd_required is None:
            return False
        return self.bipd_on_file < self.bipd_required

    def bipd_json(self) -> JsonValue:
        return {"on_file": self.bipd_on_file, "required": self.bipd_required}


@dataclass(frozen=True, slots=True)
class Docket:
    """A docket number of the carrier, prefix and digits as one text (`MC1034412`, `FF7890`)."""

    dot: str
    docket: str

    @property
    def subject(self) -> str:
        return self.docket.lower()


_NOT_SUBJECT = re.compile(r"[^a-z0-9]")


def filing_subject(kind: str, policy_number: str | None) -> str:
    """`<type>_<policy>` lower-cased, every other character `_`, at most 80 characters."""
    return _NOT_SUBJECT.sub("_", f"{kind}_{policy_number or 'none'}".lower())[:80]


@dataclass(frozen=True, slots=True)
class Filing:
    """One insurance filing (a DataHub row). `coverage` in whole dollars. `cancelled` is what the store
    last knew: the cancellation date had been reached (set by the plan, never by the parser).
    """

    dot: str
    kind: str
    form: str | None
    insurer: str | None
    policy_number: str | None
    coverage: int | None
    effective: date | None
    cancellation: date | None
    docket: str | None
    transacted: date | None
    cancelled: bool = False

    @property
    def subject(self) -> str:
        return filing_subject(self.kind, self.policy_number)

    def cancelled_on(self, today: date) -> bool:
        return self.cancellation is not None and self.cancellation <= today

    def as_json(self) -> JsonValue:
        return {
            "type": self.kind,
            "form": self.form,
            "insurer": self.insurer,
            "policy_number": self.policy_number,
            "coverage": self.coverage,
            "effective": _iso(self.effective),
            "cancellation": _iso(self.cancellation),
        }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class AuthorityFetch:
    """One carrier's answer from both upstreams. `upstream_as_of`: the newest of QCMobile's
    `retrievalDate` and the filings' transaction dates.
    """

    dot: str
    profile: Profile
    dockets: tuple[Docket, ...]
    filings: tuple[Filing, ...]
    retrieved_at: datetime
    upstream_as_of: datetime | None


@dataclass(frozen=True, slots=True)
class Held:
    """What the store holds for one carrier (`profile` None: never fetched)."""

    profile: Profile | None = None
    dockets: tuple[Docket, ...] = ()
    filings: tuple[Filing, ...] = ()


Row = Profile | Docket | Filing
"""A row a plan inserts, updates or ages out."""
