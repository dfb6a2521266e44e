"""Pure decisions of the gateway: reading an import, checking a schedule, planning a trigger, next due.

No I/O, no clock, no framework: values in, values out. DOT numbers pass `fmcsa_events.identifiers.parse_dot`
here or nowhere, so nothing else reaches an event, a subject or an upstream query.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from fmcsa_events.identifiers import InvalidDotNumber, SourceKey, parse_dot
from fmcsa_events.schedules import (
    DEFAULT_INTERVAL_MINUTES,
    cron_problem,
    interval_problem,
    next_fire,
    normalized_cron,
)
from fmcsa_events.text import refuse_control_characters

MAX_NAME_LENGTH = 200
_DOT_HEADERS = ("dot_number", "dot", "usdot", "usdot_number", "dotnumber", "usdotnumber")
_NAME_HEADERS = ("name", "legal_name", "company", "company_name", "carrier")


# --- import ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row refused by an import: its line (CSV: the line in the file; JSON: the item's 1-based index)."""

    line: int
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What an import will do: register `accepted` (DOT, name) in order; nothing else is published."""

    accepted: list[tuple[str, str | None]] = field(default_factory=list)
    duplicate: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.accepted) + self.duplicate + len(self.invalid)


class ImportRefused(ValueError):
    """The upload as a whole cannot be read (not a list, not CSV, too many rows); nothing is published."""


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:40]


def plan_import(
    rows: Iterable[tuple[int, object, object]], *, registered: frozenset[str], max_rows: int
) -> ImportPlan:
    """Sort rows `(line, dot, name)` into accepted, duplicate and invalid.

    A duplicate is a DOT seen earlier in the same upload or already registered; its first valid row wins.
    Spaces around a text DOT are trimmed (CSV cells often carry them); anything else must pass `parse_dot`.
    A row is invalid when its DOT is not 1 to 8 digits or its name is not text of at most 200 characters
    without a control character (`fmcsa_events.text.SafeText`).
    More than `max_rows` rows refuse the whole upload (`ImportRefused`), so nothing is half-imported.
    """
    accepted: list[tuple[str, str | None]] = []
    invalid: list[InvalidRow] = []
    seen: set[str] = set()
    duplicate = 0
    for count, (line, raw_dot, raw_name) in enumerate(rows, start=1):
        if count > max_rows:
            raise ImportRefused(f"an import has at most {max_rows} rows")
        try:
            dot = parse_dot(raw_dot.strip() if isinstance(raw_dot, str) else raw_dot)
        except InvalidDotNumber as error:
            invalid.append(InvalidRow(line, _shown(raw_dot), str(error)))
            continue
        if raw_name is not None and not isinstance(raw_name, str):
            invalid.append(InvalidRow(line, _shown(raw_dot), "name must be text"))
            continue
        name = raw_name.strip() if isinstance(raw_name, str) and raw_name.strip() else None
        if name is not None and len(name) > MAX_NAME_LENGTH:
            invalid.append(
                InvalidRow(line, _shown(raw_dot), f"name is longer than {MAX_NAME_LENGTH} characters")
            )
            continue
        if name is not None:
            try:
                refuse_control_characters(name)
            except ValueError as error:
                invalid.append(InvalidRow(line, _shown(raw_dot), f"name: {error}"))
                continue
        if dot in seen or dot in registered:
            duplicate += 1
            continue
        seen.add(dot)
        accepted.append((dot, name))
    return ImportPlan(accepted=accepted, duplicate=duplicate, invalid=invalid)


class _JsonRow(msgspec.Struct):
    """An object item of a JSON import; other keys are skipped unread (never built into a dict)."""

    dot_number: object = None
    dot: object = None
    name: object = None


JSON_VALUES_PER_ROW = 8
"""A JSON import row is `"123"` or `{"dot_number": "123", "name": "..."}`: about three values with the
separators; eight leaves room for commas in names without letting a body expand beyond a few per row."""
_JSON_IMPORT = msgspec.json.Decoder(list[int | float | str | bool | _JsonRow | None])
"""A JSON import is a flat list: an item that is itself a list is refused with its place, not expanded."""


def json_import_rows(body: bytes, *, max_rows: int) -> list[tuple[int, object, object]]:
    """The rows `(index, dot, name)` of a JSON import body, or `ImportRefused` with the reason (not
    JSON, not a flat list of DOTs or objects, nested too deeply, a number beyond 64 bits). msgspec
    builds only the kinds of items an import has (an array item is refused, not built; an object's
    other keys are skipped); CPU-bound on a large body, so callers run it off the event loop.
    """
    # Every JSON value but the first of a container follows a comma, and every container opens with a
    # bracket: so commas plus brackets (plus one) bound what decoding can build, counted at memchr speed
    # before anything is built (brackets and commas inside strings only raise the count: safe).
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    if values > JSON_VALUES_PER_ROW * max_rows:
        raise ImportRefused(
            f"an import has at most {max_rows} rows, and a JSON one at most {JSON_VALUES_PER_ROW} values "
            f"a row: this one holds up to {values} (send CSV, or split it)"
        )
    try:
        items = _JSON_IMPORT.decode(body)
    except msgspec.ValidationError as error:
        raise ImportRefused(
            f"a JSON import is a list of DOT numbers or of {{dot_number, name}} objects: {str(error)[:160]}"
        ) from None
    except (msgspec.DecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:120]
        raise ImportRefused(f"the body is not JSON: {reason}") from None
    if len(items) > max_rows:  # before a row is built for any of them
        raise ImportRefused(f"an import has at most {max_rows} rows")
    return [
        (index, item.dot if item.dot_number is None else item.dot_number, item.name)
        if isinstance(item, _JsonRow)
        else (index, item, None)
        for index, item in enumerate(items, start=1)
    ]


def json_rows(document: object) -> list[tuple[int, object, object]]:
    """Rows of a JSON import: a list whose items are a DOT (string or number) or `{dot_number, name?}`."""
    if not isinstance(document, list):
        raise ImportRefused("a JSON import is a list of DOT numbers or of {dot_number, name} objects")
    rows: list[tuple[int, object, object]] = []
    for index, item in enumerate(document, start=1):
        if isinstance(item, dict):
            dot = item.get("dot_number")
            rows.append((index, item.get("dot") if dot is None else dot, item.get("name")))
        else:
            rows.append((index, item, None))
    return rows


def csv_rows(text: str) -> Iterable[tuple[int, object, object]]:
    """Rows of a CSV import, each with its line in the file.

    With a header naming a DOT column (`dot_number`, `dot`, `usdot`...) that column is read, and a name
    column if there is one; without a header the first column is the DOT and the second the name. Blank
    lines are skipped.
    """
    reader = csv.reader(io.StringIO(text), strict=True)
    dot_at, name_at = 0, 1
    first = True
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if first:
                first = False
                header = [cell.strip().lower().lstrip("\ufeff") for cell in record]
                found = next((header.index(h) for h in _DOT_HEADERS if h in header), None)
                if found is not None:
                    dot_at = found
                    name_at = next((header.index(h) for h in _NAME_HEADERS if h in header), -1)
                    continue
            dot = record[dot_at] if dot_at < len(record) else ""
            name = record[name_at] if 0 <= name_at < len(record) else None
            yield line, dot, name
    except csv.Error as error:  # an unclosed quote, text after a closing quote, a huge field
        raise ImportRefused(f"the CSV cannot be read at line {reader.line_num}: {error}") from None


# --- schedules ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A valid schedule: exactly one of `interval_minutes` and `cron`, and whether it is enabled."""

    interval_minutes: int | None
    cron: str | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class ScheduleRefused:
    field: str
    reason: str


