"""The ``ingested_events`` table: which event_ids the broker already acknowledged, per tenant.

One query per batch each way (look up the batch's ids; insert the newly acknowledged ones),
so deduplication costs two database round trips per request, not two per event.

The service admits through a :class:`Store`. On PostgreSQL that is :class:`PgStore`: its own
small pool of autocommit connections whose session settings are fixed at connect time, so each
lookup and each insert is exactly one round trip (the session path below costs five: a pool
ping, ``BEGIN``, ``SET LOCAL``, the statement and ``COMMIT``; measured, those round trips and
the PostgreSQL CPU behind them were most of a single event's cost). Keys are ``(tenant_id,
event_id)`` pairs so one call can serve the events of several tenants (coalesced single
events).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import String, bindparam, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from plumbing.database import create_engine
from records.tables import IngestedEvent, SiteDataUntil
from records.types import UTCDateTime
from records.upsert import insert

_table = IngestedEvent.__table__

Key = tuple[str, str]
"""``(tenant_id, event_id)``: ids are unique per tenant."""
Site = tuple[str, str]
"""``(tenant_id, site_id)``."""


# On PostgreSQL the batch's ids travel as one array parameter: the statements stay the same
# whatever the batch size (prepared once per connection) and cost ~1 ms for 1000 ids, where an
# IN list of 1000 parameters or a 1000-row VALUES costs tens of ms to build and bind. The
# lookup probes the key per id, as :class:`PgStore`'s does (see there): ``event_id = ANY(:ids)``
# was planned as a sequential scan of the whole table (4.5 ms of PostgreSQL CPU for 1000 ids
# at 50k rows, growing with the table, where the probes take ~1.8 ms).
_PG_SEEN = text(
    "SELECT k.event_id FROM unnest(CAST(:ids AS VARCHAR[])) AS k(event_id) "
    "CROSS JOIN LATERAL (SELECT 1 FROM ingested_events i "
    "WHERE i.tenant_id = :tenant AND i.event_id = k.event_id LIMIT 1) AS hit"
).bindparams(bindparam("ids", type_=postgresql.ARRAY(String())))
_PG_REMEMBER = text(
    "INSERT INTO ingested_events (tenant_id, event_id, received_at) "
    "SELECT :tenant, unnest(:ids), :at ON CONFLICT DO NOTHING"
).bindparams(
    bindparam("ids", type_=postgresql.ARRAY(String())),
    bindparam("at", type_=UTCDateTime()),
)


async def seen(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, event_ids: Sequence[str]
) -> set[str]:
    """The subset of ``event_ids`` already acknowledged for this tenant."""
    if not event_ids:
        return set()
    async with sessions() as session:
        if _is_pg(session):
            # Plan for this array and the table as it is now: a generic plan cached while the
            # table was small is a sequential scan, and it stays one while the table grows
            # (seen here: 2 s per lookup at 100k rows where the index takes 5 ms).
            await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            result = await session.execute(_PG_SEEN, {"tenant": tenant_id, "ids": list(event_ids)})
        else:
            result = await session.execute(
                select(_table.c.event_id).where(
                    _table.c.tenant_id == tenant_id, _table.c.event_id.in_(event_ids)
                )
            )
        return set(result.scalars())


async def remember(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    event_ids: Sequence[str],
    at: datetime,
) -> None:
    """Record acknowledged ids in one statement; an id already there is left alone."""
    if not event_ids:
        return
    async with sessions() as session:
        if _is_pg(session):
            # Losing the last few ms of these rows in a PostgreSQL crash only reopens the
            # residual window (a retry is produced again), so skip waiting for the WAL flush.
            await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            params = {"tenant": tenant_id, "ids": list(event_ids), "at": at}
            await session.execute(_PG_REMEMBER, params)
        else:
            await session.execute(
                sqlite.insert(IngestedEvent).on_conflict_do_nothing(),
                [{"tenant_id": tenant_id, "event_id": e, "received_at": at} for e in event_ids],
            )
        await session.commit()


async def purge(sessions: async_sessionmaker[AsyncSession], before: datetime) -> int:
    """Forget ids received before ``before``; returns how many rows went."""
    async with sessions() as session:
        result = await session.execute(
            delete(IngestedEvent).where(IngestedEvent.received_at < before)
        )
        await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- stores: what Intake admits through ------------------------------------------------------


class StoreUnavailable(Exception):
    """The database did not answer a deduplication call (the driver's error, wrapped)."""


DB_ERRORS = (SQLAlchemyError, OSError, UnicodeError, StoreUnavailable)
"""What a failing store call raises: the database's trouble, never the client's."""


class Store(Protocol):
    """Which ``(tenant, event_id)`` keys were acknowledged already; remember new ones."""

    async def seen(self, keys: Sequence[Key]) -> set[Key]: ...

    async def remember(self, keys: Sequence[Key], at: datetime) -> None: ...

    async def data_reached(self, latest: Mapping[Site, datetime], at: datetime) -> None:
        """Record how far each site's gate data has reached (``site_data_until``): the latest
        event time acknowledged, never moved back."""

    async def close(self) -> None: ...


class SessionStore:
    """Any database through the service's session factory (SQLite: the demo, quick starts)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def seen(self, keys: Sequence[Key]) -> set[Key]:
        found: set[Key] = set()
        for tenant, ids in _by_tenant(keys).items():
            found.update((tenant, e) for e in await seen(self.sessions, tenant, ids))
        return found

    async def remember(self, keys: Sequence[Key], at: datetime) -> None:
        for tenant, ids in _by_tenant(keys).items():
            await remember(self.sessions, tenant, ids, at)

    async def data_reached(self, latest: Mapping[Site, datetime], at: datetime) -> None:
        if not latest:
            return
        table = SiteDataUntil.__table__
        rows = [
            {"tenant_id": t, "site_id": s, "data_until": until, "updated_at": at}
            for (t, s), until in sorted(latest.items())
        ]
        async with self.sessions() as session, session.begin():
            stmt = insert(session, table)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "site_id"],
                    set_={
                        "data_until": stmt.excluded.data_until,
                        "updated_at": stmt.excluded.updated_at,
                    },
                    where=table.c.data_until < stmt.excluded.data_until,
                ),
                rows,
            )

    async def close(self) -> None:
        return None


# Pairs travel as two array parameters; the statements are the same whatever the count, so
# asyncpg prepares each once per connection.
#
# The lookup probes the primary key once per key (a LATERAL subquery with LIMIT 1 cannot be
# turned into a hash join), whatever the planner thinks of the table. As a plain join, a batch
# of 1000 keys against a table of 10k to a few 100k rows (a day or two of one club's events)
# was planned as a hash join over a sequential scan of the whole table: 17 ms of PostgreSQL CPU
# per lookup at 50k rows and growing with the table, where the probes take ~2 ms. On a
# machine PostgreSQL shares with ingest and the broker, that CPU was taken from them.
_PG_SEEN_PAIRS = (
    "SELECT k.tenant_id, k.event_id "
    "FROM unnest($1::varchar[], $2::varchar[]) AS k(tenant_id, event_id) "
    "CROSS JOIN LATERAL (SELECT 1 FROM ingested_events i "
    "WHERE i.tenant_id = k.tenant_id AND i.event_id = k.event_id LIMIT 1) AS hit"
)
# The insert comes after a lookup that found none of its keys, so it is tried as a plain
# INSERT first: ON CONFLICT DO NOTHING checks each row's key before and after inserting it,
# which cost PostgreSQL ~5.5 ms of CPU per 1000 rows where the plain INSERT costs ~3 ms. A key
# that did appear meanwhile (a concurrent request with the same new id, or a failed lookup)
# makes the whole statement fail, and it is repeated with ON CONFLICT DO NOTHING.
_PG_INSERT_PAIRS = (
    "INSERT INTO ingested_events (tenant_id, event_id, received_at) "
    "SELECT k.tenant_id, k.event_id, $3 FROM unnest($1::varchar[], $2::varchar[]) "
    "AS k(tenant_id, event_id)"
)
# The same for the keys of one tenant (every batch request, most coalesced flushes): the
# tenant travels once, only the ids as an array. asyncpg encodes an array element by element
# with Python-level checks, so half the elements is half that client CPU (1000 ids: ~0.5 ms
# less per batch for the lookup and the insert together).
_PG_SEEN_TENANT = (
    "SELECT k.event_id FROM unnest($2::varchar[]) AS k(event_id) "
    "CROSS JOIN LATERAL (SELECT 1 FROM ingested_events i "
    "WHERE i.tenant_id = $1 AND i.event_id = k.event_id LIMIT 1) AS hit"
)
_PG_INSERT_TENANT = (
    "INSERT INTO ingested_events (tenant_id, event_id, received_at) "
    "SELECT $1, k.event_id, $3 FROM unnest($2::varchar[]) AS k(event_id)"
)
_ON_CONFLICT = " ON CONFLICT DO NOTHING"
# Coverage only moves forward: a batch of old events (an upload) never moves it back.
_PG_COVER = (
    "INSERT INTO site_data_until (tenant_id, site_id, data_until, updated_at) "
    "SELECT k.t, k.s, k.u, $4 FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[]) "
    "AS k(t, s, u) ON CONFLICT (tenant_id, site_id) DO UPDATE "
    "SET data_until = excluded.data_until, updated_at = excluded.updated_at "
    "WHERE site_data_until.data_until < excluded.data_until"
)
# Session settings of the store's own connections, fixed at connect time:
# - plan for each array as it is (a generic plan cached while the table was small is a
#   sequential scan, and it stays one while the table grows: 2 s a lookup at 100k rows where
#   the index takes 5 ms);
# - do not wait for the WAL flush on insert: losing the last few ms of these rows in a
#   PostgreSQL crash only reopens the residual window (a retry is produced again).
_PG_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan", "synchronous_commit": "off"}


class PgStore:
    """PostgreSQL, one round trip per call, on a pool of its own (see the module docstring).

    No pre-ping: a connection that died with a PostgreSQL restart fails one call, which the
    caller tolerates (a failed lookup produces unchecked, a failed insert reopens the
    residual window), and the pool replaces it.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def connect(cls, database_url: str, pool_size: int = 4) -> PgStore:
        engine = create_engine(
            database_url,
            pool_pre_ping=False,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"server_settings": _PG_SERVER_SETTINGS},
        )
        return cls(engine)

    async def seen(self, keys: Sequence[Key]) -> set[Key]:
        if not keys:
            return set()
        tenant = _only_tenant(keys)
        if tenant is not None:
            rows = await self._call("fetch", _PG_SEEN_TENANT, tenant, [k[1] for k in keys])
            return {(tenant, r[0]) for r in rows}
        rows = await self._call("fetch", _PG_SEEN_PAIRS, *_columns(keys))
        return {(r[0], r[1]) for r in rows}

    async def remember(self, keys: Sequence[Key], at: datetime) -> None:
        if not keys:
            return
        tenant = _only_tenant(keys)
        args: tuple[Any, ...]
        if tenant is not None:
            statement, args = _PG_INSERT_TENANT, (tenant, [k[1] for k in keys], at)
        else:
            statement, args = _PG_INSERT_PAIRS, (*_columns(keys), at)
        try:
            await self._call("execute", statement, *args)
        except StoreUnavailable as exc:
            if not isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                raise
            await self._call("execute", statement + _ON_CONFLICT, *args)

    async def data_reached(self, latest: Mapping[Site, datetime], at: datetime) -> None:
        if not latest:
            return
        sites = sorted(latest)  # one order: concurrent upserts never wait for each other
        tenants, ids = [t for t, _ in sites], [s for _, s in sites]
        await self._call("execute", _PG_COVER, tenants, ids, [latest[k] for k in sites], at)

    async def _call(self, method: str, *args: Any) -> Any:
        """Run one statement on the asyncpg connection under a pooled SQLAlchemy one.

        Sent on the driver straight, it is autocommitted by PostgreSQL: no ``BEGIN`` or
        ``COMMIT`` round trip. SQLAlchemy's adapter starts its transactions lazily, on its own
        first statement, so it has none open here and returning the connection sends nothing.
        It does not see the driver's errors either: on any failure (or cancellation, which
        leaves a statement in flight) the connection is invalidated here, never reused.
        """
        async with self.engine.connect() as conn:
            try:
                raw = await conn.get_raw_connection()
                return await getattr(raw.driver_connection, method)(*args)
            except BaseException as exc:
                await conn.invalidate()
                if isinstance(exc, Exception) and not isinstance(exc, SQLAlchemyError):
                    raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
                raise

    async def close(self) -> None:
        await self.engine.dispose()


def open_store(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> Store:
    """:class:`PgStore` on PostgreSQL, else the session path."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PgStore.connect(database_url)
    return SessionStore(sessions)


def _only_tenant(keys: Sequence[Key]) -> str | None:
    """The tenant of every key when they share one, else ``None``."""
    tenants = {k[0] for k in keys}
    return tenants.pop() if len(tenants) == 1 else None


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys]


def _by_tenant(keys: Sequence[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for tenant, event_id in keys:
        grouped.setdefault(tenant, []).append(event_id)
    return grouped
