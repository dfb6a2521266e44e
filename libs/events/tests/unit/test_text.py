"""Free text (issue 20): a control character, DEL or a lone surrogate in a name, URL or any other text
a person types is refused by the models (so by the gateway's edge, 422, and on decode, dead-lettered);
in a service's own message it is replaced, so no outcome is lost to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from fmcsa_events.decoder import Decoded, Undecodable, UndecodableReason, decode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.models import (
    AlertRuleChanged,
    ChangeKind,
    CompanyRegistered,
    ScheduleChanged,
    SourceFailed,
    WebhookDestination,
)
from fmcsa_events.text import REPLACEMENT, refuse_control_characters, scrub_control_characters

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]


@pytest.mark.parametrize("char", [*CONTROLS, chr(0xD800), chr(0xDFFF)])
def test_every_control_character_del_and_lone_surrogate_is_refused_with_its_code(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        refuse_control_characters(f"ACME{char}Trucking")


@pytest.mark.parametrize("text", ["ACME Trucking", "Café Ünïcödé 運輸 🚚", "a\u0080b", "\u2028", ""])
def test_other_text_passes_as_it_is(text: str) -> None:
    assert refuse_control_characters(text) is text


def test_a_service_message_keeps_tab_and_line_breaks_and_replaces_the_rest() -> None:
    assert scrub_control_characters("a\tb\nc\r\n") == "a\tb\nc\r\n"
    assert (
        scrub_control_characters("a\x00b\x1bc\x7fd\ud800")
        == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d{REPLACEMENT}"
    )
    failed = SourceFailed(
        request_id=UUID(int=1), dot="1", source="csa", kind="internal", retryable=False, attempts=1,
        message="upstream said \x00\x01", detail="line 1\nline 2\x00", finished_at=NOW,
    )  # fmt: skip
    assert (failed.message, failed.detail) == (
        f"upstream said {REPLACEMENT * 2}",
        f"line 1\nline 2{REPLACEMENT}",
    )


@pytest.mark.parametrize("char", ["\x00", "\t", "\n", "\x1f", "\x7f"])
def test_each_free_text_field_of_the_events_refuses_a_control_character(char: str) -> None:
    builders = [
        lambda: CompanyRegistered(dot="1", name=f"A{char}B"),
        lambda: CompanyRegistered(dot="1", registered_by=f"who{char}"),
        lambda: ScheduleChanged(source="csa", cron=f"0 * * * *{char}"),
        lambda: WebhookDestination(url=f"https://example.com/a{char}b", sealed_secret="s"),
        lambda: WebhookDestination(url="https://example.com/a", sealed_secret=f"s{char}"),
        lambda: AlertRuleChanged(
            name="r",
            kinds=(ChangeKind.CRASHES_ADDED,),
            destinations=(WebhookDestination(url="https://example.com/a", sealed_secret="s"),),
            changed_by=f"admin{char}",
        ),
    ]
    for build in builders:
        with pytest.raises(ValidationError, match="control character"):
            build()


def test_an_old_or_forged_event_with_a_nul_is_refused_on_decode() -> None:
    event = CompanyRegistered(dot="123", name="ACME")
    headers = envelope_for(event, producer="test", occurred_at=NOW).to_headers()
    data = json.dumps({"dot": "123", "name": "AC\u0000ME"}).encode()
    assert b"\\u0000" in data  # raw bytes on the bus, never through the model
    decoded = decode(headers, data)
    assert isinstance(decoded, Undecodable)
    assert decoded.reason is UndecodableReason.INVALID
    assert "name" in decoded.detail
    assert "U+0000" in decoded.detail
    assert isinstance(decode(headers, json.dumps({"dot": "123", "name": "ACME"}).encode()), Decoded)
    forged = {**headers, "Fmcsa-Producer": "gate\x00way"}
    decoded = decode(forged, json.dumps({"dot": "123"}).encode())
    assert isinstance(decoded, Undecodable)
    assert decoded.reason is UndecodableReason.BAD_ENVELOPE