def check_schedule(
    *, interval_minutes: int | None, cron: str | None, enabled: bool, now_s: float
) -> ScheduleSpec | ScheduleRefused:
    """The schedule, or the reason it is refused: the scheduler's rules, checked before anything is published.

    An interval is 5 to 1440 minutes. A cron expression (UTC) has five fields or is an alias such as
    `@hourly`, is one croniter reads, and never fires less than 5 minutes apart.
    """
    if (interval_minutes is None) == (cron is None or not cron.strip()):
        return ScheduleRefused("interval_minutes", "give exactly one of interval_minutes and cron")
    if interval_minutes is not None:
        if (problem := interval_problem(interval_minutes)) is not None:
            return ScheduleRefused("interval_minutes", problem)
        return ScheduleSpec(interval_minutes=interval_minutes, cron=None, enabled=enabled)
    assert cron is not None
    text = normalized_cron(cron)
    reason = cron_problem(text, at_s=now_s)
    if reason is not None:
        return ScheduleRefused("cron", reason)
    return ScheduleSpec(interval_minutes=None, cron=text, enabled=enabled)


# --- trigger -----------------------------------------------------------------------------------------


def plan_trigger(dots: Sequence[str], sources: Sequence[SourceKey] | None) -> list[tuple[str, SourceKey]]:
    """Every (DOT, source) pair asked for, once each, in the order given; no sources means all three."""
    wanted = list(dict.fromkeys(sources)) if sources else list(SourceKey)
    return [(dot, source) for dot in dict.fromkeys(dots) for source in wanted]


# --- next due ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextDue:
    """When a (company, source) is next due, as far as can be told from outside the scheduler.

    `at` is None when it cannot be known: the source's schedule is disabled (`enabled` False), or the pair
    was never scheduled yet, in which case it comes due within `within` (an interval schedule; None for
    cron) of the scheduler first seeing it.
    """

    at: datetime | None
    enabled: bool
    within: timedelta | None


def next_due(
    *, interval_minutes: int | None, cron: str | None, enabled: bool, last_scheduled_at: datetime | None
) -> NextDue:
    """The next scheduled request of a pair, from the source's current schedule and its last one.

    The scheduler keeps each company at the same offset inside every slot, so with an interval it is the
    last scheduled request's time plus the interval. With cron it is the first fire time after the last
    scheduled request (the company's turn comes early in that slot). A disabled schedule is never due;
    a schedule changed since the last request counts from that request with the new rule. The result may
    lie in the past: the scheduler is late (stopped, or backing off a pair that keeps failing).
    """
    if not enabled:
        return NextDue(at=None, enabled=False, within=None)
    if cron is not None and cron.strip():
        if last_scheduled_at is None:
            return NextDue(at=None, enabled=True, within=None)
        # None for an expression croniter cannot read: checked when saved; never stop a read
        return NextDue(at=next_fire(cron, last_scheduled_at), enabled=True, within=None)
    interval = timedelta(minutes=interval_minutes or DEFAULT_INTERVAL_MINUTES)
    if last_scheduled_at is None:
        return NextDue(at=None, enabled=True, within=interval)
    return NextDue(at=last_scheduled_at + interval, enabled=True, within=interval)
