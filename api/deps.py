"""Request dependencies: a database session, the calling principal and its scopes, cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.delivery import Dispatcher
from plumbing.problems import Problem
from plumbing.settings import Settings
from records.api_keys import Principal, authenticate
from schemas.events import MemberId, pattern_message


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]


def settings_of(request: Request) -> Settings:
    """The settings the app was created with (the routes and the staff page read them here)."""
    settings: Settings = request.app.state.settings
    return settings


def _dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


SettingsDep = Annotated[Settings, Depends(settings_of)]
DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


# Declared as FastAPI's bearer scheme so the OpenAPI document lists it on every operation that
# takes a key (plumbing.openapi then documents their 401 and 403); the errors stay ours.
_bearer = HTTPBearer(auto_error=False, description="An API key (`lapse keys create`).")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _principal(credentials: CredentialsDep, session: SessionDep) -> Principal:
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise _unauthorized("an API key is required: 'Authorization: Bearer <key>'")
    principal = await authenticate(session, token)
    if principal is None:
        raise _unauthorized("the API key is unknown or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the principal if its key has ``scope`` (403 otherwise)."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.allows(scope):
            raise Problem(
                403,
                "Forbidden",
                f"this API key lacks the {scope!r} scope",
                type_="forbidden",
                scope=scope,
            )
        return principal

    return check


AlertsReader = Annotated[Principal, Depends(require("alerts:read"))]
WebhooksManager = Annotated[Principal, Depends(require("webhooks:manage"))]


async def _tenant_writer(
    principal: Annotated[Principal, Depends(require("events:write"))],
) -> Principal:
    """A key of the whole tenant with ``events:write``: a member's external ids and profile are
    the tenant's, and a site-bound key may not change what another site's events land on."""
    if principal.site_id is not None:
        raise Problem(
            403,
            "Forbidden",
            "a member's records are the whole tenant's: use a key not bound to a site",
            type_="forbidden",
        )
    return principal


TenantWriter = Annotated[Principal, Depends(_tenant_writer)]
_MEMBER: TypeAdapter[str] = TypeAdapter(MemberId)


def valid_member_id(member_id: str) -> None:
    """A record under an id the event contract refuses would belong to no addressable member:
    422 with the contract's words."""
    try:
        _MEMBER.validate_python(member_id)
    except ValidationError:
        message = pattern_message("member_id") or "not a valid member id"
        raise Problem(
            422,
            "Invalid request",
            "invalid field(s): member_id",
            type_="validation",
            errors=[{"pointer": "/member_id", "field": "member_id", "message": message}],
        ) from None


def not_found(what: str) -> Problem:
    """The same answer whether a resource does not exist or belongs to another tenant."""
    return Problem(404, "Not found", f"no such {what}", type_="not-found")


# -- cursors: opaque to clients, (created_at, id) of the last item of the previous page --


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, item_id = json.loads(raw)
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None or not isinstance(item_id, str):
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Problem(
            422,
            "Invalid request",
            "invalid field(s): cursor",
            type_="validation",
            errors=[{"pointer": "/cursor", "field": "cursor", "message": "invalid cursor"}],
        ) from exc
    return created_at, item_id
