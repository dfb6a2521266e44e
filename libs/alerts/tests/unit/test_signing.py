import pytest

from fmcsa_alerts.signing import Refused, Verified, signature, signature_header, signature_v2, verify

SECRET = "whsec_test_secret"
TIMESTAMP = 1767225600
BODY = b'{"id":"0123456789abcdef0123456789abcdef"}'
VECTOR = "3f26fd29ed2fcad677c7e838f63e2ba5004482461532b5c7486a4457fd7ce2d3"
"""The README's test vector (also reproducible with `openssl dgst -sha256 -hmac`)."""
EVENT_ID = "0123456789abcdef0123456789abcdef"
VECTOR_V2 = "565317ac69054a240321c2676211266c12dd8de565842f7673217a9d848f926a"


def test_the_known_vector() -> None:
    assert signature(SECRET, TIMESTAMP, BODY) == VECTOR
    assert signature_v2(SECRET, TIMESTAMP, EVENT_ID, BODY) == VECTOR_V2
    header = signature_header(SECRET, TIMESTAMP, BODY, event_id=EVENT_ID)
    assert header == f"t={TIMESTAMP},v1={VECTOR},v2={VECTOR_V2}"


def test_a_fresh_signature_verifies_with_v2_and_with_v1_during_the_transition() -> None:
    header = signature_header(SECRET, TIMESTAMP, BODY, event_id=EVENT_ID)
    assert verify(header, SECRET, BODY, now=TIMESTAMP + 299, event_id=EVENT_ID) == Verified(TIMESTAMP)
    assert verify(header, SECRET, BODY, now=TIMESTAMP + 299) == Verified(TIMESTAMP)  # a v1 receiver


def test_v2_covers_the_event_id_and_is_required_when_the_id_is_checked() -> None:
    header = signature_header(SECRET, TIMESTAMP, BODY, event_id=EVENT_ID)
    assert isinstance(verify(header, SECRET, BODY, now=TIMESTAMP, event_id="f" * 32), Refused)
    v1_only = f"t={TIMESTAMP},v1={VECTOR}"  # a downgrade: v1 does not cover the id
    assert isinstance(verify(v1_only, SECRET, BODY, now=TIMESTAMP, event_id=EVENT_ID), Refused)


@pytest.mark.parametrize(
    ("header", "secret", "body", "now"),
    [
        (f"t={TIMESTAMP},v1={VECTOR}", SECRET, BODY, TIMESTAMP + 301),  # older than five minutes
        (f"t={TIMESTAMP},v1={VECTOR}", SECRET, BODY, TIMESTAMP - 301),  # from the future
        (f"t={TIMESTAMP},v1={VECTOR}", "another secret", BODY, TIMESTAMP),
        (f"t={TIMESTAMP},v1={VECTOR}", SECRET, BODY + b" ", TIMESTAMP),  # the body was altered
        (f"t={TIMESTAMP + 1},v1={VECTOR}", SECRET, BODY, TIMESTAMP),  # the timestamp was altered
        (f"v1={VECTOR}", SECRET, BODY, TIMESTAMP),
        (f"t={TIMESTAMP}", SECRET, BODY, TIMESTAMP),
        ("", SECRET, BODY, TIMESTAMP),
        (None, SECRET, BODY, TIMESTAMP),
        (f"t={TIMESTAMP},v1=\u00e9{VECTOR[1:]}", SECRET, BODY, TIMESTAMP),  # not ASCII: refused, no error
        (f"t=\u0661{TIMESTAMP},v1={VECTOR}", SECRET, BODY, TIMESTAMP),
        ("t,v1", SECRET, BODY, TIMESTAMP),
    ],
)
def test_what_is_refused(header: str | None, secret: str, body: bytes, now: int) -> None:
    assert isinstance(verify(header, secret, body, now=now), Refused)


def test_one_of_several_signatures_is_enough_during_a_rotation() -> None:
    header = f"t={TIMESTAMP},v1={'0' * 64},v1={VECTOR}"
    assert verify(header, SECRET, BODY, now=TIMESTAMP) == Verified(TIMESTAMP)
