"""What every source's doctor checks the same way (`python -m fmcsa_source_<name>.doctor`): the host,
one cheap call through the source's own client (key, answer, rate-limit and clock rows) and its store;
for a source with a change gate, the datasets the gate watches (`gate_check`).

The rows and their printing are `fmcsa_runtime.doctor`'s, shared with the services that are not sources.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.doctor import Check, Status, is_loopback, probe_host, store_check
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.gate import published_at
from fmcsa_source_kit.settings import SourceSettings
from fmcsa_source_kit.upstream import UpstreamClient

SANDBOX_DOT = "2847193"
"""The sandbox's example carrier (tests/fixtures/fmcsa: the same small carrier in all three sources)."""
REAL_DOT = "21800"
"""United Parcel Service Inc.: a carrier every real upstream knows, with data in all three sources."""
CLOCK_TOLERANCE_S = 30.0
"""Largest offset from an upstream's `Date` accepted: tokens, webhook signatures (5 min tolerance) and
the schedule all read this clock; `Date` has one-second resolution, so smaller offsets are noise."""
RATE_LIMIT_HEADER = re.compile(r"^(x-)?(rate-?limit|ratelimit)[-a-z]*$|^retry-after$", re.IGNORECASE)


def default_dot(base_url: str) -> str:
    """The DOT to ask for: the sandbox's example carrier on a loopback host, else a real, well-known one."""
    return SANDBOX_DOT if is_loopback(urlsplit(base_url).hostname or "") else REAL_DOT


@dataclass(frozen=True)
class KeyAdvice:
    """How to talk about one source's credential."""

    setting: str
    rejected: str
    """Remedy when the upstream refuses the key."""


@dataclass(frozen=True)
class Outcome:
    """One cheap call's result: `failure` None means it parsed; `parsed` says what came back."""

    failure: Failure | None
    parsed: str
    headers: httpx.Headers | None
    anonymous: bool = False


def answer_checks(
    source: str, dot: str, outcome: Outcome, key: KeyAdvice, *, base_setting: str
) -> list[Check]:
    """The key, answer, rate-limit and clock rows of one cheap call."""
    rows: list[Check] = []
    failure = outcome.failure
    if failure is None:
        accepted = "anonymous: no token sent (shared per-IP pool)" if outcome.anonymous else "accepted"
        rows.append(Check(f"{source}: key", Status.OK, accepted))
        rows.append(Check(f"{source}: answer", Status.OK, f"DOT {dot}: {outcome.parsed}"))
    else:
        said = f"{failure.kind.value}: {failure.message}" + (f" ({failure.detail})" if failure.detail else "")
        if failure.kind is ErrorKind.NOT_CONFIGURED:
            rows.append(Check(f"{source}: key", Status.FAIL, said, key.rejected))
            rows.append(Check(f"{source}: answer", Status.SKIP, "the key was refused: nothing to parse"))
        else:
            verdict = "accepted" if failure.kind is ErrorKind.NOT_FOUND else "no verdict (see the answer)"
            rows.append(Check(f"{source}: key", Status.OK if verdict == "accepted" else Status.SKIP, verdict))
            rows.append(
                Check(f"{source}: answer", Status.FAIL, said, _answer_remedy(failure.kind, base_setting))
            )
    rows.append(rate_limit_check(source, outcome.headers))
    rows.append(clock_check(source, outcome.headers, datetime.now(UTC)))
    return rows


def _answer_remedy(kind: ErrorKind, base_setting: str) -> str:
    match kind:
        case ErrorKind.NOT_FOUND:
            return (
                f"the upstream does not know this carrier: check that {base_setting} is the API root "
                "(a wrong path looks like an unknown carrier), or pass --dot with a DOT it knows"
            )
        case ErrorKind.INVALID_RESPONSE:
            return (
                f"the answer is not what the parser reads: check that {base_setting} is the API root; "
                "if it is, the upstream served an error page or changed its format (retry, then "
                "docs/upstreams.md)"
            )
        case ErrorKind.RATE_LIMITED:
            return "the upstream is rate-limiting this machine: wait and retry; lower the source's RATE_PER_S"
        case ErrorKind.TIMEOUT:
            return "the host accepted the connection but did not answer in time: retry; check proxies between"
        case ErrorKind.UPSTREAM_ERROR:
            return "the upstream answered an error or dropped the connection: retry later (docs/upstreams.md)"
        case _:
            return "a bug in fmcsa-sync: report it with this detail"


