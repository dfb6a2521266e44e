"""`SourceSynced.summary` of the authority source: what the status service and the gateway read."""

from __future__ import annotations

from pydantic import JsonValue

from fmcsa_source_authority.domain.model import AuthorityFetch, AuthorityType


def summarize(fetch: AuthorityFetch) -> dict[str, JsonValue]:
    """Statuses per authority type, dockets, the current OOS order and the insurance picture.

    `next_cancellation`: the earliest cancellation date after the day of the fetch (UTC), or null.
    """
    profile = fetch.profile
    today = fetch.retrieved_at.date()
    upcoming = sorted(
        f.cancellation for f in fetch.filings if f.cancellation is not None and f.cancellation > today
    )
    authority: dict[str, JsonValue] = {}
    for kind in AuthorityType:
        status = profile.status(kind)
        authority[kind.value] = None if status is None else status.value
    return {
        "authority": authority,
        "dockets": [docket.docket for docket in fetch.dockets],
        "oos_order": None if profile.oos_order is None else profile.oos_order.as_json(),
        "insurance": {
            "bipd_required": profile.bipd_required,
            "bipd_on_file": profile.bipd_on_file,
            "cargo_on_file": profile.cargo_on_file,
            "bond_on_file": profile.bond_on_file,
            "filings": len(fetch.filings),
            "next_cancellation": upcoming[0].isoformat() if upcoming else None,
        },
    }
