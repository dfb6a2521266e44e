"""Values to and from each database, without per-value ORM processing (the projector writes tens of
thousands of rows a second through plain `text()` statements; readers decode the same way).

SQLite keeps times as `YYYY-MM-DD HH:MM:SS.ffffff+00:00` text, always UTC and fixed width, so text
order is time order (SQLAlchemy's DateTime reads it too); PostgreSQL as timestamptz. JSON travels as
compact text with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_COMPACT = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
"""One encoder for every value: `json.dumps` with arguments builds a new one on each call."""


_TEXTS: dict[datetime, str] = {}
"""SQLite's text of the times encoded lately (equal instants have one text): a row written again keeps
most of its times, and a batch's rows share theirs; formatting was a tenth of a rebuild's time."""
_TEXTS_KEPT = 200_000

_MOMENTS: dict[str, datetime] = {}
"""The instants of SQLite's time texts read lately (the reverse of `_TEXTS`): a row's times repeat
(its newest request is often its newest success, a finish its retrieval) and so do a company's
sources', and parsing each was a tenth of a status read. 10,000 texts are about 2 MB: a status read
repeats its own texts and a polled company its row's, and 50,000 (about 10 MB, most of them texts a
100,000-company export read once) put the gateway's export over its memory budget
(`test_import_limit.py`)."""
_MOMENTS_KEPT = 10_000


def sqlite_texts() -> dict[datetime, str]:
    """The cache of SQLite time texts (`Codec.time_out` fills it): a hit is the text `time_out` gives."""
    return _TEXTS


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Codec:
    """Encoders and decoders for one database kind."""

    sqlite: bool

    def time_out(self, value: datetime | None) -> Any:
        """A UTC-aware (or naive UTC) datetime as the database takes it."""
        if value is None:
            return None
        if self.sqlite:
            text = _TEXTS.get(value)
            if text is None:
                if len(_TEXTS) >= _TEXTS_KEPT:
                    _TEXTS.clear()
                text = _TEXTS[value] = _utc(value).isoformat(" ", "microseconds")
            return text
        return _utc(value)

    def time_in(self, value: Any) -> datetime | None:
        """An aware UTC datetime from what the database returned."""
        if value is None:
            return None
        if isinstance(value, str):
            moment = _MOMENTS.get(value)
            if moment is None:
                if len(_MOMENTS) >= _MOMENTS_KEPT:
                    _MOMENTS.clear()
                moment = datetime.fromisoformat(value)
                moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
                _MOMENTS[value] = moment
            return moment
        assert isinstance(value, datetime)
        if value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def time_reader(self) -> Callable[[Any], datetime | None]:
        """`time_in` for a column read row after row: on SQLite a kept text's instant in one lookup."""
        if not self.sqlite:
            return self.time_in
        kept, parse = _MOMENTS.get, self.time_in

        def read(value: Any) -> datetime | None:
            if value is None:
                return None
            moment = kept(value)
            return parse(value) if moment is None else moment

        return read

    @staticmethod
    def json_out(value: Any) -> str | None:
        return None if value is None else _COMPACT.encode(value)

    def json_in(self, value: Any) -> Any:
        # SQLite returns the text; SQLAlchemy's asyncpg dialect has already decoded json columns, so
        # there a str is a JSON string value (a change's `before` may be one) and is not parsed again.
        return json.loads(value) if self.sqlite and isinstance(value, str | bytes) else value

    @staticmethod
    def bool_in(value: Any) -> bool | None:
        return None if value is None else bool(value)


SQLITE = Codec(sqlite=True)
POSTGRES = Codec(sqlite=False)


def codec_for(dialect_name: str) -> Codec:
    return SQLITE if dialect_name == "sqlite" else POSTGRES
