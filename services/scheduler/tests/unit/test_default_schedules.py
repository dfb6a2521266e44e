"""The per-source default schedule: authority runs daily, the others every `default_interval_minutes`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ScheduleChanged
from fmcsa_scheduler.registry import Registry, ScheduleSet
from fmcsa_scheduler.settings import Settings


def test_by_default_authority_runs_daily_and_every_other_source_every_six_hours() -> None:
    settings = Settings()
    assert settings.default_intervals() == {
        SourceKey.CSA: 360,
        SourceKey.VIOLATIONS: 360,
        SourceKey.INSPECTIONS: 360,
        SourceKey.AUTHORITY: 1440,
    }
    registry = Registry(settings.default_interval_minutes, settings.default_intervals())
    assert {
        source: s.interval_minutes for source, s in registry.schedules.items()
    } == settings.default_intervals()
    assert all(s.enabled and s.cron is None for s in registry.schedules.values())


def test_the_common_default_moves_the_sources_without_an_entry_only() -> None:
    intervals = Settings(default_interval_minutes=120).default_intervals()
    assert intervals[SourceKey.AUTHORITY] == 1440
    assert {intervals[s] for s in SourceKey if s is not SourceKey.AUTHORITY} == {120}


def test_the_map_read_from_the_environment_replaces_the_default_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMCSA_SCHEDULER_SOURCE_INTERVAL_MINUTES", '{"csa": 60, "inspections": 720}')
    intervals = Settings().default_intervals()
    assert intervals == {
        SourceKey.CSA: 60,
        SourceKey.VIOLATIONS: 360,
        SourceKey.INSPECTIONS: 720,
        SourceKey.AUTHORITY: 360,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"authority": 4}', "the interval of authority must be 5 to 1440 minutes, got 4"),
        ('{"csa": 1441}', "the interval of csa must be 5 to 1440 minutes, got 1441"),
        ('{"insurance": 60}', "Input should be 'csa', 'violations', 'inspections' or 'authority'"),
        ('{"csa": "often"}', "Input should be a valid integer"),
    ],
)
def test_a_default_out_of_bounds_or_for_no_source_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("FMCSA_SCHEDULER_SOURCE_INTERVAL_MINUTES", value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_a_schedule_change_replaces_the_per_source_default_of_that_source_only() -> None:
    registry = Registry(360, {SourceKey.AUTHORITY: 1440})
    change = registry.apply(ScheduleChanged(source=SourceKey.AUTHORITY, interval_minutes=720), occurred_ms=5)
    assert isinstance(change, ScheduleSet)
    assert registry.schedules[SourceKey.AUTHORITY].interval_minutes == 720
    assert registry.schedules[SourceKey.CSA].interval_minutes == 360
