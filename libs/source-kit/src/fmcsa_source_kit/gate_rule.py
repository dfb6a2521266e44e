"""A change gate's pure parts (`fmcsa_source_kit.gate` runs them): why a carrier is fetched although the
gate is on (`fetch_reason`), the watch (what the gate can vouch for), and how a listing's page reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.said import Said, ShapeError, _json, _list, _object


def soql_instant(at: datetime) -> str:
    """An instant as a SoQL timestamp literal: UTC, milliseconds, as Socrata serves `:updated_at`."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class FetchReason(StrEnum):
    """Why a carrier is fetched although the gate is on (None: it is not)."""

    NEVER_FETCHED = "never_fetched"
    FULL_REFRESH = "full_refresh"  # its last successful fetch is older than the safety net's period
    GATE_BLIND = "gate_blind"  # the gate's last check failed, or it has not checked for too long
    NOT_WATCHED = "not_watched"  # fetched before the gate's unbroken watch began: a listing may be missed
    LISTED = "listed"  # a check since its last fetch lists it


@dataclass(frozen=True, slots=True)
class Watch:
    """What the gate can vouch for now, over all its datasets: since when it has read every listing
    (`since`, the latest start of an unbroken watch), when it last checked all of them (`checked_at`, the
    oldest), and its position (`position`, the newest listing read: remembered with each fetch as the
    mark's `published_at`). None for the whole watch when the last check failed.
    """

    since: datetime
    checked_at: datetime
    position: datetime | None


def fetch_reason(
    fetched_at: datetime | None,
    position: datetime | None,
    now: datetime,
    watch: Watch | None,
    *,
    listed: bool,
    full_refresh: timedelta,
    max_gap: timedelta,
) -> FetchReason | None:
    """Why a carrier last fetched successfully at `fetched_at` (None: never), when the gate's position
    was `position` (its fetch mark's `published_at`), needs a fetch, or None when the gate vouches that
    nothing it reads changed since. `listed`: a listing newer than `position` names the carrier.
    """
    if fetched_at is None:
        return FetchReason.NEVER_FETCHED
    if now - fetched_at >= full_refresh:
        return FetchReason.FULL_REFRESH
    if watch is None or now - watch.checked_at > max_gap:
        return FetchReason.GATE_BLIND
    if fetched_at < watch.since or position is None:
        return FetchReason.NOT_WATCHED
    if listed:
        return FetchReason.LISTED
    return None


def watch_since(
    previous_check: datetime | None, previous_since: datetime | None, now: datetime, max_gap: timedelta
) -> datetime:
    """When the unbroken watch of one dataset began, after a successful check at `now`: it goes on when
    the previous successful check was at most `max_gap` ago, else it begins now.
    """
    if previous_check is None or previous_since is None or now - previous_check > max_gap:
        return now
    return previous_since


def gate_dot(value: object) -> str | None:
    """A DOT as a gate keys it (digits, no leading zeros), or None when it is not one. Socrata serves
    every value as a string, a number column's too (a whole number possibly as `123.0`: unverified).
    """
    if not isinstance(value, str):
        return None
    text = value.strip().removesuffix(".0")
    if not (1 <= len(text) <= 8 and text.isascii() and text.isdigit()) or int(text) == 0:
        return None
    return str(int(text))


def parse_dot_page(
    said: Said, now: datetime, *, field: str, retry_after_max_s: float
) -> tuple[int, set[str]] | Failure:
    """One page of a listing read with `$select=<field>`: its row count and the DOTs it lists (rows
    without a readable DOT are counted, not listed).
    """
    body = _json(said, now, retry_after_max_s)
    if isinstance(body, Failure):
        return body
    if not 200 <= said.status < 300:
        return said.refused()
    try:
        rows: list[Any] = _list(body, "the answer")
        dots = {dot for i, row in enumerate(rows) if (dot := gate_dot(_object(row, f"row {i}").get(field)))}
    except ShapeError as error:
        return said.shape(error)
    return len(rows), dots
