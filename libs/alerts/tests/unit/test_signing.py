import pytest

from fmcsa_alerts.signing import Refused, Verified, signature, signature_header, verify

SECRET = "whsec_test_secret"
TIMESTAMP = 1767225600
BODY = b'{"id":"0123456789abcdef0123456789abcdef"}'
VECTOR = "3f26fd29ed2fcad677c7e838f63e2ba5004482461532b5c7486a4457fd7ce2d3"
"""The README's test vector (also reproducible with `openssl dgst -sha256 -hmac`)."""


def test_the_known_vector() -> None:
    assert signature(SECRET, TIMESTAMP, BODY) == VECTOR
    assert signature_header(SECRET, TIMESTAMP, BODY) == f"t={TIMESTAMP},v1={VECTOR}"


def test_a_fresh_signature_verifies() -> None:
    header = signature_header(SECRET, TIMESTAMP, BODY)
    assert verify(header, SECRET, BODY, now=TIMESTAMP + 299) == Verified(TIMESTAMP)


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
    ],
)
def test_what_is_refused(header: str | None, secret: str, body: bytes, now: int) -> None:
    assert isinstance(verify(header, secret, body, now=now), Refused)


def test_one_of_several_signatures_is_enough_during_a_rotation() -> None:
    header = f"t={TIMESTAMP},v1={'0' * 64},v1={VECTOR}"
    assert verify(header, SECRET, BODY, now=TIMESTAMP) == Verified(TIMESTAMP)
