"""The member directory's first brick: a member's ids in the club's other systems.

A club's access system often knows its people by its own user ids (Kisi's user id), not by the
member id the club's CRM uses and Lapse alerts on. ``member_external_ids`` maps, per tenant,
``(system, external_id)`` to ``member_id``; ingest asks it when a vendor's event arrives, so
the event is written to Kafka under the club's member id. The mapping is applied once, at
ingest: the record on Kafka carries the member id, so a replay or a restarted detector reads
the same member whatever the directory says later ("time has one answer").

Set through ``PUT /v1/members/{member_id}/external-ids/{system}`` (api/routers/external_ids.py),
erased with the member (lapse/forget.py). External ids are personal data: never logged.

Lookups are served from a per-tenant copy kept :data:`TTL_SECONDS` (loaded whole on first use
and when older), so an event costs a dictionary look-up, not a query. Each replica keeps its
own copy and PostgreSQL is the only writer's target, so replicas never disagree for longer than
the TTL after a change, and what they disagree about is only which member an event received in
that window is written under (as if the change had been made a few seconds later).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lapse.db.models import ExternalId

TTL_SECONDS = 30.0
"""How stale a replica's copy of a tenant's mappings may be: long enough that a busy door
costs one query per half minute, short enough that a mapping set by the front desk applies to
the member's next visit."""


class ExternalIdTaken(ValueError):
    """The external id already belongs to another member of the tenant."""


async def set_external_id(
    session: AsyncSession, tenant_id: str, member_id: str, system: str, external_id: str
) -> bool:
    """Map ``external_id`` of ``system`` to the member (replacing the member's previous id in
    that system); the caller commits. Returns whether anything changed.

    Raises :class:`ExternalIdTaken` when another member holds the id: moving an id between
    members is two explicit steps (delete, then set), never a silent re-assignment.
    """
    holder = await session.get(ExternalId, (tenant_id, system, external_id))
    if holder is not None:
        if holder.member_id != member_id:
            raise ExternalIdTaken("this external id belongs to another member")
        return False
    await session.execute(
        delete(ExternalId).where(
            ExternalId.tenant_id == tenant_id,
            ExternalId.system == system,
            ExternalId.member_id == member_id,
        )
    )
    session.add(
        ExternalId(
            tenant_id=tenant_id,
            system=system,
            external_id=external_id,
            member_id=member_id,
            updated_at=datetime.now(UTC),
        )
    )
    return True


async def external_ids_of(session: AsyncSession, tenant_id: str, member_id: str) -> dict[str, str]:
    """The member's ids, by system."""
    rows = await session.scalars(
        select(ExternalId).where(
            ExternalId.tenant_id == tenant_id, ExternalId.member_id == member_id
        )
    )
    return {r.system: r.external_id for r in rows}


async def delete_external_id(
    session: AsyncSession, tenant_id: str, member_id: str, system: str
) -> bool:
    """Unmap the member's id in ``system`` (the caller commits); whether there was one."""
    result = await session.execute(
        delete(ExternalId).where(
            ExternalId.tenant_id == tenant_id,
            ExternalId.system == system,
            ExternalId.member_id == member_id,
        )
    )
    return bool(getattr(result, "rowcount", 0))


class ExternalIdCache:
    """``(tenant, external_id) -> member_id`` for one system, per tenant, at most
    :data:`TTL_SECONDS` old (see the module docstring for why that is safe across replicas).

    One load per tenant at a time (a lock per tenant): a burst of events after expiry waits for
    one query instead of sending one each.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        system: str,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._system = system
        self._ttl = ttl
        self._clock = clock
        self._tenants: dict[str, tuple[float, dict[str, str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def member_of(self, tenant_id: str, external_id: str) -> str | None:
        """The club's member id for ``external_id``, or None when the directory has none."""
        return (await self._mapping(tenant_id)).get(external_id)

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's copy (the next look-up reloads it)."""
        self._tenants.pop(tenant_id, None)

    async def _mapping(self, tenant_id: str) -> dict[str, str]:
        cached = self._tenants.get(tenant_id)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cached = self._tenants.get(tenant_id)
            if cached is not None and self._clock() < cached[0]:
                return cached[1]
            async with self._sessions() as session:
                rows = await session.execute(
                    select(ExternalId.external_id, ExternalId.member_id).where(
                        ExternalId.tenant_id == tenant_id, ExternalId.system == self._system
                    )
                )
                mapping = {str(external): str(member) for external, member in rows}
            self._tenants[tenant_id] = (self._clock() + self._ttl, mapping)
            return mapping
