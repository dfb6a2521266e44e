"""The status GET's answer encoded straight from the read model (`schemas.company_status_json`) is byte for
byte what Litestar sends for the documented models (`schemas.company_status`: pydantic, then
`model_dump(mode="json")` and msgspec, as Litestar's pydantic plugin encodes a model), for any read model:
every field in the same order, the same nulls, the same text of a time (with or without fractions of a
second, from any offset), enums, nested summaries, retries, errors and next due times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.serialization import encode_json

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Trigger
from fmcsa_gateway.domain import NextDue
from fmcsa_gateway.schemas import company_status, company_status_json
from fmcsa_status_view.models import CompanyStatus, RetryProgress, SourceStatus, SyncState

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(0))]),
)
maybe_moment = st.none() | moments
maybe_text = st.none() | st.text(max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
words = st.text(max_size=8)
counts = st.none() | st.integers(0, 10**6)


@st.composite
def source_statuses(draw: st.DrawFn, source: SourceKey) -> SourceStatus:
    return SourceStatus(
        dot="2847193",
        source=source,
        state=draw(st.sampled_from(SyncState)),
        last_request_id=draw(maybe_text),
        last_requested_at=draw(maybe_moment),
        last_trigger=draw(st.none() | st.sampled_from(Trigger) | st.sampled_from([t.value for t in Trigger])),
        last_requested_by=draw(maybe_text),
        last_finished_at=draw(maybe_moment),
        success_request_id=draw(maybe_text),
        success_requested_at=draw(maybe_moment),
        last_success_at=draw(maybe_moment),
        success_attempts=draw(counts),
        success_duration_ms=draw(counts),
        fetched=draw(counts),
        inserted=draw(counts),
        updated=draw(counts),
        unchanged=draw(counts),
        last_summary=draw(st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=4)),
        upstream_as_of=draw(maybe_moment),
        retrieved_at=draw(maybe_moment),
        checked_unchanged=draw(st.none() | st.booleans()),
        error_request_id=draw(maybe_text),
        error_requested_at=draw(maybe_moment),
        last_error_at=draw(maybe_moment),
        error_kind=draw(maybe_text),
        error_message=draw(maybe_text),
        error_retryable=draw(st.none() | st.booleans()),
        error_attempts=draw(counts),
        consecutive_failures=draw(st.integers(0, 50)),
        failing=draw(st.booleans()),
        requests=draw(st.integers(0, 10**6)),
        succeeded=draw(st.integers(0, 10**6)),
        failed=draw(st.integers(0, 10**6)),
        retry=draw(
            st.none() | st.builds(RetryProgress, st.integers(1, 9), st.integers(0, 9), words, words, moments)
        ),
    )


@st.composite
def companies(draw: st.DrawFn) -> tuple[CompanyStatus, dict[SourceKey, NextDue]]:
    keys = draw(st.lists(st.sampled_from(SourceKey), unique=True))
    sources = {key: draw(source_statuses(key)) for key in sorted(keys, key=list(SourceKey).index)}
    company = CompanyStatus(
        dot=draw(st.sampled_from(["1", "2847193", "12345678"])),
        name=draw(st.none() | st.text(max_size=20)),
        active=draw(st.booleans()),
        registered_at=draw(maybe_moment),
        removed_at=draw(maybe_moment),
        last_run=draw(maybe_moment),
        last_success_at=draw(maybe_moment),
        success=draw(st.booleans()),
        failing=draw(st.booleans()),
        never_synced=draw(st.booleans()),
        failing_sources=tuple(key for key in sources if draw(st.booleans())),
        sources=sources,
    )
    due = {
        key: NextDue(
            at=draw(maybe_moment),
            enabled=draw(st.booleans()),
            within=draw(st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))),
        )
        for key in sources
        if draw(st.booleans())
    }
    return company, due


def litestar_answer(model: Any) -> bytes:
    """What Litestar sends for a pydantic answer: its pydantic plugin's encoder, then msgspec."""
    return encode_json(model.model_dump(mode="json"))


@settings(max_examples=150, deadline=None)
@given(companies())
def test_the_direct_encoding_equals_the_models(case: tuple[CompanyStatus, dict[SourceKey, NextDue]]) -> None:
    company, due = case
    assert company_status_json(company, due) == litestar_answer(company_status(company, due))


def test_a_company_without_sources_or_due_times() -> None:
    company = CompanyStatus(
        "7", None, True, datetime(2026, 1, 2, tzinfo=UTC), None, None, None, False, False, True, ()
    )
    expected = litestar_answer(company_status(company))
    assert company_status_json(company) == expected
    assert expected.startswith(
        b'{"dot_number":"7","name":null,"active":true,"registered_at":"2026-01-02T00:00:00Z"'
    )
