"""The change feed and the history on SQLite and PostgreSQL: the store writes what the pure fold
computes, in the batch's transaction, and `StatusView.changes` / `StatusView.history` read it back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from status_support import (
    at,
    changed,
    csa_summary,
    delivered,
    expected_rows,
    first_difference,
    poison,
    request,
    store_rows,
    synced,
    timed,
)

from fmcsa_events.consume import Delivered
from fmcsa_events.identifiers import InvalidDotNumber, SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_status.store import Applied, DeadLetter, StatusStore
from fmcsa_status_view.query import InvalidCursor, StatusView, _encode_cursor

CSA, INS = SourceKey.CSA, SourceKey.INSPECTIONS
A, B = "2847193", "99700003"
SEPT, OCT = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)


def _messages() -> list[Delivered]:
    a1, a2, a3, a0 = request(A, CSA, 0), request(A, CSA, 10), request(A, CSA, 20), request(A, CSA, -5)
    b1 = request(B, INS, 5)
    status_before = {"status": "AUTHORIZED", "out_of_service_date": None}
    status_after = {"status": "OUT-OF-SERVICE", "out_of_service_date": "2026-11-20"}
    inspections = {"us_inspections": {"vehicle": {"inspections": 4, "out_of_service": 1}}}
    items = [
        timed(a1),
        timed(changed(a1, 1, before=60, after=70)),
        timed(synced(a1, 1, summary=csa_summary("70", "4.5"), as_of=SEPT)),
        timed(b1),
        timed(changed(b1, 6, kind=ChangeKind.OPERATING_STATUS_CHANGED, subject="operating_status",
                      before=status_before, after=status_after)),
        timed(changed(b1, 6, kind=ChangeKind.SAFETY_RATING_CHANGED, subject="safety_rating",
                      before="satisfactory", after="conditional")),
        timed(synced(b1, 6, summary=inspections, as_of=OCT)),
        timed(a2),
        timed(changed(a2, 11, kind=ChangeKind.BASIC_ALERT_STARTED, before=False, after=True)),
        timed(synced(a2, 11, summary=csa_summary("72"), as_of=OCT)),
        timed(changed(a1, 1, before=60, after=70), eid="republished-beyond-the-window"),
        timed(a3),
        timed(synced(a3, 21, summary=csa_summary("80"), as_of=OCT)),
        timed(a0),
        timed(synced(a0, 9.5, summary=csa_summary("10"), as_of=OCT)),  # older observation, late
    ]  # fmt: skip
    return delivered(items)


@pytest.fixture
async def view(database_url: str) -> AsyncIterator[StatusView]:
    messages = _messages()
    store = await StatusStore.connect(database_url)
    try:
        for start in range(0, len(messages), 4):  # several batches: duplicates span them
            result = await store.apply(messages[start : start + 4], believed=start, dead_letter=None)
            assert isinstance(result, Applied)
        assert first_difference(expected_rows(messages), await store_rows(store)) is None
    finally:
        await store.close()
    reader = StatusView(database_url)
    yield reader
    await reader.close()


async def test_the_feed_lists_each_change_once_newest_first_with_before_and_after(view: StatusView) -> None:
    page = await view.changes()
    assert [(e.dot, e.kind) for e in page.items] == [
        (A, "basic_alert_started"),
        (B, "safety_rating_changed"),
        (B, "operating_status_changed"),
        (A, "basic_percentile_changed"),  # once, though published twice
    ]
    assert [e.position for e in page.items] == [9, 6, 5, 2]
    assert page.next_cursor is None
    rating, status = page.items[1], page.items[2]
    assert (rating.before, rating.after) == ("satisfactory", "conditional")  # JSON strings stay strings
    assert status.after == {"status": "OUT-OF-SERVICE", "out_of_service_date": "2026-11-20"}
    assert status.upstream_as_of == OCT
    assert status.observed_at == at(6)
    assert status.event_id == f"change:{status.request_id}:operating_status_changed:operating_status"
    assert status.source == INS


async def test_the_feed_filters_and_pages(view: StatusView) -> None:
    assert [e.kind for e in (await view.changes(dot="02847193")).items] == [
        "basic_alert_started",
        "basic_percentile_changed",
    ]
    assert [e.dot for e in (await view.changes(source=INS)).items] == [B, B]
    assert [e.position for e in (await view.changes(kind="safety_rating_changed")).items] == [6]
    assert [e.position for e in (await view.changes(since=at(6))).items] == [9, 6, 5]
    assert (await view.changes(dot=A, source=INS)).items == ()
    seen, cursor = [], None
    while True:
        page = await view.changes(limit=1, cursor=cursor)
        seen += [e.position for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [9, 6, 5, 2]
    with pytest.raises(ValueError, match="not_a_kind"):
        await view.changes(kind="not_a_kind")
    with pytest.raises(InvalidDotNumber):
        await view.changes(dot="12a")


@pytest.mark.parametrize(
    "cursor",
    [
        _encode_cursor("f", [10**30]),  # beyond BIGINT: the driver would overflow
        _encode_cursor("f", [True]),
        _encode_cursor("f", [2.5]),
        _encode_cursor("f", [0]),
        _encode_cursor("c", [5]),  # another list's
        "[" * 10_000,
        "x" * 5_000,
    ],
)
async def test_every_malformed_cursor_is_refused_as_such(view: StatusView, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        await view.changes(cursor=cursor)


async def test_a_huge_or_odd_cursor_of_the_older_lists_is_refused_too(view: StatusView) -> None:
    with pytest.raises(InvalidCursor):
        await view.list_companies(cursor=_encode_cursor("c", [10**30]))
    with pytest.raises(InvalidCursor):
        await view.list_companies(cursor=_encode_cursor("c", [-1]))
    with pytest.raises(InvalidCursor):  # a valid time that overflows when made UTC
        await view.sync_log(cursor=_encode_cursor("l", ["0001-01-01T00:00:00+14:00", "x"]))


async def test_history_gives_each_series_by_as_of_and_the_newest_observation_of_a_date(
    view: StatusView,
) -> None:
    series = await view.history(A, source=CSA)
    assert [s.subject for s in series] == ["basic_99", "unsafe_driving"]
    driving = series[1]
    assert [p.as_of for p in driving.points] == [SEPT, OCT]
    assert [p.values for p in driving.points] == [
        {"percentile": 70.0, "measure": 4.5},
        {"percentile": 80.0, "measure": 1.25},  # observed at 21: the late, older observation lost
    ]
    assert series[0].points[0].values == {"percentile": None, "measure": None}
    inspections = await view.history(B, source=INS)
    assert [(s.subject, [p.values for p in s.points]) for s in inspections] == [
        ("us_vehicle", [{"oos_rate": None, "inspections": 4.0, "out_of_service": 1.0}])
    ]
    assert await view.history(A, source=INS) == []
    assert await view.history("12345678", source=CSA) == []


async def test_changes_and_history_commit_with_the_position_or_not_at_all(database_url: str) -> None:
    req = request(A, CSA, 0)
    messages = [
        *delivered([req, changed(req, 1), synced(req, 1, summary=csa_summary("70"), as_of=OCT)]),
        poison(4),
    ]

    async def broken(message: object, reason: str, detail: str) -> None:
        raise ConnectionError("NATS is down")

    store = await StatusStore.connect(database_url)
    try:
        with pytest.raises(ConnectionError):  # SQLite writes at once, PostgreSQL by the next call
            await _apply_and_flush(store, messages, broken)
        rows = await store_rows(store)
        assert (rows["status_change"], rows["status_history"], await store.position()) == ([], [], 0)
        result = await store.apply(messages, believed=0, dead_letter=None)
        assert isinstance(result, Applied)
        rows = await store_rows(store)
        assert [r["position"] for r in rows["status_change"]] == [2]
        assert len(rows["status_history"]) == 2
    finally:
        await store.close()


async def _apply_and_flush(store: StatusStore, messages: list[Delivered], dead_letter: DeadLetter) -> None:
    await store.apply(messages, believed=0, dead_letter=dead_letter)
    await store.flush()


async def test_a_store_without_the_feed_reads_as_empty(tmp_path: Path) -> None:
    reader = StatusView(f"sqlite:///{tmp_path / 'nothing.sqlite3'}")
    try:
        assert (await reader.changes()).items == ()
        assert await reader.history(A, source=CSA) == []
    finally:
        await reader.close()
