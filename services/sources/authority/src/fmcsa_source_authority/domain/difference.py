"""The daily difference gate's pure parts: which carriers a publication lists, and whether a carrier needs
a QCMobile fetch (`fetch_reason`, the kit's: `fmcsa_source_kit.gate_rule`).

FMCSA's Motus system (since May 2026) publishes on DataHub, besides the full L&I registers, one Socrata
dataset per register holding only the rows new or changed in the latest daily update (AuthHist, Insur,
Carrier, RevokeSuspend; `fmcsa_source_authority.difference`). A carrier none of them listed since its last
successful fetch has, as far as these registers say, not changed: it need not be fetched, provided the gate
read every publication since that fetch (the "watch", below), which is what it can vouch for.
"""

from __future__ import annotations

from functools import partial

from fmcsa_source_kit.gate_rule import FetchReason, Watch, fetch_reason, gate_dot, parse_dot_page, watch_since

__all__ = ["FetchReason", "Watch", "difference_dot", "fetch_reason", "parse_difference_page", "watch_since"]


difference_dot = gate_dot
"""A `usdot_number` as the gate keys it (digits, no leading zeros), or None when it is not one."""


parse_difference_page = partial(parse_dot_page, field="usdot_number")
"""One page of a daily difference read with `$select=usdot_number` (the kit's `parse_dot_page`)."""
