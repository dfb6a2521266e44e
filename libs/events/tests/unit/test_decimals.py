"""Exact numbers: upstream JSON numbers become Decimals, are spelled without rounding, and events carry
them as decimal text; events written before (with JSON numbers) still decode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fmcsa_events import decimals
from fmcsa_events.decoder import Decoded, decode, encode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind, SourceSynced

NOW = datetime(2026, 11, 23, tzinfo=UTC)
RATE_38 = "16.66666666666666666666666666666666666667"  # QCMobile's vehicleOosRate: 38 decimals
REQUEST = UUID("00000000-0000-4000-8000-000000000021")


def test_a_json_number_with_38_decimals_loads_as_that_exact_decimal() -> None:
    loaded = decimals.loads(f'{{"vehicleOosRate": {RATE_38}, "vehicleInsp": 6}}'.encode())
    assert loaded == {"vehicleOosRate": Decimal(RATE_38), "vehicleInsp": 6}
    assert isinstance(loaded["vehicleOosRate"], Decimal)
    assert type(loaded["vehicleInsp"]) is int
    assert json.loads(f"[{RATE_38}]")[0] != Decimal(RATE_38)  # what a plain json.loads would have made


def test_two_numbers_differing_in_the_20th_and_the_38th_decimal_stay_different() -> None:
    twentieth = decimals.loads(b"[13.33333333333333333331, 13.33333333333333333332]")
    thirty_eighth = decimals.loads(
        b"[13.33333333333333333333333333333333333331, 13.33333333333333333333333333333333333332]"
    )
    for first, second in (twentieth, thirty_eighth):
        assert decimals.exact(first) != decimals.exact(second)
        assert decimals.text(first) != decimals.text(second)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("16.670", "16.67"),
        ("10", "10"),
        ("1E+1", "10"),
        ("0.00", "0"),
        ("-0", "0"),
        ("1E-7", "0.0000001"),
        ("100.0", "100"),
        (RATE_38 + "000", RATE_38),
        # 41 significant digits: Decimal's default context (28 digits) would round this to 57
        ("57.00000000000000000000000000000000000001", "57.00000000000000000000000000000000000001"),
    ],
)
def test_text_is_canonical_and_never_rounds(raw: str, text: str) -> None:
    assert decimals.text(Decimal(raw)) == text
    assert Decimal(decimals.text(Decimal(raw))) == Decimal(raw)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1E+18", "1E-51", "0." + "1" * 51])
def test_exact_refuses_what_is_not_finite_or_beyond_the_bounds(raw: str) -> None:
    with pytest.raises(ValueError, match=r"finite|digits|decimals"):
        decimals.exact(Decimal(raw))


def test_the_bounds_fit_the_longest_text() -> None:
    longest = Decimal("-" + "9" * decimals.MAX_INTEGER_DIGITS + "." + "9" * decimals.MAX_DECIMALS)
    assert len(decimals.text(longest)) == decimals.MAX_TEXT_LENGTH
    assert decimals.loads(b"NaN").is_nan()  # refused by `exact`, not by the JSON parser


@given(
    st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1),
    st.integers(min_value=0, max_value=decimals.MAX_DECIMALS),
    st.integers(min_value=0, max_value=5),
)
def test_any_bounded_number_survives_json_text_and_back_exactly(
    unscaled: int, scale: int, zeros: int
) -> None:
    value = Decimal(unscaled).scaleb(-scale)
    if value.adjusted() >= decimals.MAX_INTEGER_DIGITS:
        return
    served = format(value, "f") + ("0" * zeros if "." in format(value, "f") else "")  # trailing zeros
    loaded = decimals.loads(f"[{served}]")[0]
    assert isinstance(loaded, int if "." not in served else Decimal)  # never a float
    spelled = decimals.text(Decimal(loaded))
    assert Decimal(spelled) == value
    assert decimals.text(Decimal(spelled)) == spelled  # canonical: one spelling per value
    assert len(spelled) <= decimals.MAX_TEXT_LENGTH


def test_difference_is_exact_where_the_default_context_rounds() -> None:
    before, after = Decimal("10.000000000000000000000000000001"), Decimal("15")
    assert after - before == Decimal(5)  # the default 28-digit context
    assert decimals.difference(after, before) == Decimal("4.999999999999999999999999999999")
    assert decimals.difference(after, before) < 5


def change(before: object, after: object) -> CarrierDataChanged:
    return CarrierDataChanged(
        request_id=REQUEST,
        dot="2847193",
        source=SourceKey.INSPECTIONS,
        kind=ChangeKind.OOS_RATE_CHANGED,
        subject="us_vehicle",
        before={"percent": before},
        after={"percent": after},
        observed_at=NOW,
    )


def test_a_change_carries_its_38_decimal_values_through_encode_and_decode_exactly() -> None:
    event = change("13.33333333333333333333333333333333333331", RATE_38)
    data = encode(event)
    assert RATE_38.encode() in data  # decimal text on the wire, not a float
    decoded = decode(envelope_for(event, producer="test", occurred_at=NOW).to_headers(), data)
    assert isinstance(decoded, Decoded)
    assert decoded.event == event
    assert isinstance(decoded.event, CarrierDataChanged)
    assert isinstance(decoded.event.after, dict)
    assert Decimal(str(decoded.event.after["percent"])) == Decimal(RATE_38)


def test_an_old_event_with_json_numbers_still_decodes() -> None:
    """Events are replayed from the start: one written with a JSON number must still decode."""
    headers = envelope_for(change("1", "2"), producer="test", occurred_at=NOW).to_headers()
    old_change = json.loads(encode(change("1", "2")))
    old_change["before"], old_change["after"] = {"percent": 12.5}, {"percent": 18.75}
    decoded = decode(headers, json.dumps(old_change).encode())
    assert isinstance(decoded, Decoded)
    assert decoded.event.model_dump()["after"] == {"percent": 18.75}
    synced = SourceSynced(
        request_id=REQUEST,
        dot="2847193",
        source=SourceKey.CSA,
        counts={"fetched": 1},
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )
    old_synced = json.loads(encode(synced))
    old_synced["summary"] = {"basics": [{"id": 11, "percentile": 57.5, "measure": 0.51}]}
    headers = envelope_for(synced, producer="test", occurred_at=NOW).to_headers()
    decoded = decode(headers, json.dumps(old_synced).encode())
    assert isinstance(decoded, Decoded)
    assert decoded.event.model_dump()["summary"]["basics"][0]["percentile"] == 57.5
