"""Keys, ordinals and hashes (README 4.5), the paging rules (4.2), the retry policy the client runs on
(2.3), summaries."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from violations_support import row as shared_row

from fmcsa_events.decoder import MAX_PAYLOAD_BYTES, encode
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Counts, ErrorKind, SourceSynced
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.upstream import RetryPolicy
from fmcsa_source_violations.domain.model import Page, Step, Violation, ViolationsFetch
from fmcsa_source_violations.domain.paging import assemble, next_step
from fmcsa_source_violations.domain.parse import assign_ordinals
from fmcsa_source_violations.domain.summary import DESCRIPTION_MAX, ROWS_MAX, paginate, summarize
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.upstream import SocrataClient

NOW = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
AS_OF = datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC)
DOT = "2847193"


def row(**overrides: Any) -> Violation:
    """The shared builder's row (violations_support), with this file's total severity weight of 6."""
    return shared_row(**{"total_severity_wght": "6", **overrides})


def a_page(rows: int, *, version: str | None = "v1") -> Page:
    return Page(
        rows=tuple(row(unique_id=str(n)) for n in range(rows)),
        version=version,
        last_modified=AS_OF,
        request_id="r",
    )


# --- hashing ---------------------------------------------------------------------------------------------


def test_the_hash_ignores_time_weight_and_total_severity() -> None:
    assert row(time_weight="1", total_severity_wght="9").content_hash == row().content_hash


@pytest.mark.parametrize(
    "change",
    [
        {"insp_date": "03-SEP-25"},
        {"oos_indicator": "true"},
        {"oos_weight": "2"},
        {"severity_weight": "5"},
        {"section_desc": "Other"},
        {"group_desc": "Other"},
        {"basic_desc": "Unsafe Driving"},
    ],
)
def test_the_hash_covers_every_other_field(change: dict[str, str]) -> None:
    assert row(**change).content_hash != row().content_hash


def test_the_hash_is_of_normalized_values() -> None:
    noisy = row(basic_desc=" Vehicle\u00ad  Maintenance ", oos_indicator="FALSE", severity_weight=6)
    assert noisy.content_hash == row().content_hash


# --- ordinals --------------------------------------------------------------------------------------------


def test_identical_duplicates_get_0_and_1_whatever_order_they_arrive_in() -> None:
    a, b = row(), row()
    other = row(viol_code="39347E")
    for order in itertools.permutations([a, b, other]):
        numbered = assign_ordinals(order)
        assert sorted((v.viol_code, v.ordinal) for v in numbered) == [
            ("39347E", 0),
            ("3939TS", 0),
            ("3939TS", 1),
        ]


def test_different_rows_sharing_a_key_get_the_same_ordinals_in_any_order() -> None:
    rows = [row(section_desc=f"variant {n}") for n in range(5)]
    expected = {v.content_hash: v.ordinal for v in assign_ordinals(rows)}
    assert sorted(expected.values()) == [0, 1, 2, 3, 4]
    shuffled = rows[:]
    for seed in range(10):
        random.Random(seed).shuffle(shuffled)
        assert {v.content_hash: v.ordinal for v in assign_ordinals(shuffled)} == expected


def test_the_same_code_on_two_units_is_two_violations() -> None:
    numbered = assign_ordinals([row(viol_unit="1"), row(viol_unit="2")])
    assert [v.ordinal for v in numbered] == [0, 0]
    assert len({v.key for v in numbered}) == 2


def test_ordinals_keep_the_arrival_order_of_the_rows() -> None:
    rows = [row(unique_id="b"), row(unique_id="a"), row(unique_id="b")]
    assert [v.unique_id for v in assign_ordinals(rows)] == ["b", "a", "b"]


# --- paging ----------------------------------------------------------------------------------------------


def step(page: Page, index: int, *, first: str | None = "v1", restarted: bool = False) -> Step | Failure:
    return next_step(page, index=index, first_version=first, page_size=3, max_pages=3, restarted=restarted)


def test_a_full_page_reads_on_and_a_short_page_completes() -> None:
    assert step(a_page(3), 0) is Step.NEXT_PAGE
    assert step(a_page(2), 1) is Step.COMPLETE
    assert step(a_page(0), 1) is Step.COMPLETE


def test_a_full_page_at_the_page_guard_is_an_invalid_response() -> None:
    result = step(a_page(3), 2)
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.INVALID_RESPONSE, False)
    assert step(a_page(2), 2) is Step.COMPLETE


def test_more_rows_than_the_limit_is_an_invalid_response() -> None:
    result = step(a_page(4), 0)
    assert isinstance(result, Failure)
    assert result.kind is ErrorKind.INVALID_RESPONSE


def test_a_changed_last_modified_restarts_once_then_fails_retryable() -> None:
    assert step(a_page(3, version="v2"), 1) is Step.RESTART
    result = step(a_page(3, version="v2"), 1, restarted=True)
    assert isinstance(result, Failure)
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)


def test_a_missing_last_modified_is_not_a_change() -> None:
    assert step(a_page(3, version=None), 1) is Step.NEXT_PAGE
    assert step(a_page(3, version="v2"), 1, first=None) is Step.NEXT_PAGE


def test_assemble_numbers_rows_across_pages_and_takes_the_first_pages_as_of() -> None:
    first = Page(rows=(row(), row()), version="v1", last_modified=AS_OF, request_id=None)
    second = Page(rows=(row(),), version="v1", last_modified=None, request_id=None)
    fetch = assemble(DOT, [first, second], retrieved_at=NOW)
    assert [v.ordinal for v in fetch.records] == [0, 1, 2]
    assert (fetch.upstream_as_of, fetch.retrieved_at, fetch.pages) == (AS_OF, NOW, 2)


# --- the retry policy of the client (the kit's, from the violations settings) ---------------------------


async def client_policy() -> RetryPolicy:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(500))) as http:
        client = SocrataClient.from_settings(Settings(inline_retries=2, inline_wait_max_s=5.0), http=http)
        return client.policy


def failure(
    kind: ErrorKind = ErrorKind.RATE_LIMITED, *, retryable: bool = True, after: float | None = None
) -> Failure:
    return Failure(kind, retryable=retryable, message="m", retry_after_s=after)


async def test_a_short_retry_after_is_waited_in_process() -> None:
    assert (await client_policy()).inline_wait(failure(after=1.0), 1, 0.5) == 1.0


async def test_a_long_retry_after_goes_back_to_the_bus() -> None:
    assert (await client_policy()).inline_wait(failure(after=60.0), 1, 0.5) is None


async def test_without_retry_after_the_backoff_is_exponential_from_1_s_with_full_jitter() -> None:
    policy = await client_policy()
    assert policy.inline_wait(failure(), 1, 0.5) == 0.5
    assert policy.inline_wait(failure(), 2, 0.5) == 1.0
    assert policy.inline_wait(failure(), 2, 0.0) == 0.0


async def test_inline_retries_are_bounded() -> None:
    assert (await client_policy()).inline_wait(failure(after=1.0), 3, 0.5) is None


async def test_a_timeout_is_not_retried_in_process() -> None:
    assert (await client_policy()).inline_wait(failure(ErrorKind.TIMEOUT), 1, 0.5) is None


async def test_a_retryable_failure_leaves_with_a_delay_and_a_final_one_unchanged() -> None:
    policy = await client_policy()
    for jitter in (0.0, 0.5, 0.999):
        delay = policy.for_bus(failure(), jitter).retry_after_s
        assert delay is not None
        assert 5.0 <= delay <= 10.0
    assert policy.for_bus(failure(after=30.0), 0.5).retry_after_s == 30.0
    final = failure(ErrorKind.UPSTREAM_ERROR, retryable=False)
    assert policy.for_bus(final, 0.5) is final


# --- summary ---------------------------------------------------------------------------------------------


def test_summary_counts_totals_oos_basics_and_latest_date() -> None:
    rows = [
        row(),
        row(),
        row(viol_code="39347E", oos_indicator="true", viol_unit="1"),
        row(
            unique_id="897734501",
            insp_date="14-MAR-25",
            basic_desc="Hours-of-Service Compli\u00adance",
            viol_unit="D",
        ),
        row(unique_id="1", basic_desc="Brand New BASIC"),
    ]
    fetch = ViolationsFetch(DOT, NOW, AS_OF, assign_ordinals(rows))
    summary = summarize(fetch)
    listed = summary.pop("rows")
    assert isinstance(listed, list)
    assert len(listed) == 5
    assert [r["date"] for r in listed if isinstance(r, dict)][:4] == ["2025-09-02"] * 4  # newest first
    assert [r for r in listed if isinstance(r, dict) and r["code"] == "39347E"] == [{
        "inspection": "905120418",
        "code": "39347E",
        "unit": "1",
        "ordinal": 0,
        "date": "2025-09-02",
        "basic": "vehicle_maintenance",
        "oos": True,
        "severity": 6,
        "group": "Lighting",
        "description": "Inoperative turn signal",
    }]  # fmt: skip
    assert [r["date"] for r in listed if isinstance(r, dict)][-1] == "2025-03-14"
    assert {r["basic"] for r in listed if isinstance(r, dict)} == {
        "vehicle_maintenance",
        "hos_compliance",
        None,
    }
    assert summary == {
        "total": 5,
        "oos": 1,
        "inspections": 3,
        "per_basic": {"hos_compliance": 1, "unknown": 1, "vehicle_maintenance": 3},
        "oos_per_basic": {"vehicle_maintenance": 1},
        "latest_inspection_date": "2025-09-02",
        "upstream_as_of": "2025-10-21T09:12:44+00:00",
        "rows_total": 5,
        "rows_complete": True,
    }


def test_summary_of_a_clean_carrier() -> None:
    fetch = ViolationsFetch(DOT, NOW, None, ())
    assert summarize(fetch) == {
        "total": 0,
        "oos": 0,
        "inspections": 0,
        "per_basic": {},
        "oos_per_basic": {},
        "latest_inspection_date": None,
        "upstream_as_of": None,
        "rows": [],
        "rows_total": 0,
        "rows_complete": True,
    }


def test_a_long_list_is_cut_into_pages_each_event_under_its_bound() -> None:
    """Many rows, each with a non-ASCII description longer than `DESCRIPTION_MAX`: `paginate` leaves the
    newest rows in the outcome's summary and puts the rest, in order, in pages at their offsets; together
    they are every row, no slice has more than `ROWS_MAX` rows, and each event stays under 200 KB
    (consumers refuse more than `MAX_PAYLOAD_BYTES`). The same outcome gives the same pages; a short
    list gives none.
    """
    long = "\u00e9" * 400  # two bytes each in UTF-8: the widest description a page may carry
    rows = [
        row(unique_id=str(900_000_000 + n), insp_date=f"{1 + n % 28:02d}-JAN-{10 + n // 28 % 15}",
            section_desc=long)
        for n in range(2 * ROWS_MAX + 200)
    ]  # fmt: skip
    fetch = ViolationsFetch(DOT, NOW, AS_OF, assign_ordinals(rows))
    summary = summarize(fetch)
    assert summary["rows_total"] == summary["total"] == 2 * ROWS_MAX + 200
    assert summary["rows_complete"] is True
    outcome = SourceSynced(
        request_id=uuid4(), dot=DOT, source=SourceKey.VIOLATIONS, counts=Counts(), attempts=1,
        started_at=NOW, finished_at=NOW, summary=summary,
    )  # fmt: skip
    cut, pages = paginate(outcome)
    assert paginate(outcome) == (cut, pages)
    listed = cut.summary["rows"]
    assert isinstance(listed, list)
    assert 0 < len(listed) <= ROWS_MAX
    assert cut.summary["rows_total"] == 2 * ROWS_MAX + 200
    assert [p.offset for p in pages] == list(
        itertools.accumulate([len(listed), *(len(p.rows) for p in pages[:-1])])
    )
    assert {p.total for p in pages} == {2 * ROWS_MAX + 200}
    assert all(len(p.rows) <= ROWS_MAX for p in pages)
    every = [*listed, *(r for p in pages for r in p.rows)]
    assert every == summary["rows"]
    dates = [r["date"] for r in every if isinstance(r, dict)]
    assert dates == sorted(dates, reverse=True)
    first = listed[0]
    assert isinstance(first, dict)
    assert first["description"] == "\u00e9" * (DESCRIPTION_MAX - 1) + "\u2026"
    for event in (cut, *pages):
        assert len(encode(event)) < 200_000 < MAX_PAYLOAD_BYTES
    ascii_rows = [{**r, "description": "x"} for r in summary["rows"][:ROWS_MAX]]  # type: ignore[index]
    short = outcome.model_copy(update={"summary": {**summary, "rows": ascii_rows, "rows_total": ROWS_MAX}})
    assert paginate(short) == (short, ())


def test_violation_records_are_frozen() -> None:
    violation = row()
    with pytest.raises(AttributeError):
        violation.ordinal = 3  # type: ignore[misc]
    assert replace(violation, ordinal=3).insp_date == date(2025, 9, 2)
