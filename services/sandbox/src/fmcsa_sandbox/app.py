"""The sandbox's composition root: `create_app(settings)` wires state, routes and admin API; importing
this module builds nothing.
"""

from __future__ import annotations

import random
import time

from litestar import Litestar

from fmcsa_sandbox.admin import admin_router
from fmcsa_sandbox.faults import Clock
from fmcsa_sandbox.qcmobile import qcmobile_router
from fmcsa_sandbox.saferweb import saferweb_router
from fmcsa_sandbox.settings import Settings
from fmcsa_sandbox.socrata import socrata_router
from fmcsa_sandbox.state import SandboxState
from fmcsa_sandbox.webhooks import ReceiverState, webhooks_router


def create_app(
    settings: Settings,
    *,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> Litestar:
    """The three imitated upstreams plus `/_sandbox` on one Litestar app. Tests pass the clocks (wall time
    for `retrievalDate` and per-second counters, monotonic for the rate limiter) and the fault dice's RNG.
    """
    state = SandboxState(settings, clock=clock, monotonic=monotonic, rng=rng or random.Random())
    return Litestar(
        route_handlers=[
            qcmobile_router(state),
            socrata_router(state),
            saferweb_router(state),
            admin_router(state),
            webhooks_router(ReceiverState(settings.webhook_secret.get_secret_value(), clock=clock)),
        ],
        openapi_config=None,  # an imitation of other people's APIs: no schema of its own to publish
        logging_config=None,  # the process's structlog setup (configure_logging) handles every logger
        debug=False,
    )
