"""What every ingest route depends on: the service state and the caller's API key."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.intake import Intake, utcnow
from ingest.limits import RateLimiter
from lapse.auth import Principal, authenticate
from lapse.problems import Problem
from lapse.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


@dataclass(slots=True)
class IngestState:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    limiter: RateLimiter
    now: Callable[[], datetime] = utcnow
    producer: AIOKafkaProducer | None = None


def get_state(request: Request) -> IngestState:
    state = request.app.state.ingest
    assert isinstance(state, IngestState)
    return state


StateDep = Annotated[IngestState, Depends(get_state)]

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
        if credentials is None:
            raise Problem(
                401,
                "Unauthorized",
                "send Authorization: Bearer <API key>",
                type_="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="lapse"'},
            )
        try:
            async with state.sessions() as session:
                found = await authenticate(session, credentials.credentials)
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

    return principal


WriterDep = Annotated[Principal, Depends(require_scope("events:write"))]
AdminDep = Annotated[Principal, Depends(require_scope("admin"))]


def get_intake(state: StateDep) -> Intake:
    """The admission path over the started producer; 503 until Kafka is connected."""
    if state.producer is None:
        raise unavailable("not connected to Kafka yet; retry later")
    return Intake(state.settings, state.sessions, state.producer, state.now)


IntakeDep = Annotated[Intake, Depends(get_intake)]