def rate_limit_check(source: str, headers: Mapping[str, str] | None) -> Check:
    """Which rate-limit headers the upstream sent (informational: none is normal for FMCSA hosts)."""
    if headers is None:
        return Check(f"{source}: rate limit", Status.SKIP, "no answer to read headers from")
    pairs = (
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers.raw]
        if isinstance(headers, httpx.Headers)  # as sent, not lower-cased
        else list(headers.items())
    )
    seen = [f"{name}: {value}" for name, value in pairs if RATE_LIMIT_HEADER.match(name)]
    if not seen:
        return Check(
            f"{source}: rate limit", Status.OK, "no rate-limit headers sent (the source paces itself)"
        )
    return Check(f"{source}: rate limit", Status.OK, "; ".join(seen))


def clock_check(source: str, headers: Mapping[str, str] | None, now: datetime) -> Check:
    """This machine's clock against the upstream's `Date` header."""
    date = headers.get("date") if headers is not None else None
    if date is None:
        return Check(f"{source}: clock", Status.SKIP, "the upstream sent no Date header")
    try:
        theirs = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return Check(f"{source}: clock", Status.SKIP, "the upstream's Date header does not parse")
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=UTC)
    offset = (now - theirs).total_seconds()
    detail = (
        f"this clock is {abs(offset):.0f} s {'ahead of' if offset >= 0 else 'behind'} the upstream's Date"
    )
    if math.fabs(offset) > CLOCK_TOLERANCE_S:
        return Check(
            f"{source}: clock",
            Status.FAIL,
            detail,
            "synchronize this machine's clock (NTP, e.g. `timedatectl set-ntp true`): tokens, webhook "
            "signatures and schedules depend on it",
        )
    return Check(f"{source}: clock", Status.OK, detail)


