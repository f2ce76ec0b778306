"""Since when Lapse sees a tenant's and a site's gate data, as the detector checkpointed it.

The detector keeps, per partition, the first access event it applied of each tenant and
site and any start given explicitly (``gate_coverage``, written with the partition's
checkpoint); a member's absence is never counted from before their site's start (their
tenant's while they have no site). The api reads it to say so: "no gate data before 1 Jan
2024" where a member's absence was clipped. Resolved by the core's own rule
(``detector.core.engine.start_in_force``): a start given for the site, else one given for the
tenant, else the first event seen at the site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from detector.core.engine import start_in_force
from records.tables import GateCoverage

Scope = tuple[int, str]  # (partition, site id; "" for the tenant as a whole)


@dataclass(slots=True)
class Coverage:
    """One tenant's coverage rows, per partition and site."""

    seen: dict[Scope, datetime] = field(default_factory=dict)
    given: dict[Scope, datetime] = field(default_factory=dict)

    def start(self, partition: int, site: str | None) -> datetime | None:
        """The start in force for a member of this partition and site (None: no gate data)."""
        key = (partition, site or "")
        tenant_given = self.given.get((partition, "")) if site else None
        return start_in_force(self.given.get(key), tenant_given, self.seen.get(key))

    def clipped_start(self, site: str | None, absent_since: datetime) -> datetime | None:
        """The start an absence counted from about ``absent_since`` was clipped to (an
        alert's figures give the days to a tenth): the nearest start of the site over the
        partitions, within a few hours."""
        partitions = {p for p, _ in (*self.seen, *self.given)}
        starts = [s for p in partitions if (s := self.start(p, site)) is not None]
        best = min(starts, key=lambda s: abs(s - absent_since), default=None)
        if best is None or abs(best - absent_since) > timedelta(hours=3):
            return None
        return best


async def coverage_of(session: AsyncSession, tenant_id: str) -> Coverage:
    out = Coverage()
    for row in await session.scalars(
        select(GateCoverage).where(GateCoverage.tenant_id == tenant_id)
    ):
        key = (row.partition, row.site_id)
        if row.first_seen is not None:
            out.seen[key] = row.first_seen
        if row.given_start is not None:
            out.given[key] = row.given_start
    return out
