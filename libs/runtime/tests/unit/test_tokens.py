from datetime import UTC, datetime, timedelta

import jwt
import pytest

from fmcsa_runtime.tokens import ALGORITHM, ISSUER, Claims, InvalidToken, Role, mint, verify

SECRET = "s" * 40
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def forge(claims: dict[str, object], *, secret: str = SECRET, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def good_claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "ops",
        "role": "operator",
        "iss": ISSUER,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
    }
    return {**base, **changes}


def test_a_minted_token_verifies_to_its_subject_and_role() -> None:
    token = mint(SECRET, role=Role.ADMIN, subject="alice", ttl=timedelta(days=1), now=NOW)
    claims = verify(SECRET, token, now=NOW + timedelta(hours=2))
    assert claims == Claims("alice", Role.ADMIN, NOW, NOW + timedelta(days=1))


@pytest.mark.parametrize("role", list(Role))
def test_every_role_round_trips(role: Role) -> None:
    assert verify(SECRET, mint(SECRET, role=role, subject="x", now=NOW), now=NOW).role is role


def test_another_secret_is_refused() -> None:
    token = mint("t" * 40, role=Role.ADMIN, subject="mallory", now=NOW)
    with pytest.raises(InvalidToken, match="Signature"):
        verify(SECRET, token, now=NOW)


def test_an_expired_token_is_refused_from_its_expiry_on_without_leeway() -> None:
    token = mint(SECRET, role=Role.VIEWER, subject="v", ttl=timedelta(minutes=5), now=NOW)
    assert verify(SECRET, token, now=NOW + timedelta(minutes=4, seconds=59)).subject == "v"
    for late in (timedelta(minutes=5), timedelta(minutes=5, seconds=10), timedelta(minutes=6)):
        with pytest.raises(InvalidToken, match="expired"):
            verify(SECRET, token, now=NOW + late)


def test_a_token_from_the_future_is_refused() -> None:
    token = mint(SECRET, role=Role.VIEWER, subject="v", now=NOW + timedelta(hours=1))
    with pytest.raises(InvalidToken, match="future"):
        verify(SECRET, token, now=NOW)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (good_claims(role="root"), "unknown role"),
        (good_claims(role=None), "role"),
        (good_claims(sub=""), "subject"),
        (good_claims(iss="someone-else"), "issuer"),
        ({k: v for k, v in good_claims().items() if k != "role"}, "role"),
        ({k: v for k, v in good_claims().items() if k != "exp"}, "exp"),
        (good_claims(iat="yesterday"), "iat"),
    ],
)
def test_claims_outside_the_format_are_refused(claims: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        verify(SECRET, forge(claims), now=NOW)


def test_other_algorithms_and_garbage_are_refused() -> None:
    unsigned = jwt.encode(good_claims(), None, algorithm="none")
    for token in (unsigned, forge(good_claims(), secret="s" * 64, algorithm="HS512"), "not-a-token", ""):
        with pytest.raises(InvalidToken):
            verify(SECRET, token, now=NOW)


@pytest.mark.parametrize("subject", ["ann\x00", "ann\nadmin", "\x1b[31mann", "ann\x7f"])
def test_a_subject_with_a_control_character_is_refused(subject: str) -> None:
    """The subject is written into events (`registered_by`...), whose models refuse such text."""
    with pytest.raises(InvalidToken, match="control character"):
        verify(SECRET, mint(SECRET, role=Role.ADMIN, subject=subject, now=NOW), now=NOW)
