"""The schedule rules every service agrees on: what a `ScheduleChanged` may say, and each source's default.

The scheduler runs schedules and the gateway accepts them; both check with this one module, and
`ScheduleChanged` itself refuses a schedule that breaks these rules, so the gateway cannot publish one the
scheduler would refuse. Pure: no clock (the time a cron expression is read from is an argument), no I/O.

- An interval is `MIN_INTERVAL_MINUTES` to `MAX_INTERVAL_MINUTES` minutes.
- A cron expression (UTC) has the five standard fields or is one of `CRON_ALIASES`, is one croniter reads,
  fires at least once, and two fire times on one day are never less than `MIN_INTERVAL_MINUTES` apart.
- Until a `ScheduleChanged` names it, a source runs every `default_interval_minutes(source)` minutes:
  `DEFAULT_INTERVAL_MINUTES`, except where `DEFAULT_SOURCE_INTERVAL_MINUTES` says otherwise (authority and
  insurance change daily at FMCSA, CSA data monthly). The scheduler's setting
  `FMCSA_SCHEDULER_SOURCE_INTERVAL_MINUTES` may replace that map; the gateway shows these defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from croniter import CroniterError, croniter  # type: ignore[import-untyped]  # croniter ships no type hints

from fmcsa_events.identifiers import SourceKey

MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 1440
DEFAULT_INTERVAL_MINUTES = 360
"""Every 6 hours: a source's interval until a ScheduleChanged sets one."""
DEFAULT_SOURCE_INTERVAL_MINUTES: dict[SourceKey, int] = {SourceKey.AUTHORITY: 1440}
"""Sources whose default differs from `DEFAULT_INTERVAL_MINUTES`."""
CRON_ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})

_CRON_ERRORS = (CroniterError, ValueError, KeyError, TypeError, OverflowError)


def default_interval_minutes(source: SourceKey) -> int:
    """The interval `source` runs on until a ScheduleChanged sets one."""
    return DEFAULT_SOURCE_INTERVAL_MINUTES.get(source, DEFAULT_INTERVAL_MINUTES)


def normalized_cron(cron: str) -> str:
    """The expression with its fields separated by single spaces (how it is stored and published)."""
    return " ".join(cron.split())


def interval_problem(minutes: int) -> str | None:
    """Why `minutes` is not a schedule's interval, or None."""
    if MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES:
        return None
    return f"interval_minutes must be {MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES}, got {minutes}"


def cron_problem(cron: str, *, at_s: float = 0.0) -> str | None:
    """Why `cron` is not a schedule's cron expression, or None; `at_s` is the time it is read from."""
    text = normalized_cron(cron)
    fields = text.split()
    if not (len(fields) == 5 or (len(fields) == 1 and text.lower() in CRON_ALIASES)):
        return f"cron must have 5 fields (minute hour day month weekday) or be an alias, got {text[:60]!r}"
    try:
        parsed = croniter(text, at_s)
        parsed.get_next(float)
    except _CRON_ERRORS as error:
        return f"cron {text[:60]!r} is not valid: {str(error)[:120]}"
    minutes = _field_values(parsed.expanded[0], 60)
    hours = _field_values(parsed.expanded[1], 24)
    times = sorted(h * 60 + m for h in hours for m in minutes)
    # Consecutive fire times on one day, and across midnight (day fields can only widen that gap).
    gaps = [b - a for a, b in pairwise(times)] + [1440 - times[-1] + times[0]]
    if min(gaps) < MIN_INTERVAL_MINUTES:
        return f"cron {text[:60]!r} fires {min(gaps)} minute(s) apart; the least is {MIN_INTERVAL_MINUTES}"
    return None


def next_fire(cron: str, after: datetime) -> datetime | None:
    """The first fire time of `cron` after `after`, or None for an expression croniter cannot read."""
    try:
        following: datetime = croniter(normalized_cron(cron), after).get_next(datetime)
    except _CRON_ERRORS:
        return None
    return following


def _field_values(expanded: Sequence[int | str], size: int) -> list[int]:
    return list(range(size)) if list(expanded) == ["*"] else [int(v) for v in expanded]
