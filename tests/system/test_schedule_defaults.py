"""The gateway shows the scheduler's default schedules (services never import each other, so the gateway
repeats them): each source's default interval is the same on both sides."""

from __future__ import annotations

from fmcsa_events.identifiers import SourceKey
from fmcsa_gateway.domain import default_interval_minutes
from fmcsa_scheduler.settings import Settings


def test_the_gateway_reports_the_schedulers_default_interval_of_every_source() -> None:
    scheduler = Settings.model_construct().default_intervals()
    assert {source: default_interval_minutes(source) for source in SourceKey} == scheduler
    assert scheduler[SourceKey.AUTHORITY] == 1440
