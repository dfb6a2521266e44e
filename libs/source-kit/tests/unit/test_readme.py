"""The README checker: a source README's events, change kinds, failure kinds and settings table against the
code."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import EVENT_TYPES, SyncRequested
from fmcsa_events.permissions import USERS, source_user
from fmcsa_events.subjects import EVENTS_PREFIX
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_source_kit.readme import (
    SOURCE_EVENTS,
    change_kind_problems,
    consumes_problems,
    failure_kind_problems,
    readme_problems,
    section,
    settings_problems,
    settings_rows,
)


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FMCSA_DEMO_")

    api_key: SecretStr | None = Field(None, description="The key | or nothing.")
    rate_per_s: float = Field(2.0, description="Calls a second.")


ROWS = """| variable | default | what it does |
|---|---|---|
| `FMCSA_DEMO_HTTP_HOST` | `127.0.0.1` | Address of the health, readiness and metrics endpoint. |
| `FMCSA_DEMO_HTTP_PORT` | `0` | Port of health/metrics; 0 picks a free one. |
| `FMCSA_DEMO_GRACE_S` | `10.0` | Seconds to finish in-flight work on SIGTERM. |
| `FMCSA_DEMO_API_KEY` | unset | The key \\| or nothing. |
| `FMCSA_DEMO_RATE_PER_S` | `2.0` | Calls a second. |"""

KINDS = """| kind | subject | before / after |
|---|---|---|
| `violations_added` | `violations_added` | count and ids |
| `violations_aged_out` | `violations_aged_out` | count and ids |"""


CONSUMES = (
    "- **Consumes** `SyncRequested`.\n"
    "- **Emits** `CarrierDataChanged`, `SourceSynced` or `SourceFailed`; `SyncAttemptFailed` before a retry."
)
FAILURES = """| upstream answer | kind | retried |
|---|---|---|
| `FMCSA_DEMO_API_KEY` unset | `not_configured`, nothing sent | no |
| 429 | `rate_limited` | yes |
| 200 `[]` | success | |"""


def readme(kinds: str = KINDS, rows: str = ROWS, consumes: str = CONSUMES, failures: str = FAILURES) -> str:
    return (
        f"# demo\n\nIntro.\n\n## Consumes and emits\n\n{consumes}\n\n"
        f"## Change kinds\n\n{kinds}\n\n### Detail\n\nmore\n\n"
        f"## Failure kinds\n\n{failures}\n\n## Settings\n\n{rows}\n\n## Next\n"
    )


def test_a_readme_that_matches_has_no_problems(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(readme())
    assert readme_problems(path, source=SourceKey.VIOLATIONS, settings=DemoSettings) == []


def test_rows_are_the_services_own_settings_in_the_project_readmes_format() -> None:
    assert settings_rows(DemoSettings) == ROWS.splitlines()[2:]


def test_a_section_runs_to_the_next_heading_of_its_level_and_keeps_its_subsections() -> None:
    text = readme()
    kinds = section(text, "Change kinds")
    assert kinds is not None
    assert "violations_added" in kinds
    assert "### Detail" in kinds
    assert "FMCSA_DEMO" not in kinds
    assert section(text, "Store") is None


def test_a_missing_an_extra_and_a_repeated_change_kind_are_each_named() -> None:
    kinds = KINDS.replace("violations_aged_out", "basic_alert_started") + "\n| `violations_added` | x | y |"
    problems = change_kind_problems(readme(kinds=kinds), SourceKey.VIOLATIONS)
    assert problems == [
        "change kind violations_aged_out is not listed",
        "basic_alert_started is listed but no change kind of violations",
        "violations_added is listed 2 times",
    ]


def test_a_stale_description_a_missing_row_and_an_unknown_row_are_named_with_the_expected_table() -> None:
    rows = (
        ROWS.replace("Calls a second.", "Calls per second.").replace(
            "| `FMCSA_DEMO_GRACE_S` | `10.0` | Seconds to finish in-flight work on SIGTERM. |\n", ""
        )
        + "\n| `FMCSA_DEMO_GONE` | `1` | Nothing reads it. |"
    )
    problems = settings_problems(readme(rows=rows), DemoSettings)
    assert problems[:-1] == [
        "missing or stale row: "
        "| `FMCSA_DEMO_GRACE_S` | `10.0` | Seconds to finish in-flight work on SIGTERM. |",
        "missing or stale row: | `FMCSA_DEMO_RATE_PER_S` | `2.0` | Calls a second. |",
        "row matches no setting: | `FMCSA_DEMO_RATE_PER_S` | `2.0` | Calls per second. |",
        "row matches no setting: | `FMCSA_DEMO_GONE` | `1` | Nothing reads it. |",
    ]
    assert problems[-1].endswith(ROWS + "\n")


def test_a_readme_without_the_sections_says_so() -> None:
    assert change_kind_problems("# demo\n", SourceKey.CSA) == ["no 'Change kinds' section"]
    assert settings_problems("# demo\n", DemoSettings) == ["no 'Settings' section"]


def test_the_source_events_are_what_a_source_consumes_and_its_bus_user_may_publish() -> None:
    published = {
        event
        for event in EVENT_TYPES
        if f"{EVENTS_PREFIX}.{event.TYPE}.csa.*" in USERS[source_user(SourceKey.CSA)].publish
    }
    assert set(SOURCE_EVENTS) == {SyncRequested, *published}


def test_an_event_the_consumes_section_does_not_name_is_named() -> None:
    assert consumes_problems(readme()) == []
    assert consumes_problems(readme(consumes=CONSUMES.replace("`SyncAttemptFailed`", "a retry event"))) == [
        "event SyncAttemptFailed is not named"
    ]
    assert consumes_problems(readme().replace("## Consumes and emits", "## What it does")) == [
        "no 'Consumes and emits' section"
    ]


def test_a_failure_kind_that_is_no_error_kind_is_named_and_other_columns_are_free() -> None:
    assert failure_kind_problems(readme()) == []
    wrong = FAILURES.replace("`rate_limited`", "`throttled`")
    assert failure_kind_problems(readme(failures=wrong)) == ["failure kind throttled is no ErrorKind"]
    assert failure_kind_problems(readme(failures="Prose only.")) == [
        "the 'Failure kinds' section has no table"
    ]
    assert failure_kind_problems(readme().replace("## Failure kinds", "## Failures")) == [
        "no 'Failure kinds' section"
    ]
