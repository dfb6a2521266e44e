"""The inspections change gate: DataHub's daily Vehicle Inspection File and Crash File decide which
carriers need a SaferWebAPI call (the pure rule: `fmcsa_source_kit.gate_rule.fetch_reason`; which rows a
check asks for: `domain.gate`).

At most once per `check_s` (and in the background at that pace), per file: its metadata
(`/api/views/{id}.json`, `rowsUpdatedAt`); when it moved since the last check, the DOTs of the rows whose
`:updated_at` is after the previous `rowsUpdatedAt` (both DataHub's clock); and when the 24-month window's
start moved a day since the last check, the DOTs of the rows dated in the day(s) that left it. Each read is
`$select=dot_number`, paged, bounded (the kit's `read_dots`). The DOTs go to `inspections_gate_dot` at the
check's time, which is the gate's position; `inspections_gate_watch` keeps the rest. The checking, the
tables and the decision are the kit's (`fmcsa_source_kit.gate.WatchingGate`).

Every call goes through the gate's DataHub `UpstreamClient`. Any failure makes the gate blind until a check
succeeds: every carrier is then fetched. Unverified: the Crash File's `report_date` as text `YYYYMMDD`
(the notes record only `crash_id`); a query DataHub refuses makes the gate blind, never silently stale.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import Column, DateTime, select

from fmcsa_runtime.database import utc_aware
from fmcsa_source_inspections.domain.gate import aged_out, aged_where, updated_where
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.gate import WatchingGate, gate_tables, published_at, read_dots
from fmcsa_source_kit.gate_rule import watch_since

log = structlog.get_logger(__name__)

_metadata, watch_table, dot_table = gate_tables(
    "inspections_gate", Column("upstream_at", DateTime(timezone=True), nullable=False)
)


class InspectionsGate(WatchingGate):
    """Reads the inspection and crash files and decides, per carrier, whether it needs a fetch."""

    metadata = _metadata
    watch_table = watch_table
    dot_table = dot_table

    async def _dots(self, dataset: str, where: str, call: str) -> set[str] | Failure:
        return await read_dots(
            self._datahub,
            dataset,
            field="dot_number",
            call=call,
            retry_after_max_s=self._retry_after_max_s,
            where={"$where": where},
        )

    async def _check_one(self, dataset: str, now: datetime) -> bool:
        published = await published_at(self._datahub, dataset, self._retry_after_max_s)
        if isinstance(published, Failure):
            log.warning("gate_check_failed", dataset=dataset, error=published.kind, message=published.message)
            return False
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(watch_table).where(watch_table.c.dataset == dataset))
            ).first()
        checked = None if row is None else utc_aware(row.checked_at)
        since = watch_since(
            checked, None if row is None else utc_aware(row.watched_since), now, self._max_gap
        )
        dots: set[str] = set()
        if since != now and row is not None and checked is not None:
            reads: list[tuple[str, str]] = []
            if published > (upstream_at := utc_aware(row.upstream_at)):
                reads.append((updated_where(upstream_at), "changed rows"))
            if (days := aged_out(checked, now)) is not None:
                reads.append((aged_where(self._options[dataset], days), "rows leaving the window"))
            for where, call in reads:
                read = await self._dots(dataset, where, call)
                if isinstance(read, Failure):
                    log.warning("gate_read_failed", dataset=dataset, error=read.kind, message=read.message)
                    return False
                dots |= read
            if reads:
                log.info("gate_read", dataset=dataset, published_at=published.isoformat(), carriers=len(dots))
        await self._record(dataset, dots, now, now, since, upstream_at=published)
        return True
