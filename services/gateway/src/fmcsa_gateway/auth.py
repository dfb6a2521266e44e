"""Who may call what: Litestar's JWT auth over the tokens `fmcsa_runtime.tokens` mints, and role guards.

- A request is authenticated by `Authorization: Bearer <token>`. Only the live stream (`GET /api/events`)
  may carry the token in the `fmcsa_token` cookie instead: the admin page's EventSource cannot set
  headers. The page never writes that cookie: `POST /ui/session` (with the bearer header) sets it
  `HttpOnly; Secure; SameSite=Strict; Path=/api/events` for the token's remaining lifetime, so no script
  can read it and the browser sends it nowhere else. A cookie never authenticates any other request,
  so a cross-site form cannot act with a signed-in browser.
- Verification is `fmcsa_runtime.tokens.verify` (HS256, issuer, expiry, a known role, a subject): one
  definition for the CLI that mints and the gateway that checks. `VerifiedTokens` keeps a token's
  claims after its first successful verification (at most `TOKEN_CACHE_TTL_S`, at most
  `TOKEN_CACHE_SIZE` tokens, keyed by the token and the secret it was verified with), so a reader's
  repeated GETs skip the HMAC and claim checks; expiry is checked again on every use by the same rule
  as `verify`, and a refused token is never kept.
- No token, a bad one or an expired one (from its `exp` on): 401 with `WWW-Authenticate: Bearer`. A
  valid token of a lower role than the
  route needs: 403. Roles are ordered viewer < operator (+ trigger) < admin (+ companies, schedules).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self, cast

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    ImproperlyConfiguredException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token
from litestar.types import Guard

from fmcsa_gateway.settings import Settings
from fmcsa_runtime.tokens import ALGORITHM, Claims, InvalidToken, Role, verify

log = structlog.get_logger(__name__)

TOKEN_COOKIE = "fmcsa_token"
COOKIE_PATH = "/api/events"
"""The only path whose requests the cookie authenticates (and the only one the browser sends it to)."""
SAFE_METHODS = frozenset({"GET", "HEAD"})

PUBLIC_PATHS = [
    "^/$",
    "^/carriers/[^/]+/?$",
    "^/health$",
    "^/ready$",
    "^/metrics$",
    "^/schema",
    "^/asyncapi",
    "^/static/",
    "^/favicon.ico$",
]
"""Paths that answer without a token: the page shell (at `/` and a carrier page's `/carriers/{dot}`),
probes, metrics and the API documents."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: the token's subject (who asked, carried into events) and role."""

    subject: str
    role: Role


TOKEN_CACHE_SIZE = 1024
"""Most verified tokens kept at once (least recently used go first)."""
TOKEN_CACHE_TTL_S = 60.0
"""Longest a verified token is kept before it is verified again from scratch."""


class VerifiedTokens:
    """Claims of tokens that `verify` accepted recently, keyed by the token (and the secret it was
    verified with): a token is verified once, then looked up.

    - Bounded: at most `max_size` tokens (least recently used evicted) and each for at most `ttl_s`
      (monotonic clock), after which it is verified again.
    - Expiry still holds: every use checks `expires_at` with `verify`'s rule (expired from `exp` on), so
      a kept token stops working at the same moment it would without the cache, and is dropped.
      The issue time needs no second look: a token not issued in the future stays so.
    - Only accepted tokens are kept: a refused, tampered or differently signed token is verified (and
      refused) every time. A token kept for one secret is verified again under another.
    """

    def __init__(
        self,
        *,
        max_size: int = TOKEN_CACHE_SIZE,
        ttl_s: float = TOKEN_CACHE_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
        verifier: Callable[..., Claims] = verify,
    ) -> None:
        if max_size < 1 or ttl_s <= 0:
            raise ValueError("a token cache needs room for one token and a positive lifetime")
        self._max_size = max_size
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._verify = verifier
        self._entries: OrderedDict[str, tuple[str, Claims, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, secret: str, token: str, *, now: datetime | None = None) -> Claims:
        """The token's claims, as `fmcsa_runtime.tokens.verify` gives them, or `InvalidToken`."""
        checked_at = now or datetime.now(UTC)
        moment = self._monotonic()
        entry = self._entries.get(token)
        if entry is not None:
            kept_secret, claims, until = entry
            if moment < until and kept_secret == secret:  # both are the server's own secrets
                if claims.expires_at <= checked_at:
                    del self._entries[token]
                    raise InvalidToken("token refused: it has expired")
                self._entries.move_to_end(token)
                return claims
            del self._entries[token]
        claims = self._verify(secret, token, now=checked_at)
        self._entries[token] = (secret, claims, moment + self._ttl_s)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)
        return claims

    def clear(self) -> None:
        self._entries.clear()


VERIFIED = VerifiedTokens()
"""The gateway's verified tokens (one process, possibly several apps in tests: keyed by secret too)."""


@dataclass
class RoleToken(Token):
    """Litestar's token with our `role` claim, decoded only through `fmcsa_runtime.tokens.verify`."""

    role: str = Role.VIEWER.value

    @classmethod
    def decode(  # Litestar's signature; only the token and the secret matter here
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        require_claims: Sequence[str] | None = None,
        verify_exp: bool = True,
        verify_nbf: bool = True,
        strict_audience: bool = False,
    ) -> Self:
        try:
            claims = VERIFIED.verify(secret, encoded_token)
        except InvalidToken as error:
            raise NotAuthorizedException(str(error), headers={"WWW-Authenticate": "Bearer"}) from None
        known = _DECODED.get((cls, claims))
        if known is not None:  # the token was just verified (expiry included): its claims made this
            return cast(Self, known)
        # Litestar's Token refuses an `iat` in the future; verify already allowed a small clock skew.
        issued = min(claims.issued_at, datetime.now(UTC))
        try:
            decoded = cls(
                exp=claims.expires_at,
                sub=claims.subject,
                iat=issued,
                iss="fmcsa-sync",
                role=claims.role.value,
            )
        except ImproperlyConfiguredException:  # it expired between verify and here (Token checks exp too)
            raise NotAuthorizedException(
                "token refused: it has expired", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        if len(_DECODED) >= TOKEN_CACHE_SIZE:
            _DECODED.clear()
        _DECODED[(cls, claims)] = decoded
        return decoded


_DECODED: dict[tuple[type[RoleToken], Claims], RoleToken] = {}
"""Litestar's token object of each verified token's claims: built once (Litestar's `Token` checks its
times again as it is built), then reused while `VERIFIED` keeps accepting the token. Keyed by the claims
`verify` returned (subject, role, issued and expiry times), nothing else: every request's token is still
verified (`VERIFIED.verify`, which checks the expiry on every use) before its entry is looked up."""


class BearerOrReadCookieMiddleware(JWTAuthenticationMiddleware):
    """The bearer header for every request; the `fmcsa_token` cookie for a GET of the live stream only."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, encoded = connection.headers.get(self.auth_header, "").partition(" ")
        if (
            not encoded
            and connection.scope.get("method") in SAFE_METHODS
            and connection.scope["path"] == COOKIE_PATH
        ):
            scheme, encoded = "Bearer", connection.cookies.get(TOKEN_COOKIE, "")
        if not encoded or scheme.lower() != "bearer":
            raise NotAuthorizedException(
                "a bearer token is needed: Authorization: Bearer <token> (./fmcsa token --role ROLE)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await self.authenticate_token(encoded_token=encoded.strip(), connection=connection)


def caller_from_token(token: RoleToken) -> Caller:
    return Caller(subject=token.sub, role=Role(token.role))


async def _caller_of(token: RoleToken, connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    return caller_from_token(token)


def build_auth(settings: Settings) -> JWTAuth[Caller, RoleToken]:
    """Litestar's JWT auth configured for our tokens. Without `FMCSA_JWT_SECRET` a random secret is used,
    so no token verifies and every protected route answers 401 (logged once as a warning).
    """
    if settings.jwt_secret is None:
        log.warning("gateway_jwt_secret_missing", effect="every protected route answers 401")
        secret = secrets.token_urlsafe(48)
    else:
        secret = settings.jwt_secret.get_secret_value()
    return JWTAuth[Caller, RoleToken](
        token_secret=secret,
        algorithm=ALGORITHM,
        retrieve_user_handler=_caller_of,
        token_cls=RoleToken,
        authentication_middleware_class=BearerOrReadCookieMiddleware,
        exclude=PUBLIC_PATHS,
        description="From `./fmcsa token --role viewer|operator|admin`; `./fmcsa up` prints an admin one.",
    )


def requires(role: Role) -> Guard:
    """A guard that lets through callers whose role is `role` or higher; others get 403."""

    # async on purpose: Litestar runs a sync guard in its thread pool, a thread hop on every request
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        caller = connection.scope.get("user")
        if not isinstance(caller, Caller):
            raise NotAuthorizedException("a bearer token is needed", headers={"WWW-Authenticate": "Bearer"})
        if not caller.role.allows(role):
            raise PermissionDeniedException(f"this needs the {role} role; the token has {caller.role}")

    guard.__name__ = f"requires_{role}"
    return guard


VIEWER = requires(Role.VIEWER)
OPERATOR = requires(Role.OPERATOR)
ADMIN = requires(Role.ADMIN)


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """The authenticated caller of a guarded route."""
    caller = connection.scope.get("user")
    if not isinstance(caller, Caller):
        raise NotAuthorizedException("a bearer token is needed", headers={"WWW-Authenticate": "Bearer"})
    return caller
