"""Paging of one carrier's read (docs/upstreams.md 4.2): offset pages until a short one, a restart
when the dataset's Last-Modified changes between pages, a guard on the number of pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fmcsa_events.models import ErrorKind
from fmcsa_source_kit.failures import Failure
from fmcsa_source_violations.domain.model import Page, Step, ViolationsFetch
from fmcsa_source_violations.domain.parse import assign_ordinals


def next_step(
    page: Page,
    *,
    index: int,
    first_version: str | None,
    page_size: int,
    max_pages: int,
    restarted: bool,
) -> Step | Failure:
    """After page `index` (0-based) of a read: read on, stop, restart, or fail.

    A short page (fewer rows than `page_size`, `[]` included) completes the read. A Last-Modified that
    differs from the first page's means the monthly refresh happened mid-read: restart once, then fail
    retryable. More rows than asked, or a full page at the `max_pages` guard, is `invalid_response`.
    """
    if index > 0 and page.version is not None and first_version is not None and page.version != first_version:
        if restarted:
            return Failure(
                ErrorKind.UPSTREAM_ERROR,
                retryable=True,
                message="the violations dataset was refreshed during the read, twice",
                detail=f"page={index} first_last_modified={first_version} now={page.version}",
            )
        return Step.RESTART
    if len(page.rows) > page_size:
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message=f"Socrata sent {len(page.rows)} rows for a $limit of {page_size}",
            detail=f"page={index} request_id={page.request_id}",
        )
    if len(page.rows) < page_size:
        return Step.COMPLETE
    if index + 1 >= max_pages:
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message=f"more than {max_pages} pages of violations: paging guard tripped",
            detail=f"pages={index + 1} page_size={page_size} request_id={page.request_id}",
        )
    return Step.NEXT_PAGE


def assemble(dot: str, pages: Sequence[Page], *, retrieved_at: datetime) -> ViolationsFetch:
    """The fetch of one complete read: all rows with stable ordinals, as-of from the first page."""
    rows = [row for page in pages for row in page.rows]
    return ViolationsFetch(
        dot=dot,
        retrieved_at=retrieved_at,
        upstream_as_of=pages[0].last_modified if pages else None,
        records=assign_ordinals(rows),
        pages=len(pages),
        high_water=max((page.high_water for page in pages if page.high_water), default=None),
    )
