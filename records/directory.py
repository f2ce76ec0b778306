"""The member directory's first brick: a member's ids in the club's other systems.

A club's access system often knows its people by its own user ids (Kisi's user id), not by the
member id the club's CRM uses and Lapse alerts on. ``member_external_ids`` maps, per tenant,
``(system, external_id)`` to ``member_id``; ingest asks it when a vendor's event arrives, so
the event is written to Kafka under the club's member id. The mapping is applied once, at
ingest: the record on Kafka carries the member id, so a replay or a restarted detector reads
the same member whatever the directory says later ("time has one answer").

Set through ``PUT /v1/members/{member_id}/external-ids/{system}`` (api/routers/external_ids.py),
erased with the member (records/erasure.py). External ids are personal data: never logged.

Lookups are served from a per-tenant copy kept :data:`TTL_SECONDS` (loaded whole on first use
and when older), so an event costs a dictionary look-up, not a query. Each replica keeps its
own copy and PostgreSQL is the only writer's target, so replicas never disagree for longer than
the TTL after a change, and what they disagree about is only which member an event received in
that window is written under (as if the change had been made a few seconds later).
"""

from __future__ import annotations

import asyncio
import csv
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from records.tables import ExternalId
from schemas.events import LABEL_PATTERN, MemberId

TTL_SECONDS = 30.0
"""How stale a replica's copy of a tenant's mappings may be: long enough that a busy door
costs one query per half minute, short enough that a mapping set by the front desk applies to
the member's next visit."""


SYSTEM_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
"""A system's name: lower case, as in the route ``/external-ids/{system}``."""
_MEMBER: TypeAdapter[str] = TypeAdapter(MemberId)
_LABEL = re.compile(LABEL_PATTERN)


class ExternalIdTaken(ValueError):
    """The external id already belongs to another member of the tenant."""


@dataclass(frozen=True, slots=True)
class Mapping:
    line: int
    member_id: str
    external_id: str


class MappingFileError(ValueError):
    """A mappings file that cannot be imported as a whole; the message names the lines (never
    their ids: the file is personal data, the terminal may be logged)."""


def read_mappings(path: Path) -> list[Mapping]:
    """The rows of a CSV with the columns ``member_id`` and ``external_id`` (others ignored;
    UTF-8, a BOM allowed). Every row is checked before any is used: a member id the contract
    refuses, an empty or control-character id, or an id given twice is an error by line."""
    errors: list[str] = []
    rows: list[Mapping] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"member_id", "external_id"} - set(reader.fieldnames or ())
        if missing:
            raise MappingFileError(f"{path}: no column {', '.join(sorted(missing))}")
        seen_member: dict[str, int] = {}
        seen_external: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            member = (row.get("member_id") or "").strip()
            external = (row.get("external_id") or "").strip()
            if not member and not external:
                continue
            try:
                _MEMBER.validate_python(member)
            except ValidationError:
                errors.append(f"line {line}: member_id is not a valid member id")
                continue
            if not external or len(external) > 128 or not _LABEL.match(external):
                errors.append(f"line {line}: external_id is empty, too long or has controls")
                continue
            for seen, value, what in (
                (seen_member, member, "member_id"),
                (seen_external, external, "external_id"),
            ):
                if value in seen:
                    errors.append(f"line {line}: same {what} as line {seen[value]}")
                seen.setdefault(value, line)
            rows.append(Mapping(line, member, external))
    if errors:
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        raise MappingFileError("nothing imported: " + "; ".join(errors[:20]) + more)
    return rows


async def import_mappings(
    session: AsyncSession, tenant_id: str, system: str, rows: list[Mapping]
) -> int:
    """Set every mapping (the caller commits, so a file is imported whole or not at all);
    returns how many changed. An id already another member's (not in the file) is an error."""
    if not re.match(SYSTEM_PATTERN, system):
        raise MappingFileError(f"system must match {SYSTEM_PATTERN} (e.g. kisi)")
    # The file says what its members' ids are: their other ids go first, so an id may move
    # between two members of the same file. An id held by a member outside the file stays his.
    pairs = {(r.member_id, r.external_id) for r in rows}
    members = sorted({r.member_id for r in rows})
    for start in range(0, len(members), 1000):
        held = await session.scalars(
            select(ExternalId).where(
                ExternalId.tenant_id == tenant_id,
                ExternalId.system == system,
                ExternalId.member_id.in_(members[start : start + 1000]),
            )
        )
        for old in list(held):
            if (old.member_id, old.external_id) not in pairs:
                await session.delete(old)
    await session.flush()
    taken = []
    changed = 0
    for row in rows:
        try:
            changed += await set_external_id(
                session, tenant_id, row.member_id, system, row.external_id
            )
        except ExternalIdTaken:
            taken.append(row.line)
        await session.flush()
    if taken:
        lines = ", ".join(str(n) for n in taken[:20])
        raise MappingFileError(
            f"nothing imported: the {system} id of line(s) {lines} belongs to another member "
            "(unmap it there first)"
        )
    return changed


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
