"""The pure plan of one fetch: which rows to insert, update and age out, and which change facts.

Records: the carrier's profile (always one), its dockets (key: the docket) and its insurance filings
(key: the filing subject, `<type>_<policy>`). `counts.fetched = 1 + dockets + filings`.

- A carrier's first fetch (`held.profile` None) is a baseline: everything inserted, no change fact.
- Planning a fetch against what it produced plans nothing (same rows, same `cancelled` marks).
- Change facts, in this order (README "Change kinds"):
  per authority type (common, contract, broker) whose status moved: `authority_revocation_pending` when
  it moved to `pending_revocation`, else `authority_status_changed`; `docket_added` per new docket;
  `oos_order_issued` / `oos_order_lifted` when an order appears / goes (a different order replacing one
  is both); per filing (by subject): `insurance_filing_added` when new, `insurance_cancellation_pending`
  when its cancellation date is set or moved and still in the future, `insurance_cancelled` when the
  date is reached (the first fetch on or after it) or when a filing goes with a reached date not yet
  reported; `insurance_below_required` when BIPD on file goes below the required amount.
- "Reached" is judged against the observation's day (UTC). A filing row keeps `cancelled`: the date
  had been reached when last planned, so a cancellation is reported once.
- A docket or filing missing from the fetch is aged out (deleted); a docket going is no change fact.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from pydantic import JsonValue

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_source_authority.domain.model import (
    AuthorityFetch,
    AuthorityStatus,
    AuthorityType,
    Filing,
    Held,
    Profile,
    Row,
)
from fmcsa_source_kit.plan import Observation, Plan

Fact = tuple[ChangeKind, str, JsonValue, JsonValue]
"""A change before it becomes an event: kind, subject, before, after."""


def plan(held: Held, fetched: AuthorityFetch, seen: Observation) -> Plan[Row]:
    """What storing `fetched` over `held` does (module docstring)."""
    today = seen.observed_at.date()
    filings = tuple(replace(f, cancelled=f.cancelled_on(today)) for f in fetched.filings)
    fresh: list[Row] = [fetched.profile, *fetched.dockets, *filings]
    before: dict[tuple[str, str], Row] = {_key(row): row for row in _rows(held)}
    insert = tuple(row for row in fresh if _key(row) not in before)
    update = tuple(row for row in fresh if _key(row) in before and before[_key(row)] != row)
    kept = {_key(row) for row in fresh}
    age_out = tuple(row for key, row in before.items() if key not in kept)
    facts: list[Fact] = []
    if held.profile is not None:
        facts += _authority_facts(held.profile, fetched.profile)
        facts += _docket_facts(held, fetched)
        facts += _oos_facts(held.profile, fetched.profile)
        facts += _filing_facts(held.filings, filings, today)
        facts += _bipd_facts(held.profile, fetched.profile)
    return Plan(
        insert=insert,
        update=update,
        age_out=age_out,
        unchanged=len(fresh) - len(insert) - len(update),
        changes=tuple(_event(fact, seen) for fact in facts),
    )


def _rows(held: Held) -> list[Row]:
    return [*([held.profile] if held.profile is not None else []), *held.dockets, *held.filings]


def _key(row: Row) -> tuple[str, str]:
    if isinstance(row, Profile):
        return ("profile", row.dot)
    return (type(row).__name__, row.subject)


def _authority_facts(old: Profile, new: Profile) -> list[Fact]:
    facts: list[Fact] = []
    for kind in AuthorityType:
        was, now = old.status(kind), new.status(kind)
        if was == now or now is None:
            continue  # an authority the upstream stopped saying anything about is no news
        change = (
            ChangeKind.AUTHORITY_REVOCATION_PENDING
            if now is AuthorityStatus.PENDING_REVOCATION
            else ChangeKind.AUTHORITY_STATUS_CHANGED
        )
        facts.append((change, kind.value, None if was is None else was.value, now.value))
    return facts


def _docket_facts(held: Held, fetched: AuthorityFetch) -> list[Fact]:
    known = {docket.docket for docket in held.dockets}
    return [
        (ChangeKind.DOCKET_ADDED, docket.subject, None, docket.docket)
        for docket in fetched.dockets
        if docket.docket not in known
    ]


def _oos_facts(old: Profile, new: Profile) -> list[Fact]:
    was, now = old.oos_order, new.oos_order
    if was == now:
        return []
    facts: list[Fact] = []
    if was is not None:
        facts.append((ChangeKind.OOS_ORDER_LIFTED, "oos_order", was.as_json(), None))
    if now is not None:
        facts.append((ChangeKind.OOS_ORDER_ISSUED, "oos_order", None, now.as_json()))
    return facts


def _filing_facts(held: tuple[Filing, ...], fresh: tuple[Filing, ...], today: date) -> list[Fact]:
    old = {filing.subject: filing for filing in held}
    new = {filing.subject: filing for filing in fresh}
    facts: list[Fact] = []
    for subject in sorted(old.keys() | new.keys()):
        was, now = old.get(subject), new.get(subject)
        if was is None and now is not None:
            facts.append((ChangeKind.INSURANCE_FILING_ADDED, subject, None, now.as_json()))
        elif was is not None and now is None:
            if not was.cancelled and was.cancelled_on(today):
                facts.append((ChangeKind.INSURANCE_CANCELLED, subject, was.as_json(), None))
        elif was is not None and now is not None:
            if now.cancelled and not was.cancelled:
                facts.append((ChangeKind.INSURANCE_CANCELLED, subject, was.as_json(), now.as_json()))
            elif now.cancellation is not None and not now.cancelled and now.cancellation != was.cancellation:
                facts.append(
                    (ChangeKind.INSURANCE_CANCELLATION_PENDING, subject, was.as_json(), now.as_json())
                )
    return facts


def _bipd_facts(old: Profile, new: Profile) -> list[Fact]:
    if new.bipd_below_required and not old.bipd_below_required:
        return [(ChangeKind.INSURANCE_BELOW_REQUIRED, "bipd", old.bipd_json(), new.bipd_json())]
    return []


def _event(fact: Fact, seen: Observation) -> CarrierDataChanged:
    kind, subject, before, after = fact
    return CarrierDataChanged(
        request_id=seen.request_id,
        dot=seen.dot,
        source=SourceKey.AUTHORITY,
        kind=kind,
        subject=subject,
        before=before,
        after=after,
        upstream_as_of=seen.upstream_as_of,
        observed_at=seen.observed_at,
    )
