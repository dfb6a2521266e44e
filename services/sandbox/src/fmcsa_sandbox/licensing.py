"""Operating authority, dockets and insurance filings per (DOT, data version, day): pure, like `data.py`.

What the `authority` source reads: QCMobile's `/carriers/{dot}/authority` and `/docket-numbers` (the carrier
record and `/oos` come from `data.Snapshot` as before), and the DataHub insurance dataset (`qh9u-swkp`,
ActPendInsur) rows. What callers may rely on:
- An ordinary carrier's authority and filings never change between versions: a for-hire carrier has its MC
  docket, common authority as `Profile.authority_active` says, nothing pending, one BIPD filing (form 91X,
  coverage `Profile.bipd_on_file`) and, when it has cargo insurance on file, one CARGO filing (form 34); a
  private carrier has no docket and no filing; an unknown DOT has nothing.
- The scripted DOTs 99700005..99700012 (`data.SCRIPTS` freezes the rest of what they serve) change as
  their functions here and in `data.py` say, at every bump.
- Dates in the future or in the past (99700010, 99700011) are taken from the data date: the version's run
  date, or `today` (the sandbox's clock) when that is later (pending) or earlier (cancelled), so that a
  pending cancellation is ahead and a cancelled one behind whatever the clock says. `today` is the only
  input besides the DOT and the version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

from fmcsa_sandbox.data import (
    SCRIPTED_CANCELLATION_PENDING,
    SCRIPTED_CANCELLED,
    SCRIPTED_DOCKET_ADDED,
    SCRIPTED_FILING_ADDED,
    SCRIPTED_REVOCATION_PENDING,
    Snapshot,
    run_date,
    seeded,
    snapshot,
    stable_seed,
)

INSURERS = (
    "GREAT PLAINS CASUALTY INSURANCE COMPANY",
    "LONE PRAIRIE MUTUAL INSURANCE CO",
    "HARBOR STATE FIRE & MARINE INSURANCE COMPANY",
    "NORTHERN TIER INDEMNITY CORP",
    "REDWOOD SPECIALTY INSURANCE COMPANY",
    "CONTINENTAL HAULERS ASSURANCE INC",
)
"""Invented insurer names, in the upper case L&I keeps them."""
CANCELLATION_NOTICE_DAYS = 30
"""How far a scripted cancellation lies from the data date (99700010 ahead, 99700011 behind)."""


@dataclass(frozen=True, slots=True)
class Docket:
    prefix: str  # "MC", "MX" or "FF"
    number: int
    docket_id: int  # QCMobile's `docketNumberId` (the `applicantID` of the MC docket)

    @property
    def text(self) -> str:
        """`MC783436`: how the insurance dataset's `docket_number` spells it."""
        return f"{self.prefix}{self.number}"


@dataclass(frozen=True, slots=True)
class Filing:
    """One insurance filing (a row of the insurance dataset); amounts in thousands of dollars."""

    docket: str  # "MC783436"
    form: str  # "91X" (BIPD), "34" (cargo), "84" (bond)
    kind: str  # "BIPD", "CARGO", "BOND", "SURETY"
    layer: str  # "Primary" or "" (`mod_col_1` is "BIPD/Primary" or "CARGO")
    insurer: str
    policy: str
    trans_date: date
    effective: date
    cancelled: date | None
    max_coverage: int
    underlying: int


@dataclass(frozen=True, slots=True)
class Flags:
    """`/authority`'s pending flags of one authority type: "Y" / "N" (meaning unverified upstream)."""

    pending: str = "N"
    revocation: str = "N"


@dataclass(frozen=True, slots=True)
class Licensing:
    """What the authority source reads of one carrier at one data version on one day."""

    found: Snapshot
    common: str  # "A", "I", "N"
    contract: str
    broker: str
    common_flags: Flags
    contract_flags: Flags
    broker_flags: Flags
    dockets: tuple[Docket, ...]  # the MC docket first
    filings: tuple[Filing, ...]

    @property
    def dot(self) -> int:
        return self.found.dot


def _filing_dates(dot: int, kind: str) -> tuple[date, date]:
    """A base filing's (effective, transaction) dates: posted 0-20 days after it took effect."""
    rng = seeded(dot, kind, "filing")
    effective = date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    return effective, effective + timedelta(days=rng.randint(0, 20))


def _policy(dot: int, kind: str) -> str:
    number = stable_seed(dot, kind, "policy") % 10_000_000
    return f"{'CA' if kind == 'BIPD' else 'CG' if kind == 'CARGO' else 'BD'}{number:07d}"


