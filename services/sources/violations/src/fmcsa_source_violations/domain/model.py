"""The violations source's values: a normalized violation row, its key, one page and one complete read.

Pure: no I/O, no clock, no framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum

from fmcsa_events.identifiers import Basic


class ViolationUnit(StrEnum):
    """Who or what was cited: `viol_unit` values `1`, `2`, `D`, `C`."""

    MAIN_UNIT = "1"
    SECONDARY_UNIT = "2"
    DRIVER = "D"
    CO_DRIVER = "C"


ViolationKey = tuple[int, str, str, str, int]
"""(dot_number, unique_id, viol_code, viol_unit, ordinal): unique per carrier within one read."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One normalized violation row. `content_hash` covers every field except `time_weight` and
    `total_severity_wght` (they move monthly without anything happening on the road) and `ordinal`.
    """

    dot_number: int
    unique_id: str
    viol_code: str
    viol_unit: str
    ordinal: int
    insp_date: date
    basic: Basic | None
    basic_desc: str | None
    oos: bool
    oos_weight: int
    severity_weight: int
    time_weight: int
    total_severity_wght: int | None
    section_desc: str | None
    group_desc: str | None
    content_hash: str

    @property
    def key(self) -> ViolationKey:
        return (self.dot_number, self.unique_id, self.viol_code, self.viol_unit, self.ordinal)

    @property
    def unit(self) -> ViolationUnit | None:
        """The cited unit, or None for a code this client does not know (kept, not refused)."""
        try:
            return ViolationUnit(self.viol_unit)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ViolationsFetch:
    """The result of one complete read of a carrier's rows: every page, with stable ordinals.

    `upstream_as_of` is the dataset's Last-Modified (or X-SODA2-Truth-Last-Modified) when the read
    began; None when Socrata sent neither. An empty `records` is a success (clean carrier or unknown DOT).
    `high_water` is the newest `:updated_at` of the answer that read it (None: no row, or not asked
    for). `delta`: the rows are only those newer than the carrier's mark (`domain.delta`), not its whole
    window: the store lays them over what it holds and ages nothing out.
    """

    dot: str
    retrieved_at: datetime
    upstream_as_of: datetime | None
    records: tuple[Violation, ...]
    pages: int = 1
    high_water: datetime | None = None
    delta: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One parsed page. `rows` carry ordinal 0 until `assemble` numbers them; `version` is the raw
    Last-Modified marker compared between pages of one read.
    """

    rows: tuple[Violation, ...]
    version: str | None
    last_modified: datetime | None
    request_id: str | None
    high_water: datetime | None = None
    """The newest `:updated_at` (Socrata's system field) of the page's rows; None when not asked for."""


class Step(Enum):
    """What a read does after a page."""

    NEXT_PAGE = "next_page"
    COMPLETE = "complete"
    RESTART = "restart"
