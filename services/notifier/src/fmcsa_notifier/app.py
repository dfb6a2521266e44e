"""The notifier's composition root: `create_app(settings)` wires the delivery loop into the worker shell
(`fmcsa_runtime.service.Shell`: the one NATS connection, health, readiness, metrics, signals); importing
builds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from nats.aio.client import Client as NatsClient

from fmcsa_alerts.addresses import parse_allow_list
from fmcsa_alerts.sealing import SecretBox
from fmcsa_events.bus import Bus, utc_now
from fmcsa_events.topology import declare_consumer, notifier_consumer
from fmcsa_notifier.handlers import SERVICE, Notifier
from fmcsa_notifier.sender import Sender
from fmcsa_notifier.settings import Settings
from fmcsa_notifier.store import NotifierStore
from fmcsa_runtime.redaction import register_secret
from fmcsa_runtime.service import Shell

log = structlog.get_logger(__name__)


class NotifierWorker:
    """The notifier's part of one run (`fmcsa_runtime.service.Worker`): its consumer, store, sender and
    delivery loop over the shell's connection.
    """

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.store: NotifierStore | None = None
        self.sender: Sender | None = None
        self.notifier: Notifier | None = None

    async def start(self, nc: NatsClient) -> None:
        settings = self.settings
        key = settings.webhook_secret_key.get_secret_value() if settings.webhook_secret_key else None
        for part in (key or "").split(","):
            register_secret(part.strip())
        box = SecretBox(key) if key else None
        if box is None:
            log.warning("webhook_secret_key_missing", effect="every delivery fails: no secret opens")
        js = nc.jetstream()
        await declare_consumer(
            js,
            notifier_consumer(
                ack_wait_s=settings.ack_wait_s,
                max_deliver=settings.max_deliver,
                max_ack_pending=max(settings.max_in_flight * 4, 64),
                replicas=settings.replicas,
            ),
        )
        self.store = await NotifierStore.connect(settings.resolved_database_url())
        self.sender = Sender.build(
            allow=parse_allow_list(settings.webhook_allow_hosts),
            connect_timeout_s=settings.connect_timeout_s,
            timeout_s=settings.timeout_s,
            retry_after_max_s=max(settings.schedule()),
        )
        self.notifier = Notifier(
            js,
            self.store,
            self.sender,
            Bus(js, producer=SERVICE, clock=self.clock),
            box=box,
            api_url=settings.api_url,
            schedule=settings.schedule(),
            jitter=settings.retry_jitter,
            batch_size=settings.batch_size,
            max_in_flight=settings.max_in_flight,
            heartbeat_s=settings.ack_wait_s / 3,
            clock=self.clock,
            fetch_timeout_s=settings.fetch_timeout_s,
        )
        folded = await self.notifier.fold_rule_history()
        log.info("notifier_rules_folded", events=folded)
        await self.notifier.start()

    async def stop(self, grace_s: float) -> None:
        if self.notifier is not None:
            await self.notifier.stop(grace_s=grace_s)
        if self.sender is not None:
            await self.sender.aclose()
        if self.store is not None:
            await self.store.close()

    async def ready(self) -> bool:
        """The delivery loop runs and the store answers."""
        return (
            self.notifier is not None
            and self.notifier.running
            and self.store is not None
            and await self.store.answers()
        )


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Shell:
    """Wire the notifier: the shell connects NATS (topology declared); the worker declares its consumer,
    opens the store and the sender, folds the rules and starts the loop.
    """
    return Shell(settings, name=SERVICE, worker=NotifierWorker(settings, clock))
