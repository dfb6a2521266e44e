"""The pure parts of the read side: the seeds' syncStatus block, cursors, codecs, the live-store pointer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.binding import RowBinding
from fmcsa_status_view.codec import POSTGRES, SQLITE, Codec
from fmcsa_status_view.database import dollar
from fmcsa_status_view.location import BadPointer, Location
from fmcsa_status_view.models import CompanyStatus, RetryProgress, SourceStatus, SyncState
from fmcsa_status_view.query import InvalidCursor, _decode_cursor, _encode_cursor, _int_in
from fmcsa_status_view.rows import SourceRow
from fmcsa_status_view.syncstatus import js_time, sync_status_block
from fmcsa_status_view.tables import SOURCE

T = datetime(2026, 11, 23, 6, 0, 0, 123456, tzinfo=UTC)


def source(key: SourceKey, *, failing: bool = False, success: datetime | None = T) -> SourceStatus:
    error = dict(
        error_request_id="r-1", error_kind="rate_limited", error_message="429 from SaferWebAPI",
        error_retryable=True, last_error_at=T + timedelta(hours=1), error_attempts=3,
    )  # fmt: skip
    return SourceStatus(
        dot="2847193", source=key, state=SyncState.FAILED if failing else SyncState.SUCCEEDED,
        last_request_id="r-1", last_requested_at=T, last_trigger="scheduled", last_requested_by="scheduler",
        last_finished_at=T, last_success_at=success, success_request_id="r-0", fetched=1, inserted=0,
        updated=0, unchanged=1, success_duration_ms=10, last_summary={}, upstream_as_of=None,
        retrieved_at=None, consecutive_failures=2 if failing else 0, failing=failing, requests=3,
        succeeded=1, failed=2 if failing else 0, **(error if failing else {}),  # type: ignore[arg-type]
    )  # fmt: skip


def company(*sources: SourceStatus) -> CompanyStatus:
    failing = tuple(s.source for s in sources if s.failing)
    return CompanyStatus(
        dot="2847193", name="Acme", active=True, registered_at=T, removed_at=None,
        last_run=T + timedelta(hours=1), last_success_at=T, success=not failing, failing=bool(failing),
        never_synced=False, failing_sources=failing, sources={s.source: s for s in sources},
    )  # fmt: skip


def test_the_seeds_block_lists_failing_sources_and_last_syncs() -> None:
    block = sync_status_block(
        company(source(SourceKey.CSA), source(SourceKey.INSPECTIONS, failing=True, success=None))
    )
    assert block == {
        "lastRun": "2026-11-23T07:00:00.123Z",
        "success": False,
        "errors": [
            {
                "source": "inspections",
                "error": "429 from SaferWebAPI",
                "timestamp": "2026-11-23T07:00:00.123Z",
            }
        ],
        "csaScoresLastSync": "2026-11-23T06:00:00.123Z",
        "violationsLastSync": None,
        "inspectionsLastSync": None,
        "authorityLastSync": None,
    }


def test_the_seeds_block_names_a_failing_source_as_the_seeds_did() -> None:
    block = sync_status_block(company(source(SourceKey.CSA, failing=True), source(SourceKey.AUTHORITY)))
    assert [error["source"] for error in block["errors"]] == ["csa_scores"]  # type: ignore[index,union-attr]


def test_the_seeds_block_of_an_unknown_company_is_empty() -> None:
    assert sync_status_block(None) == {
        "lastRun": None, "success": False, "errors": [],
        "csaScoresLastSync": None, "violationsLastSync": None, "inspectionsLastSync": None,
        "authorityLastSync": None,
    }  # fmt: skip


def test_times_are_written_as_javascript_writes_them() -> None:
    east = timezone(timedelta(hours=-5))
    assert js_time(datetime(2026, 1, 2, 1, 2, 3, 999999, tzinfo=east)) == "2026-01-02T06:02:03.999Z"


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    cursor = _encode_cursor("l", ["2026-11-23T06:00:00+00:00", "abc"])
    assert _decode_cursor(cursor, "l") == ["2026-11-23T06:00:00+00:00", "abc"]
    with pytest.raises(InvalidCursor):
        _decode_cursor(cursor, "c")
    for bad in ("", "%%%", "bm90IGpzb24", _encode_cursor("c", [])[:-2]):
        with pytest.raises(InvalidCursor):
            _decode_cursor(bad, "c")


@pytest.mark.parametrize(
    "cursor",
    [
        "[" * 100_000,  # text past any cursor this view makes
        base64.urlsafe_b64encode(b"[" * 380).decode(),  # nested lists, not a cursor
        base64.urlsafe_b64encode(b"1" * 5000).decode(),  # a number past the parser's digit limit
        base64.urlsafe_b64encode(b'["c",1e999]').decode(),  # infinity
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
        "caf\u00e9",  # not base64
    ],
)
def test_every_malformed_cursor_raises_invalid_cursor_and_nothing_else(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        _int_in(_decode_cursor(cursor, "c")[0], 0, 99_999_999)


@pytest.mark.parametrize("value", [10**30, -1, True, 2.5, "7", None, [1]])
def test_a_cursor_integer_out_of_range_or_of_another_type_is_refused(value: object) -> None:
    cursor = _encode_cursor("c", [value])
    with pytest.raises(InvalidCursor):
        _int_in(_decode_cursor(cursor, "c")[0], 0, 99_999_999)
    assert _int_in(_decode_cursor(_encode_cursor("c", [99_999_999]), "c")[0], 0, 99_999_999) == 99_999_999


def test_times_keep_their_instant_and_sort_as_text_on_sqlite() -> None:
    east = timezone(timedelta(hours=2))
    local = datetime(2026, 11, 23, 8, 0, tzinfo=east)
    assert SQLITE.time_in(SQLITE.time_out(local)) == local
    assert SQLITE.time_out(local) == "2026-11-23 06:00:00.000000+00:00"
    later = [SQLITE.time_out(T + timedelta(microseconds=n)) for n in (0, 1, 999_999, 1_000_000)]
    assert later == sorted(later)
    assert POSTGRES.time_out(local) == local
    assert POSTGRES.time_in(local) is not None
    assert POSTGRES.time_in(local).tzinfo is UTC


def test_a_read_time_is_the_same_instant_in_utc_each_time_its_text_is_read() -> None:
    text = "2026-11-23 08:00:00.000001+02:00"  # an offset SQLite's writer never stores, still read right
    for _ in range(2):  # parsed, then kept
        moment = SQLITE.time_in(text)
        assert moment == datetime(2026, 11, 23, 6, 0, 0, 1, tzinfo=UTC)
        assert moment is not None
        assert moment.tzinfo is UTC
    assert SQLITE.time_in("2026-11-23 06:00:00") == datetime(2026, 11, 23, 6, tzinfo=UTC)  # naive is UTC


@pytest.mark.parametrize("codec", [SQLITE, POSTGRES], ids=["sqlite", "postgresql"])
def test_a_bindings_reader_builds_the_row_its_column_loop_builds(codec: Codec) -> None:
    binding = RowBinding(SOURCE, SourceRow, codec, ("dot", "source"))
    row = list(binding.encode(source(SourceKey.CSA, failing=True)))
    selected = [row[binding.columns.index(name)] for name in binding.names]
    retry = RetryProgress(2, 5, "timeout", "slow", T)
    # the reader of a subclass at an offset: the row's values, then the subclass's own fields
    built = binding.reader(2, SourceStatus)(["x", "y", *selected], retry)
    assert built == SourceStatus(*binding.values(selected), retry)
    assert built.retry == retry
    assert built.source is SourceKey.CSA
    assert built.state is SyncState.FAILED
    assert binding.decode(selected) == SourceRow(*binding.values(selected))
    assert binding.decode(selected).source is SourceKey.CSA
    with pytest.raises(ValueError, match="not_a_source"):  # an unknown enum value is refused as before
        binding.decode([*selected[:1], "not_a_source", *selected[2:]])


def test_json_is_compact_with_sorted_keys() -> None:
    assert SQLITE.json_out({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert SQLITE.json_in('{"a":1}') == {"a": 1}
    assert POSTGRES.json_in({"a": 1}) == {"a": 1}


def test_question_marks_become_numbered_parameters_for_postgresql() -> None:
    assert (
        dollar("SELECT a FROM t WHERE b = ? AND c IN (?, ?)")
        == "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    )


def test_the_live_sqlite_file_is_the_pointers_target(tmp_path: Path) -> None:
    location = Location(f"sqlite:///{tmp_path}/status.sqlite3")
    assert location.live_path() == tmp_path / "status.sqlite3"
    assert location.marker() is None
    location.pointer_path.write_text("status.r1.sqlite3\n")
    assert location.live_url() == f"sqlite:///{tmp_path}/status.r1.sqlite3"
    assert location.marker() is not None
    location.pointer_path.write_text("../elsewhere.sqlite3")
    with pytest.raises(BadPointer):
        location.live_path()
    assert Location("postgresql://u@h/db?search_path=s").live_url() == "postgresql://u@h/db?search_path=s"
