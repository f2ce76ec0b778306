"""What every ingest route depends on: the service state and the caller's API key."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.coalesce import Coalescer
from ingest.data_until import SiteProgress
from ingest.dedup import Store
from ingest.intake import Intake, utcnow
from ingest.limits import RateLimiter
from plumbing.problems import Problem
from plumbing.settings import Settings
from records.api_keys import Principal, authenticate, digest

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


# How long a checked API key is trusted without asking the database again: a revoked key
# keeps working on an instance for at most this long (docs/ingest.md). Unknown or revoked
# keys are never cached, so a new key works at once.
KEY_CACHE_SECONDS = 2.0
KEY_CACHE_MAX = 10_000


class KeyCache:
    """Principals of recently checked keys, by the key's digest, for ``ttl`` seconds.

    Measured: the key lookup was a third of the database round trips of a single-event
    request. Bounded: past ``max_keys`` entries the cache starts over.
    """

    def __init__(
        self,
        ttl: float = KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = KEY_CACHE_MAX,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_keys = max_keys
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}

    async def lookup(
        self, key_digest: str, fetch: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """The cached principal, else ``fetch()``'s, shared by the requests waiting for it.

        One lookup per key at a time: when an entry expires under load, the requests that
        arrive meanwhile wait for the same query instead of each sending their own (seen in
        the benchmark: a herd of lookups per expiry, each slower than the last).
        """
        found = self.get(key_digest)
        if found is not None:
            return found
        pending = self._pending.get(key_digest)
        if pending is None:
            pending = asyncio.ensure_future(fetch())
            self._pending[key_digest] = pending
            pending.add_done_callback(lambda f: self._done(key_digest, f))
        found = await asyncio.shield(pending)
        if found is not None:
            self.put(key_digest, found)
        return found

    def _done(self, key_digest: str, fut: asyncio.Future[Principal | None]) -> None:
        self._pending.pop(key_digest, None)
        if not fut.cancelled():
            fut.exception()  # retrieved even when every waiter is gone

    def get(self, key_digest: str) -> Principal | None:
        entry = self._entries.get(key_digest)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key_digest]
            return None
        return entry[1]

    def put(self, key_digest: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_keys:
            self._entries.clear()
        self._entries[key_digest] = (self.clock() + self.ttl, principal)


@dataclass(slots=True)
class IngestState:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    limiter: RateLimiter
    now: Callable[[], datetime] = utcnow
    producer: AIOKafkaProducer | None = None
    keys: KeyCache = field(default_factory=KeyCache)
    store: Store | None = None
    singles: Coalescer | None = None
    progress: SiteProgress | None = None


def get_state(request: Request) -> IngestState:
    state = request.app.state.ingest
    assert isinstance(state, IngestState)
    return state


async def _state(request: Request) -> IngestState:
    # Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread.
    return get_state(request)


StateDep = Annotated[IngestState, Depends(_state)]

_bearer = HTTPBearer(auto_error=False, description="An API key (`lapse keys create`).")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def unavailable(detail: str, type_: str = "unavailable") -> Problem:
    return Problem(
        503,
        "Service unavailable",
        detail,
        type_=type_,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


PrincipalCheck = Callable[[IngestState, HTTPAuthorizationCredentials | None], Awaitable[Principal]]


def require_scope(scope: str) -> PrincipalCheck:
    """A dependency: the caller's key; 401 when missing, unknown or revoked, 403 without
    ``scope`` (``admin`` has every scope)."""

    async def principal(state: StateDep, credentials: CredentialsDep) -> Principal:
        return await check_key(state, credentials, scope)

    return principal


async def principal_of(state: IngestState, request: Request, scope: str) -> Principal:
    """:func:`require_scope` for a route that takes only the request (the hot event routes:
    FastAPI's dependency resolution cost more than the rest of a single-event request)."""
    credentials = await _bearer(request)
    return await check_key(state, credentials, scope)


async def check_key(
    state: IngestState, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> Principal:
    """The caller's key; 401 when missing, unknown or revoked, 403 without ``scope``."""
    if credentials is None:
        raise Problem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <API key>",
            type_="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="lapse"'},
        )
    presented = credentials.credentials

    async def fetch() -> Principal | None:
        async with state.sessions() as session:
            return await authenticate(session, presented)

    try:
        found = await state.keys.lookup(digest(presented), fetch)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("API key lookup failed: %s", type(exc).__name__)
        raise unavailable("API keys cannot be checked right now; retry later") from None
    if found is None:
        raise Problem(
            401,
            "Unauthorized",
            "unknown or revoked API key",
            type_="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="lapse", error="invalid_token"'},
        )
    if not found.allows(scope):
        raise Problem(
            403,
            "Forbidden",
            f"the API key lacks scope {scope}",
            type_="forbidden",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return found


AdminDep = Annotated[Principal, Depends(require_scope("admin"))]


def intake_for(state: IngestState) -> Intake:
    """The admission path over the started producer; 503 until Kafka is connected."""
    if state.producer is None:
        raise unavailable("not connected to Kafka yet; retry later")
    return Intake(
        state.settings,
        state.sessions,
        state.producer,
        state.now,
        state.store,
        state.singles,
        state.progress,
    )