def _insurer(dot: int, kind: str) -> str:
    return INSURERS[stable_seed(dot, kind, "insurer") % len(INSURERS)]


def _base_filings(found: Snapshot) -> tuple[Filing, ...]:
    """One BIPD filing, and a CARGO one when cargo insurance is on file; none for a private carrier."""
    p = found.profile
    if not p.for_hire or p.docket is None:
        return ()
    docket = f"MC{p.docket}"
    filings = []
    for kind, form, layer, amount in (
        ("BIPD", "91X", "Primary", p.bipd_on_file),
        ("CARGO", "34", "", p.cargo_on_file),
        ("BOND", "84", "", p.bond_on_file),
    ):
        if int(amount) <= 0:
            continue
        effective, posted = _filing_dates(p.dot, kind)
        filings.append(
            Filing(
                docket=docket,
                form=form,
                kind=kind,
                layer=layer,
                insurer=_insurer(p.dot, kind),
                policy=_policy(p.dot, kind),
                trans_date=posted,
                effective=effective,
                cancelled=None,
                max_coverage=int(amount),
                underlying=0,
            )
        )
    return tuple(filings)


def _dockets(found: Snapshot) -> tuple[Docket, ...]:
    p = found.profile
    if p.docket is None or p.applicant_id is None:
        return ()
    return (Docket("MC", p.docket, p.applicant_id),)


def _status(found: Snapshot) -> str:
    p = found.profile
    return ("A" if p.authority_active else "I") if p.for_hire else "N"


def _even(version: int) -> bool:
    return version % 2 == 0


def added_docket(version: int) -> Docket:
    """The FF docket 99700007 gains at the bump to `version` (>= 2)."""
    return Docket("FF", 990_700 + version, 9_907_000 + version)


def added_filing(docket: str, version: int) -> Filing:
    """The CARGO filing 99700009 gains at the bump to `version` (>= 2): effective on the first day of that
    version's run month, posted on its run date.
    """
    run = run_date(version)
    return Filing(
        docket=docket,
        form="34",
        kind="CARGO",
        layer="",
        insurer=INSURERS[version % len(INSURERS)],
        policy=f"CG99070{version:04d}",
        trans_date=run,
        effective=run.replace(day=1),
        cancelled=None,
        max_coverage=100,
        underlying=0,
    )


def pending_cancellation(version: int, today: date) -> date:
    """99700010's cancellation date at an even version: 30 days after the data date (the run date, or
    today when later), so always ahead of the sandbox's clock.
    """
    return max(run_date(version), today) + timedelta(days=CANCELLATION_NOTICE_DAYS)


def past_cancellation(version: int, today: date) -> date:
    """99700011's cancellation date at an even version: 30 days before the data date (the run date, or
    today when earlier), so always behind the sandbox's clock.
    """
    return min(run_date(version), today) - timedelta(days=CANCELLATION_NOTICE_DAYS)


def _with_bipd_cancelled(filings: tuple[Filing, ...], day: date) -> tuple[Filing, ...]:
    return tuple(replace(f, cancelled=day) if f.kind == "BIPD" else f for f in filings)


@lru_cache(maxsize=4_096)
def licensing(dot: int, version: int, today: date) -> Licensing | None:
    """The carrier's authority, dockets and filings, or None for a DOT the sandbox does not know."""
    found = snapshot(dot, version)
    if found is None:
        return None
    common_flags = Flags()
    dockets = _dockets(found)
    filings = _base_filings(found)
    if dot == SCRIPTED_REVOCATION_PENDING and _even(version):
        common_flags = Flags(revocation="Y")
    elif dot == SCRIPTED_DOCKET_ADDED:
        dockets += tuple(added_docket(k) for k in range(2, version + 1))
    elif dot == SCRIPTED_FILING_ADDED:
        filings += tuple(added_filing(dockets[0].text, k) for k in range(2, version + 1))
    elif dot == SCRIPTED_CANCELLATION_PENDING and _even(version):
        filings = _with_bipd_cancelled(filings, pending_cancellation(version, today))
    elif dot == SCRIPTED_CANCELLED and _even(version):
        filings = _with_bipd_cancelled(filings, past_cancellation(version, today))
    return Licensing(
        found=found,
        common=_status(found),
        contract="N",
        broker="N",
        common_flags=common_flags,
        contract_flags=Flags(),
        broker_flags=Flags(),
        dockets=dockets,
        filings=filings,
    )
