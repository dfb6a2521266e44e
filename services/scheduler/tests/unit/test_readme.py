from __future__ import annotations

from pathlib import Path

from fmcsa_events.scheduler_status import SchedulerSourceStatus, SchedulerStatus
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_scheduler.settings import Settings
from fmcsa_scheduler.state import BACKOFF_PREFIX, CHECKPOINT_KEY, STATUS_KEY

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_lists_every_setting_of_the_scheduler() -> None:
    own = set(Settings.model_fields) - set(ServiceSettings.model_fields)
    missing = [name for name in own if f"`FMCSA_SCHEDULER_{name.upper()}`" not in README]
    assert missing == []


def test_the_readme_documents_the_state_keys_and_every_status_field() -> None:
    for key in (STATUS_KEY, CHECKPOINT_KEY, f"{BACKOFF_PREFIX}.<source>.<dot>"):
        assert f"`{key}`" in README
    for name in [*SchedulerStatus.model_fields, *SchedulerSourceStatus.model_fields]:
        assert f"`{name}`" in README, name
