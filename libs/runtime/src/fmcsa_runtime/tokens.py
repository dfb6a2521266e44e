"""Bearer tokens of the gateway: HS256 JWTs signed with `FMCSA_JWT_SECRET`, carrying a subject and a role.

The gateway verifies them; `./fmcsa token` and `./fmcsa up` mint them. Roles are ordered:
viewer (read) < operator (+ trigger) < admin (+ companies, schedules).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

from fmcsa_events.text import has_control_characters

ISSUER = "fmcsa-sync"
ALGORITHM = "HS256"
_REQUIRED = ("sub", "role", "iss", "iat", "exp")
LEEWAY_S = 30
"""Clock skew tolerated between the host that minted a token and the one that verifies it, for the issue
time only: a token is expired from its `exp` on, with no grace (the gateway answers 401, never a stale yes).
"""


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {role: rank for rank, role in enumerate(Role)}
"""Each role's place in the order (viewer < operator < admin): looked up on every guarded request."""


def mint(
    secret: str, *, role: Role, subject: str, ttl: timedelta = timedelta(days=30), now: datetime | None = None
) -> str:
    """A signed token for `subject` with `role`, valid for `ttl`."""
    if len(secret) < 32:
        raise ValueError("FMCSA_JWT_SECRET must be at least 32 characters")
    issued = now or datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": role.value,
        "iss": ISSUER,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class InvalidToken(ValueError):
    """A token that is not ours, is tampered with, has expired, or lacks a known role or a subject."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who (`subject`) with which `role`, from `issued_at` to `expires_at`."""

    subject: str
    role: Role
    issued_at: datetime
    expires_at: datetime


def verify(secret: str, token: str, *, now: datetime | None = None) -> Claims:
    """The claims of a token `mint` made with the same secret, or `InvalidToken` with the reason.

    Refuses any algorithm but HS256 (so `none` and key-confusion tricks fail), another issuer, an
    expired token (from `exp` on), one issued in the future (beyond `LEEWAY_S`), a missing or empty subject,
    and a role outside viewer, operator, admin. Never returns partial claims.
    """
    checked_at = now or datetime.now(UTC)
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=LEEWAY_S,
            # expiry and issue time are checked below against `now`, so callers can pass the time in
            options={
                "require": list(_REQUIRED),
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"token refused: {error}") from None
    subject, role, iat, exp = payload["sub"], payload["role"], payload["iat"], payload["exp"]
    if not isinstance(subject, str) or not subject or len(subject) > 200:
        raise InvalidToken("token refused: the subject must be 1 to 200 characters")
    if has_control_characters(subject):  # it is written into events, whose models refuse them
        raise InvalidToken("token refused: the subject holds a control character")
    try:
        claimed_role = Role(role)
    except ValueError:
        raise InvalidToken(f"token refused: unknown role {str(role)[:20]!r}") from None
    try:
        issued_at, expires_at = _instant(iat), _instant(exp)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidToken("token refused: iat and exp must be numeric dates") from None
    if expires_at <= checked_at:
        raise InvalidToken("token refused: it has expired")
    if issued_at - timedelta(seconds=LEEWAY_S) > checked_at:
        raise InvalidToken("token refused: it was issued in the future")
    return Claims(subject=subject, role=claimed_role, issued_at=issued_at, expires_at=expires_at)


def _instant(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a numeric date")
    return datetime.fromtimestamp(value, UTC)
