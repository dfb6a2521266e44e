"""The daily difference gate: FMCSA's Motus daily difference datasets on DataHub, read once per
publication, decide which carriers need a QCMobile fetch (pure rule: `domain.difference.fetch_reason`).

At most once per `check_s` (and in the background at that pace, so the watch does not depend on requests
arriving; a decision does not wait for a check under way, it takes the last one's result), per dataset:
its metadata (`/api/views/{id}.json`, `rowsUpdatedAt`); when a publication newer than the one read has
come, the whole dataset, `$select=usdot_number` in pages of `PAGE_SIZE` (at most `MAX_PAGES`), then the
metadata again (a publication replacing it meanwhile makes the read count for nothing: tried again at the
next check). The DOTs it lists go to `authority_difference_dot` with the
publication's time; `authority_difference_watch` keeps per dataset the publication read, the last
successful check and since when the watch has been unbroken. Both tables are in the source's database,
so replicas share them; rows older than the full-refresh period (plus a day) are pruned. The checking,
the tables and the decision are the kit's (`fmcsa_source_kit.gate.WatchingGate`); here, what one check reads.

Every call goes through the source's DataHub `UpstreamClient` (its pace, app token, retries and scrubbed
failures). Any failure leaves the tables as they were and makes the gate blind until a check succeeds:
every carrier is then fetched.

When a watch (re)starts (first check, or a check more than `max_gap` after the previous one) the current
publication is not read: every carrier fetched before that moment is fetched anyway (`not_watched`).
"""

from __future__ import annotations

from datetime import datetime

import structlog

from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.gate import WatchingGate, gate_tables, published_at, read_dots
from fmcsa_source_kit.gate_rule import watch_since

log = structlog.get_logger(__name__)

_metadata, watch_table, dot_table = gate_tables("authority_difference")


class DifferenceGate(WatchingGate):
    """Reads the daily difference datasets and decides, per carrier, whether it needs a fetch."""

    metadata = _metadata
    watch_table = watch_table
    dot_table = dot_table

    async def _check_one(self, dataset: str, now: datetime) -> bool:
        published = await published_at(self._datahub, dataset, self._retry_after_max_s)
        if isinstance(published, Failure):
            log.warning(
                "difference_check_failed", dataset=dataset, error=published.kind, message=published.message
            )
            return False
        previous = await self._previous(dataset)
        since = watch_since(
            None if previous is None else previous[1],
            None if previous is None else previous[2],
            now,
            self._max_gap,
        )
        dots: set[str] = set()
        if since != now and previous is not None and published > previous[0]:
            read = await read_dots(
                self._datahub,
                dataset,
                field="usdot_number",
                call="daily difference",
                retry_after_max_s=self._retry_after_max_s,
            )
            if isinstance(read, Failure):
                log.warning("difference_read_failed", dataset=dataset, error=read.kind, message=read.message)
                return False
            again = await published_at(self._datahub, dataset, self._retry_after_max_s)
            if again != published:  # replaced while read (or the check failed): read it at the next check
                log.info("difference_replaced_while_read", dataset=dataset)
                return False
            dots = read
            log.info(
                "difference_read", dataset=dataset, published_at=published.isoformat(), carriers=len(dots)
            )
        await self._record(dataset, dots, published, now, since)
        return True
