"""API keys: created once, shown once, stored as a SHA-256 digest, bound to a tenant.

A key is ``lapse_`` plus 32 random bytes (URL-safe base64). With that much entropy a plain
SHA-256 is enough (no password-style slow hash needed), and lookup is by digest.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import ApiKey
from schemas.events import Id

KEY_PREFIX = "lapse_"
SCOPES = ("events:write", "alerts:read", "webhooks:manage", "admin")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every query an api or ingest route makes is scoped by ``tenant_id``."""

    key_id: str
    tenant_id: str
    site_id: str | None
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


_ID: TypeAdapter[str] = TypeAdapter(Id)


async def create_key(
    session: AsyncSession,
    tenant_id: str,
    *,
    scopes: tuple[str, ...] = SCOPES,
    site_id: str | None = None,
    name: str = "",
) -> tuple[str, ApiKey]:
    """Add a key to the session (the caller commits) and return the plain key with its row."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    # A key for a tenant (or site) the contract's id grammar refuses could send no valid event.
    for what, value in (("tenant", tenant_id), ("site", site_id)):
        if value is not None:
            try:
                _ID.validate_python(value)
            except ValidationError:
                raise ValueError(
                    f"{what} id {value!r} breaks the id grammar (docs/ingest.md#ids)"
                ) from None
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        site_id=site_id,
        name=name,
        prefix=plain[: len(KEY_PREFIX) + 6],
        digest=digest(plain),
        scopes=list(scopes),
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    session.add(row)
    return plain, row


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    if not presented.startswith(KEY_PREFIX):
        return None
    row = await session.scalar(select(ApiKey).where(ApiKey.digest == digest(presented)))
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.id, row.tenant_id, row.site_id, frozenset(row.scopes))