def capturing_client(captured: list[httpx.Response], **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that keeps every response it receives (for their headers)."""

    async def keep(response: httpx.Response) -> None:
        captured.append(response)

    return httpx.AsyncClient(event_hooks={"response": [keep]}, follow_redirects=False, **kwargs)


@dataclass(frozen=True)
class SourceProbe:
    """What one source's doctor needs of its settings: names for the rows and remedies, where to call,
    whether it has a key (`missing_key`: the skip row's detail and remedy when a key is required and
    unset; None when it may call anonymously) and its store.
    """

    source: str
    base_url: str
    key: KeyAdvice
    has_key: bool
    missing_key: tuple[str, str] | None
    database_url: str
    connect_timeout_s: float
    read_timeout_s: float
    client_base_url: str | None = None

    @classmethod
    def of(
        cls,
        settings: SourceSettings,
        base_url: str,
        key: KeyAdvice,
        *,
        credential: SecretStr | None,
        missing_key: tuple[str, str] | None,
        client_base_url: str | None = None,
    ) -> SourceProbe:
        """The probe of a source's `settings`: its name, store and call bounds, and whether `credential`
        (its key or token) is set and not empty, as the client reads it.
        """
        return cls(
            settings.SOURCE,
            base_url,
            key,
            has_key=credential is not None and bool(credential.get_secret_value()),
            missing_key=missing_key,
            database_url=settings.resolved_database_url(),
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            client_base_url=client_base_url,
        )

    @property
    def prefix(self) -> str:
        return f"FMCSA_{self.source.upper()}_"


Fetched = Failure | str
"""A cheap call's result: the failure, or what came back in a few words (`"snapshot parsed"`)."""


async def source_checks(
    probe: SourceProbe, dot: str | None, fetch: Callable[[httpx.AsyncClient, str], Awaitable[Fetched]]
) -> list[Check]:
    """Every source's doctor: the host (resolves, verified TLS), then one cheap call through the
    service's own client (`fetch`) for the key, answer, rate-limit and clock rows, then the store. A
    source whose key is required and unset sends nothing and says how to get one.
    """
    base_setting = f"{probe.prefix}BASE_URL"
    rows: list[Check] = []
    if not probe.has_key and probe.missing_key is not None:
        rows.append(Check(f"{probe.source}: key", Status.SKIP, *probe.missing_key))
    else:
        probed, reachable = await probe_host(
            probe.source, probe.base_url, base_setting, timeout_s=probe.connect_timeout_s
        )
        rows += probed
        if reachable:
            dot = dot or default_dot(probe.base_url)
            responses: list[httpx.Response] = []
            options: dict[str, Any] = {
                "timeout": httpx.Timeout(probe.read_timeout_s, connect=probe.connect_timeout_s)
            }
            if probe.client_base_url is not None:
                options["base_url"] = probe.client_base_url
            async with capturing_client(responses, **options) as http:
                result = await fetch(http, dot)
            headers = responses[-1].headers if responses else None
            anonymous = not probe.has_key
            if isinstance(result, Failure):
                outcome = Outcome(result, "", headers, anonymous=anonymous)
            else:
                outcome = Outcome(None, result, headers, anonymous=anonymous)
            rows += answer_checks(probe.source, dot, outcome, probe.key, base_setting=base_setting)
    rows.append(
        await store_check(f"{probe.source}: store", probe.database_url, f"{probe.prefix}DATABASE_URL")
    )
    return rows


QCMOBILE_SITE = "https://mobile.fmcsa.dot.gov/QCDevsite"


def qcmobile_key(source: str, setting: str) -> tuple[KeyAdvice, tuple[str, str]]:
    """The advice about a QCMobile webKey (csa and authority read QCMobile): what to do when it is
    rejected, and the skip row's detail and remedy when it is unset.
    """
    advice = KeyAdvice(
        setting,
        rejected=f"QCMobile does not know this webKey: copy it again from 'My WebKeys' at {QCMOBILE_SITE} "
        f"(sign in with Login.gov) into {setting}",
    )
    missing = (
        f"{setting} is not set: the {source} source answers every sync not_configured",
        f"get a free webKey at {QCMOBILE_SITE} and set {setting}",
    )
    return advice, missing


async def gate_check(
    source: str,
    datahub: UpstreamClient,
    datasets: Iterable[str],
    *,
    retry_after_max_s: float,
    switch: str,
    now: datetime,
    stale_after: timedelta | None = None,
) -> Check:
    """The change gate's row: each dataset it watches answers its metadata (one call each), and, with
    `stale_after`, was published within it. A dataset that stopped being published lists no carrier
    again: the gate would hold every carrier it covers unchanged until its full refresh (`switch` off
    fetches every carrier at its cadence instead).
    """
    name = f"{source}: change gate"
    seen: list[tuple[str, datetime]] = []
    for dataset in datasets:
        published = await published_at(datahub, dataset, retry_after_max_s)
        if isinstance(published, Failure):
            detail = f"dataset {dataset}: {published.kind}: {published.message}"[:300]
            return Check(name, Status.FAIL, detail, f"check the DataHub settings, or set {switch}=false")
        seen.append((dataset, published))
    detail = ", ".join(f"{dataset} published {when:%Y-%m-%d %H:%M}Z" for dataset, when in seen)
    if stale_after is not None and (stale := [d for d, when in seen if now - when > stale_after]):
        return Check(
            name,
            Status.FAIL,
            f"not published for over {stale_after.days} days: {', '.join(stale)} ({detail})"[:300],
            f"a dataset FMCSA stopped publishing lists no change: set {switch}=false until it is replaced",
        )
    return Check(name, Status.OK, detail[:300])
