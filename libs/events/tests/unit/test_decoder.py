import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fmcsa_events.decoder import MAX_PAYLOAD_BYTES, Decoded, Undecodable, UndecodableReason, decode, encode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.models import CompanyRegistered

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def headers_for(event: CompanyRegistered, **overrides: str) -> dict[str, str]:
    return {**envelope_for(event, producer="test", occurred_at=NOW).to_headers(), **overrides}


def test_an_encoded_event_decodes_to_itself() -> None:
    event = CompanyRegistered(dot="123", name="ACME")
    decoded = decode(headers_for(event), encode(event))
    assert isinstance(decoded, Decoded)
    assert decoded.event == event


def reason(headers: dict[str, str] | None, data: bytes) -> UndecodableReason:
    decoded = decode(headers, data)
    assert isinstance(decoded, Undecodable), decoded
    assert decoded.detail
    return decoded.reason


def test_each_kind_of_poison_gets_its_reason() -> None:
    event = CompanyRegistered(dot="123")
    good = headers_for(event)
    assert reason(None, b"{}") is UndecodableReason.MISSING_HEADER
    assert reason({**good, "Fmcsa-Version": "x"}, encode(event)) is UndecodableReason.BAD_ENVELOPE
    assert reason({**good, "Fmcsa-Type": "carrier_exploded"}, b"{}") is UndecodableReason.UNKNOWN_TYPE
    assert reason({**good, "Fmcsa-Version": "99"}, encode(event)) is UndecodableReason.UNKNOWN_VERSION
    assert reason(good, b"\xff\xfe") is UndecodableReason.NOT_JSON
    assert reason(good, b"[1, 2]") is UndecodableReason.INVALID
    assert reason(good, json.dumps({"dot": "1' OR 1=1"}).encode()) is UndecodableReason.INVALID
    big = b'{"dot": "1", "name": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    assert reason(good, big) is UndecodableReason.TOO_LARGE


@given(st.binary(max_size=300), st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=8))
def test_decode_never_raises(data: bytes, headers: dict[str, Any]) -> None:
    assert isinstance(decode(headers, data), Decoded | Undecodable)


@given(st.binary(max_size=300))
def test_garbage_with_valid_headers_never_raises(data: bytes) -> None:
    assert isinstance(decode(headers_for(CompanyRegistered(dot="1")), data), Decoded | Undecodable)


def _json_loads_refuses(data: bytes) -> bool:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(data, parse_constant=refuse)
    except (ValueError, RecursionError):
        return True
    return False


PAYLOAD_TEXTS = st.sampled_from(
    ['{"dot": "12"}', '{"dot": "7", "name": "Ünïcode"}', "NaN", "[1]", '{"dot": 1e999}']
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"])


@given(
    st.one_of(
        st.binary(max_size=60),
        st.builds(lambda tail: b"{" + tail, st.binary(max_size=8)),
        st.builds(lambda t, e: t.encode(e), PAYLOAD_TEXTS, ENCODINGS),
    )
)
def test_the_payload_is_refused_as_not_json_exactly_when_json_loads_refuses_it(data: bytes) -> None:
    """The decoder keeps one JSON decoder for every payload; it must read bytes as `json.loads` does
    (UTF-8, a BOM, UTF-16 and UTF-32 detected; NaN and Infinity refused)."""
    decoded = decode(headers_for(CompanyRegistered(dot="1")), data)
    refused = isinstance(decoded, Undecodable) and decoded.reason is UndecodableReason.NOT_JSON
    assert refused == _json_loads_refuses(data)
